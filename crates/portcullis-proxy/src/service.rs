//! One request through the gateway: intake, the core pipeline, then the upstream (or a mock,
//! a SOAP exchange ([`crate::soap`]), or the gateway's own answer), the response transform
//! and the access log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::snapshot::{RouteSpec, UpstreamKind};
use portcullis_core::{ErrorCode, Flow, Problem, Reply, RequestContext};

use crate::access_log::PendingLog;
use crate::body::{BodyStats, RequestBody, ResponseBody};
use crate::cache::Lookup;
use crate::error::ProxyError;
use crate::runtime::Runtime;
use crate::soap::SoapCall;
use crate::tunnel::Tunnel;
use crate::upstream::{BalanceKey, ForwardMode, Forwarded};

/// How long a request waits for a JWKS refetch its token's unknown `kid` asked for.
const JWKS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Handles one request on `runtime` (the config current when the request arrived) and counts
/// it in the metrics.
pub async fn handle(
    runtime: Arc<Runtime>,
    downstream: &Downstream,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let mut route = None;
    let metrics = runtime.metrics.clone();
    let response = dispatch(runtime, downstream, request, started, &mut route).await;
    metrics.request(route.as_ref(), &method, response.status(), started.elapsed());
    response
}

/// The request's way through the stages; `route_name` is set once a route matched.
async fn dispatch(
    runtime: Arc<Runtime>,
    downstream: &Downstream,
    request: Request<Incoming>,
    started: Instant,
    route_name: &mut Option<Arc<str>>,
) -> Response<ResponseBody> {
    let (mut parts, body) = request.into_parts();
    let mut body = UnreadBody::new(body, parts.version, runtime.snapshot.limits.max_body_bytes);
    let snapshot = &runtime.snapshot;
    let mut ctx = pipeline::intake(snapshot, &parts, downstream);
    let mut log = runtime.access_log.enabled().then(|| PendingLog::start(&runtime.access_log, &parts, &ctx, started));
    // The cache keys on the path the client asked for, not the rewritten one.
    let downstream_uri = parts.uri.clone();
    let sources = runtime.identity.sources(runtime.database.as_ref().map(|d| &**d.keys()));
    let mut flow = pipeline::on_request(snapshot, &sources, &mut parts, &mut ctx);
    if let Flow::Wait(pending) = flow {
        // An unknown `kid`: the provider refetches its JWKS (at most once per 30 s), then the
        // request is judged again against whatever keys it has.
        let _ = tokio::time::timeout(JWKS_WAIT, pending.0).await;
        flow = pipeline::on_request(snapshot, &sources, &mut parts, &mut ctx);
        if let Flow::Wait(_) = flow {
            flow = Problem::new(ErrorCode::InvalidToken, "the token's signing key is unknown").into();
        }
    }
    *route_name = ctx.route.as_ref().map(|r| r.name.clone());
    if let (Some(provider), Flow::Respond(reply)) = (&ctx.auth_failed, &flow) {
        let code = match reply {
            Reply::Problem(p) => p.code.as_str(),
            Reply::Response(_) => ctx.outcome.map_or("missing_credentials", ErrorCode::as_str),
        };
        runtime.metrics.auth_failure(provider, code);
    }
    match flow {
        Flow::Wait(_) => gateway_reply(
            Problem::new(ErrorCode::Internal, "authentication did not finish").into_reply(),
            &mut ctx,
            log,
        ),
        Flow::Respond(reply) => gateway_reply(reply, &mut ctx, log),
        Flow::Continue => {
            let Some(route) = ctx.route.clone() else {
                return gateway_reply(
                    Problem::new(ErrorCode::Internal, "no route after routing").into_reply(),
                    &mut ctx,
                    log,
                );
            };
            // Rate limits: after authentication and authorization, before anything is forwarded.
            let limited = runtime.rate_limits.check(&route, &ctx).await;
            if let Some(checked) = limited.as_ref().filter(|c| !c.allowed()) {
                if let Some(limit) = &checked.limit {
                    runtime.metrics.rate_limited(&route.name, limit);
                }
                return gateway_reply(checked.refusal().into_reply(), &mut ctx, log);
            }
            let Some(upstream) = runtime.upstreams.get(route.upstream) else {
                return gateway_reply(
                    Problem::new(ErrorCode::Internal, "route without upstream").into_reply(),
                    &mut ctx,
                    log,
                );
            };
            if let Some(log) = log.as_mut() {
                log.upstream = Some(upstream.spec.name.clone());
            }
            let (mock, pool) = match (&upstream.spec.kind, &upstream.pool) {
                (UpstreamKind::Mock(mock), _) => (Some(mock), None),
                (UpstreamKind::Targets(_), Some(pool)) => (None, Some(pool)),
                (UpstreamKind::Targets(_), None) => (None, None),
            };
            if let Some(mock) = mock {
                let mut head = Response::new(()).into_parts().0;
                head.status = mock.status;
                head.headers.clone_from(&mock.headers);
                pipeline::on_response(Some(&route), &mut head, &ctx);
                if let Some(checked) = &limited {
                    checked.annotate(&mut head.headers);
                }
                note(&mut log, &ctx, head.status.as_u16());
                return Response::from_parts(head, ResponseBody::full(mock.body.clone(), log));
            }
            let Some(pool) = pool else {
                return gateway_reply(
                    Problem::new(ErrorCode::Internal, "upstream has no pool").into_reply(),
                    &mut ctx,
                    log,
                );
            };
            if let Some(soap) = &route.soap {
                let call = SoapCall { runtime: &runtime, upstream, pool, route: &route, soap };
                let Some(body) = body.take() else {
                    return gateway_reply(
                        Problem::new(ErrorCode::Internal, "request body taken twice").into_reply(),
                        &mut ctx,
                        log,
                    );
                };
                return crate::soap::exchange(call, parts, body, &mut ctx, log).await;
            }
            // A WebSocket handshake no server could accept never goes upstream as an upgrade.
            let upgrade = match websocket_upgrade(&route, &mut parts) {
                Ok(upgrade) => upgrade,
                Err(problem) => return gateway_reply(problem.into_reply(), &mut ctx, log),
            };
            // Cache lookup: after rate limits (a hit still counts), before anything is forwarded.
            let cached = runtime
                .cache
                .lookup(&route, &mut ctx, &parts, &downstream_uri, &snapshot.identity_headers, &runtime.metrics)
                .await;
            if let Lookup::Hit(entry) = &cached {
                let (mut head, body) = entry.response(parts.method == http::Method::HEAD);
                pipeline::on_response(Some(&route), &mut head, &ctx);
                if let Some(checked) = &limited {
                    checked.annotate(&mut head.headers);
                }
                note(&mut log, &ctx, head.status.as_u16());
                return Response::from_parts(head, ResponseBody::full(body, log));
            }
            // Asked of the codec, not the headers: the transform stage already removed
            // `Transfer-Encoding`, and HTTP/2 bodies need no length header.
            let incoming = body.take().filter(|b| !http_body::Body::is_end_stream(b));
            let body_empty = incoming.is_none();
            let (request_body, stats) = match incoming {
                None => (RequestBody::empty(), None),
                Some(incoming) => {
                    let stats = Arc::new(BodyStats::default());
                    let (limit, stall_after) = (route.limits.max_body_bytes, route.limits.idle_timeout);
                    (RequestBody::limited(incoming, limit, stall_after, stats.clone()), Some(stats))
                }
            };
            if let Some(log) = log.as_mut() {
                log.bytes_in.clone_from(&stats);
            }
            let timeout = route.timeout.unwrap_or(pool.spec.response_timeout);
            let key = BalanceKey { client_ip: ctx.client_ip, header: pool.hash_header(&parts.headers) };
            let mode = if upgrade.is_some() { ForwardMode::WebSocketUpgrade } else { ForwardMode::Proxy };
            let result = pool.forward(parts, request_body, body_empty, key, timeout, mode).await;
            // Past the limit the upstream saw a truncated body: whatever came of it is void.
            let exceeded = stats.as_ref().is_some_and(|s| s.exceeded.load(std::sync::atomic::Ordering::Relaxed));
            match result {
                _ if exceeded => gateway_reply(ProxyError::BodyTooLarge.into_problem().into_reply(), &mut ctx, log),
                Ok(forwarded) if forwarded.response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                    switch_protocols(forwarded, upgrade, &route, &mut ctx, log)
                }
                Ok(forwarded) => {
                    runtime.metrics.upstream(&upstream.spec.name, forwarded.upstream_ms);
                    if let Some(log) = log.as_mut() {
                        log.target = Some(forwarded.target);
                        log.upstream_ms = Some(forwarded.upstream_ms);
                    }
                    let (mut head, body) = forwarded.response.into_parts();
                    let capture = cached.on_upstream_head(&runtime.cache, &head);
                    pipeline::on_response(Some(&route), &mut head, &ctx);
                    cached.mark(&mut head.headers);
                    if let Some(checked) = &limited {
                        checked.annotate(&mut head.headers);
                    }
                    note(&mut log, &ctx, head.status.as_u16());
                    let body = ResponseBody::upstream(body, log, forwarded.lease).with_capture(capture);
                    Response::from_parts(head, body)
                }
                Err(e) => gateway_reply(e.into_problem().into_reply(), &mut ctx, log),
            }
        }
    }
}

/// The client's side of a WebSocket upgrade the route allows and the transform kept: the
/// connection to hand over and the `Sec-WebSocket-Accept` the upstream must answer with.
struct Upgrade {
    downstream: OnUpgrade,
    accept: HeaderValue,
}

/// How long an HTTP/2 request body the gateway answered without reading is still read.
const UNREAD_BODY_WAIT: Duration = Duration::from_secs(5);

/// An HTTP/2 request body the exchange did not read (an early refusal, a mock, a cache hit)
/// is read to its end in the background, up to `max_body_bytes` and [`UNREAD_BODY_WAIT`],
/// instead of being reset at once: RFC 9113 §8.1 allows RST_STREAM(NO_ERROR) after a complete
/// answer, but a client still uploading (curl 7.88) takes that reset as a failed transfer and
/// never shows the answer. Past the bounds, h2 resets the stream with NO_ERROR.
/// (HTTP/1.1 bodies are hyper's: it reads on or closes.)
struct UnreadBody {
    body: Option<Incoming>,
    http2: bool,
    limit: u64,
}

impl UnreadBody {
    fn new(body: Incoming, version: http::Version, limit: u64) -> Self {
        Self { body: Some(body), http2: version == http::Version::HTTP_2, limit }
    }

    /// The body, for an exchange that reads it.
    fn take(&mut self) -> Option<Incoming> {
        self.body.take()
    }
}

impl Drop for UnreadBody {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else { return };
        if !self.http2 || http_body::Body::is_end_stream(&body) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let limit = self.limit;
        runtime.spawn(async move {
            let drain = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                    seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len() as u64));
                    if seen > limit {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(UNREAD_BODY_WAIT, drain).await;
        });
    }
}

/// The client's side of a WebSocket upgrade, when the route allows one and the transform kept
/// the upgrade headers; a request whose connection cannot be handed over goes on as an
/// ordinary request. A handshake no WebSocket server could accept is 400.
fn websocket_upgrade(route: &RouteSpec, parts: &mut http::request::Parts) -> Result<Option<Upgrade>, Problem> {
    if !route.websocket || !parts.headers.contains_key(UPGRADE) {
        return Ok(None);
    }
    let Some(accept) = crate::tunnel::accept_for(&parts.headers) else {
        // RFC 6455 §4.4: a refused version is answered with the versions understood.
        return Err(Problem::new(
            ErrorCode::BadRequest,
            "a WebSocket upgrade needs one Sec-WebSocket-Key of 16 base64 bytes and Sec-WebSocket-Version: 13",
        )
        .with_header(crate::tunnel::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13")));
    };
    let Some(downstream) = parts.extensions.remove::<OnUpgrade>() else {
        parts.headers.remove(UPGRADE);
        parts.headers.remove(CONNECTION);
        return Ok(None);
    };
    Ok(Some(Upgrade { downstream, accept }))
}

/// The upstream agreed to a WebSocket upgrade: answer 101 and leave a [`Tunnel`] in the
/// response for the listener to splice once hyper hands the connection over. The access log
/// line is written as the 101 goes out. A 101 without the handshake's answer is 502.
fn switch_protocols(
    forwarded: Forwarded,
    upgrade: Option<Upgrade>,
    route: &RouteSpec,
    ctx: &mut RequestContext,
    mut log: Option<Box<PendingLog>>,
) -> Response<ResponseBody> {
    let Forwarded { mut response, target, upstream_ms, lease } = forwarded;
    if let Some(log) = log.as_mut() {
        log.target = Some(target);
        log.upstream_ms = Some(upstream_ms);
    }
    // A switch to anything but WebSocket, or without the answer to the client's key, is not
    // what was asked for.
    let Some(upgrade) = upgrade.filter(|u| {
        portcullis_core::headers::is_websocket_upgrade(response.headers())
            && crate::tunnel::accepted(response.headers(), &u.accept)
    }) else {
        return gateway_reply(ProxyError::Invalid.into_problem().into_reply(), ctx, log);
    };
    let upstream = hyper::upgrade::on(&mut response);
    let (mut head, _) = response.into_parts();
    pipeline::on_response(Some(route), &mut head, ctx);
    head.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    head.headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    head.extensions.insert(Tunnel::new(upgrade.downstream, upstream, lease));
    note(&mut log, ctx, head.status.as_u16());
    Response::from_parts(head, ResponseBody::full(Bytes::new(), log))
}

pub(crate) trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for Problem {
    fn into_reply(self) -> Reply {
        Reply::Problem(self)
    }
}

pub(crate) fn gateway_reply(
    reply: Reply,
    ctx: &mut RequestContext,
    log: Option<Box<PendingLog>>,
) -> Response<ResponseBody> {
    let response: Response<Bytes> = match reply {
        Reply::Problem(problem) => {
            ctx.outcome = Some(problem.code);
            problem.into_response(&ctx.request_id)
        }
        Reply::Response(mut response) => {
            response.headers_mut().insert(portcullis_core::headers::X_REQUEST_ID, ctx.request_id.clone());
            response
        }
    };
    let mut log = log;
    note(&mut log, ctx, response.status().as_u16());
    response.map(|b| ResponseBody::full(b, log))
}

pub(crate) fn note(log: &mut Option<Box<PendingLog>>, ctx: &RequestContext, status: u16) {
    if let Some(log) = log.as_mut() {
        log.note_context(ctx);
        log.status = status;
    }
}
