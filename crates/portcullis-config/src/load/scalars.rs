//! Plain scalars where the schema wants text.
//!
//! YAML resolves an unquoted `8080`, `1.0`, `0x1F`, `1e3` or `true` to a number or a boolean
//! before anything knows where it stands. Where the config schema admits text but not that
//! number or boolean (a header value, a route name, a map of strings), the scalar is the text
//! it was written as — `1.0` stays `1.0`, not `1` — as a typed YAML reader would have read it.
//! Quoted and tagged scalars are left alone (`!!int "8080"` is asked to be a number), and so is
//! null: `~`, `null` and an empty value mean nothing, also where text is wanted.
//!
//! This runs on the document as written, before the stage overlay, so `routes` merge by the
//! names they are written with; each overlay under `stages` is read against the same schema
//! as the document it overrides.

use std::collections::HashMap;

use serde_json::Value;

use crate::KeyPath;

/// Bounds `$ref` and combinator nesting while reading the schema (ours is far shallower).
const MAX_SCHEMA_DEPTH: usize = 32;

/// JSON types as bits.
const NULL: u8 = 1;
const BOOLEAN: u8 = 1 << 1;
const INTEGER: u8 = 1 << 2;
/// A number that is not an integer.
const FRACTION: u8 = 1 << 3;
const STRING: u8 = 1 << 4;
const ARRAY: u8 = 1 << 5;
const OBJECT: u8 = 1 << 6;
const ANY: u8 = u8::MAX;

/// Where the schema wants text and a plain scalar was read as a number or boolean, puts back
/// the text it was written as (`plain`: pointer → source text).
pub(super) fn restore(value: &mut Value, plain: &HashMap<String, String>, schema: &Value) {
    if plain.is_empty() {
        return;
    }
    let walk = Walk { root: schema, plain };
    let Value::Object(map) = value else { return };
    for (key, child) in map.iter_mut() {
        let path = KeyPath::root().key(key);
        if key == "stages" {
            // An overlay is a partial document: the document's schema says what each key is.
            if let Value::Object(stages) = child {
                for (name, overlay) in stages.iter_mut() {
                    walk.node(overlay, &path.key(name), &[schema]);
                }
            }
            continue;
        }
        let schemas = walk.children(schema, Step::Key(key), 0);
        walk.node(child, &path, &schemas);
    }
}

/// One step down the document.
#[derive(Clone, Copy)]
enum Step<'k> {
    Key(&'k str),
    Index(usize),
}

struct Walk<'a> {
    root: &'a Value,
    plain: &'a HashMap<String, String>,
}

impl<'a> Walk<'a> {
    /// `value` at `path`, which each of `schemas` may describe (none: nothing is known, so
    /// anything goes).
    fn node(&self, value: &mut Value, path: &KeyPath, schemas: &[&'a Value]) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let below = self.children_of(schemas, Step::Key(key));
                    self.node(child, &path.key(key), &below);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let below = self.children_of(schemas, Step::Index(i));
                    self.node(item, &path.index(i), &below);
                }
            }
            Value::Null => {}
            scalar => {
                let Some(text) = self.plain.get(path.pointer()) else { return };
                let allowed =
                    if schemas.is_empty() { ANY } else { schemas.iter().fold(0, |acc, s| acc | self.types(s, 0)) };
                if wants_text(scalar, text, allowed) {
                    *scalar = Value::String(text.clone());
                }
            }
        }
    }

    fn children_of(&self, schemas: &[&'a Value], step: Step<'_>) -> Vec<&'a Value> {
        schemas.iter().flat_map(|s| self.children(s, step, 0)).collect()
    }

    /// The schemas that may describe the child at `step` of a node `schema` describes.
    fn children(&self, schema: &'a Value, step: Step<'_>, depth: usize) -> Vec<&'a Value> {
        let mut out = Vec::new();
        let Value::Object(map) = schema else { return out };
        if depth > MAX_SCHEMA_DEPTH {
            return out;
        }
        match step {
            Step::Key(key) => match map.get("properties").and_then(|p| p.get(key)) {
                Some(property) => out.push(property),
                None => out.extend(map.get("additionalProperties").filter(|a| a.is_object())),
            },
            Step::Index(i) => match map.get("prefixItems").and_then(|p| p.get(i)) {
                Some(item) => out.push(item),
                None => out.extend(map.get("items").filter(|a| a.is_object())),
            },
        }
        if let Some(target) = self.reference(map) {
            out.extend(self.children(target, step, depth + 1));
        }
        for branch in combinators(map) {
            out.extend(self.children(branch, step, depth + 1));
        }
        out
    }

    /// The JSON types a node `schema` describes may have.
    fn types(&self, schema: &Value, depth: usize) -> u8 {
        let map = match schema {
            Value::Object(map) => map,
            Value::Bool(false) => return 0,
            _ => return ANY,
        };
        if depth > MAX_SCHEMA_DEPTH {
            return ANY;
        }
        let mut allowed = ANY;
        match map.get("type") {
            Some(Value::String(name)) => allowed &= type_bits(name),
            Some(Value::Array(names)) => {
                allowed &= names.iter().filter_map(Value::as_str).fold(0, |acc, n| acc | type_bits(n));
            }
            _ => {}
        }
        if let Some(constant) = map.get("const") {
            allowed &= value_bits(constant);
        }
        if let Some(Value::Array(options)) = map.get("enum") {
            allowed &= options.iter().fold(0, |acc, o| acc | value_bits(o));
        }
        if let Some(target) = self.reference(map) {
            allowed &= self.types(target, depth + 1);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = map.get(key) {
                allowed &= branches.iter().fold(0, |acc, b| acc | self.types(b, depth + 1));
            }
        }
        if let Some(Value::Array(all)) = map.get("allOf") {
            for branch in all {
                allowed &= self.types(branch, depth + 1);
            }
        }
        allowed
    }

    /// The target of a local `$ref` (`#/$defs/Name`).
    fn reference(&self, map: &serde_json::Map<String, Value>) -> Option<&'a Value> {
        let target = map.get("$ref")?.as_str()?.strip_prefix('#')?;
        self.root.pointer(target)
    }
}

/// The branches of `anyOf`, `oneOf` and `allOf`.
fn combinators(map: &serde_json::Map<String, Value>) -> impl Iterator<Item = &Value> {
    ["anyOf", "oneOf", "allOf"].into_iter().filter_map(|k| map.get(k)).filter_map(Value::as_array).flatten()
}

/// Whether the scalar read from `text` should be that text: the schema admits text and not
/// what YAML read. `.inf` and `.nan` arrive as canonical text already; they too get the
/// spelling they were written with.
fn wants_text(scalar: &Value, text: &str, allowed: u8) -> bool {
    match scalar {
        Value::String(s) => s != text && matches!(s.as_str(), ".inf" | "-.inf" | ".nan"),
        other => allowed & STRING != 0 && allowed & value_bits(other) == 0,
    }
}

fn type_bits(name: &str) -> u8 {
    match name {
        "null" => NULL,
        "boolean" => BOOLEAN,
        "integer" => INTEGER,
        "number" => INTEGER | FRACTION,
        "string" => STRING,
        "array" => ARRAY,
        "object" => OBJECT,
        _ => ANY,
    }
}

/// The type of a value as the validator sees it (`1.0` is an integer).
fn value_bits(value: &Value) -> u8 {
    match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => INTEGER,
        Value::Number(_) => FRACTION,
        Value::String(_) => STRING,
        Value::Array(_) => ARRAY,
        Value::Object(_) => OBJECT,
    }
}
