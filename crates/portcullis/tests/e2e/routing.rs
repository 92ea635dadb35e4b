//! Routing: host and path precedence, methods, 404/405, rewrite.

use crate::kit::{Backend, TestGateway, client, get, send};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

fn config(backends: &[&Backend]) -> String {
    let mut upstreams = String::new();
    for (i, b) in backends.iter().enumerate() {
        upstreams.push_str(&format!("  b{i}:\n    targets: [\"{}\"]\n", b.url()));
    }
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
{upstreams}routes:
  - {{ name: any-host-exact, match: {{ path: /static/app.js }}, upstream: b0, auth: none }}
  - {{ name: any-host-param, match: {{ path: "/static/{{file}}" }}, upstream: b1, auth: none }}
  - {{ name: any-host-catch, match: {{ path: "/static/{{*rest}}" }}, upstream: b2, auth: none }}
  - {{ name: wildcard, match: {{ host: "*.example.com", path: /who }}, upstream: b1, auth: none }}
  - {{ name: exact-host, match: {{ host: api.example.com, path: /who }}, upstream: b2, auth: none }}
  - {{ name: any-who, match: {{ path: /who }}, upstream: b0, auth: none }}
  - {{ name: orders-get, match: {{ path: "/v1/orders/{{id}}", methods: [GET] }}, upstream: b0, auth: none, rewrite: {{ path: "/orders/{{id}}/detail" }} }}
  - {{ name: orders-delete, match: {{ path: "/v1/orders/{{id}}", methods: [DELETE] }}, upstream: b1, auth: none }}
"#
    )
}

async fn three() -> (Backend, Backend, Backend) {
    (Backend::ok().await, Backend::ok().await, Backend::ok().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_path_beats_parameter_beats_catch_all() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    assert_eq!(get(&gw.url("/static/app.js"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/static/other.css"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/static/a/b/c"), &[]).await.status, StatusCode::OK);
    assert_eq!((b0.count(), b1.count(), b2.count()), (1, 1, 1));
    assert_eq!(b2.requests()[0].uri, "/static/a/b/c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_host_beats_wildcard_beats_any_host() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    get(&gw.url("/who"), &[("host", "API.example.com:443")]).await;
    assert_eq!(b2.count(), 1, "exact host");
    get(&gw.url("/who"), &[("host", "eu.api.example.com")]).await;
    assert_eq!(b1.count(), 1, "wildcard host");
    get(&gw.url("/who"), &[("host", "example.com")]).await;
    assert_eq!(b0.count(), 1, "any host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404_no_route_problem() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    let r = get(&gw.url("/nothing/here"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "no_route");
    let doc = r.json();
    assert_eq!(doc["type"], "about:blank");
    assert_eq!(doc["status"], 404);
    assert_eq!(doc["title"], "Not Found");
    assert_eq!(doc["request_id"].as_str(), r.header("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    let req = Request::post(gw.url("/v1/orders/7")).body(Full::new(Bytes::new())).expect("request");
    let r = send(&client(), req).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE"));
    let req = Request::delete(gw.url("/v1/orders/7")).body(Full::new(Bytes::new())).expect("request");
    assert_eq!(send(&client(), req).await.status, StatusCode::OK);
    assert_eq!(b1.requests()[0].method, "DELETE");
    assert_eq!(b0.count() + b2.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_substitutes_parameters_and_keeps_the_query() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    let r = get(&gw.url("/v1/orders/42?expand=items&x=1"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(b0.requests()[0].uri, "/orders/42/detail?expand=items&x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_cannot_escape_a_route() {
    let (b0, b1, b2) = three().await;
    let gw = TestGateway::start(&config(&[&b0, &b1, &b2])).await;
    for path in [
        "/static/../admin",
        "/static/%2e%2e/admin",
        "/static/./app.js",
        "/static/..;/admin",
        "//static/app.js",
        "/st%61tic/app.js",
        "/static/a%2fb",
        "/static/a%5cb",
    ] {
        let out = crate::kit::raw(
            gw.addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            crate::kit::WAIT,
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
        assert!(out.contains("\"code\":\"bad_request\""), "{path}: {out}");
    }
    assert_eq!(b0.count() + b1.count() + b2.count(), 0);
}

fn ip_config(backend: &Backend, waf: &str, trusted: &str) -> String {
    format!(
        "version: 1\nlisteners: [{{ name: t, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\ntrusted_proxies: [{trusted}]\nwaf: {{ mode: off, {waf} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ name: all, match: {{ path: \"/{{*rest}}\" }}, upstream: b, auth: none }}\n",
        backend.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_unlisted_addresses_get_403_ip_denied() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&ip_config(&b, "deny_ips: [\"127.0.0.0/8\"]", "")).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "ip_denied");
    let gw = TestGateway::start(&ip_config(&b, "allow_ips: [\"10.0.0.0/8\"]", "")).await;
    assert_eq!(get(&gw.url("/x"), &[]).await.code(), "ip_denied");
    let gw = TestGateway::start(&ip_config(&b, "allow_ips: [\"127.0.0.1\"], deny_ips: [\"127.0.0.1/32\"]", "")).await;
    assert_eq!(get(&gw.url("/x"), &[]).await.code(), "ip_denied", "deny wins over allow");
    assert_eq!(b.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_rules_judge_the_client_behind_a_trusted_proxy() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&ip_config(&b, "deny_ips: [\"203.0.113.0/24\"]", "\"127.0.0.0/8\"")).await;
    let r = get(&gw.url("/x"), &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(r.code(), "ip_denied");
    let r = get(&gw.url("/x"), &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(r.status, StatusCode::OK);
    // Without trust, the claimed address is ignored and the peer is judged.
    let gw = TestGateway::start(&ip_config(&b, "deny_ips: [\"203.0.113.0/24\"]", "")).await;
    assert_eq!(get(&gw.url("/x"), &[("x-forwarded-for", "203.0.113.7")]).await.status, StatusCode::OK);
}
