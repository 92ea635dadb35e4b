//! End-to-end tests over real sockets, one module per capability, on the shared [`kit`].

mod access_log;
mod cli;
mod grpc;
mod headers;
mod kit;
mod limits;
mod routing;
mod soap;
mod upstream_tls;
mod upstreams;
mod websocket;
