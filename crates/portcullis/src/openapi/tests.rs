//! The OpenAPI document of a config with plain and SOAP routes.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

use std::path::Path;

use serde_json::{Value, json};

fn document_of(routes: &str) -> (Value, Vec<String>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-soap/tests/fixtures");
    let text = format!(
        r#"version: 1
listeners: [{{ name: l, bind: "127.0.0.1:8080" }}]
auth:
  corp: {{ type: jwt, issuer: "https://idp.example.com", algorithms: [RS256] }}
  partners: {{ type: api_key, header: X-Api-Key }}
upstreams:
  orders: {{ targets: ["http://127.0.0.1:9000"] }}
  crm: {{ targets: ["http://127.0.0.1:9001"], soap: {{ wsdl: contacts-wrapped.wsdl }} }}
routes:
{routes}"#
    );
    let loaded = portcullis_config::load_str(&text, "t.yaml", &fixtures, None).unwrap();
    let snapshot = portcullis_core::compile(&loaded).unwrap();
    super::document(&loaded.document, &snapshot)
}

const ROUTES: &str = r#"  - { name: list-orders, match: { path: /v1/orders, methods: [GET] }, upstream: orders, auth: { any: [corp, partners] } }
  - { name: order, match: { path: "/v1/orders/{id}", methods: [GET, DELETE] }, upstream: orders, auth: { all: [corp, partners] } }
  - { name: files, match: { path: "/static/{*rest}" }, upstream: orders, auth: none }
  - { name: find, match: { path: /v1/contacts/find, methods: [POST] }, upstream: crm, auth: none, soap: { operation: FindContacts } }
  - { name: search, match: { path: /v1/contacts/search, methods: [GET] }, upstream: crm, auth: none, soap: { operation: FindContacts } }
  - { name: contact, match: { path: "/v1/contacts/{id}", methods: [GET] }, upstream: crm, auth: none, soap: { operation: GetContact, request: { ContactId: "{path.id}" } } }
"#;

#[test]
fn every_route_is_an_operation_with_its_params_and_security() {
    let (doc, skipped) = document_of(ROUTES);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(doc["openapi"], "3.1.0");
    let list = &doc["paths"]["/v1/orders"]["get"];
    assert_eq!(list["operationId"], "list-orders");
    assert_eq!(list["security"], json!([{"corp": []}, {"partners": []}]));
    let order = &doc["paths"]["/v1/orders/{id}"];
    assert_eq!(
        (order["get"]["operationId"].clone(), order["delete"]["operationId"].clone()),
        (json!("order-get"), json!("order-delete"))
    );
    assert_eq!(order["get"]["security"], json!([{"corp": [], "partners": []}]));
    assert_eq!(
        order["get"]["parameters"][0],
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
    );
    let files = &doc["paths"]["/static/{rest}"];
    assert_eq!(files.as_object().unwrap().len(), 7, "a route without methods lists OpenAPI's seven");
    assert_eq!(files["get"]["security"], json!([]), "auth: none is stated as no requirement");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["corp"], json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}));
    assert_eq!(schemes["partners"], json!({"type": "apiKey", "in": "header", "name": "X-Api-Key"}));
}

#[test]
fn soap_routes_carry_json_schemas_from_the_wsdl() {
    let (doc, _) = document_of(ROUTES);
    let schemas = &doc["components"]["schemas"];
    let find = &doc["paths"]["/v1/contacts/find"]["post"];
    assert_eq!(
        find["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/crm.FindContacts.input"
    );
    assert_eq!(find["requestBody"]["required"], true, "Name is required");
    assert_eq!(
        find["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/crm.FindContacts.output"
    );
    assert_eq!(
        find["responses"]["400"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert_eq!(schemas["crm.FindContacts.input"]["required"], json!(["Name"]));
    let output = &schemas["crm.FindContacts.output"];
    assert_eq!(output["properties"]["Contact"]["items"]["$ref"], "#/components/schemas/crm.Contact");
    assert_eq!(schemas["crm.Contact"]["properties"]["Address"]["$ref"], "#/components/schemas/crm.Address");
    let search = &doc["paths"]["/v1/contacts/search"]["get"];
    let names: Vec<&str> = search["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["ActiveOnly", "MaxResults", "Name"], "a GET takes the input from the query");
    assert!(search.get("requestBody").is_none());
    let contact = &doc["paths"]["/v1/contacts/{id}"]["get"];
    assert_eq!(contact["parameters"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        contact["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/crm.GetContact.output"
    );
    assert!(schemas["Problem"]["properties"]["faultcode"].is_object());
    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.get(name).is_some(), "dangling $ref {name}");
    }
}

#[test]
fn two_routes_on_one_path_and_method_are_reported_not_merged() {
    let (doc, skipped) = document_of(
        "  - { name: a, match: { host: a.example.com, path: /x, methods: [GET] }, upstream: orders, auth: none }\n  - { name: b, match: { host: b.example.com, path: /x, methods: [GET] }, upstream: orders, auth: none }\n",
    );
    assert_eq!(doc["paths"]["/x"]["get"]["operationId"], "a");
    assert_eq!(doc["paths"]["/x"]["get"]["x-portcullis-host"], "a.example.com");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("route `b`"), "{skipped:?}");
}

/// `portcullis openapi`'s output, imported with `openapi: [{ file }]`, gives the same routes.
#[test]
fn importing_the_document_gives_the_same_routes_back() {
    let dir = std::env::temp_dir().join(format!("portcullis-openapi-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/validation/orders-3.0.yaml");
    let head = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
auth:
  corp: { type: jwt, issuer: "https://idp.example.com", algorithms: [RS256] }
  partners: { type: api_key, header: X-Api-Key }
policies:
  readers: { scopes: [orders.read] }
rate_limits:
  per_ip: { rate: 10/s, burst: 20, key: client_ip }
upstreams:
  orders: { targets: ["http://127.0.0.1:9000"] }
"#;
    let routes = format!(
        r#"routes:
  - {{ name: list-orders, match: {{ path: /v1/orders, methods: [GET] }}, upstream: orders, auth: {{ any: [corp, partners] }}, policy: readers, rate_limits: [per_ip], cache: {{ ttl: 30s }}, waf: detect }}
  - {{ name: get-order, match: {{ host: api.example.com, path: "/v1/orders/{{id}}", methods: [GET] }}, upstream: orders, auth: {{ all: [corp, partners] }} }}
  - {{ name: create-order, match: {{ path: /v1/orders, methods: [POST] }}, upstream: orders, auth: none, validate: {{ openapi: {}, operation: createOrder }} }}
"#,
        spec.display()
    );
    let loaded = portcullis_config::load_str(&format!("{head}{routes}"), "t.yaml", &dir, None).unwrap();
    let snapshot = portcullis_core::compile(&loaded).unwrap();
    let (doc, skipped) = super::document(&loaded.document, &snapshot);
    assert!(skipped.is_empty(), "{skipped:?}");
    std::fs::write(dir.join("out.json"), doc.to_string()).unwrap();
    let imported =
        portcullis_config::load_str(&format!("{head}openapi: [{{ file: out.json }}]\n"), "t.yaml", &dir, None).unwrap();
    let again = portcullis_core::compile(&imported).unwrap_or_else(|e| panic!("{e}"));
    let summary = |s: &portcullis_core::Snapshot| -> Vec<String> {
        let mut v: Vec<String> = s
            .routes
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} {} {:?} up={} auth={:?} policy={:?} limits={:?} cache={:?}",
                    r.name, r.host, r.path, r.methods, r.upstream, r.auth, r.policies, r.rate_limits, r.cache
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(&again), summary(&snapshot));
    let create = again.routes.iter().find(|r| &*r.name == "create-order").unwrap();
    assert!(create.contract.is_some(), "the operation's contract comes back with it");
    let (doc_again, _) = super::document(&imported.document, &again);
    assert_eq!(
        doc_again["paths"]["/v1/orders"]["post"]["requestBody"],
        doc["paths"]["/v1/orders"]["post"]["requestBody"]
    );
    assert_eq!(doc["paths"]["/v1/orders"]["get"]["x-portcullis-waf"], json!("detect"));
    let _ = std::fs::remove_dir_all(&dir);
}
