//! Request limits and framing: URI length (414), header bytes (431), a declared body over the
//! limit (413), and ambiguous framing (400) — checked before anything reads the body.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;

use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::Limits;

/// Set on a request by the listener when its head carried both `Content-Length` and
/// `Transfer-Encoding` (the HTTP/1.1 codec keeps only the latter, so the stage cannot see it
/// in the headers).
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousFraming;

/// Applies the global limits (and, after routing, a route's lowered ones).
pub struct RequestLimits;

impl RequestLimits {
    pub fn run(limits: &Limits, parts: &Parts) -> Flow {
        let uri_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
        if uri_len as u64 > limits.max_uri_bytes {
            return Problem::new(ErrorCode::UriTooLong, "the request URI is longer than allowed").into();
        }
        if header_bytes(parts) > limits.max_header_bytes {
            return Problem::new(ErrorCode::HeadersTooLarge, "the request headers are larger than allowed").into();
        }
        if let Err(why) = host_header(parts) {
            return Problem::new(ErrorCode::BadRequest, why).into();
        }
        match declared_length(parts) {
            Err(why) => Problem::new(ErrorCode::BadRequest, why).into(),
            Ok(Some(len)) if len > limits.max_body_bytes => {
                Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed").into()
            }
            Ok(_) => Flow::Continue,
        }
    }
}

/// HTTP/1.1 needs exactly one `Host` (RFC 9112 §3.2); two could route differently here and
/// upstream.
fn host_header(parts: &Parts) -> Result<(), &'static str> {
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err("more than one Host header"),
        (None, None) if parts.version == http::Version::HTTP_11 && parts.uri.authority().is_none() => {
            Err("HTTP/1.1 requests need a Host header")
        }
        _ => Ok(()),
    }
}

/// Header bytes as on the wire: `name: value\r\n` per field.
pub(crate) fn header_bytes(parts: &Parts) -> u64 {
    parts.headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum()
}

/// The declared body length; an error for framing a server and a backend could read
/// differently (request smuggling).
fn declared_length(parts: &Parts) -> Result<Option<u64>, &'static str> {
    if parts.extensions.get::<AmbiguousFraming>().is_some() {
        return Err("Content-Length and Transfer-Encoding together are ambiguous");
    }
    let mut lengths = parts.headers.get_all(CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else { return Ok(None) };
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        return Err("Content-Length and Transfer-Encoding together are ambiguous");
    }
    let parse = |v: &http::HeaderValue| -> Result<u64, &'static str> {
        let text = v.to_str().map_err(|_| "invalid Content-Length")?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid Content-Length");
        }
        text.parse().map_err(|_| "invalid Content-Length")
    };
    let len = parse(first)?;
    for other in lengths {
        if parse(other)? != len {
            return Err("conflicting Content-Length values");
        }
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
        let mut b = http::Request::builder().uri(uri);
        if !has_host {
            b = b.header("host", "example.com");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    fn code(flow: Flow) -> Option<&'static str> {
        match flow {
            Flow::Respond(crate::flow::Reply::Problem(p)) => Some(p.code.as_str()),
            _ => None,
        }
    }

    #[test]
    fn each_limit_answers_with_its_code() {
        let limits = Limits { max_uri_bytes: 10, max_header_bytes: 40, max_body_bytes: 5, ..Limits::default() };
        assert_eq!(code(RequestLimits::run(&limits, &parts("/0123456789a", &[]))), Some("uri_too_long"));
        assert_eq!(
            code(RequestLimits::run(&limits, &parts("/", &[("x-big", &"a".repeat(40))]))),
            Some("headers_too_large")
        );
        assert_eq!(code(RequestLimits::run(&limits, &parts("/", &[("content-length", "6")]))), Some("body_too_large"));
        assert_eq!(code(RequestLimits::run(&limits, &parts("/", &[("content-length", "5")]))), None);
    }

    #[test]
    fn host_must_be_single_and_present_on_http_1_1() {
        let limits = Limits::default();
        let two = parts("/", &[("host", "a"), ("host", "b")]);
        assert_eq!(code(RequestLimits::run(&limits, &two)), Some("bad_request"));
        let mut none = parts("/", &[]);
        none.headers.remove(http::header::HOST);
        none.version = http::Version::HTTP_11;
        assert_eq!(code(RequestLimits::run(&limits, &none)), Some("bad_request"));
        assert_eq!(code(RequestLimits::run(&limits, &parts("/", &[("host", "a")]))), None);
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let limits = Limits::default();
        let both = parts("/", &[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert_eq!(code(RequestLimits::run(&limits, &both)), Some("bad_request"));
        let two = parts("/", &[("content-length", "5"), ("content-length", "6")]);
        assert_eq!(code(RequestLimits::run(&limits, &two)), Some("bad_request"));
        let signed = parts("/", &[("content-length", "+5")]);
        assert_eq!(code(RequestLimits::run(&limits, &signed)), Some("bad_request"));
    }
}
