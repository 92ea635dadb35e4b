//! One request through the gateway: the pipeline of `portcullis_core` (every phase, request
//! and response side, in SPEC order) run against [`ProxyEdge`] — this crate's sockets: the
//! upstream pools and the response cache's store — then the answer's body wrapped to stream
//! back, store its capture and write the access log line when it ends.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use portcullis_core::UpstreamError;
use portcullis_core::cache::{CacheKey, Entry};
use portcullis_core::pipeline::{
    self, Downstream, Edge, Exchange, ForwardMode, Forwarded, OutBody, Outbound, Payload, Shared,
};

use crate::body::{DownstreamBody, RequestBody};
use crate::response_body::{ResponseBody, UpstreamBody};
use crate::runtime::Runtime;
use crate::tunnel::Tunnel;
use crate::upstream::BalanceKey;
use portcullis_telemetry::access_log::LogOnEnd;

/// Handles one request on `runtime` (the config current when the request arrived) and counts
/// it in the metrics.
pub async fn handle(
    runtime: Arc<Runtime>,
    downstream: &Downstream,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let version = request.version();
    let request = request.map(|body| DownstreamBody::new(body, version, runtime.snapshot.limits.max_body_bytes));
    handle_body(runtime, downstream, request).await
}

/// [`handle`] for a request whose body the listener already wraps (the HTTP/1.1 driver's).
pub async fn handle_body(
    runtime: Arc<Runtime>,
    downstream: &Downstream,
    request: Request<DownstreamBody>,
) -> Response<ResponseBody> {
    let edge = ProxyEdge { runtime: &runtime };
    let shared = Shared {
        snapshot: &runtime.snapshot,
        sources: runtime.identity.sources(runtime.database.as_ref().map(|d| &**d.keys())),
        limits: &runtime.rate_limits,
        clock: &*runtime.clock,
        detailed_record: runtime.access_log.enabled(),
    };
    let Exchange { response, record, capture, ctx } = pipeline::handle(&edge, &shared, request, downstream).await;
    let elapsed = Duration::from_nanos(runtime.clock.monotonic().saturating_sub(record.started));
    // A sampled request's spans end with the answer's head (as `request_duration_seconds`).
    if let (Some(traces), Some(recording)) = (&runtime.traces, ctx.spans.recording()) {
        traces.submit(recording, &portcullis_otel::ServerSpan::of(&ctx, &record));
    }
    runtime.metrics.observe(&record, elapsed);
    let log = runtime.access_log.enabled().then(|| LogOnEnd::new(&runtime.access_log, record, runtime.clock.clone()));
    let (head, payload) = response.into_parts();
    let body = match payload {
        Payload::Full(bytes) => ResponseBody::full(bytes, log),
        Payload::Upstream(body) => ResponseBody::upstream(body, log).with_capture(capture, &runtime.cache),
    };
    Response::from_parts(head, body)
}

/// The pipeline's I/O in the gateway: the upstream pools (balancing, retries, health, TLS)
/// and the response cache's store.
struct ProxyEdge<'a> {
    runtime: &'a Runtime,
}

impl Edge for ProxyEdge<'_> {
    type Body = DownstreamBody;
    type Reply = UpstreamBody;

    async fn cache_get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.runtime.cache.get(key).await
    }

    fn can_upgrade(&self, parts: &http::request::Parts) -> bool {
        parts.extensions.get::<OnUpgrade>().is_some()
    }

    async fn forward(&self, outbound: Outbound<DownstreamBody>) -> Result<Forwarded<UpstreamBody>, UpstreamError> {
        let Outbound { upstream, mut parts, body, client_ip, timeout, mode, stats, limits } = outbound;
        let pool = self.runtime.upstreams.get(upstream).and_then(|u| u.pool.as_ref()).ok_or(UpstreamError::Invalid)?;
        let key = BalanceKey { client_ip, header: pool.hash_header(&parts.headers) };
        let (body, body_empty) = match (body, &stats) {
            (OutBody::Empty, _) => (RequestBody::empty(), true),
            (OutBody::Full(bytes), _) => (RequestBody::full(bytes), false),
            (OutBody::Stream(body), Some(stats)) => {
                (RequestBody::limited(body, limits.max_body_bytes, limits.idle_timeout, stats.clone()), false)
            }
            (OutBody::Stream(body), None) => {
                (RequestBody::limited(body, limits.max_body_bytes, limits.idle_timeout, Arc::default()), false)
            }
            (OutBody::Prefixed(head, body), stats) => {
                let stats = stats.clone().unwrap_or_default();
                (RequestBody::limited(body, limits.max_body_bytes, limits.idle_timeout, stats).with_head(head), false)
            }
        };
        // The client's side of an upgrade stays here: only its headers go upstream.
        let downstream =
            (mode == ForwardMode::WebSocketUpgrade).then(|| parts.extensions.remove::<OnUpgrade>()).flatten();
        let result = pool.forward(parts, body, body_empty, key, timeout, mode).await;
        // Past the limit the upstream saw a truncated body: whatever came of it is void.
        if stats.as_ref().is_some_and(|s| s.exceeded()) {
            return Err(UpstreamError::BodyTooLarge);
        }
        let crate::upstream::Forwarded { mut response, target, upstream_ms } = result?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(downstream) = downstream
            && let Some(upstream) = response.body_mut().take_upgrade()
        {
            // Both ends ride in the answer's extensions; the pipeline checks the handshake and
            // the listener splices them once hyper hands the client's connection over.
            response.extensions_mut().insert(Tunnel::new(downstream, upstream));
        }
        Ok(Forwarded { response, target, upstream_ms })
    }
}
