//! Traces over OTLP/HTTP (SPEC §7): a real OTLP receiver on 127.0.0.1:0 decodes what the
//! gateway sends with the official protobuf definitions (`opentelemetry-proto`), and the
//! tests check the span tree (server span → one client span per upstream attempt, a cache
//! lookup), the HTTP attributes, the caller's `traceparent` as the parent, a client unable
//! to force sampling, and a dead collector that costs requests nothing and counts its drops.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;

use crate::kit::{Backend, TestGateway, dead_port, eventually, get, scratch_dir, text};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP collector: every span of every `/v1/traces` POST, decoded.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let store = spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move {
                            assert_eq!(request.uri().path(), "/v1/traces");
                            assert_eq!(
                                request.headers().get("content-type").map(|v| v.as_bytes()),
                                Some(&b"application/x-protobuf"[..])
                            );
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let decoded = ExportTraceServiceRequest::decode(body).expect("an OTLP export request");
                            let spans = decoded
                                .resource_spans
                                .into_iter()
                                .flat_map(|rs| rs.scope_spans)
                                .flat_map(|ss| ss.spans);
                            store.lock().unwrap_or_else(PoisonError::into_inner).extend(spans);
                            http::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::new()))
                        }
                    });
                    let io = TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Self { url: format!("http://{addr}"), spans }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until the trace `trace_id` has `count` spans.
    async fn trace(&self, trace_id: &str, count: usize) -> Vec<Span> {
        eventually(&format!("{count} spans of trace {trace_id}"), || async {
            let spans: Vec<Span> = self.spans().into_iter().filter(|s| hex(&s.trace_id) == trace_id).collect();
            (spans.len() >= count).then_some(spans)
        })
        .await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

fn string(v: &str) -> Option<Value> {
    Some(Value::StringValue(v.to_owned()))
}

fn config(collector: &str, ratio: &str, trusted: &str, backend: &Backend) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", public_metrics: true }}
trusted_proxies: [{trusted}]
logging: {{ access: {{ path: off }} }}
tracing: {{ otlp_endpoint: "{collector}", sample_ratio: {ratio} }}
upstreams:
  b: {{ targets: ["{}"], retries: {{ attempts: 1, on: [503] }} }}
routes:
  - {{ name: items, match: {{ path: "/items/{{id}}" }}, upstream: b, auth: none }}
  - {{ name: cached, match: {{ path: /cached }}, upstream: b, auth: none, cache: {{ ttl: 60s }} }}
"#,
        backend.url()
    )
}

async fn gateway(yaml: &str) -> (TestGateway, PathBuf) {
    let dir = scratch_dir();
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, yaml).expect("write config");
    (TestGateway::from_file(&path).await.with_admin().await, dir)
}

/// A backend answering 503 to every other request (so each request is retried once).
async fn flaky_backend() -> Backend {
    let calls = AtomicUsize::new(0);
    Backend::start(move |_| {
        if calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            text(StatusCode::SERVICE_UNAVAILABLE, "busy")
        } else {
            text(StatusCode::OK, "ok")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_a_server_span_with_a_client_span_per_attempt_under_the_callers_span() {
    let collector = Collector::start().await;
    let backend = flaky_backend().await;
    let (gw, _dir) = gateway(&config(&collector.url, "0.0", "\"127.0.0.0/8\"", &backend)).await;
    let headers = [("traceparent", CALLER), ("tracestate", "vendor=1"), ("user-agent", "e2e/1")];
    let r = get(&gw.url("/items/7?secret=x"), &headers).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let spans = collector.trace(CALLER_TRACE, 3).await;
    let server: Vec<&Span> = spans.iter().filter(|s| s.kind == SpanKind::Server as i32).collect();
    assert_eq!(server.len(), 1, "{spans:#?}");
    let server = server[0];
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN, "the trusted caller's span is the parent");
    assert_eq!(server.name, "GET /items/{id}");
    assert_eq!(attribute(server, "http.request.method"), string("GET"));
    assert_eq!(attribute(server, "url.path"), string("/items/7"));
    assert_eq!(attribute(server, "http.route"), string("/items/{id}"));
    assert_eq!(attribute(server, "http.response.status_code"), Some(Value::IntValue(200)));
    assert_eq!(attribute(server, "client.address"), string("127.0.0.1"));
    assert_eq!(attribute(server, "server.address"), string("127.0.0.1"));
    assert_eq!(attribute(server, "user_agent.original"), string("e2e/1"));
    assert!(!format!("{server:?}").contains("secret"), "no query string in a span");

    let mut clients: Vec<&Span> = spans.iter().filter(|s| s.kind == SpanKind::Client as i32).collect();
    clients.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(clients.len(), 2, "one client span per attempt: {spans:#?}");
    let statuses: Vec<_> = clients.iter().map(|s| attribute(s, "http.response.status_code")).collect();
    assert_eq!(statuses, [Some(Value::IntValue(503)), Some(Value::IntValue(200))]);
    assert_eq!(attribute(clients[1], "http.request.resend_count"), Some(Value::IntValue(1)));
    for client in &clients {
        assert_eq!(client.parent_span_id, server.span_id, "an attempt is a child of the server span");
    }

    // Each attempt went upstream with one `traceparent` naming its own client span.
    let requests = backend.requests();
    assert_eq!(requests.len(), 2);
    for (request, client) in requests.iter().zip(&clients) {
        let sent: Vec<_> = request.headers.get_all("traceparent").iter().collect();
        assert_eq!(sent.len(), 1, "replaced, never duplicated");
        assert_eq!(sent[0], format!("00-{CALLER_TRACE}-{}-01", hex(&client.span_id)).as_str());
        let state: Vec<_> = request.headers.get_all("tracestate").iter().collect();
        assert_eq!(state, ["vendor=1"], "the caller's tracestate goes with its trace");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_and_a_cache_lookup_are_in_the_trace() {
    let collector = Collector::start().await;
    let backend = Backend::ok().await;
    let (gw, _dir) = gateway(&config(&collector.url, "1.0", "", &backend)).await;
    let refused = get(&gw.url("/nowhere"), &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let cached = get(&gw.url("/cached"), &[]).await;
    assert_eq!(cached.status, StatusCode::OK);
    let spans = eventually("the refusal's and the cached request's spans", || async {
        let spans = collector.spans();
        (spans.iter().filter(|s| s.kind == SpanKind::Server as i32).count() >= 2).then_some(spans)
    })
    .await;
    let refusal = spans.iter().find(|s| attribute(s, "url.path") == string("/nowhere")).expect("the refusal's span");
    assert_eq!(attribute(refusal, "http.response.status_code"), Some(Value::IntValue(404)));
    assert_eq!(attribute(refusal, "portcullis.problem.code"), string("no_route"));
    assert!(
        matches!(attribute(refusal, "portcullis.decided_by"), Some(Value::StringValue(p)) if p.starts_with("route")),
        "{refusal:?}"
    );
    assert!(refusal.parent_span_id.is_empty(), "a new trace: the server span is its root");
    let server =
        spans.iter().find(|s| attribute(s, "url.path") == string("/cached")).expect("the cached request's span");
    let lookup = eventually("the cache lookup span", || async {
        collector.spans().into_iter().find(|s| s.name == "cache.lookup" && s.parent_span_id == server.span_id)
    })
    .await;
    assert_eq!(attribute(&lookup, "portcullis.cache.result"), string("miss"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_force_sampling() {
    let collector = Collector::start().await;
    let backend = Backend::ok().await;
    // No trusted proxies, ratio 0: a client's sampled flag must not start a recording.
    let (gw, _dir) = gateway(&config(&collector.url, "0.0", "", &backend)).await;
    for _ in 0..5 {
        let r = get(&gw.url("/items/1"), &[("traceparent", CALLER)]).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    for request in backend.requests() {
        let sent = request.headers["traceparent"].to_str().unwrap_or_default().to_owned();
        assert!(sent.starts_with(&format!("00-{CALLER_TRACE}-")), "the trace is continued: {sent}");
        assert!(sent.ends_with("-00"), "but not sampled: {sent}");
    }
    // Graceful shutdown flushes whatever was queued: nothing was.
    gw.shutdown().await;
    assert_eq!(collector.spans().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_fails_no_request_and_its_spans_are_counted_as_dropped() {
    let dead = dead_port().await;
    let backend = Backend::ok().await;
    let (gw, _dir) = gateway(&config(&format!("http://{dead}"), "1.0", "", &backend)).await;
    for n in 0..20 {
        let r = get(&gw.url(&format!("/items/{n}")), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "request {n}: {}", r.text());
    }
    assert_eq!(backend.count(), 20);
    let dropped = eventually("dropped spans on /metrics", || async {
        let metrics = get(&gw.admin_url("/metrics"), &[]).await.text();
        let line = metrics.lines().find(|l| l.starts_with("portcullis_trace_spans_dropped_total "))?.to_owned();
        let n: u64 = line.rsplit(' ').next()?.parse().ok()?;
        (n >= 40).then_some(n)
    })
    .await;
    assert!(dropped >= 40, "20 server and 20 client spans: {dropped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_sends_spans_to_the_new_collector() {
    let first = Collector::start().await;
    let second = Collector::start().await;
    let backend = Backend::ok().await;
    let (gw, dir) = gateway(&config(&first.url, "1.0", "", &backend)).await;
    assert_eq!(get(&gw.url("/items/1"), &[]).await.status, StatusCode::OK);
    eventually("a span at the first collector", || async { (!first.spans().is_empty()).then_some(()) }).await;
    std::fs::write(dir.join("portcullis.yaml"), config(&second.url, "1.0", "", &backend)).expect("rewrite");
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    assert_eq!(get(&gw.url("/items/2"), &[]).await.status, StatusCode::OK);
    eventually("a span at the second collector", || async {
        second.spans().into_iter().find(|s| attribute(s, "url.path") == string("/items/2"))
    })
    .await;
    assert!(!first.spans().iter().any(|s| attribute(s, "url.path") == string("/items/2")));
}
