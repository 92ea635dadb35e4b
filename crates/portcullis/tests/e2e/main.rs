//! End-to-end tests over real sockets, one module per capability, on the shared [`kit`]
//! (and [`certs`] for generated certificates and TLS clients).

mod access_log;
mod admin;
mod admin_audit;
mod admin_config;
mod alerts;
mod auth;
mod cache;
mod certs;
mod cli;
mod decisions;
mod differential;
mod examples;
mod grpc;
mod headers;
mod idp;
mod keys;
mod kit;
mod limits;
mod offline;
mod oidc;
mod plans;
mod postgres_tls;
mod rate_limits;
mod reload;
mod rotation;
mod routing;
mod security;
mod soap;
mod tls;
mod upstream_tls;
mod upstreams;
mod waf;
mod websocket;
