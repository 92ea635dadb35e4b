//! A request head, parsed in place with `httparse` and read with RFC 9112's framing rules —
//! the same decisions hyper's server makes (`proto/h1/role.rs`), plus what the gateway refuses
//! on top of them and that hyper's parsed request no longer shows: `Content-Length` beside
//! `Transfer-Encoding`, and a `#` in the request target (see `RawHeadFlaw`).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use portcullis_core::stage::RawHeadFlaw;
use smallvec::SmallVec;

use super::chunked::{ChunkedDecoder, Decoded};

/// The most header fields a head may carry (hyper's `max_headers` as the listener set it).
pub(crate) const MAX_HEADERS: usize = 256;
/// hyper's `MAX_URI_LEN`: a longer request target is refused with 414 by the codec itself
/// (the configured `max_uri_bytes` is enforced above it, by the request-limits stage).
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;
/// hyper's largest `Content-Length` (`DecodedLength::MAX_LEN`).
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// How the body after a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no length, or `Content-Length: 0`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
}

/// A complete, accepted request head.
#[derive(Debug)]
pub struct Head {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: a `100 Continue` goes out when the body is first read.
    pub expect_continue: bool,
    /// `Upgrade` on HTTP/1.1, or `CONNECT`.
    pub wants_upgrade: bool,
    /// What the gateway refuses although the codec accepted it (set as an extension on the
    /// request so the request-limits stage answers it).
    pub flaw: Option<RawHeadFlaw>,
    /// The head's bytes as received (shared with the header values, not copied).
    pub raw: Bytes,
}

/// A head the codec refuses: answered with this status (empty body) and the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request head")]
    BadRequest,
    #[error("request head too large")]
    TooLarge,
    #[error("request target too long")]
    UriTooLong,
}

impl HeadError {
    /// The status hyper's server answers the same refusal with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
        }
    }
}

/// Where a field's name and value lie in the head's bytes (recorded while the head is parsed
/// in the read buffer; the values are then sliced out of one copy of the head).
#[derive(Clone, Copy)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

/// Parses the head at the front of `buf`. `Ok(None)`: incomplete — read more. A head that
/// does not end within `max_head` bytes is too large. A complete head is split off
/// `buf`; what follows it (body, next request) stays.
pub fn parse(buf: &mut BytesMut, max_head: usize) -> Result<Option<Head>, HeadError> {
    let mut fields = SmallVec::<[Field; 32]>::new();
    let (len, method, path, minor) = {
        let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        // Never more than `max_head` bytes, however much was read: a head's fate does not
        // depend on how the client's bytes were split into reads (hyper never buffers more).
        let bytes: &[u8] = &buf[..buf.len().min(max_head)];
        let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut request,
            bytes,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            // hyper's mapping: too many fields is "too large", anything else malformed.
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::BadRequest),
        };
        let (Some(method), Some(path), Some(minor)) = (request.method, request.path, request.version) else {
            return Err(HeadError::BadRequest);
        };
        if path.len() > MAX_URI_LEN {
            return Err(HeadError::UriTooLong);
        }
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::BadRequest)?;
        let base = bytes.as_ptr() as usize;
        let range = |s: &[u8]| {
            let start = s.as_ptr() as usize - base;
            (start, start + s.len())
        };
        fields.extend(request.headers.iter().map(|h| Field { name: range(h.name.as_bytes()), value: range(h.value) }));
        (len, method, range(path.as_bytes()), minor)
    };
    // Copied out (a few hundred bytes), so the read buffer stays whole for its pool.
    let head = super::take_bytes(buf, len);
    let mut parsed = read_head(&head, method, path, minor, fields.into_iter())?;
    parsed.raw = head;
    Ok(Some(parsed))
}

fn read_head(
    head: &Bytes,
    method: Method,
    path: (usize, usize),
    minor: u8,
    fields: impl ExactSizeIterator<Item = Field>,
) -> Result<Head, HeadError> {
    let target = head.slice(path.0..path.1);
    let fragment = target.contains(&b'#');
    let uri = Uri::from_maybe_shared(target).map_err(|_| HeadError::BadRequest)?;
    let http11 = minor == 1;
    let mut keep_alive = http11;
    let mut headers = HeaderMap::with_capacity(fields.len());
    let (mut framing, mut length, mut has_length, mut te, mut te_chunked) = (Framing::Empty, None, false, false, false);
    let (mut expect_continue, mut wants_upgrade, mut close) = (false, method == Method::CONNECT, false);
    for field in fields {
        let name = HeaderName::from_bytes(&head[field.name.0..field.name.1]).map_err(|_| HeadError::BadRequest)?;
        let value = HeaderValue::from_maybe_shared(head.slice(field.value.0..field.value.1))
            .map_err(|_| HeadError::BadRequest)?;
        if name == TRANSFER_ENCODING {
            if !http11 {
                return Err(HeadError::BadRequest);
            }
            te = true;
            if length.take().is_some() {
                headers.remove(CONTENT_LENGTH);
            }
            te_chunked = is_chunked(&value);
            if te_chunked {
                framing = Framing::Chunked;
            }
        } else if name == CONTENT_LENGTH {
            has_length = true;
            if te {
                // Ignored after a Transfer-Encoding (and refused below as ambiguous).
                continue;
            }
            let n = from_digits(value.as_bytes()).ok_or(HeadError::BadRequest)?;
            match length {
                Some(prev) if prev != n => return Err(HeadError::BadRequest),
                Some(_) => continue,
                None => {}
            }
            if n > MAX_CONTENT_LENGTH {
                return Err(HeadError::TooLarge);
            }
            framing = if n == 0 { Framing::Empty } else { Framing::Length(n) };
            length = Some(n);
        } else if name == CONNECTION {
            // Once any `Connection` line asks to close, a later `keep-alive` cannot undo it.
            if close || has_token(&value, "close") {
                close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = has_token(&value, "keep-alive");
            }
        } else if name == EXPECT {
            expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        } else if name == UPGRADE {
            wants_upgrade = http11;
        }
        headers.append(name, value);
    }
    if te && !te_chunked {
        return Err(HeadError::BadRequest);
    }
    let mut flaw = fragment.then_some(RawHeadFlaw::Fragment);
    if te && has_length {
        keep_alive = false;
        flaw = Some(RawHeadFlaw::AmbiguousFraming);
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = if http11 { Version::HTTP_11 } else { Version::HTTP_10 };
    parts.headers = headers;
    Ok(Head { parts, framing, keep_alive, expect_continue, wants_upgrade, flaw, raw: Bytes::new() })
}

/// Whether the chunked body starting in `after` (the bytes that arrived with its head) already
/// breaks its framing: such a request is refused before any of it is forwarded, as the
/// listener on hyper does (`RawHeadFlaw::MalformedBody`). Only framing errors count (the
/// listener on hyper did not look at bounds or trailer fields; those break the body later).
pub fn body_already_malformed(after: &[u8]) -> bool {
    let mut decoder = ChunkedDecoder::new(MAX_HEADERS);
    let mut buf = BytesMut::from(after);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(_)) => {}
            Ok(Decoded::NeedMore | Decoded::End(_)) => return false,
            Err(e) => return e.is_framing(),
        }
    }
}

/// hyper's `is_chunked_`: the last coding of a visible-ASCII value is `chunked`.
fn is_chunked(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|s| s.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// Whether a comma-separated visible-ASCII value lists `token`.
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// ASCII digits only: no sign, no spaces, no list, no overflow.
fn from_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> Result<Option<Head>, HeadError> {
        parse(&mut BytesMut::from(raw), 8192)
    }

    fn ok(raw: &[u8]) -> Head {
        head(raw).unwrap().unwrap()
    }

    #[test]
    fn parses_in_place_and_leaves_the_body() {
        let mut buf = BytesMut::from(&b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET"[..]);
        let head = parse(&mut buf, 8192).unwrap().unwrap();
        assert_eq!(&buf[..], b"abcGET");
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.parts.headers["host"], "x");
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive && head.flaw.is_none());
    }

    #[test]
    fn partial_until_the_limit() {
        assert!(head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(8192, b'a');
        assert_eq!(head(&big).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn framing_refusals_as_hyper() {
        let cases: &[(&[u8], HeadError)] = &[
            (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", HeadError::TooLarge),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HeadError::BadRequest),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::BadRequest),
            (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", HeadError::BadRequest),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", HeadError::BadRequest),
            (b"GET / HTTP/1.1\r\nX : a\r\n\r\n", HeadError::BadRequest),
            (b"G@T / HTTP/1.1\r\n\r\n", HeadError::BadRequest),
            (b"GET / HTTP/2.0\r\n\r\n", HeadError::BadRequest),
        ];
        for (raw, want) in cases {
            assert_eq!(head(raw).unwrap_err(), *want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn flaws_the_gateway_refuses() {
        let both = ok(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(both.flaw, Some(RawHeadFlaw::AmbiguousFraming));
        assert_eq!(both.framing, Framing::Chunked);
        assert!(!both.keep_alive);
        assert!(both.parts.headers.get(CONTENT_LENGTH).is_none());
        let after = ok(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n");
        assert_eq!(after.flaw, Some(RawHeadFlaw::AmbiguousFraming));
        assert_eq!(ok(b"GET /a#b HTTP/1.1\r\n\r\n").flaw, Some(RawHeadFlaw::Fragment));
        assert!(body_already_malformed(b"zz\r\n"));
        assert!(!body_already_malformed(b"5\r\nhel"));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.1\r\nConnection: upgrade, keep-alive\r\n\r\n").keep_alive);
        let expect = ok(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n");
        assert!(expect.expect_continue);
        assert!(ok(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").wants_upgrade);
        assert!(!ok(b"GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n").wants_upgrade);
    }
}
