//! What one request leaves behind for the log, the metrics and traces: one [`Record`], begun
//! at intake and completed by the pipeline's last phase, so what is logged and what is counted
//! are one struct and cannot drift (SPEC §7). The access-log writer renders it as a JSON line
//! when the response body ends; the metrics read it when the response head goes out.
//!
//! Every field a client chooses is cut to a bound here, with a mark saying how much was left
//! out, and bytes that are not UTF-8 are escaped, never dropped ([`log_text`]): a 30 KB
//! `User-Agent` refused with 431 does not make a 30 KB line, and an overlong `\xc0\xae` stays
//! visible as evidence.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::header::USER_AGENT;
use http::request::Parts;

use crate::context::{RequestContext, TlsInfo};
use crate::problem::ErrorCode;

/// The most bytes logged of each field a client chooses; past it the value is cut and
/// `…[+N bytes]` says how much was left out.
pub const MAX_LOGGED_USER_AGENT: usize = 512;
pub const MAX_LOGGED_PATH: usize = 1024;
/// DNS names are at most 253 bytes; a port adds 6.
pub const MAX_LOGGED_HOST: usize = 256;
pub const MAX_LOGGED_SNI: usize = 256;
/// Extension methods are tokens of any length.
pub const MAX_LOGGED_METHOD: usize = 32;
/// The consumer may be a JWT `sub`, which the token's issuer chose.
pub const MAX_LOGGED_CONSUMER: usize = 256;

/// One request as the log and the metrics see it.
#[derive(Debug)]
pub struct Record {
    /// The request's [`Now`](crate::clock::Now): `ts` and the start of `duration_ms`.
    pub ts_millis: i64,
    pub started: u64,
    pub request_id: String,
    pub trace_id: String,
    pub client_ip: IpAddr,
    pub method: http::Method,
    /// The host matched on; a `Host` that could not be read as one, as sent (capped).
    pub host: Option<String>,
    /// The path the client asked for, before any rewrite, without the query (capped).
    pub path: String,
    pub user_agent: Option<String>,
    pub route: Option<Arc<str>>,
    pub upstream: Option<Arc<str>>,
    pub target: Option<Arc<str>>,
    pub status: u16,
    pub upstream_ms: Option<f64>,
    /// The client's body as it streamed (`bytes_in`).
    pub bytes_in: Option<Arc<BodyStats>>,
    pub consumer: Option<String>,
    pub auth: Option<Arc<str>>,
    pub outcome: Option<ErrorCode>,
    /// `hit`, `miss` or `bypass` on a cached route.
    pub cache: Option<&'static str>,
    pub tls: Option<Arc<TlsInfo>>,
    /// `phase` or `phase:name` of the step that refused or answered (SPEC §7 `decided_by`).
    pub decided_by: Option<String>,
    /// The limit that refused (`portcullis_rate_limited_total{route,limit}`).
    pub rate_limited: Option<Arc<str>>,
    /// The usage plan whose quota counted this request (`portcullis_plan_requests_total{plan}`).
    pub plan: Option<Arc<str>>,
    /// The provider whose check refused (`portcullis_auth_failures_total{provider,code}`).
    pub auth_failed: Option<Arc<str>>,
    /// What the WAF found when a rule matched (the log's `waf`, `portcullis_waf_matches_total`).
    pub waf: Option<crate::context::WafFinding>,
}

impl Record {
    /// What is known when the request arrives. `detailed`: copy the texts only the access log
    /// shows (path, host, user agent); the metrics need none of them.
    pub fn start(parts: &Parts, ctx: &RequestContext, detailed: bool) -> Box<Self> {
        let text = |bytes: &[u8], max| log_text(bytes, max).into_owned();
        Box::new(Self {
            ts_millis: ctx.now.unix_millis,
            started: ctx.now.monotonic,
            request_id: if detailed { ctx.request_id.to_str().unwrap_or_default().to_owned() } else { String::new() },
            trace_id: if detailed { ctx.trace.trace_id_hex() } else { String::new() },
            client_ip: ctx.client_ip,
            method: parts.method.clone(),
            host: detailed
                .then(|| {
                    ctx.host
                        .as_deref()
                        .map(str::as_bytes)
                        .or_else(|| ctx.original_host.as_ref().map(http::HeaderValue::as_bytes))
                        .map(|h| text(h, MAX_LOGGED_HOST))
                })
                .flatten(),
            path: if detailed { text(parts.uri.path().as_bytes(), MAX_LOGGED_PATH) } else { String::new() },
            user_agent: detailed
                .then(|| parts.headers.get(USER_AGENT).map(|v| text(v.as_bytes(), MAX_LOGGED_USER_AGENT)))
                .flatten(),
            route: None,
            upstream: None,
            target: None,
            status: 0,
            upstream_ms: None,
            bytes_in: None,
            consumer: None,
            auth: None,
            outcome: None,
            cache: None,
            tls: ctx.tls.clone(),
            decided_by: None,
            rate_limited: None,
            plan: None,
            auth_failed: None,
            waf: None,
        })
    }

    /// What the phases decided, taken from the context when the answer's head is ready.
    pub fn note(&mut self, ctx: &RequestContext, status: u16) {
        self.status = status;
        self.route = ctx.route.as_ref().map(|r| r.name.clone());
        self.consumer = ctx.consumer.as_deref().map(|c| log_text(c.as_bytes(), MAX_LOGGED_CONSUMER).into_owned());
        self.auth.clone_from(&ctx.auth);
        self.outcome = ctx.outcome;
        self.cache = ctx.cache;
        self.decided_by = ctx.decisions.decided_by().map(|d| d.to_string());
        self.auth_failed.clone_from(&ctx.auth_failed);
        self.waf.clone_from(&ctx.waf);
    }

    /// The method as logged (extension methods capped).
    pub fn method_text(&self) -> Cow<'_, str> {
        log_text(self.method.as_str().as_bytes(), MAX_LOGGED_METHOD)
    }

    /// The SNI as logged (capped): beside `host` it shows domain fronting.
    pub fn sni_text(&self) -> Option<Cow<'_, str>> {
        self.tls.as_ref()?.server_name.as_deref().map(|n| log_text(n.as_bytes(), MAX_LOGGED_SNI))
    }
}

/// How far a client's body got, shared between the body as it streams, the exchange that
/// sends it and the record: a failure while it is still arriving is put down to the client,
/// never to the upstream, and `bytes_in` is what was read.
#[derive(Debug, Default)]
pub struct BodyStats {
    pub bytes: AtomicU64,
    pub exceeded: AtomicBool,
    /// The client sent nothing for the stall timeout mid-body.
    pub stalled: AtomicBool,
    /// The client's body broke off (connection closed or reset, malformed chunking).
    pub broken: AtomicBool,
    /// The body is waiting for the client's next bytes (rather than for the upstream to take
    /// the last ones).
    pub waiting: AtomicBool,
    /// When the client's last byte was taken.
    ended: OnceLock<Instant>,
}

impl BodyStats {
    /// When the whole body had arrived from the client; `None` while it is still arriving.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended.get().copied()
    }

    /// The body is incomplete and waits for the client (not for the upstream to read it).
    pub fn waiting_for_client(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The client's last byte was taken (the stall deadline and the blame rule read it; it
    /// measures the body's progress, not the request's time, so it reads `Instant` itself).
    pub fn mark_ended(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        let _ = self.ended.set(Instant::now());
    }

    /// A body that got as far as described (for tests of who is to blame).
    pub fn seen(waiting: bool, ended: Option<Instant>, stalled: bool) -> Self {
        let stats = Self::default();
        stats.waiting.store(waiting, Ordering::Relaxed);
        stats.stalled.store(stalled, Ordering::Relaxed);
        if let Some(at) = ended {
            let _ = stats.ended.set(at);
        }
        stats
    }
}

/// `bytes` as log text of at most `max` bytes (plus the mark): UTF-8 as it is, any byte that
/// is not UTF-8 as `\xNN`; a longer value is cut on a character boundary and ends with
/// `…[+N bytes]`, N counting the bytes of `bytes` left out. Borrowed when nothing changes.
pub fn log_text(bytes: &[u8], max: usize) -> Cow<'_, str> {
    if bytes.len() <= max
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(max.min(bytes.len()) + 24);
    let mut taken = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let room = max - out.len();
        if valid.len() > room {
            let cut = (0..=room).rev().find(|&i| valid.is_char_boundary(i)).unwrap_or(0);
            out.push_str(&valid[..cut]);
            return Cow::Owned(cut_off(out, bytes.len() - taken - cut));
        }
        out.push_str(valid);
        taken += valid.len();
        for byte in chunk.invalid() {
            if out.len() + 4 > max {
                return Cow::Owned(cut_off(out, bytes.len() - taken));
            }
            let _ = write!(out, "\\x{byte:02x}");
            taken += 1;
        }
    }
    Cow::Owned(out)
}

fn cut_off(mut out: String, left_out: usize) -> String {
    let _ = write!(out, "…[+{left_out} bytes]");
    out
}

#[cfg(test)]
mod tests {
    use super::log_text;

    #[test]
    fn text_within_the_cap_is_logged_as_it_is() {
        assert_eq!(log_text(b"curl/8.5", 512), "curl/8.5");
        assert_eq!(log_text("Mözilla ✓".as_bytes(), 512), "Mözilla ✓");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_escaped_never_dropped() {
        assert_eq!(log_text(b"caf\xc3\xa9 \xff\xfe bot", 512), "café \\xff\\xfe bot");
        assert_eq!(log_text(b"\xc0\xae", 512), "\\xc0\\xae", "an overlong dot stays visible");
    }

    #[test]
    fn long_values_are_cut_with_a_mark_saying_how_much_was_left_out() {
        let long = "A".repeat(30_000);
        assert_eq!(log_text(long.as_bytes(), 512), format!("{}…[+29488 bytes]", &long[..512]));
        // Never inside a character: `é` is two bytes.
        assert_eq!(log_text("aé".as_bytes(), 2), "a…[+2 bytes]");
        // Nor inside an escape.
        assert_eq!(log_text(b"ab\xff", 4), "ab…[+1 bytes]");
        assert_eq!(log_text(b"\xff\xff\xff", 8), "\\xff\\xff…[+1 bytes]");
    }
}
