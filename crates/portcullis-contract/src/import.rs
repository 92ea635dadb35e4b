//! Routes from an OpenAPI document (`openapi: [{ file, ... }]`): one route per operation,
//! named by its `operationId`, its path template (under the first server's base path) as the
//! route pattern, and its gateway settings from `x-portcullis-*` extensions on the
//! operation: `upstream` (or the source's `upstream`), `auth` (required: secure by default,
//! `none` must be written), `policy`, `rate-limits`, `cache`, `waf`, `host`. Imported
//! operations are validated against their contract unless the source says `validate: false`.

use std::path::Path;

use portcullis_config::surface::{OpenApiSource, Route};
use portcullis_config::{Diagnostic, KeyPath};
use serde_json::{Map, Value, json};

use crate::{Contract, OpenApiDoc, OperationRef};

/// The extensions an operation may carry, and the route key each one sets.
pub const EXTENSIONS: [(&str, &str); 7] = [
    ("x-portcullis-upstream", "upstream"),
    ("x-portcullis-auth", "auth"),
    ("x-portcullis-policy", "policy"),
    ("x-portcullis-rate-limits", "rate_limits"),
    ("x-portcullis-cache", "cache"),
    ("x-portcullis-waf", "waf"),
    ("x-portcullis-host", "host"),
];

/// One imported operation.
#[derive(Debug)]
pub struct Imported {
    pub route: Route,
    pub contract: Option<Contract>,
    /// Where the operation is written: later problems with the route are reported there.
    pub origin: Diagnostic,
}

/// What importing one document gave.
#[derive(Debug, Default)]
pub struct Imports {
    pub routes: Vec<Imported>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Imports every operation of `source` (its `file` relative to `base_dir`).
pub fn import(source: &OpenApiSource, base_dir: &Path) -> Imports {
    let mut out = Imports::default();
    let file = base_dir.join(&source.file);
    let doc = match OpenApiDoc::load(&file) {
        Ok(doc) => doc,
        Err(errors) => {
            out.errors = errors.0;
            return out;
        }
    };
    let base = base_path(&doc.value);
    for op in doc.operations() {
        let origin = doc.diagnostic(&op.pointer, format!("operation `{}`", op.label()));
        let Some(route) = route(&doc, &op, source, &base, &mut out.errors) else { continue };
        let contract = if source.validate {
            match doc.contract(&op) {
                Ok(compiled) => {
                    out.warnings.extend(compiled.warnings);
                    Some(compiled.contract)
                }
                Err(errors) => {
                    out.errors.extend(errors.0);
                    continue;
                }
            }
        } else {
            None
        };
        out.routes.push(Imported { route, contract, origin });
    }
    if doc.operations().is_empty() {
        out.warnings.push(doc.diagnostic(&KeyPath::root().key("paths"), "the document has no operations"));
    }
    out
}

fn route(
    doc: &OpenApiDoc,
    op: &OperationRef,
    source: &OpenApiSource,
    base: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<Route> {
    let operation = doc.value.pointer(op.pointer.pointer()).and_then(Value::as_object)?;
    let label = op.label();
    let mut error = |key: &str, message: String| {
        errors.push(doc.diagnostic(&op.pointer.key(key), format!("operation `{label}`: {message}")));
    };
    if operation.get("x-portcullis-auth").is_none() {
        error("x-portcullis-auth", "no `x-portcullis-auth`: say how it is authenticated (`{any: [...]}`, `{all: [...]}`, or `none` for a public operation)".into());
        return None;
    }
    let mut route = Map::new();
    route.insert("name".into(), json!(op.id.clone().unwrap_or_else(|| route_name(op))));
    let mut matcher = json!({ "path": format!("{base}{}", op.path), "methods": [op.method.to_uppercase()] });
    if let Some(host) = operation.get("x-portcullis-host").or(source.host.as_ref().map(|h| json!(h)).as_ref()) {
        matcher["host"] = host.clone();
    }
    route.insert("match".into(), matcher);
    match operation.get("x-portcullis-upstream").cloned().or_else(|| source.upstream.clone().map(Value::from)) {
        Some(upstream) => route.insert("upstream".into(), upstream),
        None => {
            error(
                "x-portcullis-upstream",
                "no `x-portcullis-upstream`, and the `openapi` entry names no `upstream`".into(),
            );
            return None;
        }
    };
    for (extension, key) in EXTENSIONS {
        if !matches!(key, "upstream" | "host")
            && let Some(value) = operation.get(extension)
        {
            route.insert(key.into(), value.clone());
        }
    }
    for key in operation.keys().filter(|k| k.starts_with("x-portcullis-")) {
        if !EXTENSIONS.iter().any(|(e, _)| e == key) && key != "x-portcullis-components" {
            error(key, format!("unknown extension `{key}`; known: {}", EXTENSIONS.map(|(e, _)| e).join(", ")));
        }
    }
    match serde_json::from_value::<Route>(Value::Object(route)) {
        Ok(route) => Some(route),
        Err(e) => {
            error("", format!("its x-portcullis-* extensions do not make a route: {e}"));
            None
        }
    }
}

/// A route name for an operation without `operationId`: `get-orders-id`.
fn route_name(op: &OperationRef) -> String {
    let mut name = op.method.to_owned();
    for c in op.path.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.trim_end_matches('-').to_owned()
}

/// The path of the first server's URL (its variables at their defaults), without a
/// trailing `/`: `https://api.example.com/v1` → `/v1`.
fn base_path(doc: &Value) -> String {
    let Some(server) = doc.get("servers").and_then(Value::as_array).and_then(|s| s.first()) else {
        return String::new();
    };
    let mut url = server.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
    for (name, var) in server.get("variables").and_then(Value::as_object).into_iter().flatten() {
        if let Some(default) = var.get("default").and_then(Value::as_str) {
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url.as_str(),
    };
    path.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_from_the_first_server() {
        assert_eq!(base_path(&json!({ "servers": [{ "url": "https://api.example.com/v1/" }] })), "/v1");
        assert_eq!(
            base_path(&json!({ "servers": [{ "url": "/api/{v}", "variables": { "v": { "default": "v2" } } }] })),
            "/api/v2"
        );
        assert_eq!(base_path(&json!({ "servers": [{ "url": "https://api.example.com" }] })), "");
        assert_eq!(base_path(&json!({})), "");
    }
}
