//! The Portcullis request pipeline, without sockets.
//!
//! [`compile`] turns a loaded surface document into an immutable [`Snapshot`] (or every
//! diagnostic at once). For each request, [`pipeline::intake`] builds the [`RequestContext`]
//! and [`pipeline::on_request`] runs the stages of SPEC §3 in order, each returning
//! [`Flow::Continue`] or [`Flow::Respond`]; gateway-made answers are [`Problem`] documents.
//! The proxy crate does the I/O around this; `explain` and `test` run the same code offline.

pub mod compile;
pub mod context;
pub mod flow;
pub mod headers;
pub mod ids;
pub mod pipeline;
pub mod problem;
pub mod route;
pub mod snapshot;
pub mod stage;
#[cfg(test)]
mod test_support;

pub use compile::compile;
pub use context::{ClientCert, RequestContext, TlsInfo, VerifiedCredentials};
pub use flow::{Flow, Pending, Reply};
pub use problem::{ErrorCode, Problem};
pub use snapshot::Snapshot;
