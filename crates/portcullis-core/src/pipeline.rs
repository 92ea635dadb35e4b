//! The one place the phase order is written (SPEC §3), request side and response side. Every
//! request passes these phases in this order; any phase may answer instead of forwarding.
//! `run` (the proxy), `explain` and `test` all call [`handle`], so what CI proves offline is
//! what production does: only the [`Edge`] differs (sockets and the cache store, or the case
//! file's stand-in upstream).
//!
//! ```text
//!  request_limits → request_target → strip_identity → ip_filter → route → route_limits
//!  → strip_hop_by_hop → cors → waf → authenticate → authorize → rate_limit
//!  → validate → cache_lookup → transform → upstream → response_transform → cache_store → log
//! ```
//!
//! Each phase records its verdict in the request's decision trace
//! ([`RequestContext::decisions`]); the step that refused or answered is the access log's
//! `decided_by` and the `decided_by` member of the problem document.

mod edge;
mod inspect;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};

pub use self::edge::{Edge, ForwardMode, Forwarded, OutBody, Outbound};
pub use self::inspect::{Head, Prefixed, read_head};
use crate::cache::{self, Capture, Lookup};
use crate::clock::{Clock, Now};
use crate::context::{RequestContext, TlsInfo};
use crate::cors::CorsOutcome;
use crate::error::UpstreamError;
use crate::flow::{Flow, Pending, Reply};
use crate::headers::{self, TRACEPARENT, X_REQUEST_ID};
use crate::ids::{self, TraceContext};
use crate::limits::{Checked, RateLimits};
use crate::problem::{ErrorCode, Problem};
use crate::record::{BodyStats, Record};
use crate::snapshot::{RouteSpec, Snapshot, UpstreamKind};
use crate::spans::{SpanKind, Spans};
use crate::stage::{
    AuthSources, Authenticate, Authorize, Cors, IpFilter, MatchRoute, RateLimitKeys, RequestLimits, RequestTarget,
    Routed, StripHopByHop, StripIdentity, Transform, Validate, Waf,
};
use crate::trace::{By, Verdict};

/// The names of the phases that are not a stage type of their own.
pub mod phase {
    /// A route's own (lower) request limits, checked again after routing.
    pub const ROUTE_LIMITS: &str = "route_limits";
    pub const RATE_LIMIT: &str = "rate_limit";
    pub const CACHE_LOOKUP: &str = "cache_lookup";
    pub const UPSTREAM: &str = "upstream";
    pub const RESPONSE_TRANSFORM: &str = "response_transform";
    pub const CACHE_STORE: &str = "cache_store";
}

/// How long a request waits for a JWKS refetch its token's unknown `kid` asked for.
pub const JWKS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a request came from, as the listener saw it.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub peer: SocketAddr,
    pub https: bool,
    pub listener: Arc<str>,
    /// What the TLS handshake established; `None` on plain connections.
    pub tls: Option<Arc<TlsInfo>>,
}

/// What every request of one loaded config reads besides itself: the snapshot and its live
/// state. Built per request from the current runtime (references only, nothing cloned).
#[derive(Clone, Copy)]
pub struct Shared<'a> {
    pub snapshot: &'a Snapshot,
    pub sources: AuthSources<'a>,
    pub limits: &'a RateLimits,
    /// The gateway's one clock (offline: the run's).
    pub clock: &'a dyn Clock,
    /// The access log is on: the record copies the texts only it shows.
    pub detailed_record: bool,
}

/// A request's way through every phase: the answer, its record, and, for an answer the cache
/// may keep, the capture that stores its body when the body ends cleanly.
#[derive(Debug)]
pub struct Exchange<R> {
    pub response: Response<Payload<R>>,
    pub record: Box<Record>,
    pub capture: Option<Box<Capture>>,
    /// The request's context after the last phase (its decision trace, consumer, route).
    pub ctx: Box<RequestContext>,
}

/// The body of the answer: made by the gateway, or the upstream's, still streaming.
#[derive(Debug)]
pub enum Payload<R> {
    Full(Bytes),
    Upstream(R),
}

/// Builds the context every phase reads: the time, request id, trace, client IP and host.
pub fn intake(snapshot: &Snapshot, parts: &Parts, downstream: &Downstream, now: Now) -> RequestContext {
    let request_id = match parts.headers.get(X_REQUEST_ID) {
        Some(v) if ids::is_sane_request_id(v.as_bytes()) => v.clone(),
        _ => ids::new_request_id(),
    };
    // A caller's sampled flag counts only from a trusted proxy (a client cannot force tracing).
    let parent_trusted = headers::is_trusted(downstream.peer.ip(), &snapshot.trusted_proxies);
    let trace = TraceContext::continue_or_start(parts.headers.get(TRACEPARENT), parent_trusted, snapshot.sample_ratio);
    // Span data only for a sampled request on a gateway that exports: the rest pay nothing.
    let spans = if trace.sampled && snapshot.otlp_traces_url.is_some() {
        Spans::record(trace, parts, downstream.https)
    } else {
        Spans::default()
    };
    let original_host = match parts.uri.authority() {
        Some(a) => http::HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    };
    RequestContext {
        now,
        decisions: crate::trace::Trace::default(),
        peer: downstream.peer,
        client_ip: headers::client_ip(downstream.peer.ip(), &parts.headers, &snapshot.trusted_proxies),
        https: downstream.https,
        tls: downstream.tls.clone(),
        listener: downstream.listener.clone(),
        request_id,
        trace,
        host: crate::stage::route_match_host(parts),
        original_host,
        route: None,
        params: Vec::new(),
        consumer: None,
        auth: None,
        plan: None,
        token: None,
        verified: crate::context::VerifiedCredentials::default(),
        auth_failed: None,
        jwks_refetched: false,
        outcome: None,
        cache: None,
        rate_keys: smallvec::SmallVec::new(),
        waf: None,
        cors: crate::cors::CorsOutcome::Off,
        spans,
    }
}

/// What the synchronous request phases decided.
#[derive(Debug)]
pub enum Decision {
    /// Every phase up to authorization passed: the request goes on with its route.
    Forward(Routed),
    Respond(Reply),
    /// Authentication needs I/O first (a JWKS refetch): await it, then run the phases again.
    Wait(Pending),
}

/// The request phases up to authorization: synchronous, no I/O, in SPEC §3 order. The WAF
/// reads the head only here; [`handle`] also reads the body's first bytes for it. Every
/// phase before authentication is idempotent, so after a [`Decision::Wait`] the run may
/// start again (the trace too).
pub fn on_request(
    snapshot: &Snapshot,
    sources: &AuthSources<'_>,
    parts: &mut Parts,
    ctx: &mut RequestContext,
) -> Decision {
    let routed = match until_waf(snapshot, parts, ctx) {
        Ok(routed) => routed,
        Err(decision) => return decision,
    };
    let scan = Waf::head(snapshot, routed.route(), parts);
    let crs = Waf::crs(snapshot, routed.route(), parts, None, ctx);
    if let Err(decision) = waf_verdict(snapshot, &routed, scan, crs, ctx) {
        return decision;
    }
    match after_waf(snapshot, sources, &routed, parts, ctx) {
        Ok(()) => Decision::Forward(routed),
        Err(decision) => decision,
    }
}

/// The phases before the WAF: limits, the request-target, identity headers, the IP filter,
/// routing, the route's limits, hop-by-hop headers (and CORS).
#[expect(
    clippy::result_large_err,
    reason = "a refusal is moved once to the caller; boxing would allocate on every refused request"
)]
fn until_waf(snapshot: &Snapshot, parts: &mut Parts, ctx: &mut RequestContext) -> Result<Routed, Decision> {
    macro_rules! step {
        ($name:expr, $flow:expr) => {
            match $flow {
                Flow::Continue => ctx.decisions.pass($name),
                Flow::Skip => ctx.decisions.skip($name),
                Flow::Respond(reply) => return Err(Decision::Respond(decide(ctx, $name, reply))),
                Flow::Wait(pending) => return Err(Decision::Wait(pending)),
            }
        };
    }
    ctx.decisions = crate::trace::Trace::default();
    ctx.waf = None;
    // Request limits first: nothing else should spend work on an oversized or ambiguously
    // framed request (connection limits and TLS were applied by the listener).
    step!(RequestLimits::NAME, RequestLimits::run(&snapshot.limits, parts));
    // The request-target's form, its percent-encoding and the host it names, before anything
    // reads them (routing, the IP filter's logs, X-Forwarded-Host). After the limits: a
    // 10 MB target is a 414, not a slow scan; and RequestLimits has already refused a
    // second `Host`, so there is one to check.
    step!(RequestTarget::NAME, RequestTarget::run(parts));
    // Client-sent identity headers go before any phase could read or forward them.
    step!(StripIdentity::NAME, StripIdentity::run(&snapshot.identity_headers, parts));
    // IP allow/deny before routing, so a denied address learns nothing about the routes.
    step!(IpFilter::NAME, IpFilter::run(&snapshot.ip_rules, ctx));
    // Routing decides which route's rules apply to every later phase; what it returns is the
    // only way to the phases after it.
    let routed = match MatchRoute::run(snapshot, parts, ctx) {
        Ok(routed) => routed,
        Err(flow) => {
            step!(MatchRoute::NAME, flow);
            return Err(Decision::Respond(decide(
                ctx,
                MatchRoute::NAME,
                Reply::Problem(Problem::new(ErrorCode::Internal, "routing neither routed nor answered")),
            )));
        }
    };
    ctx.decisions.record(MatchRoute::NAME, Verdict::Pass, By::Name(routed.route().name.clone()));
    let route = routed.route().clone();
    // A route may only lower the limits; re-check with its own.
    if route.limits == snapshot.limits {
        ctx.decisions.skip(phase::ROUTE_LIMITS);
    } else {
        step!(phase::ROUTE_LIMITS, RequestLimits::run(&route.limits, parts));
    }
    // Hop-by-hop headers go before authentication sets the identity headers: a client's
    // `Connection: X-Consumer` must not remove what the gateway sets.
    step!(StripHopByHop::NAME, StripHopByHop::run(&route, parts));
    // CORS next (before the WAF and authentication: a preflight carries no credentials). A
    // preflight is answered here: never authenticated, rate limited, inspected or forwarded.
    match Cors::run(&routed, parts, ctx) {
        Flow::Respond(Reply::Response(preflight)) => {
            let by = route.cors.as_ref().map_or(By::None, |p| By::Name(p.name.clone()));
            ctx.decisions.record(Cors::NAME, Verdict::Answer, by);
            return Err(Decision::Respond(Reply::Response(preflight)));
        }
        flow => step!(Cors::NAME, flow),
    }
    Ok(routed)
}

/// The WAF's verdict on what it inspected: after routing (the route's mode and exclusions
/// apply) and CORS, before authentication, so an attack is refused before it reaches the
/// auth code and a preflight is never inspected as an attack.
#[expect(
    clippy::result_large_err,
    reason = "a refusal is moved once to the caller; boxing would allocate on every refused request"
)]
fn waf_verdict(
    snapshot: &Snapshot,
    routed: &Routed,
    scan: Option<portcullis_waf::Scan>,
    crs: Option<portcullis_crs::CrsVerdict>,
    ctx: &mut RequestContext,
) -> Result<(), Decision> {
    match Waf::verdict(snapshot, routed.route(), scan, crs, ctx) {
        Flow::Continue => {
            let by = Waf::passed_by(ctx);
            ctx.decisions.record(Waf::NAME, Verdict::Pass, by);
        }
        Flow::Skip => ctx.decisions.skip(Waf::NAME),
        Flow::Respond(reply) => return Err(Decision::Respond(decide(ctx, Waf::NAME, reply))),
        Flow::Wait(pending) => return Err(Decision::Wait(pending)),
    }
    Ok(())
}

/// Authentication, then authorization.
#[expect(
    clippy::result_large_err,
    reason = "a refusal is moved once to the caller; boxing would allocate on every refused request"
)]
fn after_waf(
    snapshot: &Snapshot,
    sources: &AuthSources<'_>,
    routed: &Routed,
    parts: &mut Parts,
    ctx: &mut RequestContext,
) -> Result<(), Decision> {
    let route = routed.route();
    match Authenticate::run(snapshot, sources, &route.auth, parts, ctx) {
        Flow::Continue => ctx.decisions.pass(Authenticate::NAME),
        Flow::Skip => ctx.decisions.skip(Authenticate::NAME),
        Flow::Respond(reply) => return Err(Decision::Respond(decide(ctx, Authenticate::NAME, reply))),
        Flow::Wait(pending) => return Err(Decision::Wait(pending)),
    }
    match Authorize::run(snapshot, route, parts, ctx) {
        Flow::Continue => ctx.decisions.pass(Authorize::NAME),
        Flow::Skip => ctx.decisions.skip(Authorize::NAME),
        Flow::Respond(reply) => return Err(Decision::Respond(decide(ctx, Authorize::NAME, reply))),
        Flow::Wait(pending) => return Err(Decision::Wait(pending)),
    }
    Ok(())
}

/// Stamps a refusal or answer with its phase and records it as the deciding step.
fn decide(ctx: &mut RequestContext, name: &'static str, mut reply: Reply) -> Reply {
    let (verdict, by) = match &mut reply {
        Reply::Problem(problem) => {
            let step_by = problem.by.clone();
            problem.decided_by = Some(match step_by.as_str() {
                Some(by) => format!("{name}:{by}"),
                None => name.to_owned(),
            });
            (Verdict::Refuse, step_by)
        }
        Reply::Response(response) if response.status().is_success() => (Verdict::Answer, By::None),
        Reply::Response(_) => (Verdict::Refuse, By::None),
    };
    ctx.decisions.record(name, verdict, by);
    reply
}

/// One request through every phase, request side and response side.
pub async fn handle<E: Edge>(
    edge: &E,
    shared: &Shared<'_>,
    request: Request<E::Body>,
    downstream: &Downstream,
) -> Exchange<E::Reply> {
    let (mut parts, mut body) = request.into_parts();
    let mut ctx = intake(shared.snapshot, &parts, downstream, Now::read(shared.clock));
    let mut record = Record::start(&parts, &ctx, shared.detailed_record);
    // The cache keys on the path the client asked for, not the rewritten one.
    let downstream_uri = parts.uri.clone();
    let (routed, head) = match request_phases(shared, &mut parts, &mut body, &mut ctx).await {
        Ok(routed) => routed,
        Err(reply) => return finish(Answer::Gateway(reply), None, ctx, record, None),
    };
    let body = Prefixed::new(head, body);
    let route = routed.route().clone();
    // Rate limits and quota: after authentication and authorization (keys may name the
    // consumer or a claim), before anything is forwarded or looked up.
    let limited = match rate_limit(shared, &routed, &parts, &mut ctx, &mut record).await {
        Ok(limited) => limited,
        Err(reply) => return finish(Answer::Gateway(reply), Some(&route), ctx, record, None),
    };
    // Validation after the limits (an over-limit client gets no schema work) and before the
    // cache (a request that breaks the contract is never answered, not even from the cache).
    let body = match validate(shared, &route, &mut parts, body, &mut ctx, &mut record).await {
        Ok(body) => body,
        Err(reply) => return finish(Answer::Gateway(reply), Some(&route), ctx, record, None),
    };
    // Cache lookup: after rate limits (a hit still counts), before anything is forwarded.
    let lookup = cache_lookup(edge, shared, &routed, &parts, &downstream_uri, &mut ctx).await;
    if let Lookup::Hit(entry) = &lookup {
        let (head, body) = entry.response(parts.method == http::Method::HEAD);
        ctx.decisions.record(phase::CACHE_LOOKUP, Verdict::Answer, By::Reason("hit"));
        return finish(Answer::Made(head, body), Some(&route), ctx, record, limited.as_ref());
    }
    // Transform last: only a request that passed every check is reshaped for the upstream.
    match Transform::run(shared.snapshot, &route, &mut parts, &ctx) {
        Flow::Respond(reply) => {
            let reply = decide(&mut ctx, Transform::NAME, reply);
            return finish(Answer::Gateway(reply), Some(&route), ctx, record, None);
        }
        _ => ctx.decisions.pass(Transform::NAME),
    }
    let answer = upstream(edge, shared, &route, parts, body, &mut ctx, &mut record).await;
    let answer = match answer {
        Answer::Upstream(response, _) => {
            let capture = lookup.on_upstream_head(&response_head(&response));
            Answer::Upstream(response, capture)
        }
        other => other,
    };
    let mut exchange = finish(answer, Some(&route), ctx, record, limited.as_ref());
    if let Some(label) = lookup.label() {
        exchange.response.headers_mut().insert(cache::X_CACHE, HeaderValue::from_static(label));
    }
    exchange
}

/// The synchronous request phases, the WAF with the body's first bytes (read here, before
/// authentication; returned to go upstream first), and the one JWKS refetch an unknown `kid`
/// may ask for.
async fn request_phases<B>(
    shared: &Shared<'_>,
    parts: &mut Parts,
    body: &mut B,
    ctx: &mut RequestContext,
) -> Result<(Routed, Bytes), Reply>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let snapshot = shared.snapshot;
    let routed = until_waf(snapshot, parts, ctx).map_err(|d| reply_of(d, ctx))?;
    let route = routed.route();
    let mut scan = Waf::head(snapshot, route, parts);
    let mut head = Bytes::new();
    if let Some(scan) = scan.as_mut()
        && !body.is_end_stream()
        && let Some(want) = Waf::body_wanted(snapshot, route, parts)
    {
        let read = read_head(body, want, route.limits.max_body_bytes, route.limits.idle_timeout)
            .await
            .map_err(|problem| decide(ctx, Waf::NAME, Reply::Problem(problem)))?;
        Waf::body(snapshot, route, parts, &read.bytes, read.complete, scan);
        head = read.bytes;
    }
    let crs = Waf::crs(snapshot, route, parts, Some(&head), ctx);
    waf_verdict(snapshot, &routed, scan, crs, ctx).map_err(|d| reply_of(d, ctx))?;
    let mut decision = after_waf(snapshot, &shared.sources, &routed, parts, ctx);
    if let Err(Decision::Wait(pending)) = decision {
        // An unknown `kid`: the provider refetches its JWKS (at most once per 30 s), then the
        // request is judged again against whatever keys it has.
        let started = ctx.spans.start();
        let waited = tokio::time::timeout(JWKS_WAIT, pending.0).await;
        let error = waited.is_err().then_some("timeout".into());
        ctx.spans.end(started, "auth.jwks_fetch", SpanKind::Client, Vec::new(), error);
        decision = after_waf(snapshot, &shared.sources, &routed, parts, ctx);
    }
    decision.map_err(|d| reply_of(d, ctx))?;
    Ok((routed, head))
}

/// The answer of phases that did not forward; a second unknown `kid` is an invalid token.
fn reply_of(decision: Decision, ctx: &mut RequestContext) -> Reply {
    match decision {
        Decision::Respond(reply) => reply,
        Decision::Forward(_) | Decision::Wait(_) => decide(
            ctx,
            Authenticate::NAME,
            Reply::Problem(Problem::new(ErrorCode::InvalidToken, "the token's signing key is unknown")),
        ),
    }
}

/// The rate-limit phase: the bucket of each of the route's limits, then the decision for them
/// and the consumer's plan (all or nothing; then the plan's quota).
async fn rate_limit(
    shared: &Shared<'_>,
    routed: &Routed,
    parts: &Parts,
    ctx: &mut RequestContext,
    record: &mut Record,
) -> Result<Option<Checked>, Reply> {
    let route = routed.route();
    let _ = RateLimitKeys::run(shared.snapshot, route, parts, ctx);
    let started = if shared.limits.is_shared() { ctx.spans.start() } else { None };
    let checked = shared.limits.check(route, ctx).await;
    if started.is_some() {
        let allowed = checked.as_ref().is_none_or(Checked::allowed);
        let attributes = vec![("db.system.name", "redis".into()), ("portcullis.rate_limit.allowed", allowed.into())];
        ctx.spans.end(started, "rate_limit.redis", SpanKind::Client, attributes, None);
    }
    let Some(checked) = checked else {
        ctx.decisions.skip(phase::RATE_LIMIT);
        return Ok(None);
    };
    if checked.allowed() {
        if checked.quota.is_some() {
            record.plan.clone_from(&ctx.plan);
        }
        ctx.decisions.pass(phase::RATE_LIMIT);
        return Ok(Some(checked));
    }
    record.rate_limited.clone_from(&checked.limit);
    Err(decide(ctx, phase::RATE_LIMIT, Reply::Problem(checked.refusal(ctx.now.unix_seconds))))
}

/// The request body after validation: still streaming, or read whole because the contract
/// checks a JSON body (then it is forwarded as read).
#[derive(Debug)]
pub enum ClientBody<B> {
    Stream(B),
    Read(Bytes),
}

/// The validation phase: the route's contract, the body read first (bounded by the route's
/// `max_body_bytes`) only when it is a JSON body the contract checks.
async fn validate<B>(
    shared: &Shared<'_>,
    route: &RouteSpec,
    parts: &mut Parts,
    body: B,
    ctx: &mut RequestContext,
    record: &mut Record,
) -> Result<ClientBody<B>, Reply>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let Some(contract) = &route.contract else {
        ctx.decisions.skip(Validate::NAME);
        return Ok(ClientBody::Stream(body));
    };
    let has_body = !http_body::Body::is_end_stream(&body);
    if !(has_body && contract.reads_body(&parts.headers)) {
        return match Validate::run(contract, parts, ctx, has_body, None) {
            Flow::Respond(reply) => Err(decide(ctx, Validate::NAME, reply)),
            _ => {
                ctx.decisions.pass(Validate::NAME);
                Ok(ClientBody::Stream(body))
            }
        };
    }
    let stats = Arc::new(BodyStats::default());
    record.bytes_in = Some(stats.clone());
    let deadline = tokio::time::Instant::now() + shared.snapshot.limits.idle_timeout.max(route.limits.idle_timeout);
    let read = crate::soap::read_bounded(body, route.limits.max_body_bytes, deadline, Some(&stats)).await;
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            let problem = match e {
                crate::soap::ReadError::TooLarge => UpstreamError::BodyTooLarge.into_problem(),
                crate::soap::ReadError::Broken => UpstreamError::ClientBody.into_problem(),
                crate::soap::ReadError::Timeout => {
                    Problem::new(ErrorCode::RequestTimeout, "the request body did not arrive in time")
                }
            };
            return Err(decide(ctx, Validate::NAME, Reply::Problem(problem)));
        }
    };
    if let Flow::Respond(reply) = Validate::run(contract, parts, ctx, true, Some(&bytes)) {
        return Err(decide(ctx, Validate::NAME, reply));
    }
    ctx.decisions.pass(Validate::NAME);
    // The body goes on whole: its framing is now a length.
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(ClientBody::Read(bytes))
}

/// The cache-lookup phase: bypass, or the key and what the edge's store has under it.
async fn cache_lookup<E: Edge>(
    edge: &E,
    shared: &Shared<'_>,
    routed: &Routed,
    parts: &Parts,
    downstream_uri: &http::Uri,
    ctx: &mut RequestContext,
) -> Lookup {
    let route = routed.route();
    // SOAP routes and mock upstreams are not cached.
    let cacheable = route.soap.is_none()
        && shared.snapshot.upstreams.get(route.upstream).is_some_and(|u| matches!(u.kind, UpstreamKind::Targets(_)));
    if !cacheable {
        ctx.decisions.skip(phase::CACHE_LOOKUP);
        return Lookup::Uncached;
    }
    let mut lookup = cache::plan(route, ctx, parts, downstream_uri, &shared.snapshot.identity_headers);
    if let Lookup::Miss { key, .. } = &lookup {
        let started = ctx.spans.start();
        if let Some(entry) = edge.cache_get(key).await.filter(|e| e.fresh()) {
            lookup = Lookup::Hit(entry);
        }
        let result = if matches!(lookup, Lookup::Hit(_)) { "hit" } else { "miss" };
        ctx.spans.end(
            started,
            "cache.lookup",
            SpanKind::Internal,
            vec![("portcullis.cache.result", result.into())],
            None,
        );
    }
    ctx.cache = match lookup {
        Lookup::Uncached => None,
        Lookup::Bypass => Some("bypass"),
        Lookup::Hit(_) => Some("hit"),
        Lookup::Miss { .. } => Some("miss"),
    };
    match &lookup {
        Lookup::Uncached => ctx.decisions.skip(phase::CACHE_LOOKUP),
        Lookup::Bypass => ctx.decisions.record(phase::CACHE_LOOKUP, Verdict::Skip, By::Reason("bypass")),
        Lookup::Miss { .. } => ctx.decisions.record(phase::CACHE_LOOKUP, Verdict::Pass, By::Reason("miss")),
        Lookup::Hit(_) => {}
    }
    lookup
}

/// What answers a request.
enum Answer<R> {
    /// The gateway refused or answered before any upstream: no route response headers.
    Gateway(Reply),
    /// Made for the route (a mock, a cache hit, a SOAP answer): the response transform applies.
    Made(http::response::Parts, Bytes),
    /// The upstream's answer, still streaming; the capture that may store it.
    Upstream(Response<R>, Option<Box<Capture>>),
}

/// The upstream phase: the mock, the SOAP exchange, or the request forwarded through the edge
/// (a WebSocket upgrade checked on both sides).
async fn upstream<E: Edge>(
    edge: &E,
    shared: &Shared<'_>,
    route: &Arc<RouteSpec>,
    mut parts: Parts,
    body: ClientBody<Prefixed<E::Body>>,
    ctx: &mut RequestContext,
    record: &mut Record,
) -> Answer<E::Reply> {
    let Some(spec) = shared.snapshot.upstreams.get(route.upstream) else {
        return Answer::Gateway(upstream_refused(ctx, Problem::new(ErrorCode::Internal, "route without upstream")));
    };
    record.upstream = Some(spec.name.clone());
    let targets = match &spec.kind {
        UpstreamKind::Mock(mock) => {
            let mut head = Response::new(()).into_parts().0;
            head.status = mock.status;
            head.headers.clone_from(&mock.headers);
            ctx.decisions.record(phase::UPSTREAM, Verdict::Answer, By::Name(spec.name.clone()));
            return Answer::Made(head, mock.body.clone());
        }
        UpstreamKind::Targets(targets) => targets,
    };
    let stats = Arc::new(BodyStats::default());
    if let Some(soap) = &route.soap {
        if record.bytes_in.is_none() {
            record.bytes_in = Some(stats.clone());
        }
        let mut answered = crate::soap::Answered::default();
        let result = crate::soap::exchange(
            edge,
            route.upstream,
            route,
            soap,
            targets.response_timeout,
            parts,
            body,
            ctx,
            &stats,
            &mut answered,
        )
        .await;
        record.target = answered.target;
        record.upstream_ms = answered.upstream_ms;
        return match result {
            Ok(portcullis_soap::SoapResponse::Output(output)) => {
                ctx.decisions.record(phase::UPSTREAM, Verdict::Pass, By::Name(spec.name.clone()));
                let json = Bytes::from(serde_json::Value::Object(output).to_string());
                let mut head = Response::new(()).into_parts().0;
                head.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                head.headers.insert(CONTENT_LENGTH, HeaderValue::from(json.len()));
                Answer::Made(head, json)
            }
            Ok(portcullis_soap::SoapResponse::Fault(fault)) => {
                // The service's own answer, translated: the route's response headers apply.
                ctx.decisions.record(phase::UPSTREAM, Verdict::Pass, By::Name(spec.name.clone()));
                ctx.outcome = Some(ErrorCode::SoapFault);
                let problem = crate::soap::fault_problem(&fault);
                let (head, body) = problem.into_response(&ctx.request_id).into_parts();
                Answer::Made(head, body)
            }
            Err(e) => {
                if e.is_answer() {
                    tracing_warn(&spec.name, &route.name, &e);
                }
                Answer::Gateway(upstream_refused(ctx, e.into_problem()))
            }
        };
    };
    // A WebSocket handshake no server could accept never goes upstream as an upgrade.
    let can_upgrade = edge.can_upgrade(&parts);
    let accept = match crate::websocket::upgrade(route, &mut parts, can_upgrade) {
        Ok(accept) => accept,
        Err(problem) => return Answer::Gateway(upstream_refused(ctx, problem)),
    };
    let (body, body_empty) = match body {
        ClientBody::Read(bytes) if bytes.is_empty() => (OutBody::Empty, true),
        // Read by validation, which counted it in the record already.
        ClientBody::Read(bytes) => (OutBody::Full(bytes), true),
        ClientBody::Stream(body) if http_body::Body::is_end_stream(&body) => (OutBody::Empty, true),
        // The WAF may have read the body's first bytes: they go first.
        ClientBody::Stream(body) => match body.into_parts() {
            (Some(head), rest) => (OutBody::Prefixed(head, rest), false),
            (None, rest) => (OutBody::Stream(rest), false),
        },
    };
    let outbound = Outbound {
        upstream: route.upstream,
        parts,
        body,
        client_ip: ctx.client_ip,
        timeout: route.timeout.unwrap_or(targets.response_timeout),
        mode: if accept.is_some() { ForwardMode::WebSocketUpgrade } else { ForwardMode::Proxy },
        stats: (!body_empty).then(|| stats.clone()),
        limits: route.limits,
    };
    if !body_empty {
        record.bytes_in = Some(stats);
    }
    let forwarded = match edge.forward(outbound).await {
        Ok(forwarded) => forwarded,
        Err(e) => return Answer::Gateway(upstream_refused(ctx, e.into_problem())),
    };
    record.target = Some(forwarded.target.clone());
    record.upstream_ms = Some(forwarded.upstream_ms);
    let response = forwarded.response;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // A switch to anything but WebSocket, or without the answer to the client's key, is
        // not what was asked for.
        let agreed = accept.as_ref().is_some_and(|a| {
            headers::is_websocket_upgrade(response.headers()) && crate::websocket::accepted(response.headers(), a)
        });
        if !agreed {
            return Answer::Gateway(upstream_refused(ctx, UpstreamError::Invalid.into_problem()));
        }
    }
    ctx.decisions.record(phase::UPSTREAM, Verdict::Pass, By::Name(forwarded.target));
    Answer::Upstream(response, None)
}

fn upstream_refused(ctx: &mut RequestContext, problem: Problem) -> Reply {
    decide(ctx, phase::UPSTREAM, Reply::Problem(problem))
}

fn tracing_warn(upstream: &str, route: &str, error: &crate::soap::SoapError) {
    tracing::warn!(%upstream, %route, %error, "SOAP answer refused");
}

/// A copy of a response's head (status, version, headers) without its extensions or body.
fn response_head<R>(response: &Response<R>) -> http::response::Parts {
    let mut head = Response::new(()).into_parts().0;
    head.status = response.status();
    head.version = response.version();
    head.headers.clone_from(response.headers());
    head
}

/// The response phases: the response transform (hop-by-hop headers dropped, the route's
/// `headers.response`, `X-Request-Id`, the limits' `RateLimit-*`), the cache store (the
/// capture rides with the body), and the record completed for the log, metrics and trace.
fn finish<R>(
    answer: Answer<R>,
    route: Option<&Arc<RouteSpec>>,
    mut ctx: RequestContext,
    mut record: Box<Record>,
    limited: Option<&Checked>,
) -> Exchange<R> {
    let from_route = !matches!(answer, Answer::Gateway(_));
    let (mut response, capture) = match answer {
        Answer::Gateway(Reply::Problem(problem)) => {
            ctx.outcome = Some(problem.code);
            let response = problem.into_response(&ctx.request_id);
            ctx.decisions.skip(phase::RESPONSE_TRANSFORM);
            (response.map(Payload::Full), None)
        }
        Answer::Gateway(Reply::Response(mut response)) => {
            response.headers_mut().insert(X_REQUEST_ID, ctx.request_id.clone());
            ctx.decisions.skip(phase::RESPONSE_TRANSFORM);
            (response.map(Payload::Full), None)
        }
        Answer::Made(mut head, body) => {
            on_response(route.map(|r| &**r), &mut head, &mut ctx, limited);
            (Response::from_parts(head, Payload::Full(body)), None)
        }
        Answer::Upstream(response, capture) => {
            let (mut head, body) = response.into_parts();
            on_response(route.map(|r| &**r), &mut head, &mut ctx, limited);
            if head.status == StatusCode::SWITCHING_PROTOCOLS {
                // The upgrade the pipeline checked: the hop-by-hop headers that say so go back.
                head.headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
                head.headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            (Response::from_parts(head, Payload::Upstream(body)), capture)
        }
    };
    // CORS headers on every answer of a CORS route, the gateway's own refusals included (a
    // browser app can read a 401 or 429 only with them); after the cache took its copy, so a
    // stored answer never carries one origin's headers to another.
    if let Some(policy) = ctx.route.as_ref().and_then(|r| r.cors.as_ref()) {
        match &ctx.cors {
            CorsOutcome::Off | CorsOutcome::Preflight => {}
            CorsOutcome::NoOrigin => policy.annotate(response.headers_mut(), None, from_route),
            CorsOutcome::Allowed(origin) => policy.annotate(response.headers_mut(), Some(origin), from_route),
        }
    }
    if capture.is_some() {
        ctx.decisions.pass(phase::CACHE_STORE);
    }
    record.note(&ctx, response.status().as_u16());
    Exchange { response, record, capture, ctx: Box::new(ctx) }
}

/// The response transform of a route's answer.
fn on_response(
    route: Option<&RouteSpec>,
    head: &mut http::response::Parts,
    ctx: &mut RequestContext,
    limited: Option<&Checked>,
) {
    headers::strip_hop_by_hop(&mut head.headers);
    if let Some(route) = route {
        route.response_headers.apply(&mut head.headers);
    }
    head.headers.insert(X_REQUEST_ID, ctx.request_id.clone());
    if let Some(checked) = limited {
        checked.annotate(&mut head.headers);
    }
    ctx.decisions.pass(phase::RESPONSE_TRANSFORM);
}

/// The `User-Agent` for the access log.
pub fn user_agent(parts: &Parts) -> Option<&str> {
    parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests;
