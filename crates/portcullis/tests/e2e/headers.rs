//! The SPEC §3 header contract: request id, traceparent, X-Forwarded-*, trusted proxies,
//! hop-by-hop stripping, identity anti-spoofing and per-route header edits.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::kit::{Backend, TestGateway, get};

fn config(backend: &Backend, trusted: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
trusted_proxies: [{trusted}]
auth:
  corp:
    type: jwt
    issuer: "https://login.example.com/t/v2.0"
    algorithms: [RS256]
    forward_claims: {{ email: X-User-Email }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - name: open
    match: {{ path: "/{{*rest}}" }}
    upstream: b
    auth: none
    headers:
      request: {{ set: {{ X-Env: test }}, remove: [X-Debug] }}
      response: {{ set: {{ Strict-Transport-Security: "max-age=63072000" }}, remove: [X-Powered-By] }}
"#,
        backend.url()
    )
}

async fn backend() -> Backend {
    Backend::start(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        let h = r.headers_mut();
        h.insert("x-powered-by", HeaderValue::from_static("php"));
        h.insert("connection", HeaderValue::from_static("x-upstream-hop"));
        h.insert("x-upstream-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        r
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sane_request_id_is_kept_and_insane_one_replaced() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    let r = get(&gw.url("/a"), &[("x-request-id", "client-id.42_x")]).await;
    assert_eq!(r.header("x-request-id"), Some("client-id.42_x"));
    assert_eq!(b.requests()[0].headers["x-request-id"], "client-id.42_x");
    let r = get(&gw.url("/a"), &[("x-request-id", "bad id<script>")]).await;
    let id = r.header("x-request-id").unwrap_or_default().to_owned();
    assert_eq!(id.len(), 32, "generated: {id}");
    assert_eq!(b.requests()[1].headers["x-request-id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_is_continued_or_started() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    get(&gw.url("/a"), &[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]).await;
    get(&gw.url("/a"), &[]).await;
    let reqs = b.requests();
    let continued = reqs[0].headers["traceparent"].to_str().unwrap_or_default();
    assert!(continued.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{continued}");
    assert!(!continued.contains("00f067aa0ba902b7"), "the gateway's own span is the parent");
    let started = reqs[1].headers["traceparent"].to_str().unwrap_or_default();
    assert_eq!(started.len(), 55, "{started}");
    assert!(started.starts_with("00-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_untrusted_peer_is_replaced() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "\"10.0.0.0/8\"")).await;
    get(&gw.url("/a"), &[("x-forwarded-for", "6.6.6.6"), ("host", "api.example.com")]).await;
    let r = &b.requests()[0];
    assert_eq!(r.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(r.headers["x-forwarded-proto"], "http");
    assert_eq!(r.headers["x-forwarded-host"], "api.example.com");
    assert_eq!(r.headers["host"].to_str().ok(), Some(b.addr.to_string().as_str()), "Host is the target's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_trusted_peer_is_appended() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "\"127.0.0.0/8\"")).await;
    get(&gw.url("/a"), &[("x-forwarded-for", "203.0.113.9, 10.1.1.1")]).await;
    assert_eq!(b.requests()[0].headers["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cannot_assert_an_identity() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    let r = get(
        &gw.url("/a"),
        &[
            ("x-consumer", "admin"),
            ("X-Auth-Subject", "root"),
            ("x-auth-provider", "corp"),
            ("x-user-email", "ceo@example.com"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let h = &b.requests()[0].headers;
    for name in ["x-consumer", "x-auth-subject", "x-auth-provider", "x-user-email"] {
        assert!(!h.contains_key(name), "{name} reached the backend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_not_forwarded_either_way() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    let r = get(
        &gw.url("/a"),
        &[
            ("connection", "x-client-hop"),
            ("x-client-hop", "1"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
        ],
    )
    .await;
    let h = &b.requests()[0].headers;
    for name in ["x-client-hop", "proxy-authorization", "te", "upgrade"] {
        assert!(!h.contains_key(name), "{name} reached the backend");
    }
    assert!(r.headers.get("x-upstream-hop").is_none());
    assert!(r.headers.get("keep-alive").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_header_rules_apply_both_ways() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    let r = get(&gw.url("/a"), &[("x-debug", "1"), ("x-env", "prod")]).await;
    let h = &b.requests()[0].headers;
    assert_eq!(h["x-env"], "test");
    assert!(!h.contains_key("x-debug"));
    assert_eq!(r.header("strict-transport-security"), Some("max-age=63072000"));
    assert!(r.headers.get("x-powered-by").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_spellings_of_identity_headers_are_stripped_too() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    get(&gw.url("/a"), &[("x_consumer", "admin"), ("x-auth_subject", "root"), ("x_user_email", "ceo@example.com")])
        .await;
    let h = &b.requests()[0].headers;
    for name in ["x_consumer", "x-auth_subject", "x_user_email"] {
        assert!(!h.contains_key(name), "{name} reached the backend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_clients_cannot_claim_an_address_or_original_url() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    get(
        &gw.url("/a"),
        &[
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
        ],
    )
    .await;
    let h = &b.requests()[0].headers;
    for name in ["forwarded", "x-real-ip", "x-original-url", "x-rewrite-url"] {
        assert!(!h.contains_key(name), "{name} reached the backend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cookie_fields_reach_an_http1_upstream_as_one() {
    let b = backend().await;
    let gw = TestGateway::start(&config(&b, "")).await;
    let req = http::Request::get(gw.url("/a"))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let r = crate::kit::send(&crate::kit::h2_client(), req).await;
    assert_eq!(r.status, StatusCode::OK);
    let h = &b.requests()[0].headers;
    assert_eq!(h.get_all("cookie").iter().count(), 1);
    assert_eq!(h["cookie"], "a=1; b=2");
}
