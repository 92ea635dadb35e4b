//! Compile `cors`: every policy's origins normalised and checked (`*` never with
//! `credentials: true`; no `null`, no path), its methods and header names parsed, and its
//! response header values rendered once.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderName, Method};

use super::{Compiler, at};
use crate::cors::{CorsPolicy, DEFAULT_MAX_AGE_SECS, OriginPattern};

/// The policies by name; a policy with errors is left out (the errors fail the compile).
pub(super) fn compile(c: &mut Compiler<'_>) -> BTreeMap<String, Arc<CorsPolicy>> {
    let mut out = BTreeMap::new();
    for (name, cors) in &c.doc.cors {
        let path = at("cors").key(name);
        let before = c.errors.len();
        if cors.origins.is_empty() {
            c.error(&path.key("origins"), "list at least one origin");
        }
        let mut origins = Vec::with_capacity(cors.origins.len());
        for (i, text) in cors.origins.iter().enumerate() {
            match OriginPattern::parse(text) {
                Ok(OriginPattern::Any) if cors.credentials => c.error(
                    &path.key("origins").index(i),
                    "`*` cannot be combined with credentials: true (any site could read answers made with the user's cookies); list the origins",
                ),
                Ok(pattern) => origins.push(pattern),
                Err(why) => c.error(&path.key("origins").index(i), format!("`{text}`: {why}")),
            }
        }
        let mut methods = Vec::with_capacity(cors.methods.len());
        for (i, m) in cors.methods.iter().enumerate() {
            match Method::from_bytes(m.as_bytes()) {
                Ok(method) if !methods.contains(&method) => methods.push(method),
                Ok(_) => {}
                Err(_) => c.error(&path.key("methods").index(i), format!("`{m}` is not a method")),
            }
        }
        let headers = header_names(c, &path.key("headers"), &cors.headers);
        let expose = header_names(c, &path.key("expose_headers"), &cors.expose_headers);
        if c.errors.len() > before {
            continue;
        }
        let max_age = cors.max_age.map_or(DEFAULT_MAX_AGE_SECS, |d| d.0.as_secs());
        let policy =
            CorsPolicy::new(Arc::from(name.as_str()), origins, methods, headers, &expose, cors.credentials, max_age);
        out.insert(name.clone(), Arc::new(policy));
    }
    out
}

/// Header names, each once; `*` is refused (with credentials browsers read it as a name).
fn header_names(c: &mut Compiler<'_>, path: &portcullis_config::KeyPath, names: &[String]) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) if name == "*" => c.error(&path.index(i), "`*` is not allowed here: list the header names"),
            Ok(header) if !out.contains(&header) => out.push(header),
            Ok(_) => {}
            Err(_) => c.error(&path.index(i), format!("`{name}` is not a header name")),
        }
    }
    out
}
