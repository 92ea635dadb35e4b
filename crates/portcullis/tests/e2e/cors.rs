//! CORS on the wire (SPEC §2 `cors`, §3): preflights answered by the gateway (even on routes
//! that do not list `OPTIONS`), never forwarded, authenticated or rate limited but counted;
//! every header of an allowed preflight and of an actual request's answer, the gateway's own
//! 401, 429 and 502 included; `cors_rejected` for unlisted origins, methods and headers;
//! `Vary: Origin`; the response cache never carrying one origin's headers to another; a plain
//! `OPTIONS` an ordinary request; the `validate` errors; the phase in `explain` and `test`.
//! The browser's own verdict is in [`browser`] (whose Chromium set-up the dashboard test shares).

pub(crate) mod browser;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use crate::kit::{Backend, Recorded, Reply, TestGateway, client, dead_port, get, scratch_dir, send};
use crate::reload::{TOKEN, metric, write_config};

const PORTAL: &str = "https://portal.example.com";
const APP: &str = "https://a1.apps.example.com";
const EVIL: &str = "https://evil.example.net";
const KEY: &str = "pcl_test_cors_key";

fn answer(r: &Recorded) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("n{}", r.uri))));
    let h = resp.headers_mut();
    h.insert("x-order-version", "7".parse().expect("value"));
    // An upstream that says CORS things of its own: the route's policy overrides them.
    h.insert("access-control-allow-origin", "*".parse().expect("value"));
    h.insert("access-control-allow-methods", "DELETE".parse().expect("value"));
    resp
}

fn config(backend: &Backend, dead: std::net::SocketAddr) -> String {
    let key = portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(KEY.as_bytes()));
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }} }}
auth:
  keys: {{ type: api_key, header: X-Api-Key }}
consumers:
  acme: {{ keys: ["{key}"] }}
rate_limits:
  tight: {{ rate: 1/m, burst: 1, key: client_ip }}
cors:
  portal:
    origins: ["{PORTAL}", "https://*.apps.example.com"]
    methods: [GET, PUT, POST]
    headers: [Content-Type, X-Api-Key]
    credentials: true
    expose_headers: [X-Order-Version]
    max_age: 10m
  open:
    origins: ["*"]
upstreams:
  b: {{ targets: ["{}"] }}
  dead: {{ targets: ["http://{dead}"] }}
routes:
  - {{ name: orders, match: {{ path: "/orders/{{id}}", methods: [GET, PUT] }}, upstream: b, auth: none, cors: portal, cache: {{ ttl: 60s, shared: true }} }}
  - {{ name: secure, match: {{ path: /secure, methods: [GET] }}, upstream: b, auth: {{ any: [keys] }}, cors: portal }}
  - {{ name: limited, match: {{ path: /limited, methods: [GET] }}, upstream: b, auth: none, rate_limits: [tight], cors: portal }}
  - {{ name: broken, match: {{ path: /broken, methods: [GET] }}, upstream: dead, auth: none, cors: portal }}
  - {{ name: public, match: {{ path: /public, methods: [GET] }}, upstream: b, auth: none, cors: open }}
  - {{ name: plain, match: {{ path: /plain, methods: [GET, OPTIONS] }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

struct Setup {
    gw: TestGateway,
    backend: Backend,
}

async fn setup() -> Setup {
    let backend = Backend::start(answer).await;
    let path = write_config(&scratch_dir(), &config(&backend, dead_port().await));
    let gw = TestGateway::from_file(&path).await.with_admin().await;
    Setup { gw, backend }
}

async fn request(gw: &TestGateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(&client(), b.body(Full::new(Bytes::new())).expect("request")).await
}

async fn preflight(gw: &TestGateway, path: &str, origin: &str, method: &str, headers: Option<&str>) -> Reply {
    let mut h = vec![("origin", origin), ("access-control-request-method", method)];
    if let Some(list) = headers {
        h.push(("access-control-request-headers", list));
    }
    request(gw, "OPTIONS", path, &h).await
}

fn vary_has_origin(r: &Reply) -> bool {
    r.headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap_or_default().split(',').any(|t| t.trim().eq_ignore_ascii_case("origin")))
}

/// Every header of an answer to an actual request from an allowed origin.
fn assert_cors_headers(r: &Reply, origin: &str) {
    assert_eq!(r.header("access-control-allow-origin"), Some(origin), "{r:?}");
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"), "{r:?}");
    let exposed: Vec<String> = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for name in
        ["x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after", "x-order-version"]
    {
        assert!(exposed.iter().any(|e| e == name), "`{name}` not exposed: {r:?}");
    }
    assert!(vary_has_origin(r), "{r:?}");
    assert!(r.header("access-control-allow-methods").is_none(), "only preflights list methods: {r:?}");
}

fn assert_no_cors(r: &Reply) {
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"] {
        assert!(r.header(name).is_none(), "`{name}` on {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_preflight_is_answered_204_with_every_header_and_never_forwarded() {
    let s = setup().await;
    // The route does not list OPTIONS: the preflight is still the gateway's, not a 405.
    let r = preflight(&s.gw, "/orders/1", PORTAL, "PUT", Some("content-type, X-Api-Key")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(PORTAL));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT, POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("content-type, x-api-key"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert!(vary_has_origin(&r), "{r:?}");
    assert!(r.header("x-request-id").is_some());
    assert!(r.body.is_empty());
    // The exact origin as the browser sent it, also when it matched after normalisation or
    // by the label wildcard.
    let r = preflight(&s.gw, "/orders/1", APP, "GET", None).await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (StatusCode::NO_CONTENT, Some(APP)));
    let r = preflight(&s.gw, "/orders/1", "https://PORTAL.example.com:443", "GET", None).await;
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (StatusCode::NO_CONTENT, Some("https://PORTAL.example.com:443"))
    );
    // An auth route takes its preflight without credentials; a rate-limited one never counts
    // it (burst 1: three preflights, then the one actual request still passes).
    let r = preflight(&s.gw, "/secure", PORTAL, "GET", Some("x-api-key")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    for _ in 0..3 {
        let r = preflight(&s.gw, "/limited", PORTAL, "GET", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    }
    let r = get(&s.gw.url("/limited"), &[("origin", PORTAL)]).await;
    assert_eq!(r.status, StatusCode::OK, "preflights are not rate limited: {r:?}");
    assert_eq!(s.backend.count(), 1, "no preflight reached the backend");
    assert_eq!(
        metric(&s.gw, r#"portcullis_requests_total{route="limited",method="OPTIONS",status="204"}"#).await,
        Some(3.0),
        "preflights are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_for_an_unlisted_origin_method_or_header_is_403_cors_rejected() {
    let s = setup().await;
    for (origin, method, headers, why) in [
        (EVIL, "GET", None, "unlisted origin"),
        ("null", "GET", None, "null origin"),
        ("https://a.b.apps.example.com", "GET", None, "two labels for the wildcard"),
        ("http://portal.example.com", "GET", None, "another scheme"),
        (PORTAL, "DELETE", None, "a method the policy leaves out"),
        (PORTAL, "POST", None, "a method the policy lists but no route takes on this path"),
        (PORTAL, "GET", Some("content-type, x-debug"), "a header the policy leaves out"),
    ] {
        let r = preflight(&s.gw, "/orders/1", origin, method, headers).await;
        assert_eq!((r.status, r.code().as_str()), (StatusCode::FORBIDDEN, "cors_rejected"), "{why}: {r:?}");
        assert_eq!(r.json()["decided_by"], "cors:portal", "{why}");
        assert_no_cors(&r);
        assert!(vary_has_origin(&r), "{why}: {r:?}");
    }
    assert_eq!(s.backend.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_options_is_an_ordinary_request() {
    let s = setup().await;
    // Without `Access-Control-Request-Method` or without `Origin`: the route's own rules (it
    // does not take OPTIONS: 405).
    let r = request(&s.gw, "OPTIONS", "/orders/1", &[("origin", PORTAL)]).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let r = request(&s.gw, "OPTIONS", "/orders/1", &[("access-control-request-method", "GET")]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // A route without a policy that takes OPTIONS gets every OPTIONS, a preflight too.
    let r = request(&s.gw, "OPTIONS", "/plain", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = preflight(&s.gw, "/plain", PORTAL, "GET", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "the upstream's own, untouched: {r:?}");
    assert_eq!(s.backend.count(), 2);
    // An unrouted path stays 404.
    let r = preflight(&s.gw, "/nowhere", PORTAL, "GET", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actual_requests_get_the_policys_headers_and_unlisted_origins_403() {
    let s = setup().await;
    let r = get(&s.gw.url("/orders/1"), &[("origin", PORTAL)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_cors_headers(&r, PORTAL);
    assert_eq!(r.header("x-order-version"), Some("7"));
    // Without Origin: no CORS headers, but the answer still varies by Origin.
    let r = get(&s.gw.url("/orders/2"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_no_cors(&r);
    assert!(vary_has_origin(&r), "{r:?}");
    assert_eq!(r.header("access-control-allow-methods"), None, "the upstream's CORS headers are dropped");
    let before = s.backend.count();
    for origin in [EVIL, "null", "https://portal.example.com.evil.net", "https://portal.example.com/"] {
        let r = get(&s.gw.url("/orders/3"), &[("origin", origin)]).await;
        assert_eq!((r.status, r.code().as_str()), (StatusCode::FORBIDDEN, "cors_rejected"), "{origin}");
        assert_no_cors(&r);
        assert!(vary_has_origin(&r));
    }
    let twice = request(&s.gw, "GET", "/orders/3", &[("origin", PORTAL), ("origin", PORTAL)]).await;
    assert_eq!(twice.status, StatusCode::FORBIDDEN);
    assert_eq!(s.backend.count(), before, "no refused request reached the backend");
    // `*` without credentials: any origin, named exactly, no credentials header.
    let r = get(&s.gw.url("/public"), &[("origin", EVIL)]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(EVIL));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert!(r.header("access-control-expose-headers").is_some_and(|v| v.contains("X-Request-Id")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_401_429_and_502_carry_the_cors_headers() {
    let s = setup().await;
    let r = get(&s.gw.url("/secure"), &[("origin", PORTAL)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert_cors_headers(&r, PORTAL);
    let r = get(&s.gw.url("/secure"), &[("origin", PORTAL), ("x-api-key", KEY)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_cors_headers(&r, PORTAL);
    let first = get(&s.gw.url("/limited"), &[("origin", APP)]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_cors_headers(&first, APP);
    assert!(first.header("ratelimit-limit").is_some());
    let r = get(&s.gw.url("/limited"), &[("origin", APP)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    assert_cors_headers(&r, APP);
    assert!(r.header("retry-after").is_some());
    let r = get(&s.gw.url("/broken"), &[("origin", PORTAL)]).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_GATEWAY, "upstream_error"), "{r:?}");
    assert_cors_headers(&r, PORTAL);
    // An unlisted origin is refused before authentication.
    let r = get(&s.gw.url("/secure"), &[("origin", EVIL)]).await;
    assert_eq!(r.code(), "cors_rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_never_carries_one_origins_headers_to_another() {
    let s = setup().await;
    let miss = get(&s.gw.url("/orders/9"), &[("origin", PORTAL)]).await;
    assert_eq!((miss.header("x-cache"), miss.header("access-control-allow-origin")), (Some("MISS"), Some(PORTAL)));
    let hit = get(&s.gw.url("/orders/9"), &[("origin", APP)]).await;
    assert_eq!(hit.header("x-cache"), Some("HIT"), "{hit:?}");
    assert_cors_headers(&hit, APP);
    let anonymous = get(&s.gw.url("/orders/9"), &[]).await;
    assert_eq!(anonymous.header("x-cache"), Some("HIT"));
    assert_no_cors(&anonymous);
    assert!(vary_has_origin(&anonymous));
    assert_eq!(anonymous.header("access-control-allow-methods"), None, "the stored upstream header is dropped too");
    let refused = get(&s.gw.url("/orders/9"), &[("origin", EVIL)]).await;
    assert_eq!(refused.code(), "cors_rejected", "the cache never answers an unlisted origin");
    assert_eq!(s.backend.count(), 1);
}

fn portcullis(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn validate_refuses_wildcards_with_credentials_null_and_origins_with_a_path() {
    let dir = scratch_dir();
    let bad = r#"version: 1
listeners: [{ name: main, bind: "127.0.0.1:0" }]
upstreams: { m: { mock: { status: 200 } } }
cors:
  a: { origins: ["*"], credentials: true }
  b: { origins: ["null", "https://portal.example.com/", "https://*example.com", "portal.example.com"] }
  c: { origins: ["https://ok.example.com"], headers: ["*"], methods: ["GET POST"] }
routes:
  - { name: r, match: { path: /x }, upstream: m, auth: none, cors: a }
"#;
    let path = dir.join("bad.yaml");
    std::fs::write(&path, bad).expect("write");
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    for want in [
        "cors.a.origins[0]",
        "cannot be combined with credentials: true",
        "cors.b.origins[0]",
        "identifies no one",
        "cors.b.origins[1]",
        "no path",
        "cors.b.origins[2]",
        "cors.b.origins[3]",
        "cors.c.headers[0]",
        "cors.c.methods[0]",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    let good = bad
        .replace(r#"origins: ["*"], credentials: true"#, r#"origins: ["*"]"#)
        .replace(
            r#"["null", "https://portal.example.com/", "https://*example.com", "portal.example.com"]"#,
            r#"["https://*.example.com"]"#,
        )
        .replace(r#"headers: ["*"], methods: ["GET POST"]"#, "headers: [X-Api-Key], methods: [GET, POST]");
    std::fs::write(&path, good).expect("write");
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.to_ascii_lowercase().contains("not enforced"), "CORS is enforced, no warning: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_and_test_show_the_cors_phase_and_a_case_file_can_state_a_preflight() {
    let dir = scratch_dir();
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        r#"version: 1
listeners: [{ name: main, bind: "127.0.0.1:0" }]
upstreams: { b: { targets: ["http://10.0.0.1:8080"] } }
auth: { keys: { type: api_key, header: X-Api-Key } }
cors:
  portal: { origins: ["https://portal.example.com"], methods: [GET, PUT], headers: [X-Api-Key], credentials: true }
routes:
  - { name: orders, match: { path: "/orders/{id}", methods: [GET, PUT] }, upstream: b, auth: { any: [keys] }, cors: portal }
"#,
    )
    .expect("config");
    let c = config.to_str().unwrap_or_default();
    let (code, out) = portcullis(&[
        "explain",
        "-c",
        c,
        "--json",
        "-H",
        "Origin: https://portal.example.com",
        "-H",
        "Access-Control-Request-Method: PUT",
        "OPTIONS",
        "http://api.example.com/orders/1",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["decided_by"], "cors:portal", "{out}");
    assert_eq!(report["response"]["status"], 204, "{out}");
    assert!(report["upstream"].is_null());
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        r#"cases:
  - name: the portal's preflight is answered without a key
    request:
      method: OPTIONS
      url: http://api.example.com/orders/1
      headers: { Origin: "https://portal.example.com", Access-Control-Request-Method: PUT, Access-Control-Request-Headers: x-api-key }
    expect:
      status: 204
      decided_by: cors:portal
      upstream: null
      headers: { Access-Control-Allow-Origin: "https://portal.example.com", Access-Control-Allow-Credentials: "true", Access-Control-Allow-Methods: "GET, PUT" }
  - name: another site is refused before authentication
    request:
      url: http://api.example.com/orders/1
      headers: { Origin: "https://evil.example.net" }
    expect: { status: 403, code: cors_rejected, decided_by: cors:portal, upstream: null }
  - name: the portal's request still needs its key, and the 401 is readable
    request:
      url: http://api.example.com/orders/1
      headers: { Origin: "https://portal.example.com" }
    expect:
      status: 401
      code: missing_credentials
      headers: { Access-Control-Allow-Origin: "https://portal.example.com", Vary: Origin }
"#,
    )
    .expect("cases");
    let (code, out) = portcullis(&["test", "-c", c, cases.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
