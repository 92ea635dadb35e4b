//! Everything with a socket: downstream listeners ([`server`]), upstream pools with
//! balancing, retries and health checks ([`upstream`]) and streaming bodies ([`body`] on the
//! request side, [`response_body`] on the response side). Metrics and the access log are
//! `portcullis-telemetry`'s, the admin API `portcullis-admin`'s.
//!
//! A request flows: accept → [`server`] (connection cap, protocol detection, header-read and
//! idle deadlines) → [`service::handle`]: the core pipeline (every phase in SPEC order, the
//! mock and SOAP exchange included) against this crate's edge — [`upstream`] forwarding and
//! the [`cache`] store → [`response_body::ResponseBody`] streams back, stores the cache's capture and
//! writes the access log line when it ends. An allowed WebSocket upgrade that the upstream
//! accepts becomes a spliced tunnel (`tunnel`).

pub mod audit;
pub mod body;
pub mod cache;
mod conn_io;
pub mod database;
pub mod files;
pub mod h1;
pub mod identity;
pub mod rate_limit;
pub mod reload;
pub mod response_body;
pub mod runtime;
pub mod server;
pub mod service;
pub mod tls;
mod tunnel;
pub mod upstream;

pub use files::{FileReport, LoadedFiles, load_files, prepare};
pub use runtime::Runtime;
pub use server::{Gateway, GatewayHandle};
