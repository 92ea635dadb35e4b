use std::path::Path;
use std::sync::Arc;

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, Value};
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::spans::SpanKind as ChildKind;
use portcullis_core::{ErrorCode, RequestContext, Snapshot};

use super::{ServerSpan, request_spans};

fn compile(text: &str) -> Snapshot {
    let loaded = portcullis_config::load_str(text, "t.yaml", Path::new("/tmp"), None);
    portcullis_core::compile(&loaded.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"))
}

fn snapshot() -> Snapshot {
    compile(
        "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\" }]\ntrusted_proxies: [\"10.0.0.0/8\"]\n\
         tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 1.0 }\n\
         upstreams: { m: { mock: { status: 200 } } }\n\
         routes:\n  - { name: orders, match: { path: \"/orders/{id}\" }, upstream: m, auth: none }\n",
    )
}

fn context(snapshot: &Snapshot, peer: [u8; 4], traceparent: Option<&str>) -> RequestContext {
    let mut request = http::Request::get("http://api.example/orders/7?token=secret").header("user-agent", "curl/8");
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let parts = request.body(()).map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"));
    let downstream = Downstream { peer: (peer, 4000).into(), https: false, listener: Arc::from("l"), tls: None };
    let now = portcullis_core::clock::Now::read(&portcullis_core::clock::SystemClock::process());
    pipeline::intake(snapshot, &parts, &downstream, now)
}

fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

fn text(v: &str) -> Option<Value> {
    Some(Value::from(v.to_owned()))
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("t").build()
}

#[test]
fn a_trusted_callers_span_is_the_server_spans_remote_parent() {
    let snapshot = snapshot();
    let ctx = context(&snapshot, [10, 0, 0, 1], Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    let Some(recording) = ctx.spans.recording() else { panic!("a sampled request on an exporting gateway records") };
    let started = ctx.spans.start();
    ctx.spans.end(started, "cache.lookup", ChildKind::Internal, vec![("portcullis.cache.result", "miss".into())], None);
    let server = ServerSpan { ctx: &ctx, status: 200, decided_by: None, end: std::time::SystemTime::now() };
    let (spans, over_cap) = request_spans(recording, &server, &scope());
    assert_eq!((spans.len(), over_cap), (2, 0));
    let (root, child) = (&spans[0], &spans[1]);
    assert_eq!(root.span_kind, SpanKind::Server);
    assert_eq!(root.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(root.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(root.parent_span_is_remote);
    assert_eq!(root.span_context.span_id(), SpanId::from_bytes(ctx.trace.span_id));
    assert_eq!(child.parent_span_id, root.span_context.span_id());
    assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
    assert_eq!(child.span_kind, SpanKind::Internal);
    assert_eq!(root.name, "GET", "intake alone has matched no route: the method alone");
    assert_eq!(attribute(root, "http.request.method"), text("GET"));
    assert_eq!(attribute(root, "url.path"), text("/orders/7"), "no query string");
    assert_eq!(attribute(root, "server.address"), text("api.example"));
    assert_eq!(attribute(root, "client.address"), text("10.0.0.1"));
    assert_eq!(attribute(root, "user_agent.original"), text("curl/8"));
    assert_eq!(attribute(root, "http.response.status_code"), Some(Value::I64(200)));
    assert!(!format!("{:?}", root.attributes).contains("secret"));
    assert_eq!(root.status, Status::Unset);
}

#[test]
fn a_refused_request_names_its_phase_and_problem() {
    let snapshot = snapshot();
    let mut ctx = context(&snapshot, [192, 0, 2, 1], None);
    ctx.outcome = Some(ErrorCode::RateLimited);
    let spans = ctx.spans.clone();
    let Some(recording) = spans.recording() else { panic!("sampled at ratio 1") };
    assert_eq!(recording.trace.parent_span_id, None);
    let server =
        ServerSpan { ctx: &ctx, status: 429, decided_by: Some("rate_limit:per_ip"), end: std::time::SystemTime::now() };
    let (out, _) = request_spans(recording, &server, &scope());
    let root = &out[0];
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert_eq!(root.name, "GET", "no route matched: the method alone");
    assert_eq!(attribute(root, "portcullis.decided_by"), text("rate_limit:per_ip"));
    assert_eq!(attribute(root, "portcullis.problem.code"), text("rate_limited"));
    assert_eq!(root.status, Status::Unset, "a 4xx is not a server span error");
    spans.end(spans.start(), "x", ChildKind::Client, Vec::new(), Some("connect_error".into()));
    let server = ServerSpan { ctx: &ctx, status: 502, decided_by: Some("upstream"), end: std::time::SystemTime::now() };
    let (out, _) = request_spans(recording, &server, &scope());
    assert!(matches!(out[0].status, Status::Error { .. }));
    assert!(matches!(out[1].status, Status::Error { .. }));
}

#[test]
fn an_untrusted_clients_sampled_flag_records_nothing_at_ratio_zero() {
    let snapshot = compile(
        "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\" }]\n\
         tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 0.0 }\n",
    );
    let forced = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let ctx = context(&snapshot, [192, 0, 2, 1], forced);
    assert!(!ctx.trace.sampled && ctx.spans.recording().is_none());
    assert_eq!(ctx.trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736", "the trace is still continued");
}
