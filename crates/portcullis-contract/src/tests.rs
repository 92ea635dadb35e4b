//! Contracts built from small documents, checked against requests.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

use http::HeaderMap;

use crate::{Contract, OpenApiDoc, Request, Violation, schema_contract};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("portcullis-contract-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn contract(doc: &str, id: &str) -> Contract {
    let doc = OpenApiDoc::load(&write("api.yaml", doc)).unwrap();
    doc.contract(&doc.find(id).unwrap()).map_err(|e| e.to_string()).unwrap().contract
}

fn check(contract: &Contract, query: Option<&str>, headers: &[(&str, &str)], body: Option<&str>) -> Vec<String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    let request = Request {
        path_params: &[("id", "7")],
        query,
        headers: &map,
        has_body: body.is_some(),
        body: body.map(str::as_bytes),
    };
    contract.check(&request).into_iter().map(|Violation { location, .. }| location).collect()
}

const DOC: &str = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items/{id}:
    post:
      operationId: put
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, maximum: 5 } }
        - { name: tags, in: query, explode: false, schema: { type: array, items: { type: integer } } }
      requestBody:
        content:
          application/json: { schema: { type: object, required: [a], properties: { a: { type: string, nullable: true } } } }
          text/plain: {}
"#;

#[test]
fn every_place_is_checked_and_reported() {
    let c = contract(DOC, "put");
    let json = ("content-type", "application/json");
    assert_eq!(check(&c, Some("tags=1,x"), &[json], Some("{}")), ["path.id", "query.tags/1", "body/a"]);
}

#[test]
fn nullable_and_other_media_types_pass() {
    let ok = contract(&DOC.replace("maximum: 5", "maximum: 9"), "put");
    assert_eq!(
        check(&ok, None, &[("content-type", "application/json; charset=utf-8")], Some("{\"a\":null}")),
        Vec::<String>::new()
    );
    assert_eq!(check(&ok, None, &[("content-type", "text/plain")], Some("anything")), Vec::<String>::new());
    assert_eq!(check(&ok, None, &[("content-type", "image/png")], Some("x")), ["header.content-type"]);
    // The body is optional here; without one nothing is said about it.
    assert_eq!(check(&ok, None, &[], None), Vec::<String>::new());
    assert!(ok.has_path_params());
}

#[test]
fn a_schema_file_requires_a_matching_json_body() {
    let file = write("s.json", r#"{ "type": "object", "properties": { "n": { "type": "integer", "minimum": 1 } } }"#);
    let c = schema_contract(&file).unwrap().contract;
    let json = ("content-type", "application/json");
    assert_eq!(check(&c, None, &[json], None), ["body"]);
    assert_eq!(check(&c, None, &[json], Some("{\"n\":0}")), ["body/n"]);
    assert_eq!(check(&c, None, &[json], Some("{\"n\":1}")), Vec::<String>::new());
    assert!(c.reads_body(
        &[(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"))].into_iter().collect()
    ));
}

#[test]
fn bad_references_and_missing_files_are_errors_at_their_line() {
    let doc = OpenApiDoc::load(&write(
        "api.yaml",
        &DOC.replace("{ type: integer, maximum: 5 }", "{ $ref: 'other.yaml#/X' }"),
    ))
    .unwrap();
    let error = doc.contract(&doc.find("put").unwrap()).err().unwrap().to_string();
    assert!(
        error.contains("api.yaml:9:") && error.contains("operation `put`") && error.contains("other.yaml"),
        "{error}"
    );
}

#[test]
fn an_unknown_format_is_a_warning() {
    let doc = OpenApiDoc::load(&write(
        "api.yaml",
        &DOC.replace("{ type: integer, maximum: 5 }", "{ type: string, format: postcode }"),
    ))
    .unwrap();
    let compiled = doc.contract(&doc.find("put").unwrap()).map_err(|e| e.to_string()).unwrap();
    assert_eq!(compiled.warnings.len(), 1);
    assert!(compiled.warnings[0].message.contains("postcode"));
}

#[test]
fn a_schema_for_a_body_that_is_not_json_is_a_warning() {
    let doc = OpenApiDoc::load(&write(
        "api.yaml",
        &DOC.replace("text/plain: {}", "application/x-www-form-urlencoded: { schema: { type: object } }"),
    ))
    .unwrap();
    let compiled = doc.contract(&doc.find("put").unwrap()).map_err(|e| e.to_string()).unwrap();
    assert_eq!(compiled.warnings.len(), 1, "{:?}", compiled.warnings);
    assert!(compiled.warnings[0].message.contains("`application/x-www-form-urlencoded` bodies is not checked"));
    assert!(compiled.warnings[0].message.contains("operation `put`"), "{}", compiled.warnings[0].message);
}

#[test]
fn a_body_whose_names_differ_only_in_letter_case_is_refused() {
    // Go's encoding/json fills the `role` field from `Role` too, the last one winning: the
    // schema would pass "user" while the backend reads "admin".
    let doc = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items/{id}:
    post:
      operationId: put
      requestBody:
        required: true
        content:
          application/json: { schema: { type: object, properties: { role: { enum: [user] } } } }
"#;
    let c = contract(doc, "put");
    let json = ("content-type", "application/json");
    assert_eq!(check(&c, None, &[json], Some(r#"{"role":"user"}"#)), Vec::<String>::new());
    assert_eq!(check(&c, None, &[json], Some(r#"{"role":"user","Role":"admin"}"#)), ["body/Role"]);
    assert_eq!(check(&c, None, &[json], Some(r#"{"role":"user","rol\u0045":"admin"}"#)), ["body/rolE"]);
    // A repeated name: most parsers keep the last value, Go's gjson and jsonparser the first.
    assert_eq!(check(&c, None, &[json], Some(r#"{"role":"admin","role":"user"}"#)), ["body/role"]);
}

#[test]
fn a_parameter_read_once_but_given_twice_is_refused() {
    // Flask and Go read the first of several, Django and PHP the last: whichever one the check
    // read, the backend may read the other.
    let doc = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items/{id}:
    get:
      operationId: get
      parameters:
        - { name: note, in: query, schema: { maxLength: 3 } }
        - { name: tags, in: query, explode: false, schema: { type: array, maxItems: 2, items: { type: string } } }
        - { name: ids, in: query, schema: { type: array, maxItems: 2, items: { type: integer } } }
        - { name: kind, in: cookie, schema: { type: string, enum: [basic] } }
"#;
    let c = contract(doc, "get");
    let none = Vec::<String>::new();
    assert_eq!(check(&c, Some("note=abc&tags=a,b&ids=1&ids=2"), &[("cookie", "kind=basic")], None), none);
    assert_eq!(check(&c, Some("note=abc&note=abcdefgh"), &[], None), ["query.note"]);
    assert_eq!(check(&c, Some("tags=a&tags=a,b,c,d"), &[], None), ["query.tags"]);
    assert_eq!(check(&c, None, &[("cookie", "kind=basic; kind=admin")], None), ["cookie.kind"]);
    assert_eq!(check(&c, None, &[("cookie", "kind=basic"), ("cookie", "kind=admin")], None), ["cookie.kind"]);
}

#[test]
fn a_query_name_a_php_or_express_backend_reads_as_a_declared_parameter_is_refused() {
    // PHP files `max.price`, `max price` and `max[price` under `max_price`, and PHP and
    // Express's qs file `limit[]` and `limit[x]` under `limit`: the check would read none of
    // them as the parameter, the backend would.
    let doc = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items/{id}:
    get:
      operationId: get
      parameters:
        - { name: max_price, in: query, schema: { type: integer, maximum: 100 } }
        - { name: limit, in: query, schema: { type: integer, maximum: 10 } }
        - { name: filter, in: query, style: deepObject, schema: { type: object, properties: { color: { type: string } } } }
"#;
    let c = contract(doc, "get");
    let none = Vec::<String>::new();
    assert_eq!(check(&c, Some("max_price=50&limit=5&filter[color]=red&other.name=1&q[]=x"), &[], None), none);
    for query in ["max.price=5000", "max%20price=5000", "max[price=5000", "%20max.price=5000"] {
        assert_eq!(check(&c, Some(query), &[], None), ["query.max_price"], "{query}");
    }
    for query in ["limit[]=1000", "limit=5&limit[]=1000", "limit[x]=1000"] {
        assert_eq!(check(&c, Some(query), &[], None), ["query.limit"], "{query}");
    }
}
