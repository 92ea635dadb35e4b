//! Request validation and routes from OpenAPI (SPEC §2 route `validate`, `openapi:`; §3
//! `invalid_request`): requests that break the contract get 400 with every violation listed
//! and never reach the backend; valid ones do. Documents in 3.0 (with `nullable`, `$ref`s,
//! `oneOf`/`allOf`) and 3.1 (JSON, a `$ref` to a local schema file) are imported as routes;
//! a missing `x-portcullis-auth` and a bad `$ref` fail to load, naming the operation and line.

use std::path::PathBuf;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::kit::{Backend, Reply, TestGateway, client, scratch_dir, send};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/validation")
}

fn config(backend: &Backend) -> String {
    let dir = fixtures().display().to_string();
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
  b: {{ targets: ["{url}"] }}
  pets: {{ targets: ["{url}"] }}
routes:
  - name: direct-create
    match: {{ path: /direct/orders, methods: [POST] }}
    upstream: b
    auth: none
    validate: {{ openapi: {dir}/orders-3.0.yaml, operation: createOrder }}
  - name: direct-pet
    match: {{ path: /direct/pets, methods: [POST] }}
    upstream: b
    auth: none
    validate: {{ schema: {dir}/schemas/pet.json }}
openapi:
  - {{ file: {dir}/orders-3.0.yaml, upstream: b }}
  - {{ file: {dir}/pets-3.1.json }}
"#,
        url = backend.url()
    )
}

async fn call(gw: &TestGateway, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&client(), req.body(Full::new(Bytes::from(body.to_owned()))).expect("request")).await
}

fn locations(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.code(), "invalid_request");
    let doc = reply.json();
    doc["errors"]
        .as_array()
        .expect("errors list")
        .iter()
        .map(|e| e["location"].as_str().unwrap_or("").to_owned())
        .collect()
}

const JSON: (&str, &str) = ("content-type", "application/json");
const KEY: (&str, &str) = ("idempotency-key", "0b6a3c5e-1f4a-4c1e-9a57-3d1c2b7e8f90");

#[tokio::test]
async fn query_header_cookie_and_path_violations_are_listed_and_never_forwarded() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend)).await;
    let r = call(&gw, Method::GET, "/v1/orders?limit=500&status=lost&filter[min_total]=-1", &[], "").await;
    assert_eq!(locations(&r), ["query.limit", "query.status", "query.filter/min_total"]);
    let r = call(&gw, Method::GET, "/v1/orders/0?fields=id,price", &[("cookie", "session=short")], "").await;
    assert_eq!(locations(&r), ["path.orderId", "query.fields/1", "header.x-tenant", "cookie.session"]);
    let r = call(&gw, Method::GET, "/v1/orders/abc", &[("x-tenant", "ACME!")], "").await;
    assert_eq!(locations(&r), ["path.orderId", "header.x-tenant"]);
    assert_eq!(backend.count(), 0, "no invalid request reached the backend");

    let ok = call(&gw, Method::GET, "/v1/orders?limit=5&status=open&filter[min_total]=2.5", &[], "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let headers = [("x-tenant", "acme"), ("cookie", "a=b; session=long-enough-1")];
    let ok = call(&gw, Method::GET, "/v1/orders/42?fields=id,lines", &headers, "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(backend.count(), 2);
    assert_eq!(backend.requests()[1].uri, "/v1/orders/42?fields=id,lines");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_json_body_breaking_the_schema_gets_every_violation_and_a_valid_one_passes_whole() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend)).await;
    let bad = json!({ "customer": "", "note": null, "lines": [{ "sku": "ABC-0001", "qty": 0 }, { "sku": "x", "qty": 2, "gift": true }],
                      "delivery": { "pickup_point": "P1", "street": "Main" } });
    let r = call(&gw, Method::POST, "/v1/orders", &[JSON, KEY], &bad.to_string()).await;
    assert_eq!(
        locations(&r),
        ["body/customer", "body/delivery", "body/lines/0/qty", "body/lines/1/sku", "body/lines/1/gift"],
        "{}",
        r.text()
    );
    let messages: Vec<Value> = r.json()["errors"].as_array().cloned().unwrap_or_default();
    assert!(messages.iter().all(|e| !e["message"].as_str().unwrap_or("").contains("Main")), "{messages:?}");
    // Missing body, wrong content type, bad JSON, missing required header.
    let r = call(&gw, Method::POST, "/v1/orders", &[JSON, KEY], "").await;
    assert_eq!(locations(&r), ["body"]);
    let r = call(&gw, Method::POST, "/v1/orders", &[("content-type", "text/plain"), KEY], "hi").await;
    assert_eq!(locations(&r), ["header.content-type"]);
    let r = call(&gw, Method::POST, "/v1/orders", &[JSON, KEY], "{\"customer\":").await;
    assert_eq!(locations(&r), ["body"]);
    let r = call(&gw, Method::POST, "/v1/orders", &[JSON, ("idempotency-key", "nope")], "{}").await;
    assert_eq!(locations(&r), ["header.idempotency-key", "body/customer", "body/lines"]);
    // The route's own `validate: { openapi, operation }` checks the same operation.
    let r = call(&gw, Method::POST, "/direct/orders", &[JSON, KEY], "{\"customer\":\"a\",\"lines\":[]}").await;
    assert_eq!(locations(&r), ["body/lines"]);
    assert_eq!(backend.count(), 0);

    let good = json!({ "customer": "acme", "note": null, "lines": [{ "sku": "ABC-0001", "qty": 999 }],
                       "delivery": { "street": "Main", "city": "Oslo" } })
    .to_string();
    let ok = call(&gw, Method::POST, "/v1/orders", &[JSON, KEY], &good).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(backend.requests()[0].body, Bytes::from(good.clone()), "the body is forwarded as sent");
    gw.shutdown().await;
}

#[tokio::test]
async fn violations_are_bounded_and_large_values_are_not_echoed() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend)).await;
    let lines: Vec<Value> = (0..50).map(|_| json!({ "sku": "x".repeat(5000), "qty": 0 })).collect();
    let body = json!({ "customer": "a", "lines": lines }).to_string();
    let r = call(&gw, Method::POST, "/v1/orders", &[JSON, KEY], &body).await;
    assert_eq!(locations(&r).len(), 20);
    assert!(r.body.len() < 8 * 1024, "{} bytes", r.body.len());
    assert!(!r.text().contains("xxxxxxxxxx"));
    assert_eq!(backend.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_openapi_3_1_document_imports_with_its_server_base_path_and_local_schema_file() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend)).await;
    let r = call(
        &gw,
        Method::PUT,
        "/api/v2/pets/Rex!",
        &[JSON],
        "{\"name\":\"\",\"age\":null,\"tags\":[\"a-very-long-tag-name\"]}",
    )
    .await;
    assert_eq!(locations(&r), ["path.petId", "body/name", "body/tags/0"]);
    let r = call(&gw, Method::POST, "/direct/pets", &[JSON], "{\"name\":\"rex\"}").await;
    assert_eq!(locations(&r), ["body/tags"]);
    assert_eq!(backend.count(), 0);
    let ok = call(&gw, Method::PUT, "/api/v2/pets/rex", &[JSON], "{\"name\":\"Rex\",\"age\":3,\"tags\":[]}").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let ok = call(&gw, Method::POST, "/direct/pets", &[JSON], "{\"name\":\"Rex\",\"tags\":[]}").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(backend.count(), 2);
    gw.shutdown().await;
}

/// Compiles a config whose `openapi` entry is `doc`; the errors as text.
fn import_errors(doc: &str) -> String {
    let dir = scratch_dir();
    std::fs::write(dir.join("api.yaml"), doc).expect("write doc");
    let yaml = "version: 1\nlisteners: [{ name: main, bind: \"127.0.0.1:0\" }]\nupstreams: { b: { targets: [\"http://127.0.0.1:9\"] } }\nopenapi: [{ file: api.yaml, upstream: b }]\n";
    let loaded = portcullis_config::load_str(yaml, "test.yaml", &dir, None).expect("config loads");
    match portcullis_core::compile(&loaded) {
        Ok(_) => String::new(),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn an_operation_without_x_portcullis_auth_fails_with_its_id_and_line() {
    let doc = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    get:\n      operationId: open\n      responses: {}\n";
    let errors = import_errors(doc);
    assert!(errors.contains("api.yaml:5:"), "{errors}");
    assert!(errors.contains("operation `open`") && errors.contains("x-portcullis-auth"), "{errors}");
}

#[test]
fn a_bad_ref_fails_with_its_line() {
    let doc = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    post:\n      operationId: make\n      x-portcullis-auth: none\n      requestBody:\n        content:\n          application/json:\n            schema:\n              $ref: '#/components/schemas/Missing'\n      responses: {}\n";
    let errors = import_errors(doc);
    assert!(errors.contains("api.yaml:12:"), "{errors}");
    assert!(errors.contains("operation `make`") && errors.contains("#/components/schemas/Missing"), "{errors}");
}

/// `explain` runs the same validation phase offline: the refusal, its phase and its errors.
#[test]
fn explain_shows_a_validation_refusal_with_its_errors() {
    let dir = scratch_dir();
    let spec = fixtures().join("orders-3.0.yaml");
    let yaml = format!(
        "version: 1\nlisteners: [{{ name: main, bind: \"127.0.0.1:0\" }}]\nupstreams: {{ b: {{ targets: [\"http://127.0.0.1:9\"] }} }}\nopenapi: [{{ file: {}, upstream: b }}]\n",
        spec.display()
    );
    let config = dir.join("portcullis.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["explain", "-c"])
        .arg(&config)
        .args(["--json", "GET", "http://api.test/v1/orders?limit=0"])
        .output()
        .expect("runs portcullis");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let body = &report["response"]["body"];
    assert_eq!(body["code"], "invalid_request", "{report:#}");
    assert_eq!(body["decided_by"], "validate");
    assert_eq!(body["errors"][0]["location"], "query.limit");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["explain", "-c"])
        .arg(&config)
        .args(["--json", "GET", "http://api.test/v1/orders?limit=3"])
        .output()
        .expect("runs portcullis");
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap_or_else(|_| panic!("{ok:?}"));
    assert_ne!(report["response"]["body"]["code"], "invalid_request", "{report:#}");
}

/// schemathesis (a property-based API tester this project did not write) generates valid
/// and invalid requests from an OpenAPI document and sends them through the gateway, which
/// imported the same document, to a recording backend. Its own checks are the oracle: every
/// request that breaks the schema is refused (`negative_data_rejection`: the gateway's 400,
/// as the backend answers 200 to everything it sees), every valid one is accepted
/// (`positive_data_acceptance`: it reached the backend). In CI the tool must be there.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_generated_requests_are_refused_exactly_when_they_break_the_schema() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| repo.join("target"), PathBuf::from).join("schemathesis-venv");
    let setup = std::process::Command::new(repo.join("scripts/schemathesis-venv.sh")).arg(&venv).status();
    assert!(setup.is_ok_and(|s| s.success()), "scripts/schemathesis-venv.sh failed: schemathesis is needed");
    let backend = Backend::ok().await;
    let spec = fixtures().join("shop-3.1.yaml");
    let yaml = format!(
        "version: 1\nlisteners: [{{ name: main, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams: {{ b: {{ targets: [\"{}\"] }} }}\nopenapi: [{{ file: {}, upstream: b }}]\n",
        backend.url(),
        spec.display()
    );
    let gw = TestGateway::start(&yaml).await;
    let base = gw.url("/api");
    let report = scratch_dir();
    let st = venv.join("bin/st");
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .arg("run")
            .arg(&spec)
            .args(["--url", &base])
            .args(["--checks", "not_a_server_error,negative_data_rejection,positive_data_acceptance"])
            .args(["--mode", "all", "--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", "20", "--seed", "20261207", "--workers", "1", "--request-timeout", "5"])
            .args(["--no-color", "--report", "ndjson", "--report-dir"])
            .arg(&report)
            // Its cache of found failures goes to the scratch folder, not the work tree.
            .current_dir(&report)
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
    })
    .await
    .expect("joins")
    .expect("runs st");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "schemathesis found a failure:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(backend.count() > 0, "valid requests reached the backend:\n{stdout}");
    gw.shutdown().await;
}
