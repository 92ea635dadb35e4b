//! The WebSocket handshake, checked on both sides before anything is spliced (RFC 6455 §4):
//! the client's `GET` must carry a `Sec-WebSocket-Key` of 16 base64 bytes and
//! `Sec-WebSocket-Version: 13` ([`accept_for`], else 400 and nothing is forwarded), and the
//! upstream's 101 the `Sec-WebSocket-Accept` that key calls for ([`accepted`], else 502 and no
//! tunnel). A backend that switches protocols without a real handshake is no WebSocket
//! server, and bytes spliced to it would be read as HTTP requests no phase ever saw.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{CONNECTION, UPGRADE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::problem::{ErrorCode, Problem};
use crate::snapshot::RouteSpec;

/// The `Sec-WebSocket-Accept` the upstream must answer with, when the route allows WebSocket
/// and the request is an upgrade the hop-by-hop phase kept; `Ok(None)` for an ordinary
/// request. An upgrade whose connection cannot be handed over (`can_upgrade` false: not an
/// HTTP/1.1 connection the listener can give up) goes on as an ordinary request, its upgrade
/// headers removed. A handshake no WebSocket server could accept is 400, and nothing is
/// forwarded.
// The refusal is the problem document itself; it is the rare path.
#[allow(clippy::result_large_err)]
pub fn upgrade(route: &RouteSpec, parts: &mut Parts, can_upgrade: bool) -> Result<Option<HeaderValue>, Problem> {
    if !route.websocket || !parts.headers.contains_key(UPGRADE) {
        return Ok(None);
    }
    let Some(accept) = accept_for(&parts.headers) else {
        // RFC 6455 §4.4: a refused version is answered with the versions understood.
        return Err(Problem::new(
            ErrorCode::BadRequest,
            "a WebSocket upgrade needs one Sec-WebSocket-Key of 16 base64 bytes and Sec-WebSocket-Version: 13",
        )
        .with_header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13")));
    };
    if !can_upgrade {
        parts.headers.remove(UPGRADE);
        parts.headers.remove(CONNECTION);
        return Ok(None);
    }
    Ok(Some(accept))
}

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
pub const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
/// RFC 6455 §1.3: appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` an upstream must answer the client's handshake with; `None`
/// when the handshake is not one a WebSocket server could accept (the key missing, repeated
/// or not 16 bytes of base64; the version missing, repeated or not 13).
pub fn accept_for(request: &HeaderMap) -> Option<HeaderValue> {
    let key = single(request, &SEC_WEBSOCKET_KEY)?;
    if single(request, &SEC_WEBSOCKET_VERSION)?.as_bytes().trim_ascii() != b"13" {
        return None;
    }
    let key = key.as_bytes().trim_ascii();
    // 16 bytes are 24 base64 characters with padding; nothing else decodes to 16.
    let mut decoded = [0u8; 18];
    if key.len() != 24 || STANDARD.decode_slice(key, &mut decoded).ok()? != 16 {
        return None;
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(GUID);
    HeaderValue::from_str(&STANDARD.encode(context.finish())).ok()
}

/// Whether the upstream's 101 carries exactly the `Sec-WebSocket-Accept` expected.
pub fn accepted(response: &HeaderMap, expected: &HeaderValue) -> bool {
    single(response, &SEC_WEBSOCKET_ACCEPT).is_some_and(|v| v.as_bytes().trim_ascii() == expected.as_bytes())
}

fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn the_rfc_6455_sample_key_calls_for_the_rfc_accept_and_nothing_else_passes() {
        let ok = request(&[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13")]);
        let expected = accept_for(&ok).expect("a valid handshake");
        assert_eq!(expected, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(accepted(&request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]), &expected));
        assert!(!accepted(&request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo")]), &expected));
        assert!(!accepted(&HeaderMap::new(), &expected));
        let mut twice = request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]);
        twice.append(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!accepted(&twice, &expected), "two answers are no answer");
    }

    #[test]
    fn keys_that_are_not_16_base64_bytes_and_versions_other_than_13_are_refused() {
        let bad: [&[(&'static str, &'static str)]; 6] = [
            &[("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "8")],
            &[("sec-websocket-key", "c2hvcnQ="), ("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=!"), ("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZSEh"), ("sec-websocket-version", "13")],
        ];
        for headers in bad {
            assert_eq!(accept_for(&request(headers)), None, "{headers:?}");
        }
    }
}
