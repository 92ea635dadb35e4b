//! The exporter against a real OTLP/HTTP receiver on 127.0.0.1 (decoded with the official
//! protobuf types), and against a closed port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::record::Record;
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;

use super::{Exporter, MAX_QUEUE, RequestSpans};

type Received = Arc<Mutex<Vec<(String, String, ExportTraceServiceRequest)>>>;

/// An OTLP/HTTP receiver: every POST body decoded as an `ExportTraceServiceRequest`, with
/// its path and content type.
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
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let decoded =
                            ExportTraceServiceRequest::decode(body).unwrap_or_else(|e| panic!("not OTLP: {e}"));
                        store.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((
                            path,
                            content_type,
                            decoded,
                        ));
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

/// The spans of one sampled request for `/items/{n}`: its server span and one client span.
fn request(n: u32) -> RequestSpans {
    let text = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\" }]\n\
         tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 1.0 }\n";
    let loaded = portcullis_config::load_str(text, "t.yaml", Path::new("/tmp"), None);
    let snapshot =
        portcullis_core::compile(&loaded.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let parts = http::Request::get(format!("http://api.example/items/{n}"))
        .body(())
        .map(|r| r.into_parts().0)
        .unwrap_or_else(|e| panic!("{e}"));
    let downstream =
        Downstream { peer: ([192, 0, 2, 1], 4000).into(), https: false, listener: Arc::from("l"), tls: None };
    let now = portcullis_core::clock::Now::read(&portcullis_core::clock::SystemClock::process());
    let ctx = pipeline::intake(&snapshot, &parts, &downstream, now);
    ctx.spans.end(ctx.spans.start(), "GET", portcullis_core::spans::SpanKind::Client, Vec::new(), None);
    let mut record = Record::start(&parts, &ctx, false);
    record.status = 200;
    RequestSpans::of_request(&ctx, &record).unwrap_or_else(|| panic!("sampled at ratio 1"))
}

fn paths(received: &Received) -> Vec<String> {
    let received = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spans = received.iter().flat_map(|(_, _, r)| &r.resource_spans).flat_map(|rs| &rs.scope_spans);
    spans
        .flat_map(|ss| &ss.spans)
        .flat_map(|s| &s.attributes)
        .filter(|kv| kv.key == "url.path")
        .filter_map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(path)) => Some(path.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn queued_spans_reach_the_collector_as_otlp_protobuf() {
    let (url, received) = receiver().await;
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    for n in 1..=3 {
        exporter.queue(request(n));
    }
    exporter.flush(Duration::from_secs(30)).await;
    assert_eq!(dropped.get(), 0);
    assert_eq!(paths(&received), ["/items/1", "/items/2", "/items/3"]);
    let received = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert!(
        received.iter().all(|(path, content_type, _)| path == "/v1/traces" && content_type == "application/x-protobuf")
    );
    let resource_spans = &received[0].2.resource_spans[0];
    let resource = resource_spans.resource.clone().unwrap_or_default();
    let service = resource.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.clone());
    assert!(format!("{service:?}").contains("portcullis"), "{service:?}");
    let scope = resource_spans.scope_spans[0].scope.clone().unwrap_or_default();
    assert_eq!(scope.name, "portcullis");
    let spans: usize =
        received.iter().flat_map(|(_, _, r)| &r.resource_spans[0].scope_spans).map(|s| s.spans.len()).sum();
    assert_eq!(spans, 6, "each request's server and client span");
}

#[tokio::test]
async fn a_dead_collector_drops_and_counts_every_span() {
    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}/v1/traces", closed.local_addr().unwrap_or_else(|e| panic!("{e}")));
    drop(closed);
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    for n in 0..5 {
        exporter.queue(request(n));
    }
    exporter.flush(Duration::from_secs(30)).await;
    assert_eq!(dropped.get(), 10, "a failed export counts its spans");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    // No task drains this queue: the producer side alone decides.
    let dropped = Counter::default();
    let exporter = Exporter::idle("http://127.0.0.1:9/v1/traces", dropped.clone());
    let fit = MAX_QUEUE / 2;
    for n in 0..fit + 3 {
        exporter.queue(request(u32::try_from(n).unwrap_or_default()));
    }
    assert_eq!(dropped.get(), 6, "3 requests of 2 spans past the queue's {MAX_QUEUE} spans");
    assert_eq!(exporter.shared.lock().spans, MAX_QUEUE);
}

#[tokio::test]
async fn a_dropped_exporter_sends_what_it_held() {
    let (url, received) = receiver().await;
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    // Past the first tick: what follows waits for the next one, or the close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    exporter.queue(request(1));
    exporter.queue(request(2));
    // The old config's exporter, once its last request is gone.
    drop(exporter);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while paths(&received).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((paths(&received), dropped.get()), (vec!["/items/1".to_owned(), "/items/2".to_owned()], 0));
}
