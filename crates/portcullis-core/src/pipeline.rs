//! The one place the stage order is written (SPEC §3). Every request passes these stages in
//! this order; any stage may answer instead of forwarding. `run` (the proxy), `explain` and
//! `test` all call [`on_request`], so what CI proves offline is what production does.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::HOST;
use http::request::Parts;

use crate::context::{RequestContext, TlsInfo};
use crate::flow::Flow;
use crate::headers::{self, TRACEPARENT, X_REQUEST_ID};
use crate::ids::{self, TraceContext};
use crate::snapshot::{RouteSpec, Snapshot};
use crate::stage::{
    AuthSources, Authenticate, Authorize, IpFilter, MatchRoute, RateLimitKeys, RequestLimits, RequestTarget,
    StripHopByHop, StripIdentity, Transform,
};

/// Where a request came from, as the listener saw it.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub peer: SocketAddr,
    pub https: bool,
    pub listener: Arc<str>,
    /// What the TLS handshake established; `None` on plain connections.
    pub tls: Option<Arc<TlsInfo>>,
}

/// Builds the context every stage reads: request id, trace, client IP and host.
pub fn intake(snapshot: &Snapshot, parts: &Parts, downstream: &Downstream) -> RequestContext {
    let request_id = match parts.headers.get(X_REQUEST_ID) {
        Some(v) if ids::is_sane_request_id(v.as_bytes()) => v.clone(),
        _ => ids::new_request_id(),
    };
    let ratio = snapshot.sample_ratio;
    let trace = TraceContext::continue_or_start(parts.headers.get(TRACEPARENT), || {
        ratio >= 1.0 || (ratio > 0.0 && (ids::next_u64() as f64 / u64::MAX as f64) < ratio)
    });
    let original_host = match parts.uri.authority() {
        Some(a) => http::HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    };
    RequestContext {
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
    }
}

macro_rules! stage {
    ($flow:expr) => {
        match $flow {
            Flow::Continue => {}
            respond => return respond,
        }
    };
}

/// Runs the request stages in SPEC §3 order. On `Continue`, `ctx.route` is set and `parts`
/// is ready to be sent to the route's upstream. On `Wait`, await it and call again: every
/// stage before authentication is idempotent.
pub fn on_request(snapshot: &Snapshot, sources: &AuthSources<'_>, parts: &mut Parts, ctx: &mut RequestContext) -> Flow {
    // Request limits first: nothing else should spend work on an oversized or ambiguously
    // framed request (connection limits and TLS were applied by the listener).
    stage!(RequestLimits::run(&snapshot.limits, parts));
    // The request-target's form, its percent-encoding and the host it names, before anything
    // reads them (routing, the IP filter's logs, X-Forwarded-Host). After the limits: a
    // 10 MB target is a 414, not a slow scan; and RequestLimits has already refused a
    // second `Host`, so there is one to check.
    stage!(RequestTarget::run(parts));
    // Client-sent identity headers go before any stage could read or forward them.
    stage!(StripIdentity::run(&snapshot.identity_headers, parts));
    // IP allow/deny before routing, so a denied address learns nothing about the routes.
    stage!(IpFilter::run(&snapshot.ip_rules, ctx));
    // Routing decides which route's rules apply to every later stage.
    stage!(MatchRoute::run(snapshot, parts, ctx));
    let Some(route) = ctx.route.clone() else { return Flow::Continue };
    // A route may only lower the limits; re-check with its own.
    if route.limits != snapshot.limits {
        stage!(RequestLimits::run(&route.limits, parts));
    }
    // Hop-by-hop headers go before authentication sets the identity headers: a client's
    // `Connection: X-Consumer` must not remove what the gateway sets.
    stage!(StripHopByHop::run(&route, parts));
    // CORS and the WAF come next (before authentication: a preflight carries no
    // credentials, and an attack is refused before it reaches the auth code).
    // Authentication, then authorization, rate limits and validation follow in that order.
    stage!(Authenticate::run(snapshot, sources, &route.auth, parts, ctx));
    stage!(Authorize::run(snapshot, &route, parts, ctx));
    // The buckets the request counts against; the proxy decides (it may await Redis).
    stage!(RateLimitKeys::run(snapshot, &route, parts, ctx));
    // Transform last: only a request that passed every check is reshaped for the upstream.
    stage!(Transform::run(snapshot, &route, parts, ctx));
    Flow::Continue
}

/// The response transform: hop-by-hop headers of the upstream's response are dropped, the
/// route's `headers.response` edits applied, and `X-Request-Id` returned.
pub fn on_response(route: Option<&RouteSpec>, parts: &mut http::response::Parts, ctx: &RequestContext) {
    headers::strip_hop_by_hop(&mut parts.headers);
    if let Some(route) = route {
        route.response_headers.apply(&mut parts.headers);
    }
    parts.headers.insert(X_REQUEST_ID, ctx.request_id.clone());
}

#[cfg(test)]
mod tests;
