//! The JSON access log (SPEC §7): one object per request, every field always present.
//!
//! Lines are rendered on the request's task and handed to one writer thread through a bounded
//! channel, so a slow disk never blocks a request; when the channel is full the line is
//! dropped and counted rather than stalling traffic. Never logged: `Authorization`, cookies,
//! API keys, query strings.
//!
//! Every field a client can choose is bounded ([`log_text`]): a line stays short whatever was
//! sent (a 30 KB `User-Agent` is no 30 KB line), and a value that is not UTF-8 is logged with
//! its stray bytes escaped rather than dropped, so what a client sent stays visible.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Instant, SystemTime};

use http::header::USER_AGENT;
use portcullis_core::snapshot::LogSink;
use portcullis_core::{RequestContext, TlsInfo};
use serde::Serialize;

use crate::body::BodyStats;

/// Lines buffered between request tasks and the writer thread.
const CHANNEL_LINES: usize = 16 * 1024;

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

/// A handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer thread for `sink` (none for `off`).
    pub fn start(sink: &LogSink) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            LogSink::Off => return Ok(Self { tx: None, dropped: Arc::default() }),
            LogSink::Stdout => Box::new(std::io::stdout()),
            LogSink::Stderr => Box::new(std::io::stderr()),
            LogSink::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = sync_channel(CHANNEL_LINES);
        std::thread::Builder::new().name("access-log".into()).spawn(move || write_lines(&rx, out))?;
        Ok(Self { tx: Some(tx), dropped: Arc::default() })
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: String) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(line)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_lines(rx: &Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        // Drain what is already queued, then flush once: one syscall per burst, not per line.
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(more.as_bytes());
        }
        let _ = out.flush();
    }
}

/// What is known of a request when it starts; completed when its response body ends.
#[derive(Debug)]
pub struct PendingLog {
    log: AccessLog,
    started: Instant,
    ts: SystemTime,
    pub request_id: String,
    pub trace_id: String,
    pub client_ip: IpAddr,
    pub method: String,
    pub host: Option<String>,
    pub path: String,
    pub user_agent: Option<String>,
    pub route: Option<Arc<str>>,
    pub upstream: Option<Arc<str>>,
    pub target: Option<Arc<str>>,
    pub status: u16,
    pub upstream_ms: Option<f64>,
    pub bytes_in: Option<Arc<BodyStats>>,
    pub consumer: Option<String>,
    pub auth: Option<Arc<str>>,
    pub outcome: Option<&'static str>,
    pub cache: Option<&'static str>,
    /// The connection's TLS session (version and SNI); `None` on plain connections.
    pub tls: Option<Arc<TlsInfo>>,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    request_id: &'a str,
    trace_id: &'a str,
    client_ip: String,
    method: &'a str,
    host: Option<&'a str>,
    path: &'a str,
    route: Option<&'a str>,
    upstream: Option<&'a str>,
    target: Option<&'a str>,
    status: u16,
    duration_ms: f64,
    upstream_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
    consumer: Option<&'a str>,
    auth: Option<&'a str>,
    outcome: &'a str,
    cache: Option<&'a str>,
    user_agent: Option<&'a str>,
    tls: Option<&'a str>,
    /// The server name the client asked for in the TLS handshake: beside `host`, it shows
    /// domain fronting (SNI for one name, `Host` for another).
    sni: Option<Cow<'a, str>>,
}

impl PendingLog {
    pub fn start(log: &AccessLog, parts: &http::request::Parts, ctx: &RequestContext, started: Instant) -> Box<Self> {
        Box::new(Self {
            log: log.clone(),
            started,
            ts: SystemTime::now(),
            request_id: ctx.request_id.to_str().unwrap_or_default().to_owned(),
            trace_id: ctx.trace.trace_id_hex(),
            client_ip: ctx.client_ip,
            method: log_text(parts.method.as_str().as_bytes(), MAX_LOGGED_METHOD).into_owned(),
            // The host matched on; a `Host` that could not be read as one is logged as sent.
            host: ctx
                .host
                .as_deref()
                .map(str::as_bytes)
                .or_else(|| ctx.original_host.as_ref().map(http::HeaderValue::as_bytes))
                .map(|h| log_text(h, MAX_LOGGED_HOST).into_owned()),
            path: log_text(parts.uri.path().as_bytes(), MAX_LOGGED_PATH).into_owned(),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .map(|v| log_text(v.as_bytes(), MAX_LOGGED_USER_AGENT).into_owned()),
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
        })
    }

    /// Records what the stages decided.
    pub fn note_context(&mut self, ctx: &RequestContext) {
        self.route = ctx.route.as_ref().map(|r| r.name.clone());
        self.consumer = ctx.consumer.as_deref().map(|c| log_text(c.as_bytes(), MAX_LOGGED_CONSUMER).into_owned());
        self.auth.clone_from(&ctx.auth);
        self.outcome = ctx.outcome.map(portcullis_core::ErrorCode::as_str);
        self.cache = ctx.cache;
    }

    pub(crate) fn finish(self: Box<Self>, bytes_out: u64) {
        let line = Line {
            ts: humantime::format_rfc3339_millis(self.ts).to_string(),
            request_id: &self.request_id,
            trace_id: &self.trace_id,
            client_ip: self.client_ip.to_string(),
            method: &self.method,
            host: self.host.as_deref(),
            path: &self.path,
            route: self.route.as_deref(),
            upstream: self.upstream.as_deref(),
            target: self.target.as_deref(),
            status: self.status,
            duration_ms: round3(self.started.elapsed().as_secs_f64() * 1000.0),
            upstream_ms: self.upstream_ms.map(round3),
            bytes_in: self.bytes_in.as_ref().map_or(0, |s| s.bytes.load(Ordering::Relaxed)),
            bytes_out,
            consumer: self.consumer.as_deref(),
            auth: self.auth.as_deref(),
            outcome: self.outcome.unwrap_or("ok"),
            cache: self.cache,
            user_agent: self.user_agent.as_deref(),
            tls: self.tls.as_ref().map(|t| t.version),
            sni: self
                .tls
                .as_ref()
                .and_then(|t| t.server_name.as_deref())
                .map(|n| log_text(n.as_bytes(), MAX_LOGGED_SNI)),
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            self.log.send(text);
        }
    }
}

fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
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
