use serde_json::json;

use crate::wsdl::tests::wsdl;

#[test]
fn input_schema_describes_fields_types_and_refuses_extra_keys() {
    let w = wsdl("contacts-wrapped.wsdl");
    let schema = w.operation("FindContacts").unwrap().input_schema();
    assert_eq!(
        schema,
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "@mode": {"type": "string"},
                "Name": {"type": "string"},
                "MaxResults": {"type": "integer", "minimum": 0, "maximum": 65535},
                "ActiveOnly": {"type": "boolean"}
            },
            "required": ["Name"],
            "additionalProperties": false
        })
    );
}

#[test]
fn output_schema_uses_definitions_for_named_types() {
    let w = wsdl("contacts-wrapped.wsdl");
    let schemas = w.operation("GetContact").unwrap().json_schemas("#/components/schemas/");
    assert_eq!(
        schemas.output["properties"]["GetContactResult"],
        json!({"anyOf": [{"$ref": "#/components/schemas/Contact"}, {"type": "null"}]})
    );
    let contact = &schemas.definitions["Contact"];
    assert_eq!(contact["required"], json!(["Id", "Name", "Active"]));
    assert_eq!(contact["properties"]["Email"], json!({"anyOf": [{"type": "string"}, {"type": "null"}]}));
    assert_eq!(contact["properties"]["Since"], json!({"type": "string", "format": "date-time"}));
    assert_eq!(contact["properties"]["Tags"], json!({"type": "array", "items": {"type": "string"}}));
    assert_eq!(contact["properties"]["Address"], json!({"$ref": "#/components/schemas/Address"}));
    let phone = &schemas.definitions["Phone"];
    assert_eq!(phone["properties"]["Kind"]["enum"], json!(["home", "work", "mobile"]));
}

#[test]
fn recursive_types_end_at_a_reference() {
    let w = wsdl("calc-rpc.wsdl");
    let schema = w.operation("Describe").unwrap().input_schema();
    assert_eq!(schema["properties"]["person"], json!({"$ref": "#/$defs/Person"}));
    assert_eq!(schema["$defs"]["Person"]["properties"]["friend"], json!({"$ref": "#/$defs/Person"}));
    let simple = w.operation("Add").unwrap().output_schema();
    assert_eq!(
        simple["properties"]["result"],
        json!({"type": "integer", "minimum": -2147483648i64, "maximum": 2147483647})
    );
}
