//! What the gateway tells its operators (SPEC §7): Prometheus [`metrics`], the JSON
//! [`access_log`] (one line per request, written off the request's task) and the [`audit`]
//! log (one line per admin action or reload), and the admin [`dashboard`]'s per-route traffic
//! and recent refusals.
//!
//! Each renders what the request path already recorded (`portcullis_core::record::Record`)
//! and depends on nothing that serves traffic: the proxy feeds it, the admin API exposes it.

pub mod access_log;
pub mod audit;
pub mod dashboard;
pub mod metrics;
