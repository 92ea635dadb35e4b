//! The JSON access log (SPEC §7): one object per request, every field always present.
//!
//! Lines are rendered on the request's task and handed to one writer thread through a bounded
//! channel, so a slow disk never blocks a request; when the channel is full the line is
//! dropped and counted rather than stalling traffic. Never logged: `Authorization`, cookies,
//! API keys, query strings.
//!
//! A line renders the request's [`Record`], whose every field a client can choose is bounded
//! already (`portcullis_core::record::log_text`): a line stays short whatever was sent, and a
//! value that is not UTF-8 is logged with its stray bytes escaped rather than dropped.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use portcullis_core::clock::Clock;
use portcullis_core::record::Record;
use portcullis_core::snapshot::LogSink;
use serde::Serialize;

/// Lines buffered between request tasks and the writer thread.
const CHANNEL_LINES: usize = 16 * 1024;

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

/// A request's record, written as one line when its response body ends (or the client goes
/// away).
pub struct LogOnEnd {
    log: AccessLog,
    record: Box<Record>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LogOnEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOnEnd").field("record", &self.record).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    request_id: &'a str,
    trace_id: &'a str,
    client_ip: String,
    method: Cow<'a, str>,
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
    /// The phase (and the policy, limit, rule or provider) that refused or answered.
    decided_by: Option<&'a str>,
    /// The WAF's findings (score, rule ids, action); null when nothing matched.
    waf: Option<WafField>,
}

/// The access log's `waf`: `{"score": 10, "crs_score": 13, "rules": ["942100", "941100"],
/// "action": "block"}`; `crs_score` is null when `waf.crs` is not configured.
#[derive(serde::Serialize)]
struct WafField {
    /// The built-in rules' anomaly score.
    score: u32,
    /// CRS's inbound anomaly score.
    crs_score: Option<u32>,
    rules: Vec<String>,
    action: &'static str,
}

impl LogOnEnd {
    pub fn new(log: &AccessLog, record: Box<Record>, clock: Arc<dyn Clock>) -> Self {
        Self { log: log.clone(), record, clock }
    }

    pub fn finish(self, bytes_out: u64) {
        let r = &self.record;
        let elapsed_ns = self.clock.monotonic().saturating_sub(r.started);
        let ts = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(r.ts_millis).unwrap_or(0));
        let line = Line {
            ts: humantime::format_rfc3339_millis(ts).to_string(),
            request_id: &r.request_id,
            trace_id: &r.trace_id,
            client_ip: r.client_ip.to_string(),
            method: r.method_text(),
            host: r.host.as_deref(),
            path: &r.path,
            route: r.route.as_deref(),
            upstream: r.upstream.as_deref(),
            target: r.target.as_deref(),
            status: r.status,
            duration_ms: round3(elapsed_ns as f64 / 1_000_000.0),
            upstream_ms: r.upstream_ms.map(round3),
            bytes_in: r.bytes_in.as_ref().map_or(0, |s| s.bytes()),
            bytes_out,
            consumer: r.consumer.as_deref(),
            auth: r.auth.as_deref(),
            outcome: r.outcome.map_or("ok", portcullis_core::ErrorCode::as_str),
            cache: r.cache,
            user_agent: r.user_agent.as_deref(),
            tls: r.tls.as_ref().map(|t| t.version),
            sni: r.sni_text(),
            decided_by: r.decided_by.as_deref(),
            waf: r.waf.as_ref().map(|w| WafField {
                score: w.score,
                crs_score: w.crs_score,
                rules: w.rules.iter().map(ToString::to_string).collect(),
                action: w.action.as_str(),
            }),
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
