//! The client span of one upstream attempt (SPEC §7 Traces): each try, retries included, is
//! its own span, and the `traceparent` sent with it names that span as the upstream's parent.

use std::borrow::Cow;
use std::time::SystemTime;

use http::{HeaderMap, Method, Response};
use portcullis_core::UpstreamError;
use portcullis_core::headers::TRACEPARENT;
use portcullis_core::snapshot::TargetSpec;
use portcullis_core::spans::{AttributeValue, ChildSpan, Recording, SpanKind, Spans};

/// One attempt being timed; `None` parts cost nothing on unsampled requests.
pub(super) struct Attempt<'a> {
    recording: &'a Recording,
    span_id: [u8; 8],
    start: SystemTime,
}

impl<'a> Attempt<'a> {
    /// Starts the attempt's span and points the attempt's `traceparent` at it.
    pub(super) fn start(spans: Option<&'a Spans>, headers: &mut HeaderMap) -> Option<Self> {
        let recording = spans?.recording()?;
        let span_id = portcullis_core::ids::new_span_id();
        headers.insert(TRACEPARENT, recording.trace.traceparent_for(span_id));
        Some(Self { recording, span_id, start: SystemTime::now() })
    }

    /// Ends the span with what the attempt got: a response head or an error.
    pub(super) fn end<B>(
        self,
        method: &Method,
        target: &TargetSpec,
        resend_count: usize,
        outcome: &Result<Response<B>, UpstreamError>,
    ) {
        let mut attributes: Vec<(&'static str, AttributeValue)> = Vec::with_capacity(7);
        attributes.push(("http.request.method", method_attribute(method)));
        attributes.push(("server.address", target.authority.host().to_owned().into()));
        if let Some(port) = target.authority.port_u16() {
            attributes.push(("server.port", i64::from(port).into()));
        }
        attributes.push(("portcullis.target", target.name.to_string().into()));
        if resend_count > 0 {
            attributes.push(("http.request.resend_count", i64::try_from(resend_count).unwrap_or(i64::MAX).into()));
        }
        let error = match outcome {
            Ok(response) => {
                let status = response.status();
                attributes.push(("http.response.status_code", i64::from(status.as_u16()).into()));
                (status.is_client_error() || status.is_server_error()).then(|| Cow::Owned(status.as_u16().to_string()))
            }
            Err(e) => Some(Cow::Borrowed(error_type(e))),
        };
        if let Some(error) = &error {
            attributes.push(("error.type", AttributeValue::Text(error.clone())));
        }
        self.recording.push(ChildSpan {
            name: Cow::Owned(method.as_str().chars().take(portcullis_core::record::MAX_LOGGED_METHOD).collect()),
            kind: SpanKind::Client,
            span_id: self.span_id,
            start: self.start,
            end: SystemTime::now(),
            attributes,
            error,
        });
    }
}

fn method_attribute(method: &Method) -> AttributeValue {
    // Semantic conventions: methods outside the known set are reported as `_OTHER`.
    match *method {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::CONNECT
        | Method::OPTIONS
        | Method::TRACE
        | Method::PATCH => method.as_str().to_owned().into(),
        _ => "_OTHER".into(),
    }
}

fn error_type(e: &UpstreamError) -> &'static str {
    match e {
        UpstreamError::Connect => "connect_error",
        UpstreamError::Timeout => "timeout",
        UpstreamError::Invalid => "invalid_response",
        UpstreamError::NoHealthyTarget { .. } => "no_healthy_upstream",
        UpstreamError::BodyTooLarge => "body_too_large",
        UpstreamError::ClientBody => "client_body",
        UpstreamError::ClientTimeout => "client_timeout",
    }
}
