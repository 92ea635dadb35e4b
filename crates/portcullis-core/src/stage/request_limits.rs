//! Request limits and framing: URI length (414), header bytes (431), a declared body over the
//! limit (413), ambiguous framing (400, or 501 for a transfer coding nobody here knows) and a
//! second `Host` or `Content-Type` (400) — checked before anything reads the body.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderValue, Version};

use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::Limits;

/// Set on a request by the HTTP/1.1 listener when the head as the client sent it shows what
/// the parsed request no longer does: the codec resolves `Content-Length` beside
/// `Transfer-Encoding` and drops a fragment from the request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawHeadFlaw {
    /// `Content-Length` together with `Transfer-Encoding` (the codec keeps only the latter).
    AmbiguousFraming,
    /// A `#` in the request target: a fragment is never sent, and the URI parser drops it.
    Fragment,
    /// The chunked body breaks its framing within what had arrived with the head: it is
    /// refused before any of it is forwarded.
    MalformedBody,
    /// The listener lost track of where requests start on the connection (input the codec
    /// refuses too); a request it cannot vouch for is refused.
    Untracked,
}

impl RawHeadFlaw {
    fn detail(self) -> &'static str {
        match self {
            Self::AmbiguousFraming => "Content-Length and Transfer-Encoding together are ambiguous",
            Self::Fragment => "the request target holds a fragment (#)",
            Self::MalformedBody => "the chunked request body is malformed",
            Self::Untracked => "the request could not be told apart from the one before it",
        }
    }
}

/// Applies the global limits (and, after routing, a route's lowered ones).
pub struct RequestLimits;

impl RequestLimits {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "request_limits";

    pub fn run(limits: &Limits, parts: &Parts) -> Flow {
        if let Some(flaw) = parts.extensions.get::<RawHeadFlaw>() {
            return refuse_and_close(parts, ErrorCode::BadRequest, flaw.detail());
        }
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
        if let Err(why) = content_type_header(parts) {
            return Problem::new(ErrorCode::BadRequest, why).into();
        }
        match declared_length(parts) {
            Err((code, why)) => refuse_and_close(parts, code, why),
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

/// At most one `Content-Type` (a singleton field, RFC 9110 §8.3): the WAF, CRS and the
/// validator read the first, while backends differ (gunicorn, and with it Flask and Django,
/// keeps the last), so a body labelled twice could be judged as one type here and parsed as
/// another upstream — an octet stream to the WAF, JSON to the backend.
fn content_type_header(parts: &Parts) -> Result<(), &'static str> {
    let mut types = parts.headers.get_all(http::header::CONTENT_TYPE).iter();
    match (types.next(), types.next()) {
        (Some(_), Some(_)) => Err("more than one Content-Type header"),
        _ => Ok(()),
    }
}

/// Header bytes as on the wire: `name: value\r\n` per field.
pub(crate) fn header_bytes(parts: &Parts) -> u64 {
    parts.headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum()
}

/// A framing error leaves the connection's next request boundary in doubt: on HTTP/1.x the
/// answer closes it (hyper honours the response's `Connection: close`).
fn refuse_and_close(parts: &Parts, code: ErrorCode, why: &'static str) -> Flow {
    let problem = Problem::new(code, why);
    if parts.version < Version::HTTP_2 {
        return problem.with_header(CONNECTION, HeaderValue::from_static("close")).into();
    }
    problem.into()
}

type FramingError = (ErrorCode, &'static str);

/// The declared body length; an error for framing a server and a backend could read
/// differently (request smuggling).
fn declared_length(parts: &Parts) -> Result<Option<u64>, FramingError> {
    const BAD: ErrorCode = ErrorCode::BadRequest;
    let mut lengths = parts.headers.get_all(CONTENT_LENGTH).iter();
    let first = lengths.next();
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        if first.is_some() {
            return Err((BAD, "Content-Length and Transfer-Encoding together are ambiguous"));
        }
        transfer_coding(parts)?;
        return Ok(None);
    }
    let Some(first) = first else { return Ok(None) };
    let parse = |v: &HeaderValue| -> Result<u64, FramingError> {
        let text = v.to_str().map_err(|_| (BAD, "invalid Content-Length"))?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err((BAD, "invalid Content-Length"));
        }
        text.parse().map_err(|_| (BAD, "invalid Content-Length"))
    };
    let len = parse(first)?;
    for other in lengths {
        if parse(other)? != len {
            return Err((BAD, "conflicting Content-Length values"));
        }
    }
    Ok(Some(len))
}

/// A request body is framed by exactly one `Transfer-Encoding: chunked` and nothing else: a
/// second `chunked` or another coding before it would be decoded here once and forwarded as
/// plain content, so a backend reading the codings differently sees another body
/// (RFC 9112 §6.1: 400 and close; 501 for a coding the server does not know).
fn transfer_coding(parts: &Parts) -> Result<(), FramingError> {
    let mut fields = parts.headers.get_all(TRANSFER_ENCODING).iter();
    let only = match (fields.next(), fields.next()) {
        (Some(only), None) => only,
        _ => return Err((ErrorCode::BadRequest, "more than one Transfer-Encoding field")),
    };
    let value = only.to_str().map_err(|_| (ErrorCode::BadRequest, "invalid Transfer-Encoding"))?;
    if value.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked") {
        return Ok(());
    }
    let known = |coding: &str| {
        let name = coding.split(';').next().unwrap_or_default().trim_matches([' ', '\t']);
        ["chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"].iter().any(|k| name.eq_ignore_ascii_case(k))
    };
    if value.split(',').all(known) {
        Err((ErrorCode::BadRequest, "Transfer-Encoding must be exactly `chunked`"))
    } else {
        Err((ErrorCode::NotImplemented, "the request's transfer coding is not supported"))
    }
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

    #[test]
    fn a_second_content_type_is_refused() {
        // The WAF and the validator read the first field; gunicorn (Flask, Django) reads the
        // last: `application/octet-stream` then `application/json` slipped a JSON body past
        // the WAF unread.
        let limits = Limits::default();
        let two = parts("/", &[("content-type", "application/octet-stream"), ("content-type", "application/json")]);
        assert_eq!(code(RequestLimits::run(&limits, &two)), Some("bad_request"));
        let one = parts("/", &[("content-type", "application/json")]);
        assert_eq!(code(RequestLimits::run(&limits, &one)), None);
    }

    fn refusal(flow: Flow) -> Option<(&'static str, Option<HeaderValue>)> {
        match flow {
            Flow::Respond(crate::flow::Reply::Problem(p)) => {
                let close = p.headers.iter().find(|(k, _)| k == CONNECTION).map(|(_, v)| v.clone());
                Some((p.code.as_str(), close))
            }
            _ => None,
        }
    }

    #[test]
    fn only_one_final_chunked_frames_a_request_body() {
        let limits = Limits::default();
        let close = Some(HeaderValue::from_static("close"));
        for ok in ["chunked", "Chunked", " chunked "] {
            assert_eq!(code(RequestLimits::run(&limits, &parts("/", &[("transfer-encoding", ok)]))), None, "{ok}");
        }
        for bad in [
            &[("transfer-encoding", "chunked, chunked")][..],
            &[("transfer-encoding", "gzip, chunked")],
            &[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")],
        ] {
            let mut p = parts("/", bad);
            p.version = Version::HTTP_11;
            assert_eq!(refusal(RequestLimits::run(&limits, &p)), Some(("bad_request", close.clone())), "{bad:?}");
        }
        let unknown = parts("/", &[("transfer-encoding", "foo, chunked")]);
        assert_eq!(refusal(RequestLimits::run(&limits, &unknown)), Some(("not_implemented", close)));
    }

    #[test]
    fn a_flaw_seen_in_the_raw_head_is_refused_and_closes_http_1() {
        let limits = Limits::default();
        let mut p = parts("/", &[]);
        p.extensions.insert(RawHeadFlaw::Fragment);
        assert_eq!(
            refusal(RequestLimits::run(&limits, &p)),
            Some(("bad_request", Some(HeaderValue::from_static("close"))))
        );
        p.version = Version::HTTP_2;
        assert_eq!(refusal(RequestLimits::run(&limits, &p)), Some(("bad_request", None)));
    }
}
