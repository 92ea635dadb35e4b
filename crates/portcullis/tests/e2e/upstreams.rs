//! Upstreams: balancing, keep-alive pooling, failures and timeouts, retries, passive and
//! active health, mocks, streaming bodies and body limits, HTTP/2 on either side, rewrites.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::kit::{
    self, Backend, Reply, TestGateway, WAIT, client, dead_port, garbage_backend, get, h2_client, hanging_backend, send,
    text,
};

/// A gateway with the given `upstreams:` and `routes:` bodies (already indented), no access log.
async fn gateway(upstreams: &str, routes: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
{upstreams}
routes:
{routes}
"#
    ))
    .await
}

/// One catch-all public route to upstream `u`.
const ALL_TO_U: &str = r#"  - { name: all, match: { path: "/{*rest}" }, upstream: u, auth: none }"#;

/// A request body with no declared length, sent as `Transfer-Encoding: chunked`.
struct Chunked(VecDeque<Bytes>);

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// POSTs `chunks` as a chunked body and reads the whole answer (bounded by [`WAIT`]).
async fn post_chunked(url: &str, chunks: Vec<Bytes>) -> Reply {
    let client: Client<_, Chunked> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(url).body(Chunked(chunks.into())).expect("request");
    let fut = async {
        let response = client.request(request).await.expect("request failed");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Reply { status: parts.status, headers: parts.headers, body }
    };
    tokio::time::timeout(WAIT, fut).await.expect("request timed out")
}

fn post(url: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(url).body(Full::new(Bytes::from_static(body))).expect("request")
}

fn get_req(url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).expect("request")
}

// ---------------------------------------------------------------------------------------------
// Balancing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests_evenly_over_two_backends() {
    let (a, b) = (Backend::ok().await, Backend::ok().await);
    let ups = format!("  u: {{ targets: [\"{}\", \"{}\"], balance: round_robin }}", a.url(), b.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(send(&c, get_req(&gw.url("/x"), &[])).await.status, StatusCode::OK);
    }
    assert_eq!((a.count(), b.count()), (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_requests_sends_most_traffic_to_the_idle_backend_when_one_is_slow() {
    let slow = Backend::start_with_delay(Duration::from_millis(600), |_| text(StatusCode::OK, "slow")).await;
    let fast = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\", \"{}\"], balance: least_requests }}", slow.url(), fast.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, url) = (c.clone(), gw.url("/x"));
        tasks.push(tokio::spawn(async move { send(&c, get_req(&url, &[])).await.status }));
        // Staggered so each pick sees the slow backend's request still in flight.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    let (s, f) = (slow.count(), fast.count());
    assert_eq!(s + f, 20);
    assert!(f >= 2 * s, "the idle backend should get most requests: slow {s}, fast {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_client_ip_keeps_one_client_on_one_backend() {
    let (a, b) = (Backend::ok().await, Backend::ok().await);
    let ups = format!("  u: {{ targets: [\"{}\", \"{}\"], balance: \"hash:client_ip\" }}", a.url(), b.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(send(&c, get_req(&gw.url("/x"), &[])).await.status, StatusCode::OK);
    }
    let mut counts = [a.count(), b.count()];
    counts.sort_unstable();
    assert_eq!(counts, [0, 10], "all requests of 127.0.0.1 on one target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_header_keeps_each_user_on_one_backend_and_spreads_users() {
    let (a, b) = (Backend::ok().await, Backend::ok().await);
    let ups = format!("  u: {{ targets: [\"{}\", \"{}\"], balance: \"hash:header:X-User\" }}", a.url(), b.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    for round in 0..3 {
        for user in 0..20 {
            let user = format!("user-{user}");
            let r = send(&c, get_req(&gw.url(&format!("/x?round={round}")), &[("x-user", &user)])).await;
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    let users = |backend: &Backend| -> BTreeSet<String> {
        backend.requests().iter().map(|r| r.headers["x-user"].to_str().expect("ascii").to_owned()).collect()
    };
    let (on_a, on_b) = (users(&a), users(&b));
    assert_eq!(a.count() + b.count(), 60);
    assert!(on_a.is_disjoint(&on_b), "a user was split over targets: {on_a:?} / {on_b:?}");
    assert_eq!(on_a.len() + on_b.len(), 20);
    assert!(!on_a.is_empty() && !on_b.is_empty(), "20 users should land on both targets: {on_a:?} / {on_b:?}");
}

// ---------------------------------------------------------------------------------------------
// Pooling

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_pooled_upstream_connections() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\"] }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(send(&c, get_req(&gw.url("/x"), &[])).await.status, StatusCode::OK);
    }
    assert_eq!(backend.count(), 20);
    let conns = backend.connections.load(Ordering::Relaxed);
    assert!(conns <= 2, "20 sequential requests opened {conns} upstream connections");
}

// ---------------------------------------------------------------------------------------------
// Failures and timeouts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_gets_502_upstream_error() {
    let dead = dead_port().await;
    let ups = format!("  u: {{ targets: [\"http://{dead}\"] }}");
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_upstream_gets_504_upstream_timeout() {
    let hang = hanging_backend().await;
    let ups = format!("  u: {{ targets: [\"http://{hang}\"], timeouts: {{ response: 300ms }} }}");
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.code(), "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_answering_garbage_gets_502_upstream_error() {
    let garbage = garbage_backend().await;
    let ups = format!("  u: {{ targets: [\"http://{garbage}\"] }}");
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeout_overrides_the_upstream_response_timeout() {
    let hang = hanging_backend().await;
    let slow = Backend::start_with_delay(Duration::from_millis(700), |_| text(StatusCode::OK, "slow-ok")).await;
    let ups = format!(
        "  hang: {{ targets: [\"http://{hang}\"], timeouts: {{ response: 30s }} }}\n  \
         slow: {{ targets: [\"{}\"], timeouts: {{ response: 200ms }} }}",
        slow.url()
    );
    let routes = "  - { name: short, match: { path: /short }, upstream: hang, auth: none, timeout: 300ms }\n  \
                  - { name: long, match: { path: /long }, upstream: slow, auth: none, timeout: 3s }";
    let gw = gateway(&ups, routes).await;
    let r = get(&gw.url("/short"), &[]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "the route's shorter timeout applies");
    assert_eq!(r.code(), "upstream_timeout");
    let r = get(&gw.url("/long"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "the route's longer timeout applies: {r:?}");
    assert_eq!(r.text(), "slow-ok");
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_retried_on_another_target_after_a_connect_error() {
    let dead = dead_port().await;
    let live = Backend::ok().await;
    let ups = format!(
        "  u: {{ targets: [\"http://{dead}\", \"{}\"], retries: {{ attempts: 2, on: [connect_error] }} }}",
        live.url()
    );
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    for _ in 0..6 {
        let r = send(&c, get_req(&gw.url("/x"), &[])).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.text(), "backend-ok");
    }
    assert_eq!(live.count(), 6);
}

fn first_503_then_200() -> impl Fn(&kit::Recorded) -> http::Response<Full<Bytes>> + Send + Sync + 'static {
    let seen = Arc::new(AtomicUsize::new(0));
    move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            text(StatusCode::SERVICE_UNAVAILABLE, "busy")
        } else {
            text(StatusCode::OK, "second-try")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_retried_when_the_backend_answers_503() {
    let backend = Backend::start(first_503_then_200()).await;
    let ups = format!("  u: {{ targets: [\"{}\"], retries: {{ attempts: 2, on: [503] }} }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "second-try");
    assert_eq!(backend.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_with_a_body_is_not_retried() {
    let backend = Backend::start(first_503_then_200()).await;
    let ups = format!("  u: {{ targets: [\"{}\"], retries: {{ attempts: 2, on: [503] }} }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = send(&client(), post(&gw.url("/orders"), b"{\"item\":1}")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "the backend's own answer");
    assert_eq!(r.text(), "busy");
    assert_eq!(backend.count(), 1);
    assert_eq!(backend.requests()[0].body.as_ref(), b"{\"item\":1}");
}

// ---------------------------------------------------------------------------------------------
// Health

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_health_ejects_a_dead_target_after_consecutive_failures() {
    let dead = dead_port().await;
    let live = Backend::ok().await;
    let ups = format!(
        "  u: {{ targets: [\"http://{dead}\", \"{}\"], health: {{ passive: {{ unhealthy_after: 2, cooldown: 30s }} }} }}",
        live.url()
    );
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    let mut failures = 0;
    for _ in 0..10 {
        let r = send(&c, get_req(&gw.url("/x"), &[])).await;
        if r.status == StatusCode::BAD_GATEWAY {
            assert_eq!(r.code(), "upstream_error");
            failures += 1;
            if failures == 2 {
                break;
            }
        } else {
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    assert_eq!(failures, 2, "round robin should hit the dead target twice within 10 requests");
    for i in 0..10 {
        let r = send(&c, get_req(&gw.url("/x"), &[])).await;
        assert_eq!(r.status, StatusCode::OK, "request {i} after ejection: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_active_health_check_gets_503_no_healthy_upstream_with_retry_after() {
    let backend = Backend::start(|r| {
        if r.uri == "/healthz" { text(StatusCode::INTERNAL_SERVER_ERROR, "sick") } else { text(StatusCode::OK, "ok") }
    })
    .await;
    let ups = format!(
        "  u:\n    targets: [\"{}\"]\n    health:\n      active: {{ path: /healthz, interval: 100ms, timeout: 500ms, unhealthy_after: 1, healthy_after: 1 }}",
        backend.url()
    );
    let gw = gateway(&ups, ALL_TO_U).await;
    let c = client();
    let mut last = None;
    for _ in 0..60 {
        let r = send(&c, get_req(&gw.url("/x"), &[])).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = last.expect("the target was never marked unhealthy within ~3 s");
    assert_eq!(r.code(), "no_healthy_upstream");
    let retry_after = r.header("retry-after").expect("Retry-After");
    assert!(retry_after.parse::<u64>().is_ok_and(|s| s >= 1), "Retry-After: {retry_after}");
    assert!(backend.requests().iter().any(|r| r.uri == "/healthz"), "the health path was probed");
}

// ---------------------------------------------------------------------------------------------
// Mock

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_upstream_answers_its_configured_status_headers_and_body() {
    let ups = r#"  hello: { mock: { status: 201, headers: { content-type: application/json, x-mock: "yes" }, body: '{"hello":"world"}' } }"#;
    let routes = "  - { name: hello, match: { path: /hello }, upstream: hello, auth: none }";
    let gw = gateway(ups, routes).await;
    let r = get(&gw.url("/hello"), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-mock"), Some("yes"));
    assert_eq!(r.text(), r#"{"hello":"world"}"#);
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()), "generated X-Request-Id");
    let r = get(&gw.url("/hello"), &[("x-request-id", "mine-123")]).await;
    assert_eq!(r.header("x-request-id"), Some("mine-123"));
}

// ---------------------------------------------------------------------------------------------
// Streaming bodies and limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunked_request_body_arrives_intact() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\"] }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let total: usize = 5 * 1024 * 1024;
    let data: Bytes = (0..total).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    let chunks: Vec<Bytes> =
        (0..total).step_by(64 * 1024).map(|at| data.slice(at..(at + 64 * 1024).min(total))).collect();
    let r = post_chunked(&gw.url("/upload"), chunks).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let received = backend.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.len(), total);
    assert!(received[0].body == data, "the body changed on the way");
}

fn limited_route(backend: &Backend) -> (String, &'static str) {
    (
        format!("  u: {{ targets: [\"{}\"] }}", backend.url()),
        r#"  - { name: small, match: { path: "/{*rest}" }, upstream: u, auth: none, limits: { max_body_bytes: 1000 } }"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_route_limit_gets_413() {
    let backend = Backend::ok().await;
    let (ups, routes) = limited_route(&backend);
    let gw = gateway(&ups, routes).await;
    let chunk = Bytes::from(vec![b'a'; 600]);
    let r = post_chunked(&gw.url("/upload"), vec![chunk.clone(), chunk.clone(), chunk]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "body_too_large");
    // Under the limit still passes.
    let r = post_chunked(&gw.url("/upload"), vec![Bytes::from(vec![b'b'; 600])]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(backend.requests().iter().any(|r| r.body.len() == 600 && r.body[0] == b'b'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_content_length_over_the_limit_gets_413_and_never_reaches_the_backend() {
    let backend = Backend::ok().await;
    let (ups, routes) = limited_route(&backend);
    let gw = gateway(&ups, routes).await;
    static BIG: [u8; 2000] = [b'x'; 2000];
    let r = send(&client(), post(&gw.url("/upload"), &BIG)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "body_too_large");
    assert_eq!(backend.count(), 0);
    assert_eq!(backend.connections.load(Ordering::Relaxed), 0);
}

// ---------------------------------------------------------------------------------------------
// HTTP/2

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_client_is_proxied_to_an_http1_upstream() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\"] }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = send(&h2_client(), get_req(&gw.url("/x?y=1"), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "backend-ok");
    let received = backend.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].version, Version::HTTP_11);
    assert_eq!(received[0].uri, "/x?y=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_upstream_receives_http2() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\"], protocol: h2 }}", backend.url());
    let gw = gateway(&ups, ALL_TO_U).await;
    let r = get(&gw.url("/grpc.Service/Method"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.text(), "backend-ok");
    let received = backend.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].version, Version::HTTP_2);
    assert!(received[0].uri.ends_with("/grpc.Service/Method"), "{}", received[0].uri);
}

// ---------------------------------------------------------------------------------------------
// Rewrites and base paths

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_with_parameters_keeps_the_query_string() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}\"] }}", backend.url());
    let routes = r#"  - { name: order, match: { path: "/v1/orders/{id}" }, upstream: u, auth: none, rewrite: { path: "/orders/{id}" } }"#;
    let gw = gateway(&ups, routes).await;
    let r = get(&gw.url("/v1/orders/42?expand=items&page=2"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(backend.requests()[0].uri, "/orders/42?expand=items&page=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_base_path_is_prefixed_to_the_forwarded_path() {
    let backend = Backend::ok().await;
    let ups = format!("  u: {{ targets: [\"{}/base\"] }}", backend.url());
    let routes = r#"  - { name: order, match: { path: "/v1/orders/{id}" }, upstream: u, auth: none, rewrite: { path: "/orders/{id}" } }
  - { name: plain, match: { path: /plain }, upstream: u, auth: none }"#;
    let gw = gateway(&ups, routes).await;
    assert_eq!(get(&gw.url("/v1/orders/7?x=1"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/plain"), &[]).await.status, StatusCode::OK);
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/base/orders/7?x=1", "/base/plain"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_body_errors_never_eject_a_target() {
    let b = Backend::ok().await;
    let yaml = format!(
        "version: 1\nlisteners: [{{ name: t, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  up:\n    targets: [\"{}\"]\n    health: {{ passive: {{ unhealthy_after: 1, cooldown: 30s }} }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: none, limits: {{ max_body_bytes: 10 }} }}\n",
        b.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let chunked = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n14\r\naaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n";
    for _ in 0..3 {
        let out = crate::kit::raw(gw.addr, chunked, crate::kit::WAIT).await;
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    }
    assert_eq!(get(&gw.url("/x"), &[]).await.status, http::StatusCode::OK, "the target is still in");
}
