//! The operation and body the validation bench and the `check_4k` example check (an order
//! with 40 lines, about 4 KiB), and the contract compiled from them; and the order and JSON
//! Schema `bench/features.sh` sends and checks with `FEATURE=validate` (30 items, about 4 KiB),
//! so the gateway's own check can be counted apart from the gateway.

use http::HeaderMap;
use portcullis_contract::{Contract, OpenApiDoc, schema_contract_text};

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

/// `bench/features.sh`'s schema for `FEATURE=validate` (the route's `validate: { schema: … }`).
const GATEWAY_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["customer", "items"],
  "additionalProperties": false,
  "properties": {
    "customer": { "type": "string", "minLength": 1, "maxLength": 64 },
    "note": { "type": "string", "maxLength": 2000 },
    "items": {
      "type": "array", "minItems": 1, "maxItems": 100,
      "items": {
        "type": "object",
        "required": ["id", "sku", "qty", "price"],
        "additionalProperties": false,
        "properties": {
          "id": { "type": "integer", "minimum": 0 },
          "sku": { "type": "string", "pattern": "^SKU-[0-9]{5}$" },
          "name": { "type": "string", "maxLength": 200 },
          "description": { "type": "string", "maxLength": 2000 },
          "qty": { "type": "integer", "minimum": 1, "maximum": 1000 },
          "price": { "type": "number", "exclusiveMinimum": 0 }
        }
      }
    }
  }
}"#;

/// `bench/features.sh`'s order: 30 items of ordinary product data, about 4 KiB.
pub(crate) fn gateway_body() -> Vec<u8> {
    let items: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"id":{i},"sku":"SKU-{i:05}","name":"Widget number {i}","description":"A sturdy widget for everyday use, blue","qty":{},"price":{}.99}}"#,
                i % 7 + 1,
                i * 3 + 5
            )
        })
        .collect();
    format!(
        r#"{{"customer":"c-1842","note":"Leave it with the neighbour at no. 12, please","items":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

/// The contract a route's `validate: { schema: … }` compiles [`GATEWAY_SCHEMA`] to.
pub(crate) fn gateway_contract() -> Contract {
    let file = std::env::temp_dir().join("order.schema.json");
    schema_contract_text(GATEWAY_SCHEMA, &file).map_err(|e| e.to_string()).expect("compiles").contract
}

/// The gateway's POST: a JSON content type.
pub(crate) fn gateway_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers
}
