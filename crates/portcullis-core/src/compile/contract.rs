//! Compile a route's `validate` (an OpenAPI operation or a JSON Schema) into its contract,
//! and the top-level `openapi` sources into routes. Documents are read and their schemas
//! compiled here, once per load: a bad schema or `$ref` fails `validate` and a reload, an
//! unknown `format` is a warning.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_config::surface::{Route, RouteValidate};
use portcullis_config::{Diagnostic, Diagnostics, KeyPath};
use portcullis_contract::import::{Imported, import};
use portcullis_contract::{Contract, OpenApiDoc, schema_contract_text};

use super::{Compiler, at};

/// OpenAPI documents already read during this compile, by path (`None`: it failed).
#[derive(Default)]
pub(crate) struct Documents(HashMap<PathBuf, Option<Arc<OpenApiDoc>>>);

/// The route's `validate`, compiled.
pub(super) fn route_contract(c: &mut Compiler<'_>, path: &KeyPath, r: &Route) -> Option<Arc<Contract>> {
    let validate = r.validate.as_ref()?;
    let at = path.key("validate");
    let compiled = match validate {
        RouteValidate::Schema(s) => match schema(c, &c.loaded.resolve_path(&s.schema)) {
            Ok(compiled) => compiled,
            Err(e) => {
                c.error(&at.key("schema"), format!("the schema does not compile: {e}"));
                return None;
            }
        },
        RouteValidate::Operation(o) => {
            let doc = document(c, &at.key("openapi"), &o.openapi)?;
            let Some(op) = doc.find(&o.operation) else {
                c.error(&at.key("operation"), format!("`{}` has no operation `{}`", o.openapi, o.operation));
                return None;
            };
            match doc.contract(&op) {
                Ok(compiled) => compiled,
                Err(errors) => {
                    c.errors.0.extend(errors.0);
                    return None;
                }
            }
        }
    };
    c.warnings.extend(compiled.warnings);
    Some(Arc::new(compiled.contract))
}

/// A route's JSON Schema, from the load's one reading of the file (which the config hash
/// covers too).
fn schema(c: &Compiler<'_>, path: &std::path::Path) -> Result<portcullis_contract::Compiled, String> {
    let text = c.loaded.contents.read_text(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    schema_contract_text(&text, path)
}

fn document(c: &mut Compiler<'_>, at: &KeyPath, file: &str) -> Option<Arc<OpenApiDoc>> {
    let path = c.loaded.resolve_path(file);
    if let Some(known) = c.documents.0.get(&path) {
        return known.clone();
    }
    // The load's one reading of the file, which the config hash covers too.
    let parsed = match c.loaded.contents.read_text(&path) {
        Ok(text) => OpenApiDoc::from_text(&text, &path),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: path.clone(),
            path: KeyPath::root(),
            location: None,
            message: format!("cannot read the OpenAPI document: {e}"),
        }])),
    };
    let doc = match parsed {
        Ok(doc) => Some(Arc::new(doc)),
        Err(errors) => {
            c.error(at, format!("`{file}` is not a usable OpenAPI document"));
            c.errors.0.extend(errors.0);
            None
        }
    };
    c.documents.0.insert(path, doc.clone());
    doc
}

/// The routes of every `openapi` source, with the key path of their source.
pub(super) fn imported(c: &mut Compiler<'_>) -> Vec<(KeyPath, Imported)> {
    let mut out = Vec::new();
    for (i, source) in c.doc.openapi.iter().enumerate() {
        let imports = import(source, &c.loaded.base_dir);
        c.errors.0.extend(imports.errors);
        c.warnings.extend(imports.warnings);
        out.extend(imports.routes.into_iter().map(|r| (at("openapi").index(i), r)));
    }
    out
}
