//! Route matching: host and path against the table, 404 `no_route`, 405 with `Allow`, 400
//! for `;` parameters no route takes. Paths with dot segments are refused first, so a
//! route's pattern cannot be escaped with `/public/../admin` that a backend would normalise
//! into another route. `OPTIONS *` is answered here: it names no route. A CORS preflight is
//! routed by the method it asks about, so a route that does not list `OPTIONS` still has its
//! preflight answered (by the CORS phase) instead of a 405.

use std::sync::Arc;

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ALLOW, HOST, ORIGIN};
use http::request::Parts;
use http::{HeaderValue, Method};

use crate::context::RequestContext;
use crate::flow::{Flow, Reply};
use crate::problem::{ErrorCode, Problem};
use crate::route::RouteMatch;
use crate::snapshot::{RouteSpec, Snapshot};
use crate::trace::By;

pub struct MatchRoute;

/// A request that found its route: what every phase after routing works on. Only
/// [`MatchRoute`] makes one, so no phase after it can run for a request without a route.
#[derive(Debug, Clone)]
pub struct Routed {
    route: Arc<RouteSpec>,
    preflight: Option<Preflight>,
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) on a path a
/// route with a CORS policy takes: the CORS phase answers it, nothing after it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// The route is the one that takes the method asked about.
    Routed,
    /// No route with a CORS policy takes the method asked about at this path: refused.
    MethodNotRouted,
}

impl Routed {
    pub fn route(&self) -> &Arc<RouteSpec> {
        &self.route
    }

    /// `Some` when the request is a CORS preflight for this route.
    pub fn preflight(&self) -> Option<Preflight> {
        self.preflight
    }
}

impl MatchRoute {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "route";

    /// The route, or the answer instead (`ctx.route` is set too, for the log).
    // A refusal is a `Flow`, as every stage returns it; it is the rare path.
    #[allow(clippy::result_large_err)]
    pub fn run(snapshot: &Snapshot, parts: &Parts, ctx: &mut RequestContext) -> Result<Routed, Flow> {
        let path = parts.uri.path();
        if path == "*" {
            // `OPTIONS *` (the only method RequestTarget lets through with `*`) asks about
            // the server, not a resource: the gateway answers it, no route ever sees it.
            return Err(Flow::Respond(Reply::Response(server_options())));
        }
        if let Some(why) = ambiguous_path(path) {
            return Err(Problem::new(ErrorCode::BadRequest, why).decided(By::Reason("path")).into());
        }
        if parts.method == Method::OPTIONS
            && let Some(asked) = parts.headers.get(ACCESS_CONTROL_REQUEST_METHOD)
            && parts.headers.contains_key(ORIGIN)
            && let Some(routed) = preflight(snapshot, asked, path, ctx)
        {
            return Ok(routed);
        }
        let refused = match snapshot.table.lookup(ctx.host.as_deref(), &parts.method, path) {
            RouteMatch::Found { route, params } => {
                let Some(route) = snapshot.routes.get(route).cloned() else {
                    return Err(Problem::new(ErrorCode::Internal, "the route table names no route").into());
                };
                ctx.route = Some(route.clone());
                ctx.params = params;
                return Ok(Routed { route, preflight: None });
            }
            RouteMatch::MethodNotAllowed { allow } => {
                Problem::new(ErrorCode::MethodNotAllowed, "this path does not accept that method")
                    .with_header(ALLOW, allow)
            }
            RouteMatch::NotFound => Problem::new(ErrorCode::NoRoute, "no route matches this request"),
            RouteMatch::BadPath(why) => Problem::new(ErrorCode::BadRequest, why).decided(By::Reason("path")),
        };
        Err(refused.into())
    }
}

/// Routes a CORS preflight: the route taking the method asked about, when it has a CORS
/// policy; else the first route with one at this path (to be refused). `None`: no route with a
/// CORS policy takes this path, so the `OPTIONS` request is an ordinary one.
fn preflight(snapshot: &Snapshot, asked: &HeaderValue, path: &str, ctx: &mut RequestContext) -> Option<Routed> {
    let has_cors = |i: usize| snapshot.routes.get(i).is_some_and(|r| r.cors.is_some());
    if let Ok(method) = Method::from_bytes(asked.as_bytes())
        && let RouteMatch::Found { route, params } = snapshot.table.lookup(ctx.host.as_deref(), &method, path)
        && has_cors(route)
    {
        let route = snapshot.routes.get(route)?.clone();
        ctx.route = Some(route.clone());
        ctx.params = params;
        return Some(Routed { route, preflight: Some(Preflight::Routed) });
    }
    let route = snapshot.routes.get(snapshot.table.route_at(ctx.host.as_deref(), path, has_cors)?)?.clone();
    ctx.route = Some(route.clone());
    Some(Routed { route, preflight: Some(Preflight::MethodNotRouted) })
}

/// The answer to `OPTIONS *`: 200, no content (RFC 9110 §9.3.7).
fn server_options() -> http::Response<bytes::Bytes> {
    let mut response = http::Response::new(bytes::Bytes::new());
    response.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static("0"));
    response
}

/// The request's host, lowercase and without port: the URI authority (HTTP/2, absolute
/// form) or else `Host`.
pub fn request_host(parts: &Parts) -> Option<String> {
    let raw = match parts.uri.authority() {
        Some(a) => a.host().to_owned(),
        None => {
            let value = parts.headers.get(HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = value.parse().ok()?;
            authority.host().to_owned()
        }
    };
    Some(raw.trim_end_matches('.').to_ascii_lowercase())
}

/// Paths a backend could read as another path than the gateway matched are refused: dot
/// segments (also `..;x`), empty segments (`//`), backslashes, and percent-encodings of
/// unreserved characters, `/`, `\`, `;` or NUL (RFC 3986 normalises the first away; the
/// others hide separators — a backend that decodes before dropping `;` parameters reads
/// `/admin%3bx/y` as `/admin/y`). Checked without allocating: this runs on every request.
fn ambiguous_path(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    if path.contains("//") || bytes.contains(&b'\\') {
        return Some("the path has empty segments or backslashes");
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match decoded {
                Some(b)
                    if b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b';' | 0) =>
                {
                    return Some("the path percent-encodes characters that must appear plainly");
                }
                _ => {}
            }
        }
        i += 1;
    }
    let dot = path.split('/').any(|seg| matches!(seg.split(';').next(), Some("." | "..")));
    dot.then_some("the path has `.` or `..` segments")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_a_backend_could_read_differently_are_refused() {
        for bad in [
            "/a/../b",
            "/a/%2E%2e/b",
            "/a/./b",
            "/public/..;/admin",
            "//admin",
            "/a\\b",
            "/%61dmin",
            "/a%2fb",
            "/a%5Cb",
            "/a%00",
            "/admin%3bx/y",
        ] {
            assert!(ambiguous_path(bad).is_some(), "{bad}");
        }
        for good in ["/", "/a/..b/c.d", "/search/caf%C3%A9", "/a%20b", "/v1/orders/42", "/a;b=c"] {
            assert_eq!(ambiguous_path(good), None, "{good}");
        }
    }

    #[test]
    fn host_comes_from_authority_or_header_without_port() {
        let req = http::Request::builder().uri("/x").header("host", "API.Example.com:8443").body(());
        let parts = req.map(|r| r.into_parts().0).ok();
        assert_eq!(parts.as_ref().and_then(request_host).as_deref(), Some("api.example.com"));
        let req = http::Request::builder().uri("https://h2.example.com/x").body(());
        let parts = req.map(|r| r.into_parts().0).ok();
        assert_eq!(parts.as_ref().and_then(request_host).as_deref(), Some("h2.example.com"));
    }
}
