//! Routing holes: protected routes reached through a public catch-all by path variants (case,
//! trailing slash, `;` parameters) or by a method the protected route does not take; request
//! targets and hosts a backend reads differently from the gateway (bad percent-encoding,
//! overlong UTF-8, target forms, userinfo, `:authority` against `Host`); header names with `_`.
//! See [`super`].

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::kit::{self, Backend, TestGateway, WAIT, client, get, send};

/// The issue's layout: `/api/admin/{*p}` and `/api/users/{id}` (GET, PUT) need an API key; a
/// public `/api/{*p}` goes to the same backend. `extra` is added at the top level.
fn layout(backend: &str, extra: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: t, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
{extra}
auth:
  keys: {{ type: api_key }}
upstreams:
  app: {{ targets: ["{backend}"] }}
routes:
  - {{ name: admin, match: {{ path: "/api/admin/{{*p}}" }}, upstream: app, auth: {{ any: [keys] }} }}
  - {{ name: users, match: {{ path: "/api/users/{{id}}", methods: [GET, PUT] }}, upstream: app, auth: {{ any: [keys] }} }}
  - {{ name: public, match: {{ path: "/api/{{*p}}" }}, upstream: app, auth: none }}
"#
    )
}

/// Sends `head` (a request head without its final blank line, `Connection: close` added)
/// and returns the status line and the whole answer.
async fn raw(addr: SocketAddr, head: &str) -> (String, String) {
    let out = kit::raw(addr, format!("{head}\r\nConnection: close\r\n\r\n").as_bytes(), WAIT).await;
    (out.lines().next().unwrap_or_default().to_owned(), out)
}

fn assert_bad_request(status_line: &str, out: &str, what: &str) {
    assert!(status_line.starts_with("HTTP/1.1 400"), "{what}: {out}");
    assert!(out.contains("\"code\":\"bad_request\""), "{what}: {out}");
}

// ── Issue 12, item 2: path variants of protected routes ────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_parameter_cannot_carry_a_protected_path_through_the_public_catch_all() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for path in
        ["/api/admin;jsessionid=1/x", "/api/admin/x;v=1", "/api/users;x/7", "/api/users/7;v=1", "/api/admin%3Bx/y"]
    {
        let (status, out) = raw(gw.addr, &format!("GET {path} HTTP/1.1\r\nHost: a")).await;
        assert_bad_request(&status, &out, path);
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_takes_matrix_parameters_forwards_them() {
    let backend = Backend::ok().await;
    let config = format!(
        "version: 1\nlisteners: [{{ name: t, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\n\
         upstreams:\n  app: {{ targets: [\"{}\"] }}\nroutes:\n  \
         - {{ name: files, match: {{ path: \"/files/{{name}}\", matrix_params: true }}, upstream: app, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(get(&gw.url("/files/report;version=2"), &[]).await.status, StatusCode::OK);
    assert_eq!(backend.requests()[0].uri, "/files/report;version=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_routing_that_follows_the_backend_case_and_slash_variants_need_the_key() {
    let backend = Backend::ok().await;
    let routing = "routing: { case_insensitive: true, trailing_slash: ignore }";
    let gw = TestGateway::start(&layout(&backend.url(), routing)).await;
    for path in ["/api/ADMIN/x", "/API/Admin/x", "/api/users/7/", "/api/Users/7/"] {
        let r = get(&gw.url(path), &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
        assert_eq!(r.code(), "missing_credentials", "{path}");
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
    // The public route still serves what is not a variant of a protected path.
    assert_eq!(get(&gw.url("/API/Other"), &[]).await.status, StatusCode::OK);
}

#[test]
fn validate_warns_naming_both_routes_when_a_weaker_route_receives_variants() {
    let dir = kit::scratch_dir();
    let config = layout("http://127.0.0.1:9", "").replace("@LISTEN@", "127.0.0.1:0");
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["validate", "-c", path.to_str().unwrap_or_default()])
        .output()
        .expect("run validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "warnings do not fail validate:\n{text}");
    let line =
        |route: &str| text.lines().find(|l| l.contains("route `public`") && l.contains(&format!("route `{route}`")));
    let admin = line("admin").unwrap_or_else(|| panic!("no warning for admin:\n{text}"));
    assert!(admin.contains("case") && admin.contains("routing.case_insensitive: true"), "{admin}");
    let users = line("users").unwrap_or_else(|| panic!("no warning for users:\n{text}"));
    assert!(users.contains("trailing-slash") && users.contains("routing.trailing_slash: ignore"), "{users}");
}

// ── Issue 12, item 3: a method the protected route does not take ───────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_the_protected_route_does_not_take_is_405_not_the_public_catch_all() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    let req = Request::delete(gw.url("/api/users/7")).body(Full::new(Bytes::new())).expect("request");
    let r = send(&client(), req).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{r:?}");
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, PUT, HEAD"));
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
    // Paths no more specific pattern matches still reach the catch-all, whatever the method.
    let req = Request::delete(gw.url("/api/things/7")).body(Full::new(Bytes::new())).expect("request");
    assert_eq!(send(&client(), req).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_the_exact_host_route_does_not_take_never_falls_to_an_any_host_route() {
    let backend = Backend::ok().await;
    let config = format!(
        "version: 1\nlisteners: [{{ name: t, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\n\
         auth:\n  keys: {{ type: api_key }}\nupstreams:\n  app: {{ targets: [\"{}\"] }}\nroutes:\n  \
         - {{ name: users, match: {{ host: api.example.com, path: \"/users/{{id}}\", methods: [GET] }}, upstream: app, auth: {{ any: [keys] }} }}\n  \
         - {{ name: public, match: {{ path: \"/{{*p}}\" }}, upstream: app, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::start(&config).await;
    let (status, out) = raw(gw.addr, "DELETE /users/7 HTTP/1.1\r\nHost: api.example.com").await;
    assert!(status.starts_with("HTTP/1.1 405"), "{out}");
    assert!(out.to_ascii_lowercase().contains("allow: get, head"), "{out}");
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}

// ── Issue 12, item 9: overlong UTF-8 in the path; header names with `_` ───────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_bytes_that_are_not_utf8_are_refused() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for path in ["/api/%c0%ae%c0%ae/admin/x", "/api/x%c0%afadmin", "/api/%e0%80%ae", "/api/%ff", "/api/%c3"] {
        let (status, out) = raw(gw.addr, &format!("GET {path} HTTP/1.1\r\nHost: a")).await;
        assert_bad_request(&status, &out, path);
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
    assert_eq!(get(&gw.url("/api/caf%C3%A9"), &[]).await.status, StatusCode::OK, "real UTF-8 passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_with_underscores_are_not_forwarded_unless_the_route_allows_one() {
    let backend = Backend::ok().await;
    let config = format!(
        "version: 1\nlisteners: [{{ name: t, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\n\
         upstreams:\n  app: {{ targets: [\"{}\"] }}\nroutes:\n  \
         - {{ name: legacy, match: {{ path: /legacy }}, upstream: app, auth: none, headers: {{ request: {{ allow_underscore: [X_Legacy_Id] }} }} }}\n  \
         - {{ name: plain, match: {{ path: /plain }}, upstream: app, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::start(&config).await;
    let headers = "Content_Length: 5\r\nTransfer_Encoding: chunked\r\nX_Legacy_Id: 7\r\nX-Kept: 1";
    for path in ["/plain", "/legacy"] {
        let (status, out) = raw(gw.addr, &format!("GET {path} HTTP/1.1\r\nHost: a\r\n{headers}")).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{out}");
    }
    let seen = backend.requests();
    for r in &seen {
        assert!(!r.headers.contains_key("content_length") && !r.headers.contains_key("transfer_encoding"), "{r:?}");
        assert_eq!(r.headers.get("x-kept").map(|v| v.as_bytes()), Some(&b"1"[..]));
    }
    assert!(!seen[0].headers.contains_key("x_legacy_id"), "not allowed on /plain");
    assert_eq!(seen[1].headers.get("x_legacy_id").map(|v| v.as_bytes()), Some(&b"7"[..]), "allowed on /legacy");
}

// ── Issue 12, item 12, and issue 13, item 3: the host ─────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_in_the_request_target_or_host_is_refused() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for head in [
        "GET http://user:pw@b.example.com/api/x HTTP/1.1\r\nHost: b.example.com",
        "GET /api/x HTTP/1.1\r\nHost: user:pw@b.example.com",
    ] {
        let (status, out) = raw(gw.addr, head).await;
        assert_bad_request(&status, &out, head);
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_host_and_port_is_refused_before_routing() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for host in [
        "b.example.com/admin",
        "b.example.com\\admin",
        "b.example.com x",
        "b.example.com:80:81",
        "b.example.com:",
        "b.example.com:99999",
        "[::1",
    ] {
        let (status, out) = raw(gw.addr, &format!("GET /api/x HTTP/1.1\r\nHost: {host}")).await;
        assert_bad_request(&status, &out, host);
    }
    // Bytes past ASCII pass the HTTP codec (obs-text), not the gateway.
    let out =
        kit::raw(gw.addr, b"GET /api/x HTTP/1.1\r\nHost: b.example.com\x80\r\nConnection: close\r\n\r\n", WAIT).await;
    assert_bad_request(out.lines().next().unwrap_or_default(), &out, "obs-text");
    assert_eq!(backend.count(), 0, "nothing reached the backend, nor its X-Forwarded-Host: {:?}", backend.requests());
    let (status, _) = raw(gw.addr, "GET /api/x HTTP/1.1\r\nHost: B.example.com:8080").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(backend.requests()[0].headers["x-forwarded-host"], "B.example.com:8080");
}

/// An HTTP/2 (prior knowledge) request with exactly the `:authority` and headers given.
async fn h2(addr: SocketAddr, uri: &str, host: Option<&str>) -> (StatusCode, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.expect("h2 handshake");
    tokio::spawn(conn);
    let mut req = Request::get(uri);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let req = req.body(Full::new(Bytes::new())).expect("request");
    let answer = tokio::time::timeout(WAIT, async {
        let resp = sender.send_request(req).await.expect("h2 answer");
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    });
    answer.await.expect("h2 answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_http2_userinfo_in_authority_and_an_authority_that_disagrees_with_host_are_refused() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    let port = gw.addr.port();
    let (status, body) = h2(gw.addr, &format!("http://user:pw@b.example.com:{port}/api/x"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\"code\":\"bad_request\""), "{body}");
    let (status, body) = h2(gw.addr, "http://b.example.com/api/x", Some("admin.example.com")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
    let (status, _) = h2(gw.addr, "http://b.example.com/api/x", Some("B.example.com")).await;
    assert_eq!(status, StatusCode::OK, "the same host in another case agrees");
}

// ── Issue 13, item 2: percent-encoding and request-target forms ───────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_without_two_hex_digits_is_refused() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for target in ["/api/a%zz", "/api/a%2", "/api/a%", "/api/x?q=%g1", "/api/x?q=100%"] {
        let (status, out) = raw(gw.addr, &format!("GET {target} HTTP/1.1\r\nHost: a")).await;
        assert_bad_request(&status, &out, target);
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_form_the_method_does_not_take_is_400_not_404() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    for head in ["GET admin HTTP/1.1\r\nHost: a", "GET * HTTP/1.1\r\nHost: a", "CONNECT / HTTP/1.1\r\nHost: a"] {
        let (status, out) = raw(gw.addr, head).await;
        assert_bad_request(&status, &out, head);
    }
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_refused_and_options_star_is_answered_by_the_gateway() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&layout(&backend.url(), "")).await;
    let (status, out) = raw(gw.addr, "CONNECT b.example.com:443 HTTP/1.1\r\nHost: b.example.com:443").await;
    assert!(status.starts_with("HTTP/1.1 405"), "{out}");
    assert!(out.contains("\"code\":\"method_not_allowed\""), "{out}");
    let (status, out) = raw(gw.addr, "OPTIONS * HTTP/1.1\r\nHost: a").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.to_ascii_lowercase().contains("content-length: 0"), "{out}");
    assert_eq!(backend.count(), 0, "{:?}", backend.requests());
}
