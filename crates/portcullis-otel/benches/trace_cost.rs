//! What tracing adds to one request's CPU, to hold against plain proxying's (README:
//! ~17–22 µs per request): intake without tracing, at `sample_ratio: 0` with an exporter
//! configured (must stay within 1%), and at 1.0 — intake, a client span for the upstream
//! attempt, the server span built and queued — plus the background side, the OTLP protobuf
//! encoding per span (within 5% together).
//!
//! `cargo bench -p portcullis-otel --bench trace_cost`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use portcullis_core::pipeline::{self, Downstream};
use portcullis_core::spans::SpanKind;
use portcullis_core::{Snapshot, record::Record};
use portcullis_otel::{Exporter, ServerSpan};
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;

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

    // At ratio 1 the queue is drained by the exporter's task (a closed port: every batch
    // fails and is counted); what is timed is the request's own side.
    let ratio1 = snapshot("tracing: { otlp_endpoint: \"http://127.0.0.1:9\", sample_ratio: 1.0 }\n");
    let exporter =
        Exporter::start("http://127.0.0.1:9/v1/traces", Counter::default()).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("request/ratio 1 (intake, 1 attempt span, submit)", |b| {
        b.iter(|| {
            let ctx = pipeline::intake(&ratio1, &parts, &downstream, now());
            let started = ctx.spans.start();
            ctx.spans.end(started, "GET", SpanKind::Client, vec![("http.response.status_code", 200i64.into())], None);
            let mut record = Record::start(&parts, &ctx, false);
            record.status = 200;
            if let Some(recording) = ctx.spans.recording() {
                exporter.submit(recording, &ServerSpan::of(&ctx, &record));
            }
            // Let the exporter's task drain the queue now and then, as the runtime would.
            runtime.block_on(tokio::task::yield_now());
        })
    });

    // The background side: two spans (server + client) grouped and encoded as OTLP protobuf,
    // in a batch of 512 as the exporter sends them.
    let ctx = pipeline::intake(&ratio1, &parts, &downstream, now());
    let mut record = Record::start(&parts, &ctx, false);
    record.status = 200;
    let spans = portcullis_otel::request_span_data(&ctx, &record);
    let batch: Vec<_> = (0..256).flat_map(|_| spans.clone()).collect();
    let resource = ResourceAttributesWithSchema::default();
    c.bench_function("encode/512 spans as OTLP protobuf", |b| {
        b.iter(|| {
            let request = ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(batch.clone(), &resource),
            };
            black_box(request.encode_to_vec())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
