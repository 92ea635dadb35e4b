//! The exporter against a real OTLP/HTTP receiver on 127.0.0.1 (decoded with the official
//! protobuf types), and against a closed port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;
use tokio::sync::mpsc;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

use super::{Exporter, Message, run};

type Received = Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>;

/// An OTLP/HTTP receiver: every POST body decoded as an `ExportTraceServiceRequest`.
async fn receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let decoded =
                            ExportTraceServiceRequest::decode(body).unwrap_or_else(|e| panic!("not OTLP: {e}"));
                        store.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((path, decoded));
                        let response = http::Response::builder()
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(Bytes::new()));
                        response.map_err(|e| e.to_string())
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (format!("http://{addr}/v1/traces"), received)
}

fn span(n: u8) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes([n; 16]),
            SpanId::from_bytes([n; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: format!("span {n}").into(),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("t").build(),
    }
}

fn queue(exporter: &Exporter, spans: impl IntoIterator<Item = SpanData>) {
    for s in spans {
        if exporter.queue.try_send(Message::Span(Box::new(s))).is_err() {
            exporter.dropped.inc();
        }
    }
}

#[tokio::test]
async fn queued_spans_reach_the_collector_as_otlp_protobuf() {
    let (url, received) = receiver().await;
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    queue(&exporter, (1..=3).map(span));
    exporter.flush(Duration::from_secs(30)).await;
    let received = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(dropped.get(), 0);
    let names: Vec<String> = received
        .iter()
        .flat_map(|(_, r)| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["span 1", "span 2", "span 3"]);
    assert!(received.iter().all(|(path, _)| path == "/v1/traces"));
    let resource = received[0].1.resource_spans[0].resource.clone().unwrap_or_default();
    let service = resource.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.clone());
    assert!(format!("{service:?}").contains("portcullis"), "{service:?}");
}

#[tokio::test]
async fn a_dead_collector_drops_and_counts_every_span() {
    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}/v1/traces", closed.local_addr().unwrap_or_else(|e| panic!("{e}")));
    drop(closed);
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    queue(&exporter, (0..5).map(span));
    exporter.flush(Duration::from_secs(30)).await;
    assert_eq!(dropped.get(), 5, "a failed export counts its spans");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    // No task drains this queue: the producer side alone decides.
    let (tx, _rx) = mpsc::channel(2);
    let dropped = Counter::default();
    let exporter = Exporter {
        queue: tx,
        dropped: dropped.clone(),
        scope: InstrumentationScope::builder("t").build(),
        url: Arc::from("http://127.0.0.1:9/v1/traces"),
    };
    queue(&exporter, (0..5).map(span));
    assert_eq!(dropped.get(), 3);
}

#[tokio::test]
async fn a_closed_queue_sends_what_it_held() {
    let (url, received) = receiver().await;
    let client = opentelemetry_http::hyper::HyperClient::with_default_connector(Duration::from_secs(10), None);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(url.clone())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel(8);
    let dropped = Counter::default();
    let task = tokio::spawn(run(exporter, rx, dropped.clone(), Arc::from(url.as_str())));
    for n in 0..2 {
        let _ = tx.send(Message::Span(Box::new(span(n)))).await;
    }
    // The old config's exporter, once its last request is gone.
    drop(tx);
    let _ = task.await;
    let count: usize = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .flat_map(|(_, r)| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    assert_eq!((count, dropped.get()), (2, 0));
}
