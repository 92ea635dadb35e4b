//! Route matching: host and path against the table, 404 `no_route`, 405 with `Allow`.
//! Paths with dot segments are refused first, so a route's pattern cannot be escaped with
//! `/public/../admin` that a backend would normalise into another route.

use http::header::{ALLOW, HOST};
use http::request::Parts;

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::route::RouteMatch;
use crate::snapshot::Snapshot;

pub struct MatchRoute;

impl MatchRoute {
    pub fn run(snapshot: &Snapshot, parts: &Parts, ctx: &mut RequestContext) -> Flow {
        let path = parts.uri.path();
        if has_dot_segment(path) {
            return Problem::new(ErrorCode::BadRequest, "the path has `.` or `..` segments").into();
        }
        match snapshot.table.lookup(ctx.host.as_deref(), &parts.method, path) {
            RouteMatch::Found { route, params } => {
                ctx.route = snapshot.routes.get(route).cloned();
                ctx.params = params;
                Flow::Continue
            }
            RouteMatch::MethodNotAllowed { allow } => {
                Problem::new(ErrorCode::MethodNotAllowed, "this path does not accept that method")
                    .with_header(ALLOW, allow)
                    .into()
            }
            RouteMatch::NotFound => Problem::new(ErrorCode::NoRoute, "no route matches this request").into(),
        }
    }
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

/// Whether any segment is `.` or `..`, also when the dots are written `%2e` (either case).
/// Checked without allocating: this runs on every request.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let mut rest = seg.as_bytes();
        let mut dots = 0;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' && rest[2].eq_ignore_ascii_case(&b'e') {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_detected_encoded_or_not() {
        assert!(has_dot_segment("/a/../b"));
        assert!(has_dot_segment("/a/%2E%2e/b"));
        assert!(has_dot_segment("/a/./b"));
        assert!(!has_dot_segment("/a/..b/c.d"));
        assert!(!has_dot_segment("/"));
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
