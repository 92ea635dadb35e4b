use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::wsdl::tests::wsdl;

fn template(value: Value) -> Result<RequestTemplate, TemplateError> {
    let map: BTreeMap<String, Value> = serde_json::from_value(value).unwrap();
    RequestTemplate::parse(&map)
}

fn values(p: &Placeholder) -> Option<Value> {
    let body = json!({"contact": {"name": "Ada", "tags": ["a"]}, "n": 5});
    match p {
        Placeholder::Path(n) if n == "id" => Some(json!("42")),
        Placeholder::Query(n) if n == "page" => Some(json!("2")),
        Placeholder::Body(path) => Placeholder::select(path, &body).cloned(),
        Placeholder::Claim(n) if n == "https://example.com/roles" => Some(json!(["admin"])),
        Placeholder::Consumer => Some(json!("acme")),
        _ => None,
    }
}

#[test]
fn placeholders_render_typed_when_alone_and_as_text_when_mixed() {
    let t = template(json!({
        "ContactId": "{path.id}", "Label": "id-{path.id}/{consumer} {{x}}", "Count": "{body.n}",
        "Contact": {"Name": "{body.contact.name}", "Tags": "{body.contact.tags}"},
        "Fixed": 3, "Flag": true, "List": ["{query.page}", "{query.none}"]
    }))
    .unwrap();
    let rendered = t.render(&values).unwrap();
    assert_eq!(
        Value::Object(rendered),
        json!({
            "ContactId": "42", "Label": "id-42/acme {x}", "Count": 5,
            "Contact": {"Name": "Ada", "Tags": ["a"]}, "Fixed": 3, "Flag": true, "List": ["2"]
        })
    );
    let names: Vec<String> = t.placeholders().iter().map(ToString::to_string).collect();
    assert!(names.contains(&"{body.contact.name}".to_owned()) && names.contains(&"{consumer}".to_owned()), "{names:?}");
}

#[test]
fn missing_values_leave_keys_out() {
    let t =
        template(json!({"A": "{query.missing}", "B": "x{query.missing}", "C": {"D": "{path.nope}"}, "E": {}})).unwrap();
    assert_eq!(Value::Object(t.render(&values).unwrap()), json!({"E": {}}));
}

#[test]
fn claims_may_have_dotted_names_but_objects_cannot_join_text() {
    let t = template(json!({"Roles": "{claim.https://example.com/roles}"})).unwrap();
    assert_eq!(Value::Object(t.render(&values).unwrap()), json!({"Roles": ["admin"]}));
    let t = template(json!({"Roles": "r={claim.https://example.com/roles}"})).unwrap();
    let err = t.render(&values).unwrap_err();
    assert_eq!(err.key, "Roles");
    assert!(err.message.contains("cannot be part of a text"), "{err}");
}

#[test]
fn bad_placeholders_are_load_time_errors_naming_the_key() {
    for (text, needle) in [
        ("{path}", "not a placeholder"),
        ("{header.x}", "not a placeholder"),
        ("{body.a..b}", "not a placeholder"),
        ("{path.id", "unclosed"),
        ("a}b", "lone"),
        ("{}", "not a placeholder"),
        ("{query.}", "not a placeholder"),
    ] {
        let err = template(json!({"Outer": {"Inner": text}})).unwrap_err();
        assert_eq!(err.key, "Outer.Inner", "{text}");
        assert!(err.message.contains(needle), "{text}: {err}");
    }
}

#[test]
fn templates_are_checked_against_the_operation_input() {
    let w = wsdl("contacts-wrapped.wsdl");
    let get = w.operation("GetContact").unwrap();
    assert!(template(json!({"ContactId": "{path.id}"})).unwrap().check(get).is_ok());
    let unknown = template(json!({"ContactID": "{path.id}"})).unwrap().check(get).unwrap_err();
    assert_eq!(unknown.to_string(), "/ContactID: unknown field `ContactID`; expected one of: ContactId");
    let missing = template(json!({})).unwrap().check(get).unwrap_err();
    assert_eq!(missing.to_string(), "/ContactId: this required field is not in the template");
    let save = w.operation("SaveContact").unwrap();
    let nested = template(json!({"Contact": {"Id": "1", "Nme": "x"}})).unwrap().check(save).unwrap_err();
    assert_eq!(nested.pointer, "/Contact/Nme");
    let map_for_value = template(json!({"ContactId": {"x": "1"}})).unwrap().check(get).unwrap_err();
    assert_eq!(map_for_value.to_string(), "/ContactId: expected a value, not a map");
}
