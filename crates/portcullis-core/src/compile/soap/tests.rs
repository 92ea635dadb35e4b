//! SOAP config checks, on the WSDL fixtures of `portcullis-soap`.

use std::path::{Path, PathBuf};

use portcullis_config::load_str;

use crate::compile;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-soap/tests/fixtures")
}

/// Compiles a config whose relative paths resolve in `dir`.
fn compile_in(dir: &Path, upstreams: &str, routes: &str) -> Result<crate::Snapshot, String> {
    let text = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:8080\" }}]\nauth:\n  corp: {{ type: api_key }}\nupstreams:\n{upstreams}routes:\n{routes}"
    );
    let loaded = load_str(&text, "t.yaml", dir, None).map_err(|e| e.to_string())?;
    compile(&loaded).map_err(|e| e.to_string())
}

const CRM: &str = "  crm: { targets: [\"http://127.0.0.1:9000\"], soap: { wsdl: contacts-wrapped.wsdl } }\n  plain: { targets: [\"http://127.0.0.1:9001\"] }\n";

fn compile_crm(routes: &str) -> Result<crate::Snapshot, String> {
    compile_in(&fixtures(), CRM, routes)
}

fn error_of(result: Result<crate::Snapshot, String>) -> String {
    match result {
        Ok(_) => panic!("compiled, but an error was expected"),
        Err(e) => e,
    }
}

#[test]
fn a_soap_route_resolves_its_operation_template_and_endpoint_and_the_wsdl_is_watched() {
    let snap = compile_crm(
        "  - { name: get, match: { path: \"/contacts/{id}\", methods: [GET] }, upstream: crm, auth: none, soap: { operation: GetContact, request: { ContactId: \"{path.id}\" } } }\n  - { name: find, match: { path: /contacts, methods: [POST] }, upstream: crm, auth: none, soap: { operation: FindContacts } }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let get = snap.routes[0].soap.as_ref().unwrap_or_else(|| panic!("soap route"));
    assert_eq!(get.operation.name(), "GetContact");
    assert!(get.template.is_some());
    assert_eq!(get.address_path.as_str(), "/ContactService.asmx", "the soap:address path");
    assert!(snap.routes[0].captures_params, "the template reads {{path.id}}");
    assert!(snap.routes[1].soap.as_ref().is_some_and(|s| s.template.is_none()));
    let wsdl = fixtures().join("contacts-wrapped.wsdl");
    assert!(snap.watch.contains(&wsdl), "{:?}", snap.watch);
    assert!(snap.upstreams.iter().any(|u| u.soap.is_some()));
    assert!(!snap.warnings.iter().any(|w| w.message.contains("SOAP")), "{:?}", snap.warnings);
}

#[test]
fn an_unknown_operation_is_an_error_listing_the_known_ones() {
    let err = error_of(compile_crm(
        "  - { name: r, match: { path: /x }, upstream: crm, auth: none, soap: { operation: DeleteContact } }\n",
    ));
    assert!(err.contains("routes[0].soap.operation"), "{err}");
    assert!(err.contains("no SOAP operation `DeleteContact`"), "{err}");
    assert!(err.contains("(it has: GetContact, FindContacts, SaveContact)"), "each operation once: {err}");
}

#[test]
fn an_unreadable_or_invalid_wsdl_is_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("portcullis-core-soap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("broken.wsdl"), "<definitions><oops></definitions>").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("import.wsdl"),
        r#"<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"><wsdl:import namespace="urn:x" location="other.wsdl"/></wsdl:definitions>"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = error_of(compile_in(
        &dir,
        "  a: { targets: [\"http://h:1\"], soap: { wsdl: missing.wsdl } }\n  b: { targets: [\"http://h:2\"], soap: { wsdl: broken.wsdl } }\n  c: { targets: [\"http://h:3\"], soap: { wsdl: import.wsdl } }\n",
        "  []\n",
    ));
    assert!(err.contains("upstreams.a.soap.wsdl") && err.contains("missing.wsdl`: cannot be read"), "{err}");
    assert!(err.contains("upstreams.b.soap.wsdl") && err.contains("broken.wsdl"), "{err}");
    assert!(err.contains("not usable XML"), "{err}");
    assert!(
        err.contains("upstreams.c.soap.wsdl") && err.contains("wsdl:import of another file is not supported"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_operation_with_an_unsupported_construct_is_an_error_naming_it() {
    let err = error_of(compile_in(
        &fixtures(),
        "  odd: { targets: [\"http://127.0.0.1:9000\"], soap: { wsdl: unsupported.wsdl } }\n",
        "  - { name: ok, match: { path: /ping }, upstream: odd, auth: none, soap: { operation: Ping } }\n  - { name: bad, match: { path: /enc }, upstream: odd, auth: none, soap: { operation: Encoded } }\n",
    ));
    assert!(err.contains("routes[1].soap.operation"), "{err}");
    assert!(err.contains("encoded"), "names the construct: {err}");
    assert!(!err.contains("routes[0]"), "Ping is usable: {err}");
}

#[test]
fn a_template_is_checked_against_the_operation_the_path_and_the_auth() {
    let err = error_of(compile_crm(concat!(
        "  - { name: a, match: { path: \"/c/{id}\" }, upstream: crm, auth: none, soap: { operation: GetContact, request: { ContactId: \"{path.other}\" } } }\n",
        "  - { name: b, match: { path: /b }, upstream: crm, auth: none, soap: { operation: GetContact, request: { ContactId: 1, Extra: 2 } } }\n",
        "  - { name: c, match: { path: /c }, upstream: crm, auth: none, soap: { operation: FindContacts, request: { MaxResults: 5 } } }\n",
        "  - { name: d, match: { path: /d }, upstream: crm, auth: none, soap: { operation: FindContacts, request: { Name: \"{claim.sub}\" } } }\n",
        "  - { name: e, match: { path: /e }, upstream: crm, auth: none, soap: { operation: GetContact, request: { ContactId: \"{oops}\" } } }\n",
    )));
    assert!(err.contains("`{path.other}` is not a parameter of the route's path (it has: id)"), "{err}");
    assert!(err.contains("routes[1].soap.request") && err.contains("unknown field `Extra`"), "{err}");
    assert!(err.contains("routes[2].soap.request") && err.contains("required"), "{err}");
    assert!(err.contains("`{claim.sub}` needs an authenticated route"), "{err}");
    assert!(err.contains("routes[4].soap.request.ContactId"), "{err}");
}

#[test]
fn soap_and_plain_routes_and_upstreams_do_not_mix() {
    let err = error_of(compile_crm(concat!(
        "  - { name: a, match: { path: /a }, upstream: plain, auth: none, soap: { operation: GetContact } }\n",
        "  - { name: b, match: { path: /b }, upstream: crm, auth: none }\n",
        "  - { name: c, match: { path: \"/c/{id}\" }, upstream: crm, auth: none, rewrite: { path: \"/x/{id}\" }, soap: { operation: GetContact } }\n",
    )));
    assert!(err.contains("upstream `plain` has no `soap.wsdl`"), "{err}");
    assert!(err.contains("upstream `crm` is a SOAP service: the route needs `soap: { operation: NAME }`"), "{err}");
    assert!(err.contains("(operations: GetContact, FindContacts, SaveContact)"), "{err}");
    assert!(err.contains("`rewrite` does not apply"), "{err}");
    let mock = error_of(compile_in(
        &fixtures(),
        "  m: { mock: { status: 200 }, soap: { wsdl: contacts-wrapped.wsdl } }\n",
        "  []\n",
    ));
    assert!(mock.contains("a SOAP upstream needs `targets`"), "{mock}");
}
