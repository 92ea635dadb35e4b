//! Request ids and W3C trace context (SPEC §3 `X-Request-Id`, `traceparent`).
//!
//! Ids need to be unique, not secret: a per-thread SplitMix64 seeded from the OS-random
//! `RandomState` keys gives them without a lock or a syscall per request.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use http::HeaderValue;

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
}

/// A fast non-cryptographic random u64 (SplitMix64).
pub fn next_u64() -> u64 {
    RNG.with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn nonzero_u64() -> u64 {
    loop {
        let v = next_u64();
        if v != 0 {
            return v;
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

/// The longest client request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A client-sent request id is kept when it is 1–128 of `[A-Za-z0-9._-]`.
pub fn is_sane_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A fresh request id: 32 lowercase hex digits.
pub fn new_request_id() -> HeaderValue {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&next_u64().to_be_bytes());
    raw[8..].copy_from_slice(&next_u64().to_be_bytes());
    let mut out = [0u8; 32];
    hex_into(&mut out, &raw);
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The W3C trace context of one request: the trace it belongs to and the gateway's own span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The gateway's server span, sent upstream as the parent.
    pub span_id: [u8; 8],
    /// The caller's span, when the trace was continued.
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

impl TraceContext {
    /// Continues the caller's trace when `traceparent` is valid, else starts one.
    pub fn continue_or_start(traceparent: Option<&HeaderValue>, sample: impl FnOnce() -> bool) -> Self {
        let span_id = nonzero_u64().to_be_bytes();
        if let Some(parsed) = traceparent.and_then(|v| parse_traceparent(v.as_bytes())) {
            let (trace_id, parent, flags) = parsed;
            return Self { trace_id, span_id, parent_span_id: Some(parent), sampled: flags & 1 == 1 };
        }
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&nonzero_u64().to_be_bytes());
        trace_id[8..].copy_from_slice(&next_u64().to_be_bytes());
        Self { trace_id, span_id, parent_span_id: None, sampled: sample() }
    }

    /// `trace_id` as 32 hex digits (the access log's `trace_id`).
    pub fn trace_id_hex(&self) -> String {
        let mut out = [0u8; 32];
        hex_into(&mut out, &self.trace_id);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The `traceparent` to send upstream: same trace, the gateway's span as parent.
    pub fn traceparent(&self) -> HeaderValue {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&mut out[3..35], &self.trace_id);
        hex_into(&mut out[36..52], &self.span_id);
        out[54] = if self.sampled { b'1' } else { b'0' };
        HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("00"))
    }
}

fn unhex(bytes: &[u8], out: &mut [u8]) -> Option<()> {
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        if pair.iter().any(u8::is_ascii_uppercase) {
            return None;
        }
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(())
}

/// `version-traceid-parentid-flags`; all-zero ids and version `ff` are invalid.
fn parse_traceparent(value: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    if value.len() < 55 || (value.len() > 55 && value[55] != b'-') {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut version = [0u8; 1];
    unhex(&value[0..2], &mut version)?;
    if version[0] == 0xff || (version[0] == 0 && value.len() != 55) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut parent = [0u8; 8];
    let mut flags = [0u8; 1];
    unhex(&value[3..35], &mut trace_id)?;
    unhex(&value[36..52], &mut parent)?;
    unhex(&value[53..55], &mut flags)?;
    if trace_id == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace_id, parent, flags[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sane_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(is_sane_request_id(a.as_bytes()));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn insane_request_ids_are_refused() {
        assert!(is_sane_request_id(b"abc-DEF_1.2"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"a b"));
        assert!(!is_sane_request_id(b"<script>"));
        assert!(!is_sane_request_id(&[b'a'; 129]));
    }

    #[test]
    fn valid_traceparent_is_continued_with_a_new_span() {
        let incoming = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let ctx = TraceContext::continue_or_start(Some(&incoming), || false);
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(ctx.sampled);
        let out = ctx.traceparent();
        let out = out.to_str().unwrap_or_default();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!out.contains("00f067aa0ba902b7"));
        assert!(out.ends_with("-01"));
    }

    #[test]
    fn invalid_traceparent_starts_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let v = HeaderValue::from_static(bad);
            let ctx = TraceContext::continue_or_start(Some(&v), || true);
            assert_eq!(ctx.parent_span_id, None, "{bad}");
            assert!(ctx.sampled);
        }
    }
}
