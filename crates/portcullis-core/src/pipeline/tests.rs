//! The pipeline offline: stage order and robustness against arbitrary request heads.

use std::path::Path;

use http::request::Parts;

use super::{Decision, Downstream, intake, on_request};
use crate::flow::{Flow, Reply};
use crate::snapshot::Snapshot;

const CONFIG: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
trusted_proxies: ["127.0.0.0/8"]
auth:
  corp: { type: jwt, issuer: "https://idp.example.com", algorithms: [RS256], forward_claims: { email: X-Email } }
policies:
  p: { scopes: [read] }
upstreams: { up: { targets: ["http://127.0.0.1:9"] } }
routes:
  - { name: open, match: { path: "/v1/{id}" }, upstream: up, auth: none, rewrite: { path: "/x/{id}" } }
  - { name: closed, match: { path: /private }, upstream: up, auth: { any: [corp] } }
  - { name: checked, match: { path: /checked }, upstream: up, auth: none, policy: p }
"#;

fn snapshot() -> Snapshot {
    let loaded = portcullis_config::load_str(CONFIG, "t.yaml", Path::new("/tmp"), None);
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    crate::compile(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri).header("host", "example.com");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"))
}

/// The request phases up to the transform, as a forwarded request passes them.
fn run(snap: &Snapshot, p: &mut Parts) -> (Flow, crate::RequestContext) {
    let downstream = Downstream { peer: ([127, 0, 0, 1], 4000).into(), https: false, listener: "l".into(), tls: None };
    let mut ctx = intake(snap, p, &downstream, crate::test_support::now());
    let flow = match on_request(snap, &crate::stage::AuthSources::default(), p, &mut ctx) {
        Decision::Forward(routed) => crate::stage::Transform::run(snap, routed.route(), p, &ctx),
        Decision::Respond(reply) => Flow::Respond(reply),
        Decision::Wait(pending) => Flow::Wait(pending),
    };
    (flow, ctx)
}

fn code(flow: &Flow) -> Option<&'static str> {
    match flow {
        Flow::Respond(Reply::Problem(p)) => Some(p.code.as_str()),
        _ => None,
    }
}

#[test]
fn a_public_route_continues_rewritten_with_gateway_headers() {
    let snap = snapshot();
    let mut p = parts("GET", "/v1/7?q=1", &[("x-email", "forged"), ("x-forwarded-for", "9.9.9.9")]);
    let (flow, ctx) = run(&snap, &mut p);
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(p.uri.to_string(), "/x/7?q=1");
    assert!(p.headers.get("x-email").is_none(), "forward_claims header stripped");
    assert_eq!(ctx.client_ip.to_string(), "9.9.9.9", "trusted peer: right-most untrusted hop");
    assert!(p.headers.contains_key("traceparent") && p.headers.contains_key("x-request-id"));
}

#[test]
fn credentials_are_required_and_policies_evaluated() {
    let snap = snapshot();
    let (flow, ctx) = run(&snap, &mut parts("GET", "/private", &[]));
    assert_eq!(code(&flow), Some("missing_credentials"));
    assert_eq!(ctx.auth_failed.as_deref(), Some("corp"), "counted against the route's provider");
    // Without a running provider (offline), a token is never waved through.
    let (flow, _) = run(&snap, &mut parts("GET", "/private", &[("authorization", "Bearer x")]));
    assert_eq!(code(&flow), Some("internal"));
    // A public route with a scope policy: no token, no scope.
    let (flow, _) = run(&snap, &mut parts("GET", "/checked", &[]));
    assert_eq!(code(&flow), Some("insufficient_scope"));
}

#[test]
fn limits_answer_before_routing() {
    let snap = snapshot();
    let long = format!("/nowhere/{}", "a".repeat(9000));
    let (flow, ctx) = run(&snap, &mut parts("GET", &long, &[]));
    assert_eq!(code(&flow), Some("uri_too_long"));
    assert!(ctx.route.is_none());
}

#[test]
fn arbitrary_request_heads_never_panic() {
    let snap = snapshot();
    let mut seed = 0x1234_5678_9abc_def0_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "/", "v1", "..", "%2e", "{", "}", "*", "private", "?", "&", "#", "%", "é", "checked", "//", ";", "%c0", "%ae",
        "V1",
    ];
    let methods = ["GET", "POST", "HEAD", "DELETE", "PURGE", "OPTIONS"];
    let header_values =
        ["", "a b", "00-0-0-0", "1.2.3.4, garbage", "[::1]:80", "close, x", "\t", "u@h:1", "h:1:2", "[::1"];
    for _ in 0..2000 {
        let mut uri = String::from("/");
        for _ in 0..(next() % 6) {
            uri.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let method = methods[(next() % methods.len() as u64) as usize];
        let value = header_values[(next() % header_values.len() as u64) as usize];
        let Ok(request) = http::Request::builder()
            .method(method)
            .uri(uri.as_str())
            .header("x-forwarded-for", value)
            .header("traceparent", value)
            .header("connection", value)
            .header("host", value)
            .body(())
        else {
            continue;
        };
        let (mut p, ()) = request.into_parts();
        let _ = run(&snap, &mut p);
    }
}
