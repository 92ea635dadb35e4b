//! The JSON access log (SPEC §7): one object per request, every field always present.
//!
//! Lines are rendered on the request's task and handed to one writer thread through a bounded
//! channel, so a slow disk never blocks a request; when the channel is full the line is
//! dropped and counted rather than stalling traffic. Never logged: `Authorization`, cookies,
//! API keys, query strings.
//!
//! The writer gathers lines: after each write it pauses for [`GATHER`] before it looks at the
//! channel again, and while it pauses a request hands its line over without waking it. Under
//! load that is one `write` per pause for every line that came in, instead of a thread
//! wake-up and a `write` per line (two of the chain's eight system calls per request). Only a
//! writer that finds the channel empty waits on it, so the first line after a quiet spell is
//! written at once, and an idle gateway's writer sleeps. A line therefore reaches the file at
//! most [`GATHER`] plus a `write` after its request ended; [`flush_all`] writes out every
//! line sent so far, which the gateway calls once its drain is over, before it exits.
//!
//! A line renders the request's [`Record`], whose every field a client can choose is bounded
//! already (`portcullis_core::record::log_text`): a line stays short whatever was sent, and a
//! value that is not UTF-8 is logged with its stray bytes escaped rather than dropped.

#[cfg(test)]
use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use portcullis_core::clock::Clock;
use portcullis_core::record::Record;
use portcullis_core::snapshot::LogSink;

/// Lines buffered between request tasks and the writer thread.
const CHANNEL_LINES: usize = 16 * 1024;

/// How long the writer lets lines gather after a write (see the module docs).
pub const GATHER: Duration = Duration::from_millis(10);

/// What the writer thread is handed.
enum Message {
    Line(Vec<u8>),
    /// Answer once every line sent before this one is written and flushed.
    Flush(SyncSender<()>),
}

/// A handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessLog {
    writer: Option<Arc<Writer>>,
    dropped: Arc<AtomicU64>,
}

/// The sending side of one writer thread. When the last handle goes (a reload replaced the
/// config and its last request ended), the thread writes what is left and ends.
#[derive(Debug)]
struct Writer {
    tx: SyncSender<Message>,
    thread: Thread,
}

/// Every writer started and not yet ended, for [`flush_all`].
static WRITERS: Mutex<Vec<Weak<Writer>>> = Mutex::new(Vec::new());

impl AccessLog {
    /// Starts the writer thread for `sink` (none for `off`).
    pub fn start(sink: &LogSink) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            LogSink::Off => return Ok(Self { writer: None, dropped: Arc::default() }),
            LogSink::Stdout => Box::new(std::io::stdout()),
            LogSink::Stderr => Box::new(std::io::stderr()),
            LogSink::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = sync_channel(CHANNEL_LINES);
        let handle = std::thread::Builder::new().name("access-log".into()).spawn(move || write_lines(&rx, out))?;
        let writer = Arc::new(Writer { tx, thread: handle.thread().clone() });
        let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
        writers.retain(|w| w.strong_count() > 0);
        writers.push(Arc::downgrade(&writer));
        Ok(Self { writer: Some(writer), dropped: Arc::default() })
    }

    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: Vec<u8>) {
        if let Some(writer) = &self.writer
            && let Err(TrySendError::Full(_)) = writer.tx.try_send(Message::Line(line))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes out every line any access log has been sent so far, waiting at most `timeout` in
/// all: for the end of a process, whose writer threads would otherwise die with lines still
/// gathering.
pub fn flush_all(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let writers: Vec<Arc<Writer>> =
        WRITERS.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(Weak::upgrade).collect();
    let mut waiting = Vec::with_capacity(writers.len());
    for writer in &writers {
        let (ack, done) = sync_channel(1);
        let mut message = Message::Flush(ack);
        loop {
            match writer.tx.try_send(message) {
                Ok(()) => {
                    writer.thread.unpark();
                    waiting.push(done);
                    break;
                }
                // A full channel is being emptied by the writer: wait for room, not forever.
                Err(TrySendError::Full(again)) if Instant::now() < deadline => {
                    writer.thread.unpark();
                    message = again;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
    }
    for done in waiting {
        let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

fn write_lines(rx: &Receiver<Message>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut acks = Vec::new();
    // Waits only when the channel is empty: a request's `try_send` wakes it then.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Message::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
        for ack in acks.drain(..) {
            let _ = ack.try_send(());
        }
        // Lines that arrive now queue without waking this thread; `flush_all` unparks it.
        std::thread::park_timeout(GATHER);
    }
    let _ = out.flush();
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

/// The line's fields in order, as serde renders them: [`render`]'s reference in the tests.
#[cfg(test)]
#[derive(serde::Serialize)]
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
        let elapsed_ns = self.clock.monotonic().saturating_sub(self.record.started);
        self.log.send(render(&self.record, elapsed_ns, bytes_out));
    }
}

/// The line for `r`, newline included: [`Line`]'s fields in its order, byte for byte what
/// serde_json makes of it, written straight into one buffer. serde's way (a `Line` of owned
/// strings, every string escaped byte by byte, the time through `fmt`) was 12,600 instructions
/// a line, a tenth of the full chain's user-space work per request.
fn render(r: &Record, elapsed_ns: u64, bytes_out: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(640);
    out.extend_from_slice(b"{\"ts\":\"");
    timestamp(&mut out, r.ts_millis);
    out.extend_from_slice(b"\",\"request_id\":");
    string(&mut out, &r.request_id);
    out.extend_from_slice(b",\"trace_id\":");
    string(&mut out, &r.trace_id);
    out.extend_from_slice(b",\"client_ip\":\"");
    ip(&mut out, r.client_ip);
    out.extend_from_slice(b"\",\"method\":");
    string(&mut out, &r.method_text());
    out.extend_from_slice(b",\"host\":");
    opt_string(&mut out, r.host.as_deref());
    out.extend_from_slice(b",\"path\":");
    string(&mut out, &r.path);
    out.extend_from_slice(b",\"route\":");
    opt_string(&mut out, r.route.as_deref());
    out.extend_from_slice(b",\"upstream\":");
    opt_string(&mut out, r.upstream.as_deref());
    out.extend_from_slice(b",\"target\":");
    opt_string(&mut out, r.target.as_deref());
    out.extend_from_slice(b",\"status\":");
    integer(&mut out, u64::from(r.status));
    out.extend_from_slice(b",\"duration_ms\":");
    float(&mut out, Some(round3(elapsed_ns as f64 / 1_000_000.0)));
    out.extend_from_slice(b",\"upstream_ms\":");
    float(&mut out, r.upstream_ms.map(round3));
    out.extend_from_slice(b",\"bytes_in\":");
    integer(&mut out, r.bytes_in.as_ref().map_or(0, |s| s.bytes()));
    out.extend_from_slice(b",\"bytes_out\":");
    integer(&mut out, bytes_out);
    out.extend_from_slice(b",\"consumer\":");
    opt_string(&mut out, r.consumer.as_deref());
    out.extend_from_slice(b",\"auth\":");
    opt_string(&mut out, r.auth.as_deref());
    out.extend_from_slice(b",\"outcome\":");
    string(&mut out, r.outcome.map_or("ok", portcullis_core::ErrorCode::as_str));
    out.extend_from_slice(b",\"cache\":");
    opt_string(&mut out, r.cache);
    out.extend_from_slice(b",\"user_agent\":");
    opt_string(&mut out, r.user_agent.as_deref());
    out.extend_from_slice(b",\"tls\":");
    opt_string(&mut out, r.tls.as_ref().map(|t| t.version));
    out.extend_from_slice(b",\"sni\":");
    opt_string(&mut out, r.sni_text().as_deref());
    out.extend_from_slice(b",\"decided_by\":");
    opt_string(&mut out, r.decided_by.as_deref());
    out.extend_from_slice(b",\"waf\":");
    match r.waf.as_ref().map(waf_field) {
        // Rare (a rule matched): serde writes it.
        Some(waf) if serde_json::to_writer(&mut out, &waf).is_ok() => {}
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
    out
}

fn waf_field(w: &portcullis_core::context::WafFinding) -> WafField {
    WafField {
        score: w.score,
        crs_score: w.crs_score,
        rules: w.rules.iter().map(ToString::to_string).collect(),
        action: w.action.as_str(),
    }
}

/// A JSON string. Most values need no escaping, which one pass over the bytes (without an
/// early exit, so it vectorises) tells; the others go through serde_json's escaping.
fn string(out: &mut Vec<u8>, s: &str) {
    let plain = !s.bytes().fold(false, |special, b| special | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"null");
    }
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn integer(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// serde_json's number (null when not finite), or null.
fn float(out: &mut Vec<u8>, x: Option<f64>) {
    match x {
        Some(x) if serde_json::to_writer(&mut *out, &x).is_ok() => {}
        _ => out.extend_from_slice(b"null"),
    }
}

/// The address as `Display` writes it; IPv4, the common case, without `fmt`.
fn ip(out: &mut Vec<u8>, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        integer(out, u64::from(octet));
    }
}

thread_local! {
    /// The last second rendered and its `YYYY-MM-DDTHH:MM:SS`: lines of one second share it.
    static SECOND: std::cell::RefCell<(u64, Vec<u8>)> = const { std::cell::RefCell::new((u64::MAX, Vec::new())) };
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC) of Unix milliseconds, as
/// `humantime::format_rfc3339_millis` writes it; a time before the epoch is the epoch.
fn timestamp(out: &mut Vec<u8>, unix_millis: i64) {
    let millis = u64::try_from(unix_millis).unwrap_or(0);
    let (secs, frac) = (millis / 1000, millis % 1000);
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            text.clear();
            let _ = write!(text, "{}", humantime::format_rfc3339_seconds(at));
            // Without its `Z`: the milliseconds go before it.
            text.pop();
            *second = secs;
        }
        out.extend_from_slice(text);
    });
    out.push(b'.');
    // `frac` is below 1000.
    out.extend_from_slice(&[b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8]);
    out.push(b'Z');
}

fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use portcullis_core::TlsInfo;
    use portcullis_core::context::{WafAction, WafFinding};
    use portcullis_core::record::{BodyStats, Record};
    use portcullis_core::snapshot::LogSink;
    use portcullis_waf::RuleId;

    use super::{AccessLog, Line, WafField, flush_all, render, round3};

    /// A fresh file path under the temp dir (removed by the guard).
    struct TempFile(PathBuf);

    impl TempFile {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            Self(std::env::temp_dir().join(format!("pcs-access-{}-{n}.jsonl", std::process::id())))
        }

        fn lines(&self) -> Vec<String> {
            std::fs::read_to_string(&self.0).unwrap_or_default().lines().map(str::to_owned).collect()
        }

        /// Polls (bounded) until the file holds `n` lines.
        fn wait_for(&self, n: usize) -> Vec<String> {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let lines = self.lines();
                if lines.len() >= n || Instant::now() > deadline {
                    return lines;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn numbered(log: &AccessLog, range: std::ops::Range<usize>) {
        for i in range {
            log.send(format!("{{\"n\":{i}}}\n").into_bytes());
        }
    }

    fn expected(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{{\"n\":{i}}}")).collect()
    }

    #[test]
    fn flush_all_writes_every_line_sent_so_far_in_order() {
        let file = TempFile::new();
        let log = AccessLog::start(&LogSink::File(file.0.clone())).expect("writer");
        // The first line wakes the writer; the rest arrive while it gathers.
        numbered(&log, 0..1000);
        flush_all(Duration::from_secs(20));
        assert_eq!(file.lines(), expected(0..1000));
        numbered(&log, 1000..1010);
        flush_all(Duration::from_secs(20));
        assert_eq!(file.lines(), expected(0..1010));
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_lone_line_is_written_without_a_flush() {
        let file = TempFile::new();
        let log = AccessLog::start(&LogSink::File(file.0.clone())).expect("writer");
        numbered(&log, 0..1);
        assert_eq!(file.wait_for(1), expected(0..1));
        // And one after a quiet spell, once the writer waits on the channel again.
        std::thread::sleep(super::GATHER * 3);
        numbered(&log, 1..2);
        assert_eq!(file.wait_for(2), expected(0..2));
    }

    #[test]
    fn lines_sent_before_the_last_handle_goes_are_written() {
        let file = TempFile::new();
        let log = AccessLog::start(&LogSink::File(file.0.clone())).expect("writer");
        let clone = log.clone();
        numbered(&log, 0..300);
        drop(log);
        numbered(&clone, 300..600);
        drop(clone);
        assert_eq!(file.wait_for(600), expected(0..600));
    }

    /// The line as serde made it before [`render`] (the `Line` struct, `humantime`).
    fn reference(r: &Record, elapsed_ns: u64, bytes_out: u64) -> Vec<u8> {
        let ts = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(r.ts_millis).unwrap_or(0));
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
        let mut text = serde_json::to_vec(&line).expect("serialises");
        text.push(b'\n');
        text
    }

    fn bare(ts_millis: i64, client_ip: IpAddr) -> Record {
        Record {
            ts_millis,
            started: 0,
            request_id: "0af7651916cd43dd8448eb211c80319c".into(),
            trace_id: String::new(),
            client_ip,
            method: http::Method::GET,
            host: None,
            path: "/".into(),
            user_agent: None,
            route: None,
            upstream: None,
            target: None,
            status: 404,
            upstream_ms: None,
            bytes_in: None,
            consumer: None,
            auth: None,
            outcome: Some(portcullis_core::ErrorCode::NoRoute),
            cache: None,
            tls: None,
            decided_by: Some("route".into()),
            rate_limited: None,
            plan: None,
            auth_failed: None,
            waf: None,
        }
    }

    fn full(ts_millis: i64, client_ip: IpAddr, odd: &str) -> Record {
        let stats = BodyStats::default();
        stats.bytes.store(12_345, Ordering::Relaxed);
        Record {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            method: http::Method::from_bytes(b"PROPFIND").expect("method"),
            host: Some(format!("api.example.{odd}")),
            path: format!("/orders/{odd}/x"),
            user_agent: Some(format!("wrk {odd} \u{e9}\u{1F600}")),
            route: Some(Arc::from("orders")),
            upstream: Some(Arc::from("orders-up")),
            target: Some(Arc::from("http://127.0.0.1:9000")),
            status: 200,
            upstream_ms: Some(1.234_567_8),
            bytes_in: Some(Arc::new(stats)),
            consumer: Some(format!("user-{odd}")),
            auth: Some(Arc::from("idp")),
            outcome: None,
            cache: Some("hit"),
            tls: Some(Arc::new(TlsInfo {
                version: "TLSv1.3",
                server_name: Some(format!("sni.{odd}")),
                client_cert: None,
            })),
            decided_by: None,
            waf: Some(WafFinding {
                score: 10,
                crs_score: Some(13),
                rules: [RuleId(942_100), RuleId(941_100)].into_iter().collect(),
                action: WafAction::Detect,
            }),
            ..bare(ts_millis, client_ip)
        }
    }

    #[test]
    fn a_line_is_byte_for_byte_what_serde_wrote() {
        let ips: [IpAddr; 4] = [
            Ipv4Addr::new(127, 0, 0, 1).into(),
            Ipv4Addr::new(203, 0, 113, 255).into(),
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
        ];
        let times = [0, -5, 999, 1_000, 1_733_590_087_241, 1_733_590_087_999, 4_102_444_800_001];
        let odd = ["plain", "q\"uote", "back\\slash", "ctl\u{1}\u{1f}", "tab\t nl\n", "\u{7f}del", "\u{2028}sep"];
        let mut checked = 0;
        for (i, &ip) in ips.iter().enumerate() {
            for (j, &ts) in times.iter().enumerate() {
                let odd = odd[(i + j) % odd.len()];
                let elapsed = [0, 1, 999_999, 1_234_567, 86_400_000_000_000][(i * 3 + j) % 5];
                for r in [bare(ts, ip), full(ts, ip, odd)] {
                    let (got, want) = (render(&r, elapsed, 42), reference(&r, elapsed, 42));
                    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
                    checked += 1;
                }
            }
        }
        // Every case twice again: the cached second must not leak into another one.
        for &ts in times.iter().rev() {
            let r = bare(ts, ips[0]);
            assert_eq!(render(&r, 5, 0), reference(&r, 5, 0));
        }
        assert_eq!(checked, ips.len() * times.len() * 2);
    }
}
