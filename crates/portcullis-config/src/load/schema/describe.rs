//! Words for values and schema shapes, used to build validation messages.

use jsonschema::JsonType;
use serde_json::{Map, Value};

/// How much of a string value a message quotes.
const QUOTE_CHARS: usize = 60;
/// `$ref` chains in our schema are short; this only guards against a cycle.
const MAX_DEPTH: usize = 8;
/// Past this many allowed keys, listing them all is noise.
const MAX_LISTED_KEYS: usize = 8;

/// A value as a phrase: "a mapping", "the string `x`", "the number 2".
pub(in crate::load) fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "an empty value".to_owned(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string `{}`", quote(s)),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// A string cut to a readable length.
pub(super) fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        quoted.push('…');
    }
    quoted
}

/// A literal as the user would write it: `none`, `500`.
pub(super) fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// "a", "a or b", "a, b or c".
pub(super) fn one_of(items: &[String]) -> String {
    match items {
        [] => "one of the allowed forms".to_owned(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

pub(super) fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Null => "nothing",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping",
    }
}

/// "unknown key `upstreem`; did you mean `upstream`?", from the `additionalProperties`
/// keyword at `keyword` and the `properties` beside it.
pub(super) fn unknown_key(schema: &Value, key: &str, keyword: &str) -> String {
    let parent = keyword.rsplit_once('/').map_or("", |(parent, _)| parent);
    let allowed: Vec<&str> = schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(best) = closest(key, &allowed) {
        return format!("unknown key `{key}`; did you mean `{best}`?");
    }
    if !allowed.is_empty() && allowed.len() <= MAX_LISTED_KEYS {
        let listed: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
        return format!("unknown key `{key}`; expected {}", one_of(&listed));
    }
    format!("unknown key `{key}`")
}

/// The allowed key nearest to `key` by edit distance, if it is near enough to be a typo.
fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    crate::nearest(key, allowed.iter().copied())
}

/// The forms an `anyOf` / `oneOf` keyword at `keyword` allows, as phrases.
pub(super) fn alternatives(schema: &Value, keyword: &str) -> Vec<String> {
    let mut forms = Vec::new();
    if let Some(Value::Array(branches)) = schema.pointer(keyword) {
        for branch in branches {
            for form in describe(schema, branch, 0) {
                if !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
    }
    forms
}

fn describe(root: &Value, schema: &Value, depth: usize) -> Vec<String> {
    let Some(map) = schema.as_object().filter(|_| depth <= MAX_DEPTH) else {
        return if *schema == Value::Bool(true) { vec!["anything".to_owned()] } else { Vec::new() };
    };
    let target = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#'));
    if let Some(target) = target.and_then(|p| root.pointer(p)) {
        return describe(root, target, depth + 1);
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(keyword) {
            return branches.iter().flat_map(|b| describe(root, b, depth + 1)).collect();
        }
    }
    if let Some(Value::Array(options)) = map.get("enum") {
        return options.iter().filter(|o| !o.is_null()).map(literal).collect();
    }
    if let Some(constant) = map.get("const") {
        return vec![literal(constant)];
    }
    types(map).into_iter().filter(|t| *t != "null").map(|t| shape(root, t, map, depth)).collect()
}

fn types(map: &Map<String, Value>) -> Vec<&str> {
    match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn shape(root: &Value, ty: &str, map: &Map<String, Value>, depth: usize) -> String {
    match ty {
        "object" => object_shape(map),
        "array" => {
            let items = map.get("items").map(|i| describe(root, i, depth + 1)).unwrap_or_default();
            if items == ["a string"] { "a list of strings".to_owned() } else { "a list".to_owned() }
        }
        "integer" => match (map.get("minimum"), map.get("maximum")) {
            (Some(min), Some(max)) => format!("an integer from {min} to {max}"),
            _ => "an integer".to_owned(),
        },
        // The value types describe themselves as a noun phrase ("a duration such as …");
        // a field's own doc comment is not one, so it is not used here.
        "string" => map
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| d.starts_with("a "))
            .map_or_else(|| "a string".to_owned(), |d| d.trim_end_matches('.').to_owned()),
        "boolean" => "true or false".to_owned(),
        "number" => "a number".to_owned(),
        other => other.to_owned(),
    }
}

/// `{any: [...]}`, `{type: jwt, issuer: ...}`: an object by its required keys.
fn object_shape(map: &Map<String, Value>) -> String {
    let required: Vec<&str> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if required.is_empty() {
        return "a mapping".to_owned();
    }
    let properties = map.get("properties");
    let fields: Vec<String> = required
        .iter()
        .map(|key| {
            let property = properties.and_then(|p| p.get(*key));
            let value = match property {
                Some(p) if p.get("const").is_some() => p.get("const").map(plain).unwrap_or_default(),
                Some(p) if p.get("type").and_then(Value::as_str) == Some("array") => "[...]".to_owned(),
                _ => "...".to_owned(),
            };
            format!("{key}: {value}")
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn plain(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}
