//! Gateway-made errors as RFC 9457 problem documents (SPEC §3).
//!
//! [`ErrorCode`] is the closed list of codes the SPEC defines (SPEC §3's table, and the admin
//! API's few of its own); one exhaustive match gives each its status and title, so a new code
//! cannot ship without both. The admin API renders its errors through [`Problem`] too, so
//! every problem document the process makes has one shape.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};

use crate::trace::By;

/// Every error code a gateway-made response can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadRequest,
    InvalidRequest,
    MissingCredentials,
    InvalidToken,
    TokenExpired,
    InvalidApiKey,
    InvalidClientCert,
    Forbidden,
    InsufficientScope,
    WafBlocked,
    IpDenied,
    CorsRejected,
    NoRoute,
    MethodNotAllowed,
    BodyTooLarge,
    UriTooLong,
    HeadersTooLarge,
    /// The request body stopped arriving (`request_timeout`, 408; not in SPEC §3's table).
    RequestTimeout,
    RateLimited,
    QuotaExceeded,
    UpstreamError,
    SoapFault,
    NoHealthyUpstream,
    UpstreamTimeout,
    /// A request `Transfer-Encoding` the gateway does not know (RFC 9112 §6.1).
    NotImplemented,
    Internal,
    /// Admin API (SPEC §5): the consumer, key or endpoint named does not exist.
    NotFound,
    /// Admin API: the name is taken already.
    Conflict,
    /// Admin API: a write without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// Admin API: a consumer's plan that the config does not define.
    UnknownPlan,
    /// Admin API: the database is not configured or not reachable.
    DatabaseUnavailable,
}

impl ErrorCode {
    /// The `code` member of the problem document and the access log's `outcome`.
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    pub fn status(self) -> StatusCode {
        self.describe().1
    }

    fn describe(self) -> (&'static str, StatusCode) {
        use ErrorCode as E;
        match self {
            E::BadRequest => ("bad_request", StatusCode::BAD_REQUEST),
            E::InvalidRequest => ("invalid_request", StatusCode::BAD_REQUEST),
            E::MissingCredentials => ("missing_credentials", StatusCode::UNAUTHORIZED),
            E::InvalidToken => ("invalid_token", StatusCode::UNAUTHORIZED),
            E::TokenExpired => ("token_expired", StatusCode::UNAUTHORIZED),
            E::InvalidApiKey => ("invalid_api_key", StatusCode::UNAUTHORIZED),
            E::InvalidClientCert => ("invalid_client_cert", StatusCode::UNAUTHORIZED),
            E::Forbidden => ("forbidden", StatusCode::FORBIDDEN),
            E::InsufficientScope => ("insufficient_scope", StatusCode::FORBIDDEN),
            E::WafBlocked => ("waf_blocked", StatusCode::FORBIDDEN),
            E::IpDenied => ("ip_denied", StatusCode::FORBIDDEN),
            E::CorsRejected => ("cors_rejected", StatusCode::FORBIDDEN),
            E::NoRoute => ("no_route", StatusCode::NOT_FOUND),
            E::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            E::BodyTooLarge => ("body_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            E::UriTooLong => ("uri_too_long", StatusCode::URI_TOO_LONG),
            E::HeadersTooLarge => ("headers_too_large", StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            E::RequestTimeout => ("request_timeout", StatusCode::REQUEST_TIMEOUT),
            E::RateLimited => ("rate_limited", StatusCode::TOO_MANY_REQUESTS),
            E::QuotaExceeded => ("quota_exceeded", StatusCode::TOO_MANY_REQUESTS),
            E::UpstreamError => ("upstream_error", StatusCode::BAD_GATEWAY),
            E::SoapFault => ("soap_fault", StatusCode::BAD_GATEWAY),
            E::NoHealthyUpstream => ("no_healthy_upstream", StatusCode::SERVICE_UNAVAILABLE),
            E::UpstreamTimeout => ("upstream_timeout", StatusCode::GATEWAY_TIMEOUT),
            E::NotImplemented => ("not_implemented", StatusCode::NOT_IMPLEMENTED),
            E::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            E::NotFound => ("not_found", StatusCode::NOT_FOUND),
            E::Conflict => ("conflict", StatusCode::CONFLICT),
            E::UnsupportedMediaType => ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            E::UnknownPlan => ("unknown_plan", StatusCode::UNPROCESSABLE_ENTITY),
            E::DatabaseUnavailable => ("database_unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

/// A gateway-made error response before it is rendered.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: ErrorCode,
    /// Overrides the code's default status (e.g. a SOAP client fault is 400).
    pub status: Option<StatusCode>,
    /// Human-readable; never a secret or an echo of the attack payload.
    pub detail: Cow<'static, str>,
    /// Headers the response must carry (`Allow`, `Retry-After`, `WWW-Authenticate`, …).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Extra top-level members (`faultcode`, `faultstring`).
    pub extensions: Vec<(&'static str, serde_json::Value)>,
    /// What decided beside the phase: the policy, limit, provider or rule that refused.
    pub by: By,
    /// `phase` or `phase:name`: set by the pipeline when it records the refusal in the
    /// decision trace, rendered as the `decided_by` member.
    pub decided_by: Option<String>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            status: None,
            detail: detail.into(),
            headers: Vec::new(),
            extensions: Vec::new(),
            by: By::None,
            decided_by: None,
        }
    }

    /// Names what decided (a policy, limit, provider or rule) for the trace and the document.
    #[must_use]
    pub fn decided(mut self, by: By) -> Self {
        self.by = by;
        self
    }

    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// The response: problem+json body, the problem's headers, and `X-Request-Id`.
    pub fn into_response(self, request_id: &HeaderValue) -> http::Response<Bytes> {
        let status = self.status();
        let mut body = serde_json::Map::with_capacity(7 + self.extensions.len());
        body.insert("type".into(), "about:blank".into());
        body.insert("title".into(), status.canonical_reason().unwrap_or("Error").into());
        body.insert("status".into(), status.as_u16().into());
        body.insert("code".into(), self.code.as_str().into());
        body.insert("detail".into(), self.detail.as_ref().into());
        body.insert("request_id".into(), request_id.to_str().unwrap_or_default().into());
        if let Some(decided_by) = self.decided_by {
            body.insert("decided_by".into(), decided_by.into());
        }
        for (key, value) in self.extensions {
            body.insert(key.into(), value);
        }
        let bytes = Bytes::from(serde_json::Value::Object(body).to_string());
        let mut response = http::Response::new(bytes);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(crate::headers::X_REQUEST_ID, request_id.clone());
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_has_every_member() {
        let id = HeaderValue::from_static("abc");
        let response = Problem::new(ErrorCode::NoRoute, "no route for GET /x").into_response(&id);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Not Found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["code"], "no_route");
        assert_eq!(body["request_id"], "abc");
    }

    #[test]
    fn status_override_keeps_code() {
        let mut p = Problem::new(ErrorCode::SoapFault, "client fault");
        p.status = Some(StatusCode::BAD_REQUEST);
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
        assert_eq!(p.code.as_str(), "soap_fault");
    }
}
