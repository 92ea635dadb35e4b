//! The Portcullis request pipeline, without sockets.
//!
//! [`compile`] turns a loaded surface document into an immutable [`Snapshot`] (or every
//! diagnostic at once). For each request, [`pipeline::handle`] runs every phase of SPEC §3 in
//! order — the request phases (each a stage type returning [`Flow`]), the rate-limit decision,
//! the cache lookup, the transform, the upstream (a mock, a SOAP exchange, or the request
//! forwarded), the response transform, the cache store and the record for the log — and keeps
//! a decision trace of what each phase decided. Gateway-made answers are [`Problem`]
//! documents. The I/O around it (sockets, the cache store, the stand-in upstream of `explain`
//! and `test`) comes in through [`pipeline::Edge`], time through [`clock::Clock`].

pub mod cache;
pub mod clock;
pub mod compile;
pub mod context;
pub mod cors;
pub mod error;
pub mod flow;
pub mod headers;
pub mod ids;
pub mod limits;
pub mod pipeline;
pub mod problem;
pub mod record;
pub mod route;
pub mod snapshot;
pub mod soap;
pub mod spans;
pub mod stage;
#[cfg(test)]
mod test_support;
pub mod trace;
pub mod websocket;

pub use compile::compile;
pub use context::{ClientCert, RequestContext, TlsInfo, VerifiedCredentials};
pub use error::UpstreamError;
pub use flow::{Flow, Pending, Reply};
pub use problem::{ErrorCode, Problem};
pub use snapshot::Snapshot;
