//! One request's spans as the SDK's [`SpanData`]: the server span with the HTTP semantic
//! conventions' attributes (plus the deciding phase and problem code of a refusal), and its
//! children as the phases recorded them.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use portcullis_core::RequestContext;
use portcullis_core::record::Record;
use portcullis_core::spans::{AttributeValue, ChildSpan, Recording};

/// What the server span says that is known only when the answer's head is ready.
#[derive(Debug, Clone, Copy)]
pub struct ServerSpan<'a> {
    pub ctx: &'a RequestContext,
    pub status: u16,
    /// The access log's `decided_by` (the phase and what in it refused).
    pub decided_by: Option<&'a str>,
    pub end: SystemTime,
}

impl<'a> ServerSpan<'a> {
    /// The server span of the request `ctx`, as its `record` ends now.
    pub fn of(ctx: &'a RequestContext, record: &'a Record) -> Self {
        Self { ctx, status: record.status, decided_by: record.decided_by.as_deref(), end: SystemTime::now() }
    }
}

/// `{method} {http.route}`, or the method alone for a request no route matched.
pub fn server_span_name(method: &str, route: Option<&str>) -> String {
    match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    }
}

/// The spans of a recorded request as the SDK's span data (empty when `ctx` is not recorded),
/// with the gateway's instrumentation scope.
pub fn request_span_data(ctx: &RequestContext, record: &Record) -> Vec<SpanData> {
    let Some(recording) = ctx.spans.recording() else { return Vec::new() };
    let scope = InstrumentationScope::builder("portcullis").with_version(env!("CARGO_PKG_VERSION")).build();
    request_spans(recording, &ServerSpan::of(ctx, record), &scope).0
}

fn span_context(trace_id: [u8; 16], span_id: [u8; 8]) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// The server span and every child span of a recorded request, and how many child spans
/// the request could not keep.
pub(crate) fn request_spans(
    recording: &Recording,
    server: &ServerSpan<'_>,
    scope: &InstrumentationScope,
) -> (Vec<SpanData>, u32) {
    let (children, over_cap) = recording.take_children();
    let mut spans = Vec::with_capacity(children.len() + 1);
    spans.push(server_span(recording, server, scope.clone()));
    let trace = &recording.trace;
    spans.extend(children.into_iter().map(|child| child_span(trace.trace_id, trace.span_id, child, scope.clone())));
    (spans, over_cap)
}

fn server_span(recording: &Recording, server: &ServerSpan<'_>, scope: InstrumentationScope) -> SpanData {
    let ctx = server.ctx;
    let route = ctx.route.as_deref();
    let mut attributes = Vec::with_capacity(14);
    let method = semconv_method(&recording.method);
    attributes.push(KeyValue::new("http.request.method", method.clone()));
    attributes.push(KeyValue::new("url.path", recording.path.clone()));
    attributes.push(KeyValue::new("url.scheme", recording.scheme));
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.path.clone()));
        attributes.push(KeyValue::new("portcullis.route", route.name.to_string()));
    }
    attributes.push(KeyValue::new("http.response.status_code", i64::from(server.status)));
    if let Some(host) = &ctx.host {
        attributes.push(KeyValue::new("server.address", host.clone()));
    }
    attributes.push(KeyValue::new("client.address", ctx.client_ip.to_string()));
    attributes.push(KeyValue::new("network.peer.address", ctx.peer.ip().to_string()));
    if let Some(ua) = &recording.user_agent {
        attributes.push(KeyValue::new("user_agent.original", ua.clone()));
    }
    if let Ok(id) = ctx.request_id.to_str() {
        attributes.push(KeyValue::new("portcullis.request_id", id.to_owned()));
    }
    if let Some(decided_by) = server.decided_by {
        attributes.push(KeyValue::new("portcullis.decided_by", decided_by.to_owned()));
    }
    if let Some(code) = ctx.outcome {
        attributes.push(KeyValue::new("portcullis.problem.code", code.as_str()));
    }
    // Semantic conventions: a server span is an error only for a 5xx.
    let status = if server.status >= 500 {
        let error_type = ctx.outcome.map_or_else(|| server.status.to_string(), |c| c.as_str().to_owned());
        attributes.push(KeyValue::new("error.type", error_type.clone()));
        Status::error(error_type)
    } else {
        Status::Unset
    };
    let trace = &recording.trace;
    SpanData {
        span_context: span_context(trace.trace_id, trace.span_id),
        parent_span_id: trace.parent_span_id.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: trace.parent_span_id.is_some(),
        span_kind: SpanKind::Server,
        name: Cow::Owned(server_span_name(&method, route.map(|r| r.path.as_str()))),
        start_time: recording.start,
        end_time: server.end.max(recording.start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope,
    }
}

fn child_span(trace_id: [u8; 16], parent: [u8; 8], child: ChildSpan, scope: InstrumentationScope) -> SpanData {
    let attributes = child.attributes.into_iter().map(|(key, value)| KeyValue::new(key, value_of(value))).collect();
    SpanData {
        span_context: span_context(trace_id, child.span_id),
        parent_span_id: SpanId::from_bytes(parent),
        parent_span_is_remote: false,
        span_kind: match child.kind {
            portcullis_core::spans::SpanKind::Internal => SpanKind::Internal,
            portcullis_core::spans::SpanKind::Client => SpanKind::Client,
        },
        name: child.name,
        start_time: child.start,
        end_time: child.end.max(child.start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: child.error.map_or(Status::Unset, Status::error),
        instrumentation_scope: scope,
    }
}

fn value_of(value: AttributeValue) -> Value {
    match value {
        AttributeValue::Text(text) => Value::from(text.into_owned()),
        AttributeValue::Int(i) => Value::I64(i),
        AttributeValue::Bool(b) => Value::Bool(b),
    }
}

/// Methods outside the HTTP set are `_OTHER` (semantic conventions), so a client cannot
/// mint span names or attribute values at will.
fn semconv_method(method: &str) -> String {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    if KNOWN.contains(&method) { method.to_owned() } else { "_OTHER".to_owned() }
}

#[cfg(test)]
mod tests;
