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

/// A fresh, non-zero span id.
pub fn new_span_id() -> [u8; 8] {
    nonzero_u64().to_be_bytes()
}

/// OpenTelemetry's trace-id ratio rule: the low 63 bits of the trace id's last 8 bytes
/// against `ratio` × 2⁶³ (0 never, 1 always).
pub fn ratio_samples(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 || ratio.is_nan() {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
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
    /// Continues the caller's trace when `traceparent` is valid, else starts one. The
    /// caller's sampled flag is believed only when `parent_trusted` (the peer is one of
    /// `trusted_proxies`): otherwise a client could force every request to be traced.
    /// Without a believed flag the decision is `ratio` on the trace id (parent-based ratio
    /// sampling, as OpenTelemetry's `ParentBased(TraceIdRatioBased)`), so every gateway
    /// of a trace decides alike.
    pub fn continue_or_start(traceparent: Option<&HeaderValue>, parent_trusted: bool, ratio: f64) -> Self {
        let span_id = new_span_id();
        if let Some(parsed) = traceparent.and_then(|v| parse_traceparent(v.as_bytes())) {
            let (trace_id, parent, flags) = parsed;
            let sampled = if parent_trusted { flags & 1 == 1 } else { ratio_samples(&trace_id, ratio) };
            return Self { trace_id, span_id, parent_span_id: Some(parent), sampled };
        }
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&nonzero_u64().to_be_bytes());
        trace_id[8..].copy_from_slice(&next_u64().to_be_bytes());
        Self { trace_id, span_id, parent_span_id: None, sampled: ratio_samples(&trace_id, ratio) }
    }

    /// The `traceparent` for a child span of this trace (an upstream attempt's client span).
    pub fn traceparent_for(&self, span_id: [u8; 8]) -> HeaderValue {
        Self { span_id, ..*self }.traceparent()
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
        let ctx = TraceContext::continue_or_start(Some(&incoming), true, 0.0);
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
            let ctx = TraceContext::continue_or_start(Some(&v), true, 1.0);
            assert_eq!(ctx.parent_span_id, None, "{bad}");
            assert!(ctx.sampled);
        }
    }

    #[test]
    fn an_untrusted_callers_sampled_flag_is_not_believed() {
        let forced = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let ctx = TraceContext::continue_or_start(Some(&forced), false, 0.0);
        assert!(!ctx.sampled, "a client must not force sampling");
        assert_eq!(ctx.parent_span_id, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        let trusted = TraceContext::continue_or_start(Some(&forced), true, 0.0);
        assert!(trusted.sampled);
        let unsampled = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(!TraceContext::continue_or_start(Some(&unsampled), true, 1.0).sampled);
        assert!(TraceContext::continue_or_start(Some(&unsampled), false, 1.0).sampled);
    }

    #[test]
    fn ratio_sampling_follows_the_trace_id() {
        let low = [0u8; 16];
        let mut high = [0u8; 16];
        high[8] = 0xff;
        assert!(ratio_samples(&low, 0.5) && !ratio_samples(&high, 0.5));
        assert!(!ratio_samples(&low, 0.0) && ratio_samples(&high, 1.0));
        let sampled = (0..10_000).filter(|_| TraceContext::continue_or_start(None, false, 0.25).sampled).count();
        assert!((2_000..3_000).contains(&sampled), "{sampled} of 10000 at 0.25");
    }

    #[test]
    fn a_child_traceparent_keeps_the_trace_and_flags() {
        let ctx = TraceContext::continue_or_start(None, false, 1.0);
        let child = ctx.traceparent_for([1, 2, 3, 4, 5, 6, 7, 8]);
        let child = child.to_str().unwrap_or_default();
        assert_eq!(child, format!("00-{}-0102030405060708-01", ctx.trace_id_hex()));
    }
}
