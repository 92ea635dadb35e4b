//! The export pipeline: a bounded queue that requests add to without waiting, and one
//! background task that sends batches to the collector with the OTLP/HTTP exporter.
//!
//! A request's spans either fit in the queue or are dropped and counted: a slow or dead
//! collector fills the queue, never a request's time. A failed export (after the exporter's
//! own retries) counts its spans as dropped too. One exporter serves one loaded config: a
//! reload starts the new config's, and the old one flushes what it holds once its last
//! request is done (its queue's senders are gone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use portcullis_core::spans::Recording;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

use crate::span::{ServerSpan, request_spans};

/// Spans waiting for export; past it new spans are dropped (and counted).
pub const MAX_QUEUE: usize = 4096;
/// Most spans in one export request.
pub const MAX_BATCH: usize = 512;
/// How long a span waits at most before its batch is sent.
pub const SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// One export request, the exporter's retries included.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long graceful shutdown waits for the last batch.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the start-up reachability check waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A collector that keeps failing is reported at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// Sends the spans of sampled requests to one OTLP/HTTP collector.
pub struct Exporter {
    queue: mpsc::Sender<Message>,
    dropped: Counter,
    scope: InstrumentationScope,
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
        let client = opentelemetry_http::hyper::HyperClient::with_default_connector(EXPORT_TIMEOUT, None);
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("tracing.otlp_endpoint: {e}"))?;
        exporter.set_resource(&resource());
        let (queue, rx) = mpsc::channel(MAX_QUEUE);
        let url: Arc<str> = Arc::from(url);
        tokio::spawn(probe(url.clone()));
        tokio::spawn(run(exporter, rx, dropped.clone(), url.clone()));
        let scope = InstrumentationScope::builder("portcullis").with_version(env!("CARGO_PKG_VERSION")).build();
        Ok(Self { queue, dropped, scope, url })
    }

    /// Queues the spans of one recorded request without waiting: what does not fit is
    /// dropped and counted.
    pub fn submit(&self, recording: &Recording, server: &ServerSpan<'_>) {
        let (spans, over_cap) = request_spans(recording, server, &self.scope);
        self.dropped.inc_by(u64::from(over_cap));
        for span in spans {
            if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
                self.dropped.inc();
            }
        }
    }

    /// Exports every queued span now and waits (at most `timeout`) until it is sent or
    /// dropped: graceful shutdown's last step.
    pub async fn flush(&self, timeout: Duration) {
        let (done, sent) = oneshot::channel();
        let flushed = async {
            if self.queue.send(Message::Flush(done)).await.is_ok() {
                let _ = sent.await;
            }
        };
        if tokio::time::timeout(timeout, flushed).await.is_err() {
            tracing::warn!(collector = %self.url, "traces not flushed within the shutdown timeout");
        }
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "portcullis"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build()
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

/// The background task: batches of at most [`MAX_BATCH`], sent when full, every
/// [`SCHEDULE_DELAY`], on a flush, and once more when the queue closes.
async fn run(exporter: impl SpanExporter, mut rx: mpsc::Receiver<Message>, dropped: Counter, url: Arc<str>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut ticks = tokio::time::interval(SCHEDULE_DELAY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = Failing::default();
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Span(span)) => {
                    batch.push(*span);
                    if batch.len() >= MAX_BATCH {
                        send(&exporter, &mut batch, &dropped, &mut failing, &url).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    send(&exporter, &mut batch, &dropped, &mut failing, &url).await;
                    let _ = done.send(());
                }
                None => {
                    send(&exporter, &mut batch, &dropped, &mut failing, &url).await;
                    return;
                }
            },
            _ = ticks.tick() => send(&exporter, &mut batch, &dropped, &mut failing, &url).await,
        }
    }
}

/// When the collector last failed and was reported.
#[derive(Default)]
struct Failing {
    warned: Option<Instant>,
}

async fn send(
    exporter: &impl SpanExporter,
    batch: &mut Vec<SpanData>,
    dropped: &Counter,
    failing: &mut Failing,
    url: &str,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    let count = spans.len() as u64;
    match exporter.export(spans).await {
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

#[cfg(test)]
mod tests;
