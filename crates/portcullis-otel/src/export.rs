//! The export pipeline: a bounded queue that requests add to without waiting, and one
//! background task that writes what it holds as OTLP protobuf and posts it to the
//! collector (OTLP/HTTP, `application/x-protobuf`).
//!
//! A request's spans either fit in the queue or are dropped and counted: a slow or dead
//! collector fills the queue, never a request's time. Adding to the queue is a short
//! uncontended lock and a push: the background task is woken only when a batch is full, on a
//! flush and on close, otherwise it wakes on its own every [`SCHEDULE_DELAY`]. A failed
//! export (after [`RETRIES`] retries within [`EXPORT_TIMEOUT`]) counts its spans as dropped
//! too. One exporter serves one loaded config: a reload starts the new config's, and the old
//! one sends what it holds once it is dropped (its last request is done).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_http::{HttpClient, hyper::HyperClient};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use portcullis_core::spans::Recording;
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use tokio::sync::{Notify, oneshot};

use crate::span::{RequestSpans, Scratch, ServerSpan, wire};

/// Spans waiting for export; past it new spans are dropped (and counted).
pub const MAX_QUEUE: usize = 4096;
/// Most spans in one export request.
pub const MAX_BATCH: usize = 512;
/// How long a span waits at most before its batch is sent.
pub const SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// One export request, its retries included.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a failed export request is sent again (a connection error, 429, 502, 503,
/// 504), after 100 ms, 400 ms, 1.6 s.
pub const RETRIES: u32 = 3;
/// How long graceful shutdown waits for the last batch.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the start-up reachability check waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A collector that keeps failing is reported at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What requests hand to the background task.
#[derive(Default)]
struct Queue {
    requests: Vec<RequestSpans>,
    /// Spans in `requests`.
    spans: usize,
    flushes: Vec<oneshot::Sender<()>>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends the spans of sampled requests to one OTLP/HTTP collector.
pub struct Exporter {
    shared: Arc<Shared>,
    dropped: Counter,
    url: Arc<str>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Exporter {
    /// Starts the background export to `url` (`…/v1/traces`) on the current Tokio runtime.
    /// An unreachable collector is a warning, checked in the background: the gateway starts
    /// anyway and counts what it cannot send in `dropped`.
    pub fn start(url: &str, dropped: Counter) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("tracing.otlp_endpoint: {url}: {e}"))?;
        if uri.host().is_none() {
            return Err(format!("tracing.otlp_endpoint: {url}: no host"));
        }
        let exporter = Self::idle(url, dropped);
        let client = HyperClient::with_default_connector(EXPORT_TIMEOUT, None);
        tokio::spawn(probe(exporter.url.clone()));
        tokio::spawn(run(client, uri, exporter.shared.clone(), exporter.dropped.clone(), exporter.url.clone()));
        Ok(exporter)
    }

    /// An exporter whose queue nothing drains yet.
    fn idle(url: &str, dropped: Counter) -> Self {
        Self { shared: Arc::default(), dropped, url: Arc::from(url) }
    }

    /// Queues the spans of one recorded request without waiting: what does not fit is
    /// dropped and counted.
    pub fn submit(&self, recording: &Recording, server: &ServerSpan<'_>) {
        let (spans, over_cap) = RequestSpans::of(recording, server);
        if over_cap > 0 {
            self.dropped.inc_by(u64::from(over_cap));
        }
        self.queue(spans);
    }

    fn queue(&self, spans: RequestSpans) {
        let count = spans.len();
        let mut queue = self.shared.lock();
        if queue.spans + count > MAX_QUEUE {
            drop(queue);
            self.dropped.inc_by(count as u64);
            return;
        }
        let was_short = queue.spans < MAX_BATCH;
        queue.spans += count;
        queue.requests.push(spans);
        let full = was_short && queue.spans >= MAX_BATCH;
        drop(queue);
        if full {
            self.shared.wake.notify_one();
        }
    }

    /// Exports every queued span now and waits (at most `timeout`) until it is sent or
    /// dropped: graceful shutdown's last step.
    pub async fn flush(&self, timeout: Duration) {
        let (done, sent) = oneshot::channel();
        self.shared.lock().flushes.push(done);
        self.shared.wake.notify_one();
        if tokio::time::timeout(timeout, sent).await.is_err() {
            tracing::warn!(collector = %self.url, "traces not flushed within the shutdown timeout");
        }
    }
}

impl Drop for Exporter {
    /// The background task sends what is queued, then ends.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// Warns once at start when nothing listens at the collector's address.
async fn probe(url: Arc<str>) {
    let Ok(uri) = url.parse::<http::Uri>() else { return };
    let Some(host) = uri.host() else { return };
    let addr = format!("{}:{}", host.trim_start_matches('[').trim_end_matches(']'), uri.port_u16().unwrap_or(80));
    let reached = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await;
    let problem = match reached {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no connection within 2 s".to_owned(),
    };
    tracing::warn!(
        collector = %url,
        error = %problem,
        "tracing.otlp_endpoint is unreachable: spans are dropped and counted \
         (portcullis_trace_spans_dropped_total) until it answers"
    );
}

/// The background task: what is queued goes out in export requests of at most
/// [`MAX_BATCH`] spans when a batch is full, every [`SCHEDULE_DELAY`], on a flush, and once
/// more when the exporter is dropped.
async fn run(client: impl HttpClient, uri: http::Uri, shared: Arc<Shared>, dropped: Counter, url: Arc<str>) {
    let mut ticks = tokio::time::interval(SCHEDULE_DELAY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = Failing::default();
    let mut batch = Batch::new();
    loop {
        tokio::select! {
            () = shared.wake.notified() => {}
            _ = ticks.tick() => {}
        }
        let (requests, flushes, closed) = {
            let mut queue = shared.lock();
            queue.spans = 0;
            (std::mem::take(&mut queue.requests), std::mem::take(&mut queue.flushes), queue.closed)
        };
        let mut spans = Vec::new();
        let mut count = 0;
        for request in requests {
            count += request.len();
            request.encode(&mut spans, &mut batch.scratch);
            if count >= MAX_BATCH {
                send(&client, &uri, (batch.body(&spans), count as u64), &dropped, &mut failing, &url).await;
                spans.clear();
                count = 0;
            }
        }
        if count > 0 {
            send(&client, &uri, (batch.body(&spans), count as u64), &dropped, &mut failing, &url).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// What every export request says besides its spans, the resource and the scope, encoded
/// once; and the space spans are encoded in.
struct Batch {
    resource: Vec<u8>,
    scope: Vec<u8>,
    scratch: Scratch,
}

impl Batch {
    fn new() -> Self {
        let text = |key: &str, value: &str| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
            ..KeyValue::default()
        };
        let version = env!("CARGO_PKG_VERSION");
        let resource = Resource {
            attributes: vec![text("service.name", "portcullis"), text("service.version", version)],
            ..Resource::default()
        };
        let scope =
            InstrumentationScope { name: "portcullis".to_owned(), version: version.to_owned(), ..Default::default() };
        Self { resource: resource.encode_to_vec(), scope: scope.encode_to_vec(), scratch: Scratch::default() }
    }

    /// One `ExportTraceServiceRequest` (a `ResourceSpans` of one `ScopeSpans`) around
    /// `spans`, `ScopeSpans.spans` entries as [`RequestSpans::encode`] writes them.
    fn body(&self, spans: &[u8]) -> Bytes {
        // ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.resource = 1,
        // .scope_spans = 2; ScopeSpans.scope = 1 (its spans = 2 are `spans`).
        let field_len = |len: usize| 1 + encoded_len_varint(len as u64) + len;
        let scope_spans = field_len(self.scope.len()) + spans.len();
        let resource_spans = field_len(self.resource.len()) + field_len(scope_spans);
        let mut body = Vec::with_capacity(field_len(resource_spans));
        encode_key(1, WireType::LengthDelimited, &mut body);
        encode_varint(resource_spans as u64, &mut body);
        wire::message(1, &self.resource, &mut body);
        encode_key(2, WireType::LengthDelimited, &mut body);
        encode_varint(scope_spans as u64, &mut body);
        wire::message(1, &self.scope, &mut body);
        body.extend_from_slice(spans);
        Bytes::from(body)
    }
}

/// The body of one OTLP/HTTP export request holding the spans of `requests`, as the
/// background task makes it (the benchmark's measure of its work).
pub fn export_body(requests: &[RequestSpans]) -> Bytes {
    let mut batch = Batch::new();
    let mut spans = Vec::new();
    for request in requests {
        request.encode(&mut spans, &mut batch.scratch);
    }
    batch.body(&spans)
}

/// When the collector last failed and was reported.
#[derive(Default)]
struct Failing {
    warned: Option<Instant>,
}

async fn send(
    client: &impl HttpClient,
    uri: &http::Uri,
    (body, count): (Bytes, u64),
    dropped: &Counter,
    failing: &mut Failing,
    url: &str,
) {
    match tokio::time::timeout(EXPORT_TIMEOUT, post(client, uri, body))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", EXPORT_TIMEOUT.as_secs())))
    {
        Ok(()) => {
            if failing.warned.take().is_some() {
                tracing::info!(collector = %url, "trace export works again");
            }
        }
        Err(e) => {
            dropped.inc_by(count);
            if failing.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                failing.warned = Some(Instant::now());
                tracing::warn!(collector = %url, error = %e, spans = count, "trace export failed: spans dropped");
            }
        }
    }
}

/// One export request, sent again after a connection error or an answer that says to try
/// later.
async fn post(client: &impl HttpClient, uri: &http::Uri, body: Bytes) -> Result<(), String> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        let request = http::Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone())
            .map_err(|e| e.to_string())?;
        let (error, retryable) = match client.send_bytes(request).await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                (format!("collector answered {status}"), matches!(status.as_u16(), 429 | 502 | 503 | 504))
            }
            Err(e) => (e.to_string(), true),
        };
        if !retryable || attempt == RETRIES {
            return Err(error);
        }
        attempt += 1;
        tokio::time::sleep(backoff).await;
        backoff *= 4;
    }
}

#[cfg(test)]
mod tests;
