use std::path::Path;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::spans::SpanKind as ChildKind;
use portcullis_core::{ErrorCode, RequestContext, Snapshot};
use prost::Message as _;

use super::{RequestSpans, ServerSpan};

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

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

fn text(v: &str) -> Option<Value> {
    Some(Value::StringValue(v.to_owned()))
}

/// The OTLP spans of a recorded request, and how many child spans it could not keep.
fn request_spans(recording: &portcullis_core::spans::Recording, server: &ServerSpan<'_>) -> (Vec<Span>, u32) {
    let (spans, over_cap) = RequestSpans::of(recording, server);
    let body = crate::export_body(&[spans]);
    let decoded = ExportTraceServiceRequest::decode(body).unwrap_or_else(|e| panic!("not OTLP: {e}"));
    let out = decoded.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans).collect();
    (out, over_cap)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_error(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32)
}

#[test]
fn a_trusted_callers_span_is_the_server_spans_remote_parent() {
    let snapshot = snapshot();
    let ctx = context(&snapshot, [10, 0, 0, 1], Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    let Some(recording) = ctx.spans.recording() else { panic!("a sampled request on an exporting gateway records") };
    let started = ctx.spans.start();
    ctx.spans.end(started, "cache.lookup", ChildKind::Internal, vec![("portcullis.cache.result", "miss".into())], None);
    let server = ServerSpan { ctx: &ctx, status: 200, decided_by: None, end: std::time::SystemTime::now() };
    let (spans, over_cap) = request_spans(recording, &server);
    assert_eq!((spans.len(), over_cap), (2, 0));
    let (root, child) = (&spans[0], &spans[1]);
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(hex(&root.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&root.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(root.flags, 0x301, "sampled, with a remote parent");
    assert_eq!(root.span_id, ctx.trace.span_id);
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!(child.trace_id, root.trace_id);
    assert_eq!(child.kind, SpanKind::Internal as i32);
    assert_eq!(child.flags, 0x101, "sampled, with a local parent");
    assert_eq!(attribute(child, "portcullis.cache.result"), text("miss"));
    assert!(child.end_time_unix_nano >= child.start_time_unix_nano && child.start_time_unix_nano > 0);
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);
    assert_eq!(root.name, "GET", "intake alone has matched no route: the method alone");
    assert_eq!(attribute(root, "http.request.method"), text("GET"));
    assert_eq!(attribute(root, "url.path"), text("/orders/7"), "no query string");
    assert_eq!(attribute(root, "server.address"), text("api.example"));
    assert_eq!(attribute(root, "client.address"), text("10.0.0.1"));
    assert_eq!(attribute(root, "user_agent.original"), text("curl/8"));
    assert_eq!(attribute(root, "url.scheme"), text("http"));
    assert_eq!(attribute(root, "network.peer.address"), text("10.0.0.1"));
    assert_eq!(attribute(root, "http.response.status_code"), Some(Value::IntValue(200)));
    assert!(!format!("{:?}", root.attributes).contains("secret"));
    assert!(root.status.is_none(), "unset");
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
    let (out, _) = request_spans(recording, &server);
    let root = &out[0];
    assert!(root.parent_span_id.is_empty(), "a new trace: no parent");
    assert_eq!(root.flags, 0x101);
    assert_eq!(root.name, "GET", "no route matched: the method alone");
    assert_eq!(attribute(root, "portcullis.decided_by"), text("rate_limit:per_ip"));
    assert_eq!(attribute(root, "portcullis.problem.code"), text("rate_limited"));
    assert!(!is_error(root), "a 4xx is not a server span error");
    let attributes = vec![("portcullis.test.flag", true.into()), ("portcullis.test.delta", (-5i64).into())];
    spans.end(spans.start(), "x", ChildKind::Client, attributes, Some("connect_error".into()));
    let server = ServerSpan { ctx: &ctx, status: 502, decided_by: Some("upstream"), end: std::time::SystemTime::now() };
    let (out, _) = request_spans(recording, &server);
    assert!(is_error(&out[0]) && is_error(&out[1]));
    assert_eq!(attribute(&out[0], "error.type"), text("rate_limited"));
    assert_eq!(out[1].status.as_ref().map(|s| s.message.as_str()), Some("connect_error"));
    assert_eq!(attribute(&out[1], "portcullis.test.flag"), Some(Value::BoolValue(true)));
    assert_eq!(attribute(&out[1], "portcullis.test.delta"), Some(Value::IntValue(-5)));
    assert_eq!(out[1].kind, SpanKind::Client as i32);
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
