//! The request transform before the upstream: path rewrite, hop-by-hop stripping (but for
//! `TE: trailers` to HTTP/2 upstreams and allowed WebSocket upgrades), header names with `_`
//! dropped (but those the route allows), the gateway's own headers (`X-Request-Id`, `traceparent`, `X-Forwarded-*`) and the route's
//! `headers.request` edits.

use http::request::Parts;
use http::uri::PathAndQuery;

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::headers::{self, TRACEPARENT, TRACESTATE, X_REQUEST_ID};
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{RouteSpec, Snapshot};

/// Drops the hop-by-hop headers (SPEC §3) before authentication: a client's `Connection`
/// list names headers to drop, and done later it could name the identity headers the gateway
/// has just set, so that the backend saw an authenticated request with no identity.
pub struct StripHopByHop;

impl StripHopByHop {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "strip_hop_by_hop";

    pub fn run(route: &RouteSpec, parts: &mut Parts) -> Flow {
        // The two exceptions of SPEC §3: `TE: trailers` to an HTTP/2 upstream, and a WebSocket
        // upgrade (an HTTP/1.1 GET) on a route that allows it.
        let keep = headers::HopExceptions {
            te_trailers: route.te_trailers,
            websocket: route.websocket && parts.method == http::Method::GET && parts.version == http::Version::HTTP_11,
        };
        headers::strip_hop_by_hop_except(&mut parts.headers, keep);
        Flow::Continue
    }
}

pub struct Transform;

impl Transform {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "transform";

    pub fn run(snapshot: &Snapshot, route: &RouteSpec, parts: &mut Parts, ctx: &RequestContext) -> Flow {
        if let Some(rewrite) = &route.rewrite {
            let mut path = rewrite.render(&ctx.params);
            if let Some(query) = parts.uri.query() {
                path.push('?');
                path.push_str(query);
            }
            match PathAndQuery::try_from(path) {
                Ok(pq) => {
                    let mut uri = std::mem::take(&mut parts.uri).into_parts();
                    uri.path_and_query = Some(pq);
                    parts.uri = http::Uri::from_parts(uri).unwrap_or_default();
                }
                Err(_) => return Problem::new(ErrorCode::BadRequest, "the rewritten path is invalid").into(),
            }
        }
        if parts.version == http::Version::HTTP_2 {
            join_cookies(&mut parts.headers);
        }
        // Names with `_` read as the `-` spelling to CGI-style backends (`Content_Length`,
        // `Transfer_Encoding`): dropped, but those the route lets through. Before the route's
        // own edits, which the operator wrote.
        headers::strip_underscored(&mut parts.headers, &route.allow_underscore);
        parts.headers.insert(X_REQUEST_ID, ctx.request_id.clone());
        // Replaced, never added to: one `traceparent`, the gateway's span as the parent. The
        // caller's `tracestate` belongs to the trace it continued; a new trace starts without.
        parts.headers.insert(TRACEPARENT, ctx.trace.traceparent());
        if ctx.trace.parent_span_id.is_none() {
            parts.headers.remove(TRACESTATE);
        }
        if ctx.spans.recording().is_some() {
            // Each upstream attempt notes its client span and sends it as the parent instead.
            parts.extensions.insert(ctx.spans.clone());
        }
        headers::set_forwarded(
            &mut parts.headers,
            ctx.peer.ip(),
            &snapshot.trusted_proxies,
            &snapshot.trusted_proxy_headers,
            ctx.https,
            ctx.original_host.as_ref(),
        );
        route.request_headers.apply(&mut parts.headers);
        Flow::Continue
    }
}

/// HTTP/2 clients may split `cookie` into several fields; an HTTP/1.1 upstream must get one,
/// joined with `"; "` (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut http::HeaderMap) {
    let mut values = headers.get_all(http::header::COOKIE).iter();
    if values.next().is_none() || values.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers.get_all(http::header::COOKIE).iter().map(http::HeaderValue::as_bytes).collect();
    if let Ok(value) = http::HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(http::header::COOKIE, value);
    }
}
