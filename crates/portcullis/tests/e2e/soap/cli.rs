//! The SOAP command line: `soap routes` output that `validate` accepts once auth is stated,
//! its exit codes, `validate` on a bad WSDL or an unknown operation, and `openapi`.

use super::{fixtures, portcullis};
use crate::kit::scratch_dir;

fn wsdl() -> String {
    fixtures().join("contacts-wrapped.wsdl").display().to_string()
}

/// A config with a SOAP upstream `crm` on `wsdl` and these routes (a YAML `routes:` document).
fn config(wsdl: &str, routes: &str) -> std::path::PathBuf {
    let text = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nauth:\n  corp: {{ type: api_key }}\n  partners: {{ type: api_key, header: X-Partner-Key }}\nupstreams:\n  crm: {{ targets: [\"https://crm.internal/ContactService.asmx\"], soap: {{ wsdl: \"{wsdl}\" }} }}\n{routes}"
    );
    let path = scratch_dir().join("soap.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn soap_routes_prints_a_route_per_operation_that_validates_once_auth_is_stated() {
    let wsdl = wsdl();
    let (code, yaml, err) = portcullis(&[
        "soap",
        "routes",
        "--wsdl",
        &wsdl,
        "--upstream",
        "crm",
        "--auth",
        "corp,partners",
        "--path-prefix",
        "/v1/",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(yaml.contains("\nroutes:\n"), "{yaml}");
    for path in
        ["/v1/contact-service/get-contact", "/v1/contact-service/find-contacts", "/v1/contact-service/save-contact"]
    {
        assert!(yaml.contains(&format!("path: \"{path}\", methods: [POST]")), "{path} in:\n{yaml}");
    }
    assert!(yaml.contains("auth: { any: [\"corp\", \"partners\"] }"), "{yaml}");
    let file = config(&wsdl, &yaml);
    let (code, out, err) = portcullis(&["validate", "-c", file.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok (3 routes)"), "{out}");
    // Without --auth or --public the routes cannot go live unnoticed.
    let (code, unset, err) = portcullis(&["soap", "routes", "--wsdl", &wsdl, "--upstream", "crm"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--public"), "{err}");
    let file = config(&wsdl, &unset);
    let (code, out, _) = portcullis(&["validate", "-c", file.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("list at least one auth provider"), "{out}");
}

#[test]
fn soap_routes_exits_1_on_an_unusable_wsdl_and_2_on_bad_arguments() {
    let dir = scratch_dir();
    let broken = dir.join("broken.wsdl");
    std::fs::write(&broken, "<wsdl:definitions").expect("write");
    let broken = broken.display().to_string();
    let (code, out, err) = portcullis(&["soap", "routes", "--wsdl", &broken, "--upstream", "crm"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("broken.wsdl") && err.contains("not usable XML"), "{err}");
    let missing = dir.join("missing.wsdl").display().to_string();
    let (code, _, err) = portcullis(&["soap", "routes", "--wsdl", &missing, "--upstream", "crm"]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.wsdl: cannot be read"), "{err}");
    let wsdl = wsdl();
    assert_eq!(
        portcullis(&["soap", "routes", "--wsdl", &wsdl, "--upstream", "crm", "--public", "--auth", "corp"]).0,
        2
    );
    assert_eq!(portcullis(&["soap", "routes", "--wsdl", &wsdl]).0, 2, "--upstream is required");
    assert_eq!(portcullis(&["soap", "routes", "--wsdl", &wsdl, "--upstream", "crm", "--path-prefix", "v1"]).0, 2);
}

#[test]
fn validate_names_a_bad_wsdl_and_an_unknown_operation_with_their_lines() {
    let dir = scratch_dir();
    std::fs::write(dir.join("bad.wsdl"), "<definitions/>").expect("write");
    let bad = config(
        &dir.join("bad.wsdl").display().to_string(),
        "routes:\n  - { name: r, match: { path: /x }, upstream: crm, auth: none, soap: { operation: GetContact } }\n",
    );
    let (code, out, _) = portcullis(&["validate", "-c", bad.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(":7:") && out.contains("upstreams.crm.soap.wsdl") && out.contains("bad.wsdl"), "{out}");
    assert!(out.contains("not a WSDL 1.1 document"), "{out}");
    let unknown = config(
        &wsdl(),
        "routes:\n  - { name: r, match: { path: /x }, upstream: crm, auth: none, soap: { operation: GetContacts } }\n",
    );
    let (code, out, _) = portcullis(&["validate", "-c", unknown.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(":9:") && out.contains("routes[0].soap.operation"), "{out}");
    assert!(out.contains("no SOAP operation `GetContacts` (it has: GetContact, FindContacts, SaveContact)"), "{out}");
}

#[test]
fn openapi_prints_the_routes_with_soap_schemas_and_exits_1_on_a_bad_config() {
    let file = config(
        &wsdl(),
        "routes:\n  - { name: contact, match: { path: \"/contacts/{id}\", methods: [GET] }, upstream: crm, auth: { any: [corp] }, soap: { operation: GetContact, request: { ContactId: \"{path.id}\" } } }\n",
    );
    let (code, out, err) = portcullis(&["openapi", "-c", file.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("openapi prints JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let op = &doc["paths"]["/contacts/{id}"]["get"];
    assert_eq!(op["operationId"], "contact");
    assert_eq!(op["security"], serde_json::json!([{"corp": []}]));
    assert!(doc["components"]["schemas"]["crm.Contact"].is_object(), "{out}");
    let bad = config(&wsdl(), "routes:\n  - { name: r, match: { path: /x }, upstream: nowhere, auth: none }\n");
    let (code, out, err) = portcullis(&["openapi", "-c", bad.to_str().unwrap_or_default()]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("unknown upstream `nowhere`"), "{err}");
}
