//! The validation phase's own cost: a 4 KiB JSON body (an order with 40 lines) checked
//! against an OpenAPI operation with query, header and body rules. Compare with the
//! pipeline bench's plain request (`portcullis-core/benches/pipeline.rs`). It runs on
//! mimalloc, the gateway binary's allocator, so the figures are the gateway's.
//!
//! `validate_4k_json_body` is the whole check; `check_without_body` the same request's
//! parameters and content type alone; `parse_4k_json_body_into_value` what building a
//! `serde_json::Value` of the body costs (what the check did before it read bodies in place).
//! `validate_gateway_order` is `bench/features.sh`'s order against its schema
//! (`FEATURE=validate`), the check the gateway makes there.
//! For instruction counts of the check, see `examples/check_4k.rs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_contract::Request;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod fixture;

fn bench(c: &mut Criterion) {
    let contract = fixture::contract();
    let body = fixture::body();
    assert!((4000..4400).contains(&body.len()), "{}", body.len());
    let headers = fixture::headers();
    let request = Request {
        path_params: &[],
        query: Some("dry_run=false"),
        headers: &headers,
        has_body: true,
        body: Some(&body),
    };
    assert!(contract.check(&request).is_empty(), "{:?}", contract.check(&request));
    c.bench_function("validate_4k_json_body", |b| b.iter(|| black_box(contract.check(black_box(&request)))));
    let without_body = Request { body: None, ..request };
    c.bench_function("check_without_body", |b| b.iter(|| black_box(contract.check(black_box(&without_body)))));
    c.bench_function("parse_4k_json_body_into_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).map(drop)))
    });
    let contract = fixture::gateway_contract();
    let body = fixture::gateway_body();
    assert_eq!(body.len(), 3994, "features.sh's body");
    let headers = fixture::gateway_headers();
    let request = Request { path_params: &[], query: None, headers: &headers, has_body: true, body: Some(&body) };
    assert!(contract.check(&request).is_empty(), "{:?}", contract.check(&request));
    c.bench_function("validate_gateway_order", |b| b.iter(|| black_box(contract.check(black_box(&request)))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
