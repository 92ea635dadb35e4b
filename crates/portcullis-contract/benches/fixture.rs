//! The operation and body the validation bench and the `check_4k` example check (an order
//! with 40 lines, about 4 KiB), and the contract compiled from them.

use http::HeaderMap;
use portcullis_contract::{Contract, OpenApiDoc};

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
pub(crate) fn body() -> Vec<u8> {
    let lines: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"sku":"ABC-{i:04}","qty":{},"price":{}.5,"gift":false}}"#, i + 1, i + 3))
        .collect();
    let note = "n".repeat(1900);
    format!(r#"{{"customer":"acme-billing","note":"{note}","lines":[{}]}}"#, lines.join(",")).into_bytes()
}

/// The `createOrder` contract, compiled from [`SPEC`] written to a temporary file.
pub(crate) fn contract() -> Contract {
    let dir = std::env::temp_dir().join(format!("portcullis-contract-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("orders.yaml");
    std::fs::write(&file, SPEC).expect("write spec");
    let doc = OpenApiDoc::load(&file).expect("loads");
    let op = doc.find("createOrder").expect("operation");
    let contract = doc.contract(&op).map_err(|e| e.to_string()).expect("compiles").contract;
    let _ = std::fs::remove_dir_all(&dir);
    contract
}

/// The request's headers: a JSON content type and the `X-Trace` parameter.
pub(crate) fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert("x-trace", "abc".parse().expect("value"));
    headers
}
