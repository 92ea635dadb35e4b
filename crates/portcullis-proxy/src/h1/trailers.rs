//! Response trailers on the HTTP/1.1 engine, under the rules hyper 1.x's server applied on the
//! listener this engine replaced (`proto/h1/conn.rs`, `encode.rs`, `role.rs`):
//!
//! - only when the request's `TE` lists `trailers` (RFC 9110 §10.1.4) and the answer is
//!   written chunked;
//! - only the fields the answer's `Trailer` header declared (hyper writes none it was not
//!   told about: the gateway strips the upstream's `Trailer` as hop-by-hop, so a proxied
//!   answer carries none today, as under hyper);
//! - never a field that must not be a trailer (RFC 9110 §6.5.1): hyper's list, plus the other
//!   framing, connection, routing, authentication and request-modifier fields and every
//!   `Content-*` (stricter than hyper, never looser);
//! - never a value with a control byte: a value holding CR or LF would end the section early
//!   and let a backend forge what follows it.
//!
//! Anything else is dropped, and the body ends with the plain last chunk.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{self, HeaderName};

/// Whether the request's `TE` fields list `trailers` (case-insensitive, any position).
pub fn te_lists_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers")))
        })
    })
}

/// The field names the answer's `Trailer` fields declare; names that are not tokens are
/// skipped, and so is a whole field that is not visible ASCII (as hyper does).
pub fn declared(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// The end of a chunked body carrying `trailers`: the last chunk, the fields of `trailers`
/// that `declared` names and that may be trailers, the final CRLF. `None` when no field
/// qualifies (the caller ends the body with the plain last chunk).
pub fn encode(trailers: &HeaderMap, declared: &[HeaderName]) -> Option<Bytes> {
    let mut out = BytesMut::new();
    for (name, value) in trailers {
        if !declared.contains(name) || forbidden(name) || !valid_value(value.as_bytes()) {
            continue;
        }
        if out.is_empty() {
            out.extend_from_slice(b"0\r\n");
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if out.is_empty() {
        return None;
    }
    out.extend_from_slice(b"\r\n");
    Some(out.freeze())
}

/// Fields that must not be sent as trailers (RFC 9110 §6.5.1).
fn forbidden(name: &HeaderName) -> bool {
    // hyper's `is_valid_trailer_field` refuses these.
    let hypers = [
        header::AUTHORIZATION,
        header::CACHE_CONTROL,
        header::CONTENT_ENCODING,
        header::CONTENT_LENGTH,
        header::CONTENT_RANGE,
        header::CONTENT_TYPE,
        header::HOST,
        header::MAX_FORWARDS,
        header::SET_COOKIE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::TE,
    ];
    // Framing and connection control, authentication, routing, request modifiers.
    let more = [
        header::CONNECTION,
        header::UPGRADE,
        header::WWW_AUTHENTICATE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
        header::LOCATION,
        header::EXPECT,
        header::RANGE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
        header::AGE,
        header::EXPIRES,
        header::DATE,
        header::PRAGMA,
        header::VARY,
        header::RETRY_AFTER,
    ];
    let name_str = name.as_str();
    hypers.contains(name)
        || more.contains(name)
        || name_str == "keep-alive"
        || name_str.starts_with("content-")
        || name_str.starts_with("proxy-")
}

/// A field value as RFC 9110 §5.5 allows it: visible bytes, space, tab and obs-text; no CR,
/// LF, NUL or other control byte. The checked `HeaderValue` constructors refuse those, but a
/// value built unchecked (by a codec, for speed) may hold them, and it goes on the wire here.
fn valid_value(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn te_is_read_as_a_list_in_any_case_and_field() {
        assert!(te_lists_trailers(&map(&[("te", "trailers")])));
        assert!(te_lists_trailers(&map(&[("te", "gzip, Trailers")])));
        assert!(te_lists_trailers(&map(&[("te", "gzip"), ("te", " TRAILERS ")])));
        assert!(!te_lists_trailers(&map(&[("te", "gzip")])));
        assert!(!te_lists_trailers(&map(&[("te", "trailersx, xtrailers")])));
        assert!(!te_lists_trailers(&map(&[("x-te", "trailers")])));
        assert!(!te_lists_trailers(&HeaderMap::new()));
    }

    #[test]
    fn declared_names_come_from_every_trailer_field() {
        // A field that is not visible ASCII is skipped whole, as hyper does.
        let names = declared(&map(&[
            ("trailer", "X-A, grpc-status"),
            ("trailer", "x-b,,bad name"),
            ("trailer", "x-c, \u{e9}"),
        ]));
        assert_eq!(names, ["x-a", "grpc-status", "x-b"].map(HeaderName::from_static).to_vec());
    }

    #[test]
    fn only_declared_permitted_fields_are_written_in_order() {
        let trailers = map(&[("x-a", "1"), ("x-undeclared", "2"), ("x-b", "two words"), ("x-a", "3")]);
        let declared = declared(&map(&[("trailer", "x-a, x-b")]));
        assert_eq!(encode(&trailers, &declared).unwrap(), &b"0\r\nx-a: 1\r\nx-a: 3\r\nx-b: two words\r\n\r\n"[..]);
    }

    #[test]
    fn fields_that_must_not_be_trailers_are_dropped_even_when_declared() {
        let names = [
            "content-length",
            "transfer-encoding",
            "trailer",
            "te",
            "host",
            "authorization",
            "set-cookie",
            "content-type",
            "content-md5",
            "connection",
            "keep-alive",
            "upgrade",
            "proxy-anything",
            "www-authenticate",
            "location",
            "cache-control",
            "max-forwards",
            "range",
        ];
        let fields: Vec<(&str, &str)> = names.iter().map(|n| (*n, "1")).collect();
        let trailers = map(&fields);
        let declared: Vec<HeaderName> = names.iter().map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()).collect();
        assert_eq!(encode(&trailers, &declared), None);
        let mut with_one = trailers.clone();
        with_one.insert("x-checksum", HeaderValue::from_static("abc"));
        let mut declared = declared;
        declared.push(HeaderName::from_static("x-checksum"));
        assert_eq!(encode(&with_one, &declared).unwrap(), &b"0\r\nx-checksum: abc\r\n\r\n"[..]);
    }

    #[test]
    fn a_value_with_a_control_byte_is_never_written() {
        for bad in [&b"1\r\nx-forged: 1"[..], b"1\nx", b"1\rx", b"a\0b", b"\x7f", b"\x1b[0m"] {
            assert!(!valid_value(bad), "{bad:?}");
        }
        for good in [&b""[..], b"1", b"tab\tand space", b"obs-text \xff\x80", b"~!#"] {
            assert!(valid_value(good), "{good:?}");
        }
        let declared = [HeaderName::from_static("x-b")];
        let trailers = map(&[("x-b", "tab\tok")]);
        assert_eq!(encode(&trailers, &declared).unwrap(), &b"0\r\nx-b: tab\tok\r\n\r\n"[..]);
    }

    #[test]
    fn nothing_declared_or_nothing_sent_gives_no_section() {
        assert_eq!(encode(&map(&[("x-a", "1")]), &[]), None);
        assert_eq!(encode(&HeaderMap::new(), &[HeaderName::from_static("x-a")]), None);
    }
}
