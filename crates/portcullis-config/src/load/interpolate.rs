//! `${env:NAME}` and `${file:PATH}` references inside string values (SPEC §2).
//!
//! References may appear anywhere in a string, several times (`"Bearer ${env:TOKEN}"`);
//! `$${` writes a literal `${`. Only string values are touched, and a value that is one
//! reference stays a string. Messages name the reference, never what it resolved to: that is
//! often a secret.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Env, resolve_path};
use crate::{Contents, Diagnostic, KeyPath, Locations};

/// How much of an unterminated reference a message quotes.
const QUOTE_CHARS: usize = 40;

/// What resolving the references of a document found.
pub(super) struct Resolved {
    pub(super) diagnostics: Vec<Diagnostic>,
    /// Pointers of values whose reference could not be resolved.
    pub(super) failed: Vec<String>,
    /// Pointers of values that now hold resolved text, which messages must not quote.
    pub(super) hidden: HashSet<String>,
    /// Every file read, in the order first read.
    pub(super) files: Vec<PathBuf>,
}

struct Resolver<'a> {
    env: &'a dyn Env,
    base_dir: &'a Path,
    contents: &'a Contents,
    locations: &'a Locations,
    out: Resolved,
}

/// Resolves every reference in `value` in place. `stages` is left as written: an overlay
/// that is not applied must not need its environment (a prod secret on a dev machine), and
/// the applied one has already been merged into the document. Files are read through
/// `contents`, the load's one reading of each.
pub(super) fn resolve(
    value: &mut Value,
    locations: &Locations,
    base_dir: &Path,
    env: &dyn Env,
    contents: &Contents,
) -> Resolved {
    let out = Resolved { diagnostics: Vec::new(), failed: Vec::new(), hidden: HashSet::new(), files: Vec::new() };
    let mut resolver = Resolver { env, base_dir, contents, locations, out };
    if let Value::Object(map) = value {
        for (key, child) in map.iter_mut().filter(|(key, _)| key.as_str() != "stages") {
            resolver.walk(child, &KeyPath::root().key(key));
        }
    }
    resolver.out
}

impl Resolver<'_> {
    fn walk(&mut self, value: &mut Value, path: &KeyPath) {
        match value {
            Value::String(text) if text.contains("${") => self.string(text, path),
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, &path.index(i));
                }
            }
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    self.walk(child, &path.key(key));
                }
            }
            _ => {}
        }
    }

    fn string(&mut self, text: &mut String, path: &KeyPath) {
        let expanded = self.expand(text);
        if expanded.errors.is_empty() {
            if expanded.referenced {
                self.out.hidden.insert(path.pointer().to_owned());
            }
            *text = expanded.text;
            return;
        }
        self.out.failed.push(path.pointer().to_owned());
        for message in expanded.errors {
            self.out.diagnostics.push(self.locations.diagnostic(path, message));
        }
    }

    fn expand(&mut self, text: &str) -> Expanded {
        let mut out = Expanded { text: String::with_capacity(text.len()), referenced: false, errors: Vec::new() };
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.text.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.text.push_str("${");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    out.errors.push(unterminated(tail));
                    return out;
                };
                match self.reference(&after[..end]) {
                    Ok(resolved) => out.text.push_str(&resolved),
                    Err(message) => out.errors.push(message),
                }
                out.referenced = true;
                rest = &after[end + 1..];
            } else {
                out.text.push('$');
                rest = &tail[1..];
            }
        }
        out.text.push_str(rest);
        out
    }

    /// Resolves the inside of one `${…}`.
    fn reference(&mut self, inner: &str) -> Result<String, String> {
        match inner.split_once(':') {
            Some(("env", "")) | Some(("file", "")) => Err(format!("`${{{inner}}}` names nothing")),
            Some(("env", name)) => self
                .env
                .var(name)
                .ok_or_else(|| format!("environment variable `{name}` (from `${{env:{name}}}`) is not set")),
            Some(("file", file)) => self.file(file),
            _ => Err(format!(
                "unknown reference `${{{inner}}}`: use `${{env:NAME}}` or `${{file:PATH}}` \
                 (write `$${{` for a literal `${{`)"
            )),
        }
    }

    fn file(&mut self, file: &str) -> Result<String, String> {
        let path = resolve_path(self.base_dir, file);
        match self.contents.read_text(&path) {
            Ok(text) => {
                if !self.out.files.contains(&path) {
                    self.out.files.push(path);
                }
                Ok(text.trim_end_matches(['\n', '\r']).to_owned())
            }
            // The I/O error says why (missing, permissions, not UTF-8), never what is inside.
            Err(e) => Err(format!("cannot read `${{file:{file}}}` ({}): {e}", path.display())),
        }
    }
}

struct Expanded {
    text: String,
    referenced: bool,
    errors: Vec<String>,
}

fn unterminated(tail: &str) -> String {
    let quoted: String = tail.chars().take(QUOTE_CHARS).collect();
    let more = if tail.chars().nth(QUOTE_CHARS).is_some() { "…" } else { "" };
    format!("unterminated reference `{quoted}{more}`: close it with `}}`, or write `$${{` for a literal `${{`")
}
