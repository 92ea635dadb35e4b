use serde_json::{Value, json};

use super::*;
use crate::wsdl::tests::wsdl;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn names_become_kebab_case() {
    for (name, want) in [
        ("GetContact", "get-contact"),
        ("HTTPRequest", "http-request"),
        ("get_person", "get-person"),
        ("ContactService", "contact-service"),
        ("getV2Items", "get-v2-items"),
        ("ÜberService", "ber-service"),
        ("__", "operation"),
    ] {
        assert_eq!(kebab(name), want, "{name}");
    }
}

#[test]
fn generated_routes_are_valid_yaml_in_the_route_shape_and_fail_closed_on_auth() {
    let w = wsdl("contacts-wrapped.wsdl");
    let text = routes_yaml(
        &w,
        &RouteOptions { upstream: "crm".into(), source: Some("crm.wsdl".into()), ..Default::default() },
    );
    let doc = yaml(&text);
    let routes = doc["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(
        routes[0],
        json!({
            "name": "contact-service-get-contact",
            "match": {"path": "/contact-service/get-contact", "methods": ["POST"]},
            "upstream": "crm",
            "auth": {"any": []},
            "soap": {"operation": "GetContact"}
        })
    );
    assert!(text.contains("replace each `auth: { any: [] }`"), "{text}");
}

#[test]
fn auth_choices_and_awkward_strings_are_written_safely() {
    let w = wsdl("calc-rpc.wsdl");
    let public =
        routes_yaml(&w, &RouteOptions { upstream: "calc".into(), auth: RouteAuth::Public, ..Default::default() });
    assert_eq!(yaml(&public)["routes"][0]["auth"], json!("none"));
    let hostile = "a\"b\\c\nd: #e\u{85}";
    let named = routes_yaml(
        &w,
        &RouteOptions {
            upstream: hostile.into(),
            auth: RouteAuth::Any(vec!["corp".into(), "partners".into()]),
            path_prefix: "/v1".into(),
            source: Some("x\ny".into()),
        },
    );
    let doc = yaml(&named);
    assert_eq!(doc["routes"][1]["upstream"], json!(hostile));
    assert_eq!(doc["routes"][1]["auth"], json!({"any": ["corp", "partners"]}));
    assert_eq!(doc["routes"][1]["match"]["path"], json!("/v1/calc-service/describe"));
    assert!(named.lines().all(|l| l.starts_with('#') || l.starts_with("routes:") || l.starts_with("  ")), "{named}");
}

#[test]
fn unsupported_operations_are_listed_as_comments_only() {
    let text = routes_yaml(&wsdl("unsupported.wsdl"), &RouteOptions { upstream: "odd".into(), ..Default::default() });
    let doc = yaml(&text);
    assert_eq!(doc["routes"].as_array().unwrap().len(), 1);
    assert_eq!(text.matches("# Skipped").count(), 5, "{text}");
}

#[test]
fn colliding_names_get_suffixes() {
    let text =
        std::str::from_utf8(&crate::wsdl::tests::fixture("calc-rpc.wsdl")).unwrap().replace("\"Describe\"", "\"add\"");
    let w = crate::Wsdl::parse(text.as_bytes()).unwrap();
    let routes = generated_routes(&w, "");
    assert_eq!(routes[1].name, "calc-service-add-2");
    assert_eq!(routes[1].path, "/calc-service/add-2");
}
