//! Identity for the gateway: who is calling (JWT, API key) and what they may do (policies).
//!
//! Everything here is synchronous and allocation-light on the request path; state that must
//! outlive a config reload (key sets, the API key index) sits behind `ArcSwap` snapshots that
//! background tasks replace whole.

pub mod api_key;
pub mod jwt;
pub mod policy;
