//! JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) of operations' JSON input and
//! output, derived from the WSDL's XSD types, for `portcullis openapi`.
//!
//! Named complex types (and global elements with anonymous ones) become definitions referred
//! to by `$ref`, which keeps recursive types finite; everything else is inlined. The top
//! object of an input also says `additionalProperties: false`, as the mapping refuses unknown
//! keys; definitions stay direction-neutral so input and output can share them. Repeated
//! elements are arrays, nillable ones allow `null`, integers are `integer` (with the XSD
//! type's bounds), decimals and floats `number`, and date-like strings carry a `format`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::schema::{ComplexTy, Field, SimpleTy, Ty, TypeId, Types, ValueKind};
use crate::wsdl::Operation;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

/// The draft these schemas are written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// An operation's schemas; `$ref`s point at `{ref_prefix}{name}` for each `definitions` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemas {
    pub input: Value,
    /// The output object (`{}` for a one-way operation, which answers no body).
    pub output: Value,
    pub definitions: BTreeMap<String, Value>,
}

impl Operation {
    /// Schemas whose references start with `ref_prefix`, e.g. `#/components/schemas/`.
    pub fn json_schemas(&self, ref_prefix: &str) -> JsonSchemas {
        let mut generator = Generator::new(&self.types, ref_prefix);
        let input = generator.input(self.input.ty);
        let output = self.output.as_ref().map_or_else(|| json!({}), |shape| generator.root(shape.ty));
        generator.drain();
        JsonSchemas { input, output, definitions: generator.definitions }
    }

    /// A self-contained schema of the input (definitions under `$defs`).
    pub fn input_schema(&self) -> Value {
        let mut generator = Generator::new(&self.types, "#/$defs/");
        let input = generator.input(self.input.ty);
        generator.drain();
        standalone(input, generator.definitions)
    }

    /// A self-contained schema of the output (definitions under `$defs`).
    pub fn output_schema(&self) -> Value {
        let mut generator = Generator::new(&self.types, "#/$defs/");
        let output = self.output.as_ref().map_or_else(|| json!({}), |shape| generator.root(shape.ty));
        generator.drain();
        standalone(output, generator.definitions)
    }
}

fn standalone(schema: Value, definitions: BTreeMap<String, Value>) -> Value {
    let mut map = match schema {
        Value::Object(map) => map,
        other => Map::from_iter([("allOf".to_owned(), json!([other]))]),
    };
    map.insert("$schema".to_owned(), Value::String(DIALECT.to_owned()));
    if !definitions.is_empty() {
        map.insert("$defs".to_owned(), Value::Object(definitions.into_iter().collect()));
    }
    Value::Object(map)
}

struct Generator<'t> {
    types: &'t Types,
    prefix: &'t str,
    definitions: BTreeMap<String, Value>,
    todo: Vec<(String, TypeId)>,
}

impl<'t> Generator<'t> {
    fn new(types: &'t Types, prefix: &'t str) -> Self {
        Self { types, prefix, definitions: BTreeMap::new(), todo: Vec::new() }
    }

    /// The input object refuses keys it does not declare, as the mapping does.
    fn input(&mut self, ty: TypeId) -> Value {
        let mut input = self.root(ty);
        if let Value::Object(map) = &mut input {
            map.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
        input
    }

    /// The message object itself is always inlined.
    fn root(&mut self, ty: TypeId) -> Value {
        match self.types.get(ty) {
            Ty::Complex(c) => self.object(c),
            _ => self.schema(ty),
        }
    }

    fn drain(&mut self) {
        while let Some((name, ty)) = self.todo.pop() {
            if let Ty::Complex(c) = self.types.get(ty) {
                let schema = self.object(c);
                self.definitions.insert(name, schema);
            }
        }
    }

    fn schema(&mut self, ty: TypeId) -> Value {
        match self.types.get(ty) {
            Ty::Simple(s) => simple(s),
            Ty::Any => json!({}),
            Ty::Broken(reason) => json!({ "description": reason }),
            Ty::Complex(c) => match self.types.def_names.get(&ty) {
                Some(name) => {
                    if !self.definitions.contains_key(name) && !self.todo.iter().any(|(n, _)| n == name) {
                        // Reserve the name first so recursion ends at the `$ref`.
                        self.definitions.insert(name.clone(), json!({}));
                        self.todo.push((name.clone(), ty));
                    }
                    json!({ "$ref": format!("{}{}", self.prefix, name) })
                }
                None => self.object(c),
            },
        }
    }

    fn object(&mut self, c: &ComplexTy) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for attr in &c.attributes {
            let key = format!("@{}", attr.name.local);
            if attr.required {
                required.push(Value::String(key.clone()));
            }
            properties.insert(key, self.schema(attr.ty));
        }
        if let Some(text) = c.text {
            properties.insert("#text".to_owned(), self.schema(text));
        }
        for field in &c.fields {
            if field.min > 0 && field.choice.is_none() {
                required.push(Value::String(field.name.local.clone()));
            }
            properties.insert(field.name.local.clone(), self.field(field));
        }
        let mut schema = Map::new();
        schema.insert("type".to_owned(), json!("object"));
        if let Some(name) = &c.name {
            schema.insert("title".to_owned(), Value::String(name.local.clone()));
        }
        schema.insert("properties".to_owned(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".to_owned(), Value::Array(required));
        }
        Value::Object(schema)
    }

    fn field(&mut self, field: &Field) -> Value {
        let mut item = self.schema(field.ty);
        if field.nillable {
            item = json!({ "anyOf": [item, { "type": "null" }] });
        }
        if !field.max.is_repeated() {
            return item;
        }
        let mut array = Map::from_iter([("type".to_owned(), json!("array")), ("items".to_owned(), item)]);
        if field.min > 1 {
            array.insert("minItems".to_owned(), json!(field.min));
        }
        if let crate::schema::MaxOccurs::Bounded(max) = field.max {
            array.insert("maxItems".to_owned(), json!(max));
        }
        Value::Object(array)
    }
}

fn simple(s: &SimpleTy) -> Value {
    let mut schema = Map::new();
    let (ty, format) = match s.builtin.kind {
        ValueKind::String if s.list => ("string", None),
        ValueKind::String => ("string", string_format(s.builtin.name)),
        ValueKind::Boolean => ("boolean", None),
        ValueKind::Integer(range) => {
            if let Some((min, max)) = range {
                if let Ok(min) = i64::try_from(min) {
                    schema.insert("minimum".to_owned(), json!(min));
                }
                if let Ok(max) = u64::try_from(max) {
                    schema.insert("maximum".to_owned(), json!(max));
                } else if let Ok(max) = i64::try_from(max) {
                    schema.insert("maximum".to_owned(), json!(max));
                }
            }
            ("integer", None)
        }
        ValueKind::Decimal | ValueKind::Float => ("number", None),
    };
    schema.insert("type".to_owned(), json!(ty));
    if let Some(format) = format {
        schema.insert("format".to_owned(), json!(format));
    }
    if s.builtin.name == "base64Binary" {
        schema.insert("contentEncoding".to_owned(), json!("base64"));
    }
    if !s.enumeration.is_empty() && s.builtin.kind == ValueKind::String {
        schema.insert("enum".to_owned(), json!(s.enumeration));
    }
    Value::Object(schema)
}

fn string_format(name: &str) -> Option<&'static str> {
    match name {
        "date" => Some("date"),
        "dateTime" | "dateTimeStamp" => Some("date-time"),
        "time" => Some("time"),
        "duration" | "dayTimeDuration" | "yearMonthDuration" => Some("duration"),
        "anyURI" => Some("uri-reference"),
        _ => None,
    }
}
