//! What tracing adds to one request's CPU, to hold against plain proxying's (README:
//! ~20–29 µs per request): intake without tracing, at `sample_ratio: 0` with an exporter
//! configured (must stay within 1%), and at 1.0 — intake, a client span for the upstream
//! attempt, the server span handed to the exporter, and the exporter's background task on the
//! same thread turning the queue into OTLP protobuf and posting it to a local collector that
//! reads each body and answers 200 (its reading is counted too: an overestimate), against
//! the same request without tracing (intake, the access-log record, a turn of the runtime) —
//! plus the background side's encoding alone, per batch of 512 spans (already inside the
//! ratio 1 figure, shown for where the time goes).
//!
//! `cargo bench -p portcullis-otel --bench trace_cost`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::spans::SpanKind;
use portcullis_core::{Snapshot, record::Record};
use portcullis_otel::{Exporter, RequestSpans, ServerSpan};
use prometheus_client::metrics::counter::Counter;

fn snapshot(tracing: &str) -> Snapshot {
    let text = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:1\" }}]\n{tracing}\
         upstreams: {{ m: {{ mock: {{ status: 200 }} }} }}\n\
         routes:\n  - {{ name: items, match: {{ path: \"/items/{{id}}\" }}, upstream: m, auth: none }}\n"
    );
    let loaded = portcullis_config::load_str(&text, "t.yaml", Path::new("/tmp"), None);
    portcullis_core::compile(&loaded.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"))
}

fn request() -> http::request::Parts {
    let request = http::Request::get("http://api.example/items/7?x=1")
        .header("user-agent", "wrk/4")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .body(());
    request.map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"))
}

/// A collector on 127.0.0.1 that reads every export request's body and answers 200.
async fn collector() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    black_box(body);
                    http::Response::builder().body(Full::new(Bytes::new())).map_err(|e| e.to_string())
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    format!("http://{addr}/v1/traces")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let _guard = runtime.enter();
    let parts = request();
    let downstream =
        Downstream { peer: ([192, 0, 2, 1], 4000).into(), https: false, listener: Arc::from("l"), tls: None };
    let clock = portcullis_core::clock::SystemClock::process();
    let now = || portcullis_core::clock::Now::read(&clock);

    let plain = snapshot("");
    c.bench_function("intake/no tracing", |b| {
        b.iter(|| black_box(pipeline::intake(&plain, &parts, &downstream, now())))
    });
    let ratio0 = snapshot("tracing: { otlp_endpoint: \"http://127.0.0.1:9\", sample_ratio: 0.0 }\n");
    c.bench_function("intake/ratio 0", |b| b.iter(|| black_box(pipeline::intake(&ratio0, &parts, &downstream, now()))));

    // What the ratio 1 bench does besides tracing (plain proxying pays it too): intake, the
    // access-log record, and a turn of the runtime.
    c.bench_function("request/no tracing (intake, record, runtime turn)", |b| {
        b.iter(|| {
            let ctx = pipeline::intake(&plain, &parts, &downstream, now());
            let mut record = Record::start(&parts, &ctx, false);
            record.status = 200;
            black_box((&ctx, &record));
            runtime.block_on(tokio::task::yield_now());
        })
    });

    let ratio1 = snapshot("tracing: { otlp_endpoint: \"http://127.0.0.1:9\", sample_ratio: 1.0 }\n");
    let url = runtime.block_on(collector());
    let dropped = Counter::default();
    let exporter = Exporter::start(&url, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("request/ratio 1 (intake, 1 attempt span, submit, export)", |b| {
        b.iter(|| {
            let ctx = pipeline::intake(&ratio1, &parts, &downstream, now());
            let started = ctx.spans.start();
            ctx.spans.end(started, "GET", SpanKind::Client, vec![("http.response.status_code", 200i64.into())], None);
            let mut record = Record::start(&parts, &ctx, false);
            record.status = 200;
            if let Some(recording) = ctx.spans.recording() {
                exporter.submit(recording, &ServerSpan::of(&ctx, &record));
            }
            // The exporter's task and the collector run when the runtime gets to them.
            runtime.block_on(tokio::task::yield_now());
        })
    });
    runtime.block_on(exporter.flush(std::time::Duration::from_secs(10)));
    eprintln!("spans dropped during the ratio 1 bench: {}", dropped.get());

    // The background side alone: 256 requests' spans (server + client, 512 in all) turned
    // into one OTLP protobuf export request body.
    let ctx = pipeline::intake(&ratio1, &parts, &downstream, now());
    ctx.spans.end(ctx.spans.start(), "GET", SpanKind::Client, vec![("http.response.status_code", 200i64.into())], None);
    let mut record = Record::start(&parts, &ctx, false);
    record.status = 200;
    let spans = RequestSpans::of_request(&ctx, &record).unwrap_or_else(|| panic!("sampled at ratio 1"));
    let batch: Vec<RequestSpans> = (0..256).map(|_| spans.clone()).collect();
    c.bench_function("encode/512 spans as OTLP protobuf", |b| {
        b.iter(|| black_box(portcullis_otel::export_body(&batch)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
