//! The JSON access log (SPEC §7): one object per request, every field always present.
//!
//! Lines are rendered on the request's task and handed to one writer thread through a bounded
//! channel, so a slow disk never blocks a request; when the channel is full the line is
//! dropped and counted rather than stalling traffic. Never logged: `Authorization`, cookies,
//! API keys, query strings.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Instant, SystemTime};

use portcullis_core::RequestContext;
use portcullis_core::snapshot::LogSink;
use serde::Serialize;

use crate::body::BodyStats;

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
    /// The negotiated TLS version (`TLSv1.3`); `None` on plain connections.
    pub tls: Option<&'static str>,
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
            method: parts.method.as_str().to_owned(),
            host: ctx.host.clone(),
            path: parts.uri.path().to_owned(),
            user_agent: portcullis_core::pipeline::user_agent(parts).map(str::to_owned),
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
            tls: ctx.tls.as_ref().map(|t| t.version),
        })
    }

    /// Records what the stages decided.
    pub fn note_context(&mut self, ctx: &RequestContext) {
        self.route = ctx.route.as_ref().map(|r| r.name.clone());
        self.consumer.clone_from(&ctx.consumer);
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
            tls: self.tls,
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
