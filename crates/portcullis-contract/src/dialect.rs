//! OpenAPI 3.0's schema dialect, rewritten into JSON Schema 2020-12 once at load, so one
//! validator serves both: `nullable: true` adds `null` to the allowed types (or enum), and the
//! draft-4 boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric keywords. Only
//! constructs that are not valid 2020-12 are touched, so a 3.1 document or a plain JSON
//! Schema passes through unchanged.

use serde_json::{Map, Value, json};

/// Keywords whose value is a map of schemas.
const SCHEMA_MAPS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
/// Keywords whose value is a schema.
const SCHEMA_ONE: [&str; 9] = [
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// Converts every schema of an OpenAPI document: each `schema` member (parameters, media
/// types) and each of `components.schemas`. Examples are left alone.
pub(crate) fn convert_document(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match key.as_str() {
                    "schema" => convert_schema(child),
                    "schemas" => {
                        if let Value::Object(schemas) = child {
                            schemas.values_mut().for_each(convert_schema);
                        }
                    }
                    "example" | "examples" => {}
                    _ => convert_document(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_document),
        _ => {}
    }
}

/// Converts one schema and every schema inside it.
pub(crate) fn convert_schema(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    for key in SCHEMA_MAPS {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(convert_schema);
        }
    }
    for key in SCHEMA_ONE {
        match map.get_mut(key) {
            Some(Value::Array(items)) if key == "items" => items.iter_mut().for_each(convert_schema),
            Some(child) => convert_schema(child),
            None => {}
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(convert_schema);
        }
    }
    exclusive_bound(map, "exclusiveMinimum", "minimum");
    exclusive_bound(map, "exclusiveMaximum", "maximum");
    if let Some(nullable) = map.remove("nullable")
        && nullable == Value::Bool(true)
    {
        make_nullable(schema);
    }
}

/// Draft 4's `exclusiveMinimum: true` beside `minimum: N` is 2020-12's `exclusiveMinimum: N`.
fn exclusive_bound(map: &mut Map<String, Value>, exclusive: &str, bound: &str) {
    match map.get(exclusive) {
        Some(Value::Bool(true)) => match map.remove(bound) {
            Some(limit) => {
                map.insert(exclusive.to_owned(), limit);
            }
            None => {
                map.remove(exclusive);
            }
        },
        Some(Value::Bool(false)) => {
            map.remove(exclusive);
        }
        _ => {}
    }
}

fn make_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Array(options)) = map.get_mut("enum")
        && !options.contains(&Value::Null)
    {
        options.push(Value::Null);
    }
    let composite = map.contains_key("$ref") || ["allOf", "anyOf", "oneOf"].iter().any(|k| map.contains_key(*k));
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        None if composite => {
            let inner = std::mem::take(map);
            *schema = json!({ "anyOf": [Value::Object(inner), { "type": "null" }] });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_adds_null_to_the_type_and_the_enum() {
        let mut s = json!({ "type": "string", "enum": ["a"], "nullable": true });
        convert_schema(&mut s);
        assert_eq!(s, json!({ "type": ["string", "null"], "enum": ["a", null] }));
    }

    #[test]
    fn nullable_reference_becomes_any_of_null() {
        let mut s = json!({ "properties": { "nullable": { "$ref": "#/x", "nullable": true } } });
        convert_schema(&mut s);
        assert_eq!(s, json!({ "properties": { "nullable": { "anyOf": [{ "$ref": "#/x" }, { "type": "null" }] } } }));
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let mut s = json!({ "minimum": 1, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false });
        convert_schema(&mut s);
        assert_eq!(s, json!({ "exclusiveMinimum": 1, "maximum": 9 }));
    }

    #[test]
    fn documents_convert_schema_members_but_not_examples() {
        let mut d = json!({
            "paths": { "/a": { "get": { "parameters": [{ "schema": { "type": "integer", "nullable": true } }] } } },
            "components": { "schemas": { "A": { "type": "object", "nullable": true } },
                            "examples": { "e": { "value": { "nullable": true } } } }
        });
        convert_document(&mut d);
        assert_eq!(d.pointer("/paths/~1a/get/parameters/0/schema/type"), Some(&json!(["integer", "null"])));
        assert_eq!(d.pointer("/components/schemas/A/type"), Some(&json!(["object", "null"])));
        assert_eq!(d.pointer("/components/examples/e/value/nullable"), Some(&json!(true)));
    }
}
