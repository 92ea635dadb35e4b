//! The validation phase's own cost: a 4 KiB JSON body (an order with 40 lines) checked
//! against an OpenAPI operation with query, header and body rules. Compare with the
//! pipeline bench's plain request (`portcullis-core/benches/pipeline.rs`). It runs on
//! mimalloc, the gateway binary's allocator, so the figures are the gateway's.
//!
//! `validate_4k_json_body` is the whole check; `check_without_body` the same request's
//! parameters and content type alone; `parse_4k_json_body_into_value` what building a
//! `serde_json::Value` of the body costs (what the check did before it read bodies in place).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use portcullis_contract::{OpenApiDoc, Request};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPEC: &str = r##"
openapi: 3.0.3
info: { title: bench, version: "1" }
paths:
  /orders:
    post:
      operationId: createOrder
      parameters:
        - { name: dry_run, in: query, schema: { type: boolean } }
        - { name: X-Trace, in: header, schema: { type: string, maxLength: 64 } }
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Order" }
components:
  schemas:
    Order:
      type: object
      required: [customer, lines]
      properties:
        customer: { type: string, minLength: 1, maxLength: 64 }
        note: { type: string, nullable: true, maxLength: 2000 }
        lines: { type: array, maxItems: 100, items: { $ref: "#/components/schemas/Line" } }
    Line:
      type: object
      required: [sku, qty, price]
      additionalProperties: false
      properties:
        sku: { type: string, pattern: "^[A-Z]{3}-[0-9]{4}$" }
        qty: { type: integer, minimum: 1, maximum: 1000 }
        price: { type: number, exclusiveMinimum: true, minimum: 0 }
        gift: { type: boolean }
"##;

/// A body of about 4 KiB.
pub fn body() -> Vec<u8> {
    let lines: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"sku":"ABC-{i:04}","qty":{},"price":{}.5,"gift":false}}"#, i + 1, i + 3))
        .collect();
    let note = "n".repeat(1900);
    format!(r#"{{"customer":"acme-billing","note":"{note}","lines":[{}]}}"#, lines.join(",")).into_bytes()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("portcullis-contract-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("orders.yaml");
    std::fs::write(&file, SPEC).expect("write spec");
    let doc = OpenApiDoc::load(&file).expect("loads");
    let op = doc.find("createOrder").expect("operation");
    let contract = doc.contract(&op).map_err(|e| e.to_string()).expect("compiles").contract;
    let body = body();
    assert!((4000..4400).contains(&body.len()), "{}", body.len());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert("x-trace", "abc".parse().expect("value"));
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
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
