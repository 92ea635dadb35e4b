//! What the pipeline asks of the world around it: the [`Edge`]. The gateway's edge is the
//! proxy — pooled upstream connections with balancing, retries and health, the response cache
//! in memory or Redis; the offline edge of `explain` and `test` answers from the case file's
//! stand-in upstream and keeps no cache. Everything else a request meets is the same code.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;

use crate::cache::{CacheKey, Entry};
use crate::error::UpstreamError;
use crate::record::BodyStats;
use crate::snapshot::Limits;

/// How the upstream phase wants a request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// An ordinary request: the target's base path is prefixed to the request's path.
    Proxy,
    /// A SOAP envelope: to the target's base path if it has one, else to the request's path
    /// (the WSDL address's). Never retried (a POST).
    SoapEndpoint,
    /// A WebSocket upgrade the pipeline checked: a 101 is the answer hoped for (any other
    /// forward treats a 101 as invalid).
    WebSocketUpgrade,
}

/// The request body to send.
#[derive(Debug)]
pub enum OutBody<B> {
    Empty,
    /// Made by the gateway (a SOAP envelope).
    Full(Bytes),
    /// The client's, as it streams: counted into [`Outbound::stats`], stopped at
    /// [`Outbound::limits`]' `max_body_bytes`, given up on after `idle_timeout` without bytes.
    Stream(B),
    /// The client's body whose first bytes the WAF already read (`head`, inspected; counted
    /// like the rest), then the rest of it as it streams, as [`OutBody::Stream`].
    Prefixed(Bytes, B),
}

/// One request for the route's upstream, after every request phase.
#[derive(Debug)]
pub struct Outbound<B> {
    /// The upstream's index in [`Snapshot::upstreams`](crate::Snapshot::upstreams).
    pub upstream: usize,
    pub parts: Parts,
    pub body: OutBody<B>,
    /// For `hash:client_ip` balancing.
    pub client_ip: IpAddr,
    /// For the upstream's answer (its head): the route's `timeout`, else the upstream's.
    pub timeout: Duration,
    pub mode: ForwardMode,
    /// How far the client's streamed body got (`None` for an empty or gateway-made body).
    pub stats: Option<Arc<BodyStats>>,
    /// The route's limits: the streamed body's bound and its stall timeout.
    pub limits: Limits,
}

/// The upstream's answer.
#[derive(Debug)]
pub struct Forwarded<R> {
    pub response: http::Response<R>,
    /// The target that answered (the log's `target`).
    pub target: Arc<str>,
    /// Until the answer's head arrived.
    pub upstream_ms: f64,
}

/// The I/O of the pipeline. Futures are `Send`: the gateway runs requests on a multi-threaded
/// runtime.
pub trait Edge: Sync {
    /// The request body as the listener delivers it.
    type Body: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static;
    /// The upstream's response body. It must hand its connection back itself once read to
    /// its end.
    type Reply: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static;

    /// The fresh entry stored under `key`, if any (a store that fails is a miss).
    fn cache_get(&self, key: &CacheKey) -> impl Future<Output = Option<Arc<Entry>>> + Send;

    /// Whether the downstream connection of this request can be handed over for a WebSocket
    /// tunnel (an HTTP/1.1 connection the listener can upgrade).
    fn can_upgrade(&self, parts: &Parts) -> bool;

    /// Sends `outbound` to a target of its upstream (balancing, retries and health are the
    /// edge's) and returns the answer's head with its body still streaming.
    fn forward(
        &self,
        outbound: Outbound<Self::Body>,
    ) -> impl Future<Output = Result<Forwarded<Self::Reply>, UpstreamError>> + Send;
}
