//! An OpenAPI document (3.0 or 3.1, YAML or JSON) loaded once with the place of every node,
//! and the contract of each of its operations: path-item and operation parameters merged
//! (`$ref`s to `components` followed), the request body's media types, every schema
//! compiled. Problems are diagnostics at the document's line that name the operation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_config::{Diagnostic, Diagnostics, KeyPath, Locations};
use serde_json::{Map, Value, json};

use crate::body::Body;
use crate::contract::{BodyRules, Contract, Media, Param, is_json};
use crate::params::{In, Reader, Shape, Style};
use crate::schema::{self, LocalFiles};

/// The HTTP methods an OpenAPI path item has fields for.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// A loaded document.
pub struct OpenApiDoc {
    pub file: PathBuf,
    /// As written, schemas rewritten from the 3.0 dialect to 2020-12.
    pub value: Value,
    pub locations: Locations,
    /// `3.0.x` (else 3.1).
    pub is_30: bool,
    uri: String,
    files: Arc<LocalFiles>,
    /// The other local files its `$ref`s name.
    externals: Vec<String>,
}

impl std::fmt::Debug for OpenApiDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiDoc").field("file", &self.file).finish_non_exhaustive()
    }
}

/// One operation of a document.
#[derive(Debug, Clone)]
pub struct OperationRef {
    /// The path template as written (`/orders/{id}`).
    pub path: String,
    /// Lower case.
    pub method: &'static str,
    /// `operationId`, if written.
    pub id: Option<String>,
    /// Where the operation object is.
    pub pointer: KeyPath,
}

impl OperationRef {
    /// The name errors use: the operation id, else `METHOD /path`.
    pub fn label(&self) -> String {
        self.id.clone().unwrap_or_else(|| format!("{} {}", self.method.to_uppercase(), self.path))
    }
}

/// A contract and what compiling it warned about.
pub struct Compiled {
    pub contract: Contract,
    pub warnings: Vec<Diagnostic>,
}

impl OpenApiDoc {
    /// Reads and parses `file`; checks it is OpenAPI 3.0 or 3.1.
    pub fn load(file: &Path) -> Result<Self, Diagnostics> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            let message = format!("cannot read the OpenAPI document: {e}");
            Diagnostics(vec![Diagnostic { file: file.to_path_buf(), path: KeyPath::root(), location: None, message }])
        })?;
        Self::from_text(&text, file)
    }

    /// Parses `text`, the content of `file` already read (the config's load reads each file
    /// once); checks it is OpenAPI 3.0 or 3.1. Documents it references are read from disk.
    pub fn from_text(text: &str, file: &Path) -> Result<Self, Diagnostics> {
        let (mut value, locations) = portcullis_config::parse_document(text, file)?;
        let version = value.get("openapi").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !version.starts_with("3.0.") && !version.starts_with("3.1.") {
            let at = KeyPath::root().key("openapi");
            return Err(Diagnostics(vec![
                locations.diagnostic(&at, "not an OpenAPI 3.0 or 3.1 document (`openapi: 3.0.x` or `3.1.x`)"),
            ]));
        }
        crate::dialect::convert_document(&mut value);
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let uri = schema::file_uri(&absolute);
        let files = Arc::new(LocalFiles::default());
        files.insert(uri.clone(), value.clone());
        let externals = schema::external_files(&value, &uri);
        Ok(Self {
            file: file.to_path_buf(),
            value,
            locations,
            is_30: version.starts_with("3.0."),
            uri,
            files,
            externals,
        })
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> Vec<OperationRef> {
        let mut out = Vec::new();
        let Some(paths) = self.value.get("paths").and_then(Value::as_object) else { return out };
        for (path, item) in paths {
            for method in METHODS {
                let Some(op) = item.get(method).filter(|o| o.is_object()) else { continue };
                out.push(OperationRef {
                    path: path.clone(),
                    method,
                    id: op.get("operationId").and_then(Value::as_str).map(str::to_owned),
                    pointer: KeyPath::root().key("paths").key(path).key(method),
                });
            }
        }
        out
    }

    /// The operation with this `operationId`.
    pub fn find(&self, id: &str) -> Option<OperationRef> {
        self.operations().into_iter().find(|o| o.id.as_deref() == Some(id))
    }

    /// A diagnostic at `path` of this document.
    pub fn diagnostic(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        self.locations.diagnostic(path, message)
    }

    /// Follows a local `$ref` (`#/components/...`) once; the value and where it is.
    fn deref<'a>(&'a self, value: &'a Value, at: KeyPath) -> Result<(&'a Value, KeyPath), (KeyPath, String)> {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else { return Ok((value, at)) };
        let Some(pointer) = target.strip_prefix('#') else {
            return Err((at.key("$ref"), format!("`{target}`: only references within the document are read here")));
        };
        match self.value.pointer(pointer) {
            Some(found) => Ok((found, KeyPath::from_pointer(pointer))),
            None => Err((at.key("$ref"), format!("`{target}` names nothing in the document"))),
        }
    }

    /// The contract of `op`: its parameters and request body, every schema compiled.
    pub fn contract(&self, op: &OperationRef) -> Result<Compiled, Diagnostics> {
        let mut build = Build { doc: self, label: op.label(), errors: Vec::new(), warnings: Vec::new() };
        let item_at = KeyPath::root().key("paths").key(&op.path);
        let operation = self.value.pointer(op.pointer.pointer()).cloned().unwrap_or(Value::Null);
        let mut declared: Vec<(Value, KeyPath)> = Vec::new();
        let lists = [
            (self.value.pointer(item_at.pointer()).and_then(|i| i.get("parameters")), item_at.key("parameters")),
            (operation.get("parameters"), op.pointer.key("parameters")),
        ];
        for (list, at) in lists {
            for (i, raw) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
                match self.deref(raw, at.index(i)) {
                    Ok((param, place)) => {
                        let key = (param.get("name").cloned(), param.get("in").cloned());
                        declared.retain(|(p, _)| (p.get("name").cloned(), p.get("in").cloned()) != key);
                        declared.push((param.clone(), place));
                    }
                    Err((place, message)) => build.error(&place, message),
                }
            }
        }
        let params: Vec<Param> = declared.iter().filter_map(|(p, at)| build.param(p, at)).collect();
        let body = match operation.get("requestBody") {
            None => None,
            Some(raw) => match self.deref(raw, op.pointer.key("requestBody")) {
                Ok((body, at)) => Some(build.body(body, &at)),
                Err((place, message)) => {
                    build.error(&place, message);
                    None
                }
            },
        };
        let described = described(&declared, &operation, self);
        let Build { errors, warnings, .. } = build;
        if !errors.is_empty() {
            return Err(Diagnostics(errors));
        }
        Ok(Compiled { contract: Contract { params, body, described }, warnings })
    }
}

/// Collects a contract's problems.
struct Build<'a> {
    doc: &'a OpenApiDoc,
    label: String,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Build<'_> {
    fn error(&mut self, at: &KeyPath, message: impl AsRef<str>) {
        let message = format!("operation `{}`: {}", self.label, message.as_ref());
        self.errors.push(self.doc.diagnostic(at, message));
    }

    fn param(&mut self, p: &Value, at: &KeyPath) -> Option<Param> {
        let name = p.get("name").and_then(Value::as_str);
        let place = p.get("in").and_then(Value::as_str).and_then(In::parse);
        let (Some(name), Some(place)) = (name, place) else {
            self.error(at, "a parameter needs a `name` and `in` (path, query, header or cookie)");
            return None;
        };
        let Some(style) = Style::parse(p.get("style").and_then(Value::as_str), place) else {
            self.error(&at.key("style"), "unknown style");
            return None;
        };
        let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(style == Style::Form);
        let required = place == In::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let (schema, validator) = match p.get("schema") {
            Some(s) => (self.resolve_shape(s), self.compile(&at.key("schema"))),
            None => (json!({}), None),
        };
        // Header names compare case-insensitively: the request's are lower case.
        let name = if place == In::Header { name.to_ascii_lowercase() } else { name.to_owned() };
        let reader = Reader { name, place, style, explode, shape: Shape::of(&schema) };
        Some(Param { reader, required, validator })
    }

    /// The schema a parameter's shape is read from (a top-level `$ref` followed).
    fn resolve_shape(&self, schema: &Value) -> Value {
        let mut current = schema;
        for _ in 0..8 {
            match self.doc.deref(current, KeyPath::root()) {
                Ok((next, _)) if !std::ptr::eq(next, current) => current = next,
                _ => break,
            }
        }
        current.clone()
    }

    fn body(&mut self, body: &Value, at: &KeyPath) -> BodyRules {
        let required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut media = Vec::new();
        for (range, spec) in body.get("content").and_then(Value::as_object).into_iter().flatten() {
            let range = range.split(';').next().unwrap_or(range).trim().to_ascii_lowercase();
            let schema_at = at.key("content").key(&range).key("schema");
            let validator = match spec.get("schema") {
                Some(_) if is_json(&range) => self.compile(&schema_at),
                Some(_) => {
                    // Only JSON bodies are read for the check: say so rather than let the
                    // schema look enforced.
                    let message = format!(
                        "operation `{}`: the schema of `{range}` bodies is not checked (only JSON bodies are \
                         validated); the content type itself is",
                        self.label
                    );
                    self.warnings.push(self.doc.diagnostic(&schema_at, message));
                    None
                }
                None => None,
            };
            media.push(Media { range, validator });
        }
        BodyRules { required, media }
    }

    /// Compiles the schema at `at`; its `$ref`s are checked first so a bad one is reported
    /// at its own line.
    fn compile<F: jsonschema::json::Json>(&mut self, at: &KeyPath) -> Option<jsonschema::Validator<F>> {
        let before = self.errors.len();
        if let Some(schema) = self.doc.value.pointer(at.pointer()) {
            self.check_refs(schema, at, 0);
        }
        if self.errors.len() > before {
            return None;
        }
        match schema::compile(&self.doc.files, &schema::reference(&self.doc.uri, at.pointer()), &self.doc.externals) {
            Ok(compiled) => {
                for w in compiled.warnings {
                    let message = format!("operation `{}`: {w}", self.label);
                    self.warnings.push(self.doc.diagnostic(at, message));
                }
                Some(compiled.validator)
            }
            Err(e) => {
                self.error(at, format!("the schema does not compile: {e}"));
                None
            }
        }
    }

    fn check_refs(&mut self, schema: &Value, at: &KeyPath, depth: usize) {
        if depth > 64 {
            return;
        }
        match schema {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref"
                        && let Some(target) = child.as_str()
                    {
                        self.check_ref(target, &at.key("$ref"));
                    } else if !matches!(key.as_str(), "example" | "examples" | "enum" | "const" | "default") {
                        self.check_refs(child, &at.key(key), depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.check_refs(child, &at.index(i), depth + 1);
                }
            }
            _ => {}
        }
    }

    fn check_ref(&mut self, target: &str, at: &KeyPath) {
        let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
        if file.is_empty() {
            if self.doc.value.pointer(fragment).is_none() {
                self.error(at, format!("`$ref: {target}` names nothing in the document"));
            }
            return;
        }
        if file.contains("://") && !file.starts_with("file://") {
            self.error(at, format!("`$ref: {target}`: only local files are read, never the network"));
            return;
        }
        let base = self.doc.file.parent().unwrap_or(Path::new("."));
        if !file.starts_with("file://") && !base.join(file).is_file() {
            self.error(at, format!("`$ref: {target}`: no file `{}`", base.join(file).display()));
        }
    }
}

/// The contract of a JSON Schema for the body: a JSON body is required and must match.
pub fn schema_contract(file: &Path) -> Result<Compiled, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    schema_contract_text(&text, file)
}

/// [`schema_contract`] of `text`, the content of `file` already read (the config's load reads
/// each file once). Documents it references are read from disk.
pub fn schema_contract_text(text: &str, file: &Path) -> Result<Compiled, String> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let files = Arc::new(LocalFiles::default());
    let uri = schema::file_uri(&absolute);
    let schema_value = files.insert_text(&uri, text, file)?;
    let compiled = schema::compile::<Body>(&files, &uri, &[])?;
    let warnings = compiled
        .warnings
        .into_iter()
        .map(|message| Diagnostic { file: file.to_path_buf(), path: KeyPath::root(), location: None, message })
        .collect();
    let body = BodyRules {
        required: true,
        media: vec![Media { range: "application/json".into(), validator: Some(compiled.validator) }],
    };
    let described = json!({
        "requestBody": { "required": true, "content": { "application/json": { "schema": schema_value } } }
    });
    Ok(Compiled { contract: Contract { params: Vec::new(), body: Some(body), described }, warnings })
}

/// The operation's parameters and body as OpenAPI 3.1 writes them (references to
/// `components` kept; the components they name are copied by [`components`]).
fn described(declared: &[(Value, KeyPath)], operation: &Value, doc: &OpenApiDoc) -> Value {
    let mut out = Map::new();
    if !declared.is_empty() {
        out.insert("parameters".into(), Value::Array(declared.iter().map(|(p, _)| p.clone()).collect()));
    }
    if let Some(body) = operation.get("requestBody") {
        let body = doc.deref(body, KeyPath::root()).map_or_else(|_| body.clone(), |(b, _)| b.clone());
        out.insert("requestBody".into(), body);
    }
    let mut schemas = Map::new();
    components(&Value::Object(out.clone()), doc, &mut schemas, 0);
    if !schemas.is_empty() {
        out.insert("x-portcullis-components".into(), Value::Object(schemas));
    }
    Value::Object(out)
}

/// Every `#/components/schemas/X` that `value` reaches, copied into `schemas`.
fn components(value: &Value, doc: &OpenApiDoc, schemas: &mut Map<String, Value>, depth: usize) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(name) =
                map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
                && !schemas.contains_key(name)
                && let Some(schema) = doc.value.pointer(&format!("/components/schemas/{name}"))
            {
                schemas.insert(name.to_owned(), schema.clone());
                components(schema, doc, schemas, depth + 1);
            }
            map.values().for_each(|v| components(v, doc, schemas, depth + 1));
        }
        Value::Array(items) => items.iter().for_each(|v| components(v, doc, schemas, depth + 1)),
        _ => {}
    }
}
