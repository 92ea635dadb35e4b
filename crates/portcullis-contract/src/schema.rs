//! Compiling schemas: every schema is compiled once, at load, by the `jsonschema` crate
//! (draft 2020-12, formats asserted) as a `$ref` to where it was written, so its own `$ref`s
//! resolve within its document. Documents come only from local files: [`LocalFiles`] is the
//! one retriever, and it refuses every scheme but `file:` — nothing is fetched over the
//! network. A `format` the validator does not know is a warning (the schema still compiles,
//! and the format is not checked); a schema that does not compile is an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jsonschema::json::Json;
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

use crate::dialect;

/// The files schemas may refer to, each read and converted ([`dialect`]) once.
#[derive(Debug, Default)]
pub(crate) struct LocalFiles {
    loaded: Mutex<HashMap<String, Value>>,
}

/// A handle the validator keeps (the retriever must be `'static`).
#[derive(Debug, Clone)]
struct Retriever(Arc<LocalFiles>);

impl LocalFiles {
    /// Registers a document already parsed (and converted) under its file's URI.
    pub(crate) fn insert(&self, uri: String, value: Value) {
        self.lock().insert(uri, value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The document at `uri` (its fragment ignored), read from disk the first time.
    pub(crate) fn document(&self, uri: &str) -> Result<Value, String> {
        let base = uri.split('#').next().unwrap_or(uri);
        if let Some(value) = self.lock().get(base) {
            return Ok(value.clone());
        }
        let path = file_path(base)?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        self.insert_text(base, &text, &path)
    }

    /// `text`, the content of `path` (whose URI is `uri`) already read: parsed, converted and
    /// kept as that document.
    pub(crate) fn insert_text(&self, uri: &str, text: &str, path: &std::path::Path) -> Result<Value, String> {
        let (mut value, _) = portcullis_config::parse_document(text, path).map_err(|d| d.to_string())?;
        dialect::convert_document(&mut value);
        if value.get("openapi").is_none() {
            dialect::convert_schema(&mut value);
        }
        self.insert(uri.to_owned(), value.clone());
        Ok(value)
    }
}

impl Retrieve for Retriever {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0.document(uri.as_str()).map_err(Into::into)
    }
}

/// `file:///…` → the path; any other scheme is refused (no network fetches).
fn file_path(uri: &str) -> Result<PathBuf, String> {
    let parsed = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not a URI: {e}"))?;
    if parsed.scheme() != "file" {
        return Err(format!("`{uri}`: only local files are read, never the network"));
    }
    parsed.to_file_path().map_err(|()| format!("`{uri}` names no local file"))
}

/// The `file:` URI of a local path.
pub(crate) fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path).map_or_else(|()| format!("file://{}", path.display()), |u| u.to_string())
}

/// `uri#pointer`, the pointer percent-encoded as a URI fragment.
pub(crate) fn reference(uri: &str, pointer: &str) -> String {
    const FRAGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'~').remove(b'-').remove(b'.').remove(b'_');
    format!("{uri}#{}", percent_encoding::utf8_percent_encode(pointer, FRAGMENT))
}

/// A compiled schema and what compiling it warned about. `F` is the representation it
/// validates: `serde_json::Value` for parameters, [`crate::body::Body`] for bodies.
pub(crate) struct Compiled<F: Json> {
    pub(crate) validator: Validator<F>,
    pub(crate) warnings: Vec<String>,
}

/// The absolute URIs of the other files `document` (at `uri`) refers to.
pub(crate) fn external_files(document: &Value, uri: &str) -> Vec<String> {
    fn walk(value: &Value, base: &url::Url, out: &mut Vec<String>, depth: usize) {
        if depth > 128 {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(target)) if !target.starts_with('#') => {
                            let file = target.split('#').next().unwrap_or(target);
                            if let Ok(joined) = base.join(file)
                                && !out.contains(&joined.to_string())
                            {
                                out.push(joined.to_string());
                            }
                        }
                        ("example" | "examples" | "enum" | "const" | "default", _) => {}
                        _ => walk(child, base, out, depth + 1),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, base, out, depth + 1)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(base) = url::Url::parse(uri) {
        walk(document, &base, &mut out, 0);
    }
    out
}

/// Compiles the schema at `target` (`file:///doc.yaml#/pointer`). `externals` are the files
/// its document refers to: named up front so they are read while the validator is built (the
/// validator resolves nothing later).
pub(crate) fn compile<F: Json>(
    files: &Arc<LocalFiles>,
    target: &str,
    externals: &[String],
) -> Result<Compiled<F>, String> {
    let mut root = serde_json::json!({ "$ref": target });
    if !externals.is_empty() {
        let defs: serde_json::Map<String, Value> = externals
            .iter()
            .enumerate()
            .map(|(i, uri)| (format!("external{i}"), serde_json::json!({ "$ref": uri })))
            .collect();
        root["$defs"] = Value::Object(defs);
    }
    let options = |ignore_unknown: bool| {
        jsonschema::options_for::<F>()
            .with_draft(Draft::Draft202012)
            .with_retriever(Retriever(files.clone()))
            .should_validate_formats(true)
            .should_ignore_unknown_formats(ignore_unknown)
    };
    match options(false).build(&root) {
        Ok(validator) => Ok(Compiled { validator, warnings: Vec::new() }),
        Err(e) if e.to_string().starts_with("Unknown format") => {
            let warning =
                format!("{}; it is not checked", e.to_string().split(". ").next().unwrap_or("unknown format"));
            let validator = options(true).build(&root).map_err(|e| e.to_string())?;
            Ok(Compiled { validator, warnings: vec![warning] })
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files_with(uri: &str, doc: Value) -> Arc<LocalFiles> {
        let files = Arc::new(LocalFiles::default());
        files.insert(uri.to_owned(), doc);
        files
    }

    #[test]
    fn refs_resolve_within_the_document() {
        let uri = "file:///specs/a.yaml";
        let doc = json!({ "components": { "schemas": {
            "Qty": { "type": "integer", "minimum": 1 },
            "Line": { "type": "object", "properties": { "qty": { "$ref": "#/components/schemas/Qty" } } } } } });
        let compiled = compile::<jsonschema::json::SerdeJson>(
            &files_with(uri, doc),
            &reference(uri, "/components/schemas/Line"),
            &[],
        )
        .expect("compiles");
        assert!(compiled.validator.is_valid(&json!({ "qty": 2 })));
        assert!(!compiled.validator.is_valid(&json!({ "qty": 0 })));
    }

    #[test]
    fn network_references_are_refused() {
        let uri = "file:///specs/a.yaml";
        let doc = json!({ "s": { "$ref": "https://example.com/schema.json" } });
        let error = compile::<jsonschema::json::SerdeJson>(&files_with(uri, doc), &reference(uri, "/s"), &[])
            .err()
            .unwrap_or_default();
        assert!(error.contains("never the network"), "{error}");
    }

    #[test]
    fn an_unknown_format_is_a_warning_and_a_bad_schema_an_error() {
        let uri = "file:///specs/a.yaml";
        let doc = json!({ "a": { "type": "string", "format": "zip-code" }, "b": { "type": 5 } });
        let files = files_with(uri, doc);
        let compiled = compile::<jsonschema::json::SerdeJson>(&files, &reference(uri, "/a"), &[]).expect("compiles");
        assert_eq!(compiled.warnings.len(), 1, "{:?}", compiled.warnings);
        assert!(compiled.warnings[0].contains("zip-code"));
        assert!(compile::<jsonschema::json::SerdeJson>(&files, &reference(uri, "/b"), &[]).is_err());
    }

    #[test]
    fn path_templates_are_encoded_in_fragments() {
        assert_eq!(reference("file:///a", "/paths/~1o~1{id}"), "file:///a#/paths/~1o~1%7Bid%7D");
    }
}
