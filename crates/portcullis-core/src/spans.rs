//! The spans of one sampled request (SPEC §7 Traces), as plain data: the phases that do I/O
//! note a child span here (a JWKS fetch, a Redis rate-limit decision, a cache lookup, each
//! upstream attempt), and when the answer's head is ready the proxy hands the lot with the
//! server span to the exporter (`portcullis-otel`), which owns the OpenTelemetry types.
//!
//! Only a request that is sampled, on a gateway that exports, records: every other request
//! carries an empty [`Spans`] (no allocation, no clock read), so tracing at
//! `sample_ratio: 0` costs one branch per phase. Times are wall-clock readings: they are
//! telemetry, never an input to a decision, and offline runs (`explain`, `test`) never record.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use http::header::USER_AGENT;
use http::request::Parts;

use crate::ids::TraceContext;

/// Most child spans one request keeps (11 upstream attempts, a JWKS fetch, a limit and a
/// cache lookup fit); past it they are counted as dropped, not kept.
pub const MAX_CHILD_SPANS: usize = 32;
/// Longest path or user agent kept in a span attribute.
pub const MAX_ATTRIBUTE_TEXT: usize = 1024;

/// Who a child span is, in OpenTelemetry's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the gateway (a cache lookup, a JWKS wait).
    Internal,
    /// A call the gateway made to another service (an upstream attempt, Redis).
    Client,
}

/// A span attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Text(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

impl From<&'static str> for AttributeValue {
    fn from(v: &'static str) -> Self {
        Self::Text(Cow::Borrowed(v))
    }
}

impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        Self::Text(Cow::Owned(v))
    }
}

impl From<i64> for AttributeValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// One child span of the request's server span.
#[derive(Debug, Clone)]
pub struct ChildSpan {
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub span_id: [u8; 8],
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, AttributeValue)>,
    /// Set when the operation failed: the span's error status (never a secret).
    pub error: Option<Cow<'static, str>>,
}

/// What a sampled request records: its trace, what the server span says about the request
/// as it arrived, and the child spans so far.
#[derive(Debug)]
pub struct Recording {
    pub trace: TraceContext,
    pub start: SystemTime,
    pub method: String,
    pub path: String,
    pub scheme: &'static str,
    pub user_agent: Option<String>,
    children: Mutex<Vec<ChildSpan>>,
    dropped: std::sync::atomic::AtomicU32,
}

/// A request's span recorder: empty unless the request is sampled and exported. Cloned into
/// the outbound request's extensions so each upstream attempt notes its own client span.
#[derive(Debug, Clone, Default)]
pub struct Spans(Option<Arc<Recording>>);

impl Spans {
    /// Starts recording the request `parts` of `trace`.
    pub fn record(trace: TraceContext, parts: &Parts, https: bool) -> Self {
        let text = |bytes: &[u8]| crate::record::log_text(bytes, MAX_ATTRIBUTE_TEXT).into_owned();
        Self(Some(Arc::new(Recording {
            trace,
            start: SystemTime::now(),
            method: parts.method.as_str().chars().take(crate::record::MAX_LOGGED_METHOD).collect(),
            path: text(parts.uri.path().as_bytes()),
            scheme: if https { "https" } else { "http" },
            user_agent: parts.headers.get(USER_AGENT).map(|v| text(v.as_bytes())),
            children: Mutex::new(Vec::new()),
            dropped: std::sync::atomic::AtomicU32::new(0),
        })))
    }

    pub fn recording(&self) -> Option<&Recording> {
        self.0.as_deref()
    }

    /// When a child span starts: `None` (and no clock read) when the request is not recorded.
    pub fn start(&self) -> Option<SystemTime> {
        self.0.as_ref().map(|_| SystemTime::now())
    }

    /// Ends the child span started at `started` (a no-op when not recording).
    pub fn end(
        &self,
        started: Option<SystemTime>,
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<(&'static str, AttributeValue)>,
        error: Option<Cow<'static, str>>,
    ) {
        let (Some(recording), Some(start)) = (&self.0, started) else { return };
        recording.push(ChildSpan {
            name: Cow::Borrowed(name),
            kind,
            span_id: crate::ids::new_span_id(),
            start,
            end: SystemTime::now(),
            attributes,
            error,
        });
    }
}

impl Recording {
    /// Keeps `span`, unless the request already has [`MAX_CHILD_SPANS`].
    pub fn push(&self, span: ChildSpan) {
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if children.len() < MAX_CHILD_SPANS {
            children.push(span);
        } else {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The child spans recorded so far, and how many did not fit.
    pub fn take_children(&self) -> (Vec<ChildSpan>, u32) {
        let children = std::mem::take(&mut *self.children.lock().unwrap_or_else(PoisonError::into_inner));
        (children, self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Parts {
        http::Request::get("/a/b?secret=1")
            .header("user-agent", "ua/1")
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    #[test]
    fn an_unrecorded_request_notes_nothing() {
        let spans = Spans::default();
        assert!(spans.start().is_none());
        spans.end(None, "cache.lookup", SpanKind::Internal, Vec::new(), None);
        assert!(spans.recording().is_none());
    }

    #[test]
    fn a_recorded_request_keeps_its_child_spans_and_no_query() {
        let trace = TraceContext::continue_or_start(None, false, 1.0);
        let spans = Spans::record(trace, &parts(), false);
        let started = spans.start();
        spans.end(started, "cache.lookup", SpanKind::Internal, vec![("portcullis.cache.result", "miss".into())], None);
        let Some(recording) = spans.recording() else { panic!("recording") };
        assert_eq!(recording.path, "/a/b");
        assert_eq!(recording.user_agent.as_deref(), Some("ua/1"));
        let (children, dropped) = recording.take_children();
        assert_eq!((children.len(), dropped), (1, 0));
        assert_eq!(children[0].name, "cache.lookup");
        assert!(children[0].end >= children[0].start);
        assert_ne!(children[0].span_id, trace.span_id);
    }

    #[test]
    fn child_spans_past_the_cap_are_counted_not_kept() {
        let spans = Spans::record(TraceContext::continue_or_start(None, false, 1.0), &parts(), true);
        for _ in 0..MAX_CHILD_SPANS + 3 {
            spans.end(spans.start(), "x", SpanKind::Internal, Vec::new(), None);
        }
        let (children, dropped) = spans.recording().map(Recording::take_children).unwrap_or_default();
        assert_eq!((children.len(), dropped), (MAX_CHILD_SPANS, 3));
    }
}
