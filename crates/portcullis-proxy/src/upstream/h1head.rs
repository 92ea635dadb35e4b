//! An upstream's HTTP/1.1 response head, parsed in place with `httparse` and judged by the
//! rules the hyper client applied before (`proto/h1/role.rs`, `Client::decoder`) plus the
//! gateway's own (RFC 9112 §6.3): the same heads are refused and every accepted one is framed
//! the same way, so moving the exchange off hyper changes no decision.
//!
//! - 1xx other than 101 are skipped; 101 ends the head with no body (an upgrade).
//! - 204, 304 and any answer to `HEAD` have no body, whatever their headers say.
//! - `Transfer-Encoding` on HTTP/1.0 is refused; otherwise it must be one field holding the
//!   single coding `chunked` (anything else frames a body hyper would not relay faithfully);
//!   a `Content-Length` beside it is dropped and the connection with it.
//! - `Content-Length`: every value (fields and comma lists) the same run of digits, or refused.
//! - Neither: the body runs to the connection's close.
//! - Obs-fold, a space before the colon, more than [`MAX_HEADERS`] fields or a head past
//!   [`MAX_HEAD_BYTES`] are refused (httparse's strict defaults, hyper's limits).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use smallvec::SmallVec;

/// The most fields a response head may carry (hyper's `DEFAULT_MAX_HEADERS`).
pub(crate) const MAX_HEADERS: usize = 100;
/// The most bytes a response head may take (hyper's default read buffer limit).
pub(crate) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (204, 304, an answer to HEAD, `Content-Length: 0`).
    Empty,
    Length(u64),
    Chunked,
    /// Read to the connection's end.
    Close,
    /// A 101: the connection now speaks another protocol.
    Upgrade,
}

/// A final response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) response: Response<()>,
    pub(crate) framing: Framing,
    /// Whether the upstream lets the connection serve another request after this one.
    pub(crate) keep_alive: bool,
}

/// What the front of the buffer held.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not a whole head yet: read more.
    Partial,
    /// A 1xx (not 101) was consumed: parse again.
    Informational,
    Final(Head),
}

/// The head is not one the gateway relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// Parses the head at the front of `buf`, consuming it when complete. `method` is the
/// request's (an answer to `HEAD` has no body).
pub(crate) fn parse(buf: &mut BytesMut, method: &Method) -> Result<Parsed, Invalid> {
    // Uninitialised slots: zeroing 100 of them (3 KiB) per parse cost more than the parse.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    // Never more than `MAX_HEAD_BYTES`, however much one read brought: a head's fate does not
    // depend on how the upstream's bytes were split into reads (hyper never buffers more).
    let window: &[u8] = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        window,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD_BYTES => return Err(Invalid),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(_) => return Err(Invalid),
    };
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(Invalid),
    };
    let status = StatusCode::from_u16(response.code.ok_or(Invalid)?).map_err(|_| Invalid)?;
    // Field positions within the head, so the values can share its bytes once frozen.
    let base = buf.as_ptr() as usize;
    let spans: SmallVec<[(usize, usize, usize, usize); 16]> = response
        .headers
        .iter()
        .map(|field| {
            let name = field.name.as_ptr() as usize - base;
            let value = field.value.as_ptr() as usize - base;
            (name, name + field.name.len(), value, value + field.value.len())
        })
        .collect();
    let count = spans.len();
    // Copied out (a few hundred bytes), so the read buffer stays whole for its pool.
    let head: Bytes = crate::h1::take_bytes(buf, len);
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Parsed::Informational);
    }
    let mut headers = HeaderMap::with_capacity(count);
    for &(n0, n1, v0, v1) in &spans {
        let name = HeaderName::from_bytes(&head[n0..n1]).map_err(|_| Invalid)?;
        let value = HeaderValue::from_maybe_shared(head.slice(v0..v1)).map_err(|_| Invalid)?;
        headers.append(name, value);
    }
    let (framing, same_framing) = framing(status, version, method, &mut headers)?;
    let keep_alive = same_framing && framing != Framing::Close && keeps_alive(version, &headers);
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    Ok(Parsed::Final(Head { response, framing, keep_alive }))
}

/// The body's framing, and whether the connection may go on (`false` when a length beside
/// `chunked` had to be dropped).
fn framing(
    status: StatusCode,
    version: Version,
    method: &Method,
    headers: &mut HeaderMap,
) -> Result<(Framing, bool), Invalid> {
    let body = match status.as_u16() {
        101 => Some(Framing::Upgrade),
        204 | 304 => Some(Framing::Empty),
        _ if *method == Method::HEAD => Some(Framing::Empty),
        _ => None,
    };
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(only) = codings.next() {
        if body.is_none() && version == Version::HTTP_10 {
            return Err(Invalid);
        }
        let chunked = only.to_str().is_ok_and(|v| v.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"));
        if !chunked || codings.next().is_some() {
            return Err(Invalid);
        }
        let reusable = headers.remove(CONTENT_LENGTH).is_none();
        return Ok((body.unwrap_or(Framing::Chunked), reusable));
    }
    if let Some(body) = body {
        return Ok((body, true));
    }
    if !headers.contains_key(CONTENT_LENGTH) {
        return Ok((Framing::Close, true));
    }
    match content_length(headers) {
        Some(0) => Ok((Framing::Empty, true)),
        // hyper's largest length (`u64::MAX - 2` are its markers).
        Some(n) if n < u64::MAX - 1 => Ok((Framing::Length(n), true)),
        _ => Err(Invalid),
    }
}

/// The one length every `Content-Length` value states (hyper's `content_length_parse_all`).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = None;
    for field in headers.get_all(CONTENT_LENGTH) {
        for part in field.to_str().ok()?.split(',') {
            let part = part.trim_matches([' ', '\t']);
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = part.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    length
}

/// HTTP/1.1 stays open unless `Connection: close`; HTTP/1.0 only with `keep-alive`.
fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &str| {
        headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token)))
        })
    };
    if version == Version::HTTP_11 { !has("close") } else { has("keep-alive") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8], method: &Method) -> Result<(Parsed, usize), Invalid> {
        let mut buf = BytesMut::from(bytes);
        parse(&mut buf, method).map(|p| (p, buf.len()))
    }

    fn final_head(bytes: &[u8]) -> Head {
        match head(bytes, &Method::GET) {
            Ok((Parsed::Final(h), _)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lengths_chunked_and_close_delimited_bodies_are_told_apart() {
        assert_eq!(final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing, Framing::Length(5));
        assert_eq!(final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing, Framing::Empty);
        assert_eq!(final_head(b"HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n").framing, Framing::Length(3));
        let chunked = final_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((chunked.framing, chunked.keep_alive), (Framing::Chunked, true));
        let close = final_head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((close.framing, close.keep_alive), (Framing::Close, false));
    }

    #[test]
    fn a_length_beside_chunked_is_dropped_and_the_connection_not_reused() {
        let h = final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        assert!(!h.response.headers().contains_key(CONTENT_LENGTH));
    }

    #[test]
    fn hostile_heads_are_refused() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
            b"HTTP/1.1 099 Odd\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert!(head(bad, &Method::GET).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let many: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-A: 1\r\n".repeat(MAX_HEADERS + 1), b"\r\n"].concat();
        assert!(head(&many, &Method::GET).is_err());
        let huge: Vec<u8> = [&b"HTTP/1.1 200 OK\r\nX-A: "[..], &vec![b'a'; MAX_HEAD_BYTES]].concat();
        assert!(head(&huge, &Method::GET).is_err());
        // Whole, in one read (a read buffer grown large can take it at once): refused all the same.
        let whole: Vec<u8> =
            [&b"HTTP/1.1 200 OK\r\nX-A: "[..], &vec![b'a'; MAX_HEAD_BYTES], b"\r\nContent-Length: 0\r\n\r\n"].concat();
        assert!(head(&whole, &Method::GET).is_err());
        let partial: Vec<u8> = [&b"HTTP/1.1 200 OK\r\nX-A: "[..], &vec![b'a'; 1000]].concat();
        assert!(matches!(head(&partial, &Method::GET), Ok((Parsed::Partial, _))));
    }

    #[test]
    fn bodiless_answers_ignore_their_lengths() {
        assert_eq!(final_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").framing, Framing::Empty);
        assert_eq!(final_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n").framing, Framing::Empty);
        match head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &Method::HEAD) {
            Ok((Parsed::Final(h), _)) => assert_eq!(h.framing, Framing::Empty),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            final_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n").framing,
            Framing::Upgrade
        );
    }

    #[test]
    fn informational_heads_are_consumed_and_the_rest_stays() {
        match head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", &Method::GET) {
            Ok((Parsed::Informational, rest)) => assert_eq!(rest, 17),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        assert!(!final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x, Close\r\n\r\n").keep_alive);
        assert!(!final_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(final_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn values_keep_their_bytes_and_bare_lf_ends_lines() {
        let h = final_head(b"HTTP/1.1 200 OK\nX-A: caf\xc3\xa9\nContent-Length: 1\n\n");
        assert_eq!(h.response.headers()["x-a"].as_bytes(), b"caf\xc3\xa9");
        assert_eq!(h.framing, Framing::Length(1));
    }
}
