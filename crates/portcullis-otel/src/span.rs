//! One request's spans: what the request's own thread keeps ([`RequestSpans`], a compact
//! record built without formatting a single id, address or attribute), and what the
//! background task makes of it, OTLP protobuf written straight into the export request's
//! body (no message structs, no allocation per span or attribute): the server span with the HTTP
//! semantic conventions' attributes (plus the deciding phase and problem code of a refusal),
//! and its children as the phases recorded them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use portcullis_core::ErrorCode;
use portcullis_core::RequestContext;
use portcullis_core::ids::TraceContext;
use portcullis_core::record::Record;
use portcullis_core::snapshot::RouteSpec;
use portcullis_core::spans::{AttributeValue, ChildSpan, Recording};

/// OTLP span flags: the W3C `sampled` flag, and whether the parent is known to be remote.
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

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

/// The spans of one sampled request as its own thread hands them over: owned values and
/// cheap copies only (`Arc`s, addresses, ids as bytes); every string the protocol wants is
/// written by the background task.
#[derive(Debug, Clone)]
pub struct RequestSpans {
    trace: TraceContext,
    start: SystemTime,
    end: SystemTime,
    method: &'static str,
    path: String,
    scheme: &'static str,
    route: Option<Arc<RouteSpec>>,
    status: u16,
    host: Option<String>,
    client_ip: IpAddr,
    peer: IpAddr,
    user_agent: Option<String>,
    request_id: HeaderValue,
    decided_by: Option<String>,
    outcome: Option<ErrorCode>,
    children: Vec<ChildSpan>,
}

impl RequestSpans {
    /// The spans of a recorded request, and how many child spans the request could not keep.
    pub fn of(recording: &Recording, server: &ServerSpan<'_>) -> (Self, u32) {
        let (children, over_cap) = recording.take_children();
        let ctx = server.ctx;
        let spans = Self {
            trace: recording.trace,
            start: recording.start,
            end: server.end.max(recording.start),
            method: semconv_method(&recording.method),
            path: recording.path.clone(),
            scheme: recording.scheme,
            route: ctx.route.clone(),
            status: server.status,
            host: ctx.host.clone(),
            client_ip: ctx.client_ip,
            peer: ctx.peer.ip(),
            user_agent: recording.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            decided_by: server.decided_by.map(str::to_owned),
            outcome: ctx.outcome,
            children,
        };
        (spans, over_cap)
    }

    /// The spans of the request `ctx` as it ends with `record` (none when `ctx` is not
    /// recorded).
    pub fn of_request(ctx: &RequestContext, record: &Record) -> Option<Self> {
        ctx.spans.recording().map(|recording| Self::of(recording, &ServerSpan::of(ctx, record)).0)
    }

    /// The server span and its children.
    pub fn len(&self) -> usize {
        1 + self.children.len()
    }

    /// Never: there is always the server span.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the request's spans, the server span first, to `out` as OTLP protobuf
    /// (`ScopeSpans.spans` entries), with `scratch` as the space to build each span in.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, scratch: &mut Scratch) {
        self.encode_server_span(&mut scratch.span, &mut scratch.text);
        wire::message(SCOPE_SPANS_SPANS, &scratch.span, out);
        for child in &self.children {
            encode_child_span(&self.trace.trace_id, &self.trace.span_id, child, &mut scratch.span);
            wire::message(SCOPE_SPANS_SPANS, &scratch.span, out);
        }
    }

    fn encode_server_span(&self, span: &mut Vec<u8>, text: &mut String) {
        use std::fmt::Write as _;
        span.clear();
        let trace = &self.trace;
        let remote = trace.parent_span_id.is_some();
        wire::bytes(SPAN_TRACE_ID, &trace.trace_id, span);
        wire::bytes(SPAN_SPAN_ID, &trace.span_id, span);
        if let Some(parent) = &trace.parent_span_id {
            wire::bytes(SPAN_PARENT_SPAN_ID, parent, span);
        }
        let route = self.route.as_deref();
        match route {
            Some(route) => {
                text.clear();
                let _ = write!(text, "{} {}", self.method, route.path);
                wire::bytes(SPAN_NAME, text.as_bytes(), span);
            }
            None => wire::bytes(SPAN_NAME, self.method.as_bytes(), span),
        }
        wire::varint(SPAN_KIND, SpanKind::Server as u64, span);
        wire::fixed64(SPAN_START, unix_nanos(self.start), span);
        wire::fixed64(SPAN_END, unix_nanos(self.end), span);
        let attr = |key: &str, value: Attr<'_>, span: &mut Vec<u8>| wire::attribute(SPAN_ATTRIBUTES, key, value, span);
        attr("http.request.method", Attr::Text(self.method), span);
        attr("url.path", Attr::Text(&self.path), span);
        attr("url.scheme", Attr::Text(self.scheme), span);
        if let Some(route) = route {
            attr("http.route", Attr::Text(&route.path), span);
            attr("portcullis.route", Attr::Text(&route.name), span);
        }
        attr("http.response.status_code", Attr::Int(i64::from(self.status)), span);
        if let Some(host) = &self.host {
            attr("server.address", Attr::Text(host), span);
        }
        text.clear();
        let _ = write!(text, "{}", self.client_ip);
        attr("client.address", Attr::Text(text), span);
        text.clear();
        let _ = write!(text, "{}", self.peer);
        attr("network.peer.address", Attr::Text(text), span);
        if let Some(ua) = &self.user_agent {
            attr("user_agent.original", Attr::Text(ua), span);
        }
        if let Ok(id) = self.request_id.to_str() {
            attr("portcullis.request_id", Attr::Text(id), span);
        }
        if let Some(decided_by) = &self.decided_by {
            attr("portcullis.decided_by", Attr::Text(decided_by), span);
        }
        if let Some(code) = self.outcome {
            attr("portcullis.problem.code", Attr::Text(code.as_str()), span);
        }
        // Semantic conventions: a server span is an error only for a 5xx.
        if self.status >= 500 {
            text.clear();
            match self.outcome {
                Some(code) => text.push_str(code.as_str()),
                None => {
                    let _ = write!(text, "{}", self.status);
                }
            }
            attr("error.type", Attr::Text(text), span);
            wire::error_status(SPAN_STATUS, text, span);
        }
        wire::fixed32(SPAN_FLAGS, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | if remote { FLAG_IS_REMOTE } else { 0 }, span);
    }
}

/// Reusable space for encoding spans: nothing is allocated per span once it has grown.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    span: Vec<u8>,
    text: String,
}

fn encode_child_span(trace_id: &[u8; 16], parent: &[u8; 8], child: &ChildSpan, span: &mut Vec<u8>) {
    span.clear();
    wire::bytes(SPAN_TRACE_ID, trace_id, span);
    wire::bytes(SPAN_SPAN_ID, &child.span_id, span);
    wire::bytes(SPAN_PARENT_SPAN_ID, parent, span);
    wire::bytes(SPAN_NAME, child.name.as_bytes(), span);
    let kind = match child.kind {
        portcullis_core::spans::SpanKind::Internal => SpanKind::Internal,
        portcullis_core::spans::SpanKind::Client => SpanKind::Client,
    };
    wire::varint(SPAN_KIND, kind as u64, span);
    wire::fixed64(SPAN_START, unix_nanos(child.start), span);
    wire::fixed64(SPAN_END, unix_nanos(child.end.max(child.start)), span);
    for (key, value) in &child.attributes {
        let value = match value {
            AttributeValue::Text(t) => Attr::Text(t),
            AttributeValue::Int(i) => Attr::Int(*i),
            AttributeValue::Bool(b) => Attr::Bool(*b),
        };
        wire::attribute(SPAN_ATTRIBUTES, key, value, span);
    }
    if let Some(error) = &child.error {
        wire::error_status(SPAN_STATUS, error, span);
    }
    wire::fixed32(SPAN_FLAGS, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE, span);
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// Field numbers of opentelemetry/proto/trace/v1/trace.proto.
pub(crate) const SCOPE_SPANS_SPANS: u32 = 2;
const SPAN_TRACE_ID: u32 = 1;
const SPAN_SPAN_ID: u32 = 2;
const SPAN_PARENT_SPAN_ID: u32 = 4;
const SPAN_NAME: u32 = 5;
const SPAN_KIND: u32 = 6;
const SPAN_START: u32 = 7;
const SPAN_END: u32 = 8;
const SPAN_ATTRIBUTES: u32 = 9;
const SPAN_STATUS: u32 = 15;
const SPAN_FLAGS: u32 = 16;

/// An attribute's value as it is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attr<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

/// The protobuf wire format of the OTLP messages, written with prost's encoding primitives
/// straight from the gateway's own records (field numbers from the OTLP `.proto` files; the
/// tests decode the result with the official generated types).
pub(crate) mod wire {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

    use super::Attr;

    // opentelemetry/proto/common/v1/common.proto and trace.proto's Status.
    const KEY_VALUE_KEY: u32 = 1;
    const KEY_VALUE_VALUE: u32 = 2;
    const ANY_STRING: u32 = 1;
    const ANY_BOOL: u32 = 2;
    const ANY_INT: u32 = 3;
    const STATUS_MESSAGE: u32 = 2;
    const STATUS_CODE: u32 = 3;
    const STATUS_CODE_ERROR: u64 = 2;

    /// A length-delimited field: bytes, a string or an encoded message.
    pub(crate) fn bytes(tag: u32, value: &[u8], out: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    pub(crate) fn message(tag: u32, encoded: &[u8], out: &mut Vec<u8>) {
        bytes(tag, encoded, out);
    }

    pub(crate) fn varint(tag: u32, value: u64, out: &mut Vec<u8>) {
        encode_key(tag, WireType::Varint, out);
        encode_varint(value, out);
    }

    pub(crate) fn fixed64(tag: u32, value: u64, out: &mut Vec<u8>) {
        encode_key(tag, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn fixed32(tag: u32, value: u32, out: &mut Vec<u8>) {
        encode_key(tag, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }

    fn field_len(tag: u32, len: usize) -> usize {
        encoded_len_varint(u64::from(tag << 3)) + encoded_len_varint(len as u64) + len
    }

    /// A `KeyValue` message as the field `tag` (its length computed, nothing buffered).
    pub(crate) fn attribute(tag: u32, key: &str, value: Attr<'_>, out: &mut Vec<u8>) {
        let any_len = match value {
            Attr::Text(text) => field_len(ANY_STRING, text.len()),
            // Protobuf's int64 is the two's complement as a varint.
            Attr::Int(i) => 1 + encoded_len_varint(i as u64),
            Attr::Bool(_) => 2,
        };
        let kv_len = field_len(KEY_VALUE_KEY, key.len()) + field_len(KEY_VALUE_VALUE, any_len);
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(kv_len as u64, out);
        bytes(KEY_VALUE_KEY, key.as_bytes(), out);
        encode_key(KEY_VALUE_VALUE, WireType::LengthDelimited, out);
        encode_varint(any_len as u64, out);
        match value {
            Attr::Text(text) => bytes(ANY_STRING, text.as_bytes(), out),
            Attr::Int(i) => varint(ANY_INT, i as u64, out),
            Attr::Bool(b) => varint(ANY_BOOL, u64::from(b), out),
        }
    }

    /// A `Status` with code ERROR and `message`, as the field `tag`.
    pub(crate) fn error_status(tag: u32, message: &str, out: &mut Vec<u8>) {
        let len = field_len(STATUS_MESSAGE, message.len()) + 1 + encoded_len_varint(STATUS_CODE_ERROR);
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
        bytes(STATUS_MESSAGE, message.as_bytes(), out);
        varint(STATUS_CODE, STATUS_CODE_ERROR, out);
    }
}

/// Methods outside the HTTP set are `_OTHER` (semantic conventions), so a client cannot
/// mint span names or attribute values at will.
fn semconv_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    KNOWN.into_iter().find(|known| *known == method).unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests;
