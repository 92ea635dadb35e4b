//! See [`super`].

#[allow(unused_imports)]
use crate::kit;
