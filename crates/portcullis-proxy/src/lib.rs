//! Everything with a socket: downstream listeners ([`server`]), upstream pools with
//! balancing, retries and health checks ([`upstream`]), streaming bodies ([`body`]) and the
//! access log writer ([`access_log`]).
//!
//! A request flows: accept → [`server`] (connection cap, protocol detection, header-read and
//! idle deadlines) → [`service::handle`] (intake and the core pipeline, then a mock, the
//! gateway's own problem document, or [`upstream`] forwarding) → response transform →
//! [`body::ResponseBody`] streams back and writes the access log line when it ends. An
//! allowed WebSocket upgrade that the upstream accepts becomes a spliced tunnel (`tunnel`);
//! a SOAP route's request becomes an envelope and its answer JSON (`soap`). Routes with
//! `cache` answer from [`cache`] before forwarding and store what streams back.

pub mod access_log;
pub mod admin;
pub mod audit;
pub mod body;
pub mod cache;
mod conn_io;
pub mod database;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod rate_limit;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod service;
mod soap;
pub mod tls;
mod tunnel;
pub mod upstream;

pub use runtime::Runtime;
pub use server::{Gateway, GatewayHandle};
