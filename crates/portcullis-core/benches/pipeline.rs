//! Criterion benches of the hot path without sockets: the route table lookup and the whole
//! request pipeline (intake + every stage) for a typical proxied GET.
//! Run: `cargo bench -p portcullis-core`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::pipeline::{self, Downstream};

const CONFIG: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
upstreams: { up: { targets: ["http://127.0.0.1:9000"] } }
routes:
  - { name: health, match: { path: /healthz, methods: [GET] }, upstream: up, auth: none }
  - { name: orders, match: { host: api.example.com, path: "/v1/orders/{id}", methods: [GET] }, upstream: up, auth: none, rewrite: { path: "/orders/{id}" } }
  - { name: items, match: { host: "*.example.com", path: "/v1/items/{id}" }, upstream: up, auth: none }
  - { name: static, match: { path: "/static/{*rest}" }, upstream: up, auth: none }
"#;

fn snapshot() -> portcullis_core::Snapshot {
    let loaded = portcullis_config::load_str(CONFIG, "bench.yaml", Path::new("/tmp"), None);
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    portcullis_core::compile(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

fn request() -> http::request::Parts {
    let req = http::Request::get("/v1/orders/42?expand=items")
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
        .header("x-request-id", "abc-123")
        .body(());
    req.map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"))
}

fn benches(c: &mut Criterion) {
    let snap = snapshot();
    c.bench_function("route_lookup_param_exact_host", |b| {
        b.iter(|| snap.table.lookup(black_box(Some("api.example.com")), &http::Method::GET, black_box("/v1/orders/42")))
    });
    c.bench_function("route_lookup_catch_all", |b| {
        b.iter(|| snap.table.lookup(black_box(None), &http::Method::GET, black_box("/static/js/app.js")))
    });
    let downstream = Downstream { peer: ([127, 0, 0, 1], 40000).into(), https: false, listener: "l".into(), tls: None };
    let template = request();
    c.bench_function("pipeline_intake_and_stages", |b| {
        b.iter_batched(
            || {
                let mut p = http::Request::new(()).into_parts().0;
                p.method = template.method.clone();
                p.uri = template.uri.clone();
                p.headers = template.headers.clone();
                p
            },
            |mut parts| {
                let mut ctx = pipeline::intake(&snap, &parts, &downstream);
                let flow = pipeline::on_request(&snap, &mut parts, &mut ctx);
                black_box((flow, parts))
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
