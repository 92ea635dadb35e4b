//! Loading a config file: text → parsed YAML with locations → plain scalars as text where
//! the schema wants text → version check → `--stage` overlay → `${env:…}` / `${file:…}` references → JSON Schema validation → [`Document`].
//!
//! Every step collects all the problems it finds; later steps still run when that can add
//! information without noise (a missing environment variable does not hide an unknown key), and
//! stop when it cannot (an unknown stage, a file that is not YAML). The result carries the
//! merged JSON value and the [`Locations`] of the merged document, so the compile step in
//! `portcullis-core` can place its own diagnostics.

mod interpolate;
mod parse;
mod scalars;
mod schema;
mod stages;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;

use crate::{Contents, Diagnostic, Diagnostics, Document, KeyPath, Locations};

/// A YAML or JSON file other than the config (an OpenAPI document): its value tree and where
/// each node was written, or one diagnostic placed at its syntax error. `.json` files are
/// read by serde_json, everything else by the config's YAML parser (YAML 1.2 core schema).
pub fn parse_document(text: &str, file: &Path) -> Result<(Value, Locations), Diagnostics> {
    let is_json = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        let parsed = parse::parse(text, file)?;
        return Ok((parsed.value, parsed.locations));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok((value, parse::locations(text, file))),
        Err(e) => {
            let location = crate::Location { line: e.line().max(1), column: e.column().max(1) };
            let message = format!("invalid JSON: {e}");
            Err(Diagnostics(vec![Diagnostic {
                file: file.to_path_buf(),
                path: KeyPath::root(),
                location: Some(location),
                message,
            }]))
        }
    }
}

/// Where the config text comes from (for diagnostics and relative paths).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file on disk; relative paths in it resolve against its folder.
    File(&'a Path),
    /// Text already in memory (tests, the admin API), named for diagnostics.
    Text { text: &'a str, name: &'a str, base_dir: &'a Path },
}

/// A resolved environment lookup, so tests need not touch the process environment.
pub trait Env {
    /// The value of `name`, `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // A value that is not UTF-8 cannot go into a config string; it counts as unset.
        std::env::var(name).ok()
    }
}

/// A loaded, validated config file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged (stage applied), resolved, validated surface.
    pub document: Document,
    /// JSON pointer → line:column of the merged document.
    pub locations: Locations,
    /// Folder of the config file; relative paths resolve against it.
    pub base_dir: PathBuf,
    pub stage: Option<String>,
    /// The merged, resolved document as JSON (for hashing and `GET /config`). It holds the
    /// resolved `${env:}` / `${file:}` values, secrets included: redact before showing it.
    pub value: Value,
    /// Every file read through `${file:…}` (to watch for reloads).
    pub files: Vec<PathBuf>,
    /// Entries left out of a partial document ([`check`]) because their shape is wrong; empty
    /// for a whole one.
    pub broken: Broken,
    /// JSON pointers of the values that came through a `${env:…}` / `${file:…}` reference
    /// (shown redacted, see [`crate::redact`]).
    pub referenced: std::collections::HashSet<String>,
    /// This load's one reading of every file the config names: `${file:…}` references here,
    /// certificates, keys and CAs by whoever reads them next (the config hash, the TLS
    /// material), so each is read once per load.
    pub contents: Contents,
}

/// Entries of a partial document left out because their shape is wrong: they are defined, so a
/// reference to one is not "unknown" (their own errors are reported already).
#[derive(Debug, Clone, Default)]
pub struct Broken(BTreeSet<(String, String)>);

impl Broken {
    /// Whether `section` (`upstreams`, `auth`, `listeners`, …) had an entry `name` left out.
    pub fn contains(&self, section: &str, name: &str) -> bool {
        self.0.contains(&(section.to_owned(), name.to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What [`check`] found: every problem of the load, and the document to check further.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Every problem found while loading, sorted top to bottom.
    pub diagnostics: Diagnostics,
    /// The document: whole when `diagnostics` is empty; otherwise, when the parts whose shape
    /// is right still make one, those parts ([`Loaded::broken`] names what was left out), so
    /// the compile step can check their references in the same run.
    pub loaded: Option<Loaded>,
    renumbered: Renumbered,
}

/// Lists whose broken entries were left out: the list's pointer and, for each entry kept, its
/// index as written.
type Renumbered = Vec<(String, Vec<usize>)>;

impl Checked {
    /// `diagnostic`, found in a partial [`Self::loaded`], at its key path and line as written
    /// (a list that lost entries has renumbered the ones after them).
    pub fn place(&self, diagnostic: Diagnostic) -> Diagnostic {
        let Some(loaded) = &self.loaded else { return diagnostic };
        let pointer = diagnostic.path.pointer();
        for (list, kept) in &self.renumbered {
            let Some(rest) = pointer.strip_prefix(list.as_str()).and_then(|r| r.strip_prefix('/')) else { continue };
            let (index, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let Some(&written) = index.parse::<usize>().ok().and_then(|i| kept.get(i)) else { continue };
            let tail = if tail.is_empty() { String::new() } else { format!("/{tail}") };
            let path = KeyPath::from_pointer(&format!("{list}/{written}{tail}"));
            return loaded.locations.diagnostic(&path, diagnostic.message);
        }
        diagnostic
    }
}

impl Loaded {
    /// `p` as written in the config: absolute stays, relative joins [`Self::base_dir`].
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        resolve_path(&self.base_dir, p)
    }
}

/// Loads `path`, applying `stage`, with references resolved from the process environment.
pub fn load_file(path: &Path, stage: Option<&str>) -> Result<Loaded, Diagnostics> {
    load(Source::File(path), stage, &ProcessEnv)
}

/// Loads config text named `name` (for diagnostics) whose relative paths resolve against
/// `base_dir`, with references resolved from the process environment.
pub fn load_str(text: &str, name: &str, base_dir: &Path, stage: Option<&str>) -> Result<Loaded, Diagnostics> {
    load(Source::Text { text, name, base_dir }, stage, &ProcessEnv)
}

/// Loads `source`: every problem found is returned at once, sorted top to bottom.
/// Without a `stage`, only the base document is validated (see [`stage_names`]).
pub fn load(source: Source<'_>, stage: Option<&str>, env: &dyn Env) -> Result<Loaded, Diagnostics> {
    load_with(source, stage, env, None)
}

/// Loads only `parts` of `source` (JSON pointers such as `/state/database`, through mappings),
/// for a command that reads nothing else (`portcullis keys`): once the stage is applied, the
/// rest of the document is dropped, so its `${env:…}` / `${file:…}` references are not
/// resolved and its mistakes are not reported. The result holds `version` and those parts.
pub fn load_parts(
    source: Source<'_>,
    stage: Option<&str>,
    env: &dyn Env,
    parts: &[&str],
) -> Result<Loaded, Diagnostics> {
    load_with(source, stage, env, Some(parts))
}

fn load_with(
    source: Source<'_>,
    stage: Option<&str>,
    env: &dyn Env,
    parts: Option<&[&str]>,
) -> Result<Loaded, Diagnostics> {
    let Validated { diagnostics, value, locations, base_dir, files, referenced, contents } =
        validate(source, stage, env, parts)?;
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let document = deserialize(&value, &locations)?;
    Ok(Loaded {
        document,
        locations,
        base_dir,
        stage: stage.map(str::to_owned),
        value,
        files,
        broken: Broken::default(),
        referenced,
        contents,
    })
}

/// Loads `source` for `portcullis validate`: every problem of the load, and the document as far
/// as its shape is right, so that references are checked in the same run as the schema. Each
/// entry of a top-level list or named map (a route, a listener, an upstream, a policy, …) that
/// has an error is left out, and so is a top-level section with one elsewhere; when the rest
/// deserializes, it is [`Checked::loaded`]. Pure: reads the file and what it references,
/// starts nothing.
pub fn check(source: Source<'_>, stage: Option<&str>, env: &dyn Env) -> Checked {
    let Validated { diagnostics, mut value, locations, base_dir, files, referenced, contents } =
        match validate(source, stage, env, None) {
            Ok(validated) => validated,
            Err(diagnostics) => return Checked { diagnostics, ..Checked::default() },
        };
    let loaded = |document, value, broken| Loaded {
        document,
        locations: locations.clone(),
        base_dir: base_dir.clone(),
        stage: stage.map(str::to_owned),
        value,
        files: files.clone(),
        broken,
        referenced: referenced.clone(),
        contents: contents.clone(),
    };
    if diagnostics.is_empty() {
        return match deserialize(&value, &locations) {
            Ok(document) => Checked { loaded: Some(loaded(document, value, Broken::default())), ..Checked::default() },
            Err(diagnostics) => Checked { diagnostics, ..Checked::default() },
        };
    }
    let pointers: Vec<&str> = diagnostics.iter().map(|d| d.path.pointer()).collect();
    let Some((broken, renumbered)) = prune(&mut value, &pointers) else {
        return Checked { diagnostics, ..Checked::default() };
    };
    let partial = Document::deserialize(&value).ok().map(|document| loaded(document, value, broken));
    Checked { diagnostics, loaded: partial, renumbered }
}

/// Sections whose entries are named (a reference names one).
const NAMED_SECTIONS: &[&str] = &["upstreams", "auth", "consumers", "plans", "rate_limits", "policies", "cors"];

/// Leaves out of `value` every top-level entry (of a list or a named map) that one of
/// `pointers` points at or into, and every other top-level section one points into. `None`
/// when nothing can be salvaged (a problem with the document itself or its `version`).
fn prune(value: &mut Value, pointers: &[&str]) -> Option<(Broken, Renumbered)> {
    let Value::Object(map) = value else { return None };
    let mut whole = BTreeSet::new();
    let mut entries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pointer in pointers {
        let mut segments = pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~"));
        let section = segments.next()?;
        if section == "version" {
            return None;
        }
        match (map.get(&section), segments.next()) {
            (Some(Value::Object(_)), Some(entry)) if NAMED_SECTIONS.contains(&section.as_str()) => {
                entries.entry(section).or_default().insert(entry);
            }
            (Some(Value::Array(items)), Some(entry)) if entry.parse::<usize>().is_ok_and(|i| i < items.len()) => {
                entries.entry(section).or_default().insert(entry);
            }
            _ => {
                whole.insert(section);
            }
        }
    }
    let mut broken = BTreeSet::new();
    let mut renumbered = Vec::new();
    for (section, names) in entries {
        if whole.contains(&section) {
            continue;
        }
        match map.get_mut(&section) {
            Some(Value::Object(named)) => {
                for name in names {
                    named.remove(&name);
                    broken.insert((section.clone(), name));
                }
            }
            Some(Value::Array(items)) => {
                let mut kept = Vec::new();
                let mut index = 0;
                items.retain(|item| {
                    let keep = !names.contains(&index.to_string());
                    if keep {
                        kept.push(index);
                    } else if let Some(name) = item.get("name").and_then(Value::as_str) {
                        broken.insert((section.clone(), name.to_owned()));
                    }
                    index += 1;
                    keep
                });
                renumbered.push((format!("/{}", section.replace('~', "~0").replace('/', "~1")), kept));
            }
            _ => {}
        }
    }
    for section in whole {
        map.remove(&section);
    }
    Some((Broken(broken), renumbered))
}

/// A document past every check of the load, with every problem found.
struct Validated {
    diagnostics: Diagnostics,
    value: Value,
    locations: Locations,
    base_dir: PathBuf,
    files: Vec<PathBuf>,
    referenced: std::collections::HashSet<String>,
    contents: Contents,
}

/// Reads, parses, applies the stage, resolves references and checks the schema: every problem
/// found, sorted (`Err` when nothing past the problems is worth judging).
fn validate(
    source: Source<'_>,
    stage: Option<&str>,
    env: &dyn Env,
    parts: Option<&[&str]>,
) -> Result<Validated, Diagnostics> {
    let input = read_source(source)?;
    let parse::Parsed { mut value, mut locations, plain } = parse::parse(&input.text, &input.file)?;
    scalars::restore(&mut value, &plain, &schema::SCHEMA);
    let mut diagnostics = Diagnostics::default();
    // A wrong `version` is reported once, by this check, not again by the schema.
    let mut quiet = Vec::new();
    if let Some(problem) = check_version(&value, &locations)? {
        quiet.push(problem.path.pointer().to_owned());
        diagnostics.push(problem);
    }
    let merged = stages::apply(&mut value, &mut locations, stage);
    // Without the stage the user asked for, checking the rest would judge the wrong document.
    if let Err(mut problems) = merged {
        diagnostics.0.append(&mut problems.0);
        return Err(diagnostics);
    }
    if let Some(parts) = parts {
        keep_only(&mut value, parts);
    }
    let contents = Contents::default();
    let resolved = interpolate::resolve(&mut value, &locations, &input.base_dir, env, &contents);
    diagnostics.0.extend(resolved.diagnostics);
    // A node whose reference failed still holds the reference text; the schema would only
    // complain about that again.
    quiet.extend(resolved.failed);
    let context = schema::Context { locations: &locations, quiet: &quiet, hidden: &resolved.hidden };
    diagnostics.0.extend(schema::validate(&value, &context));
    diagnostics.sort();
    Ok(Validated {
        diagnostics,
        value,
        locations,
        base_dir: input.base_dir,
        files: resolved.files,
        referenced: resolved.hidden,
        contents,
    })
}

/// The names under `stages:`, so a caller (`portcullis validate`) can load each stage in turn.
/// References are not resolved here; `_env` is accepted so both entry points look alike.
pub fn stage_names(source: Source<'_>, _env: &dyn Env) -> Result<Vec<String>, Diagnostics> {
    let input = read_source(source)?;
    let parsed = parse::parse(&input.text, &input.file)?;
    stages::names(&parsed.value, &parsed.locations)
}

/// The JSON Schema (draft 2020-12) of the config file, as `portcullis schema` prints it.
pub fn json_schema() -> Value {
    // Serializing a `Schema` (a JSON value underneath) cannot fail.
    let mut schema = serde_json::to_value(schemars::schema_for!(Document)).unwrap_or(Value::Null);
    schema::bound_integers(&mut schema);
    schema
}

/// The text of a source and what is needed to place diagnostics and resolve paths.
struct Input<'a> {
    text: Cow<'a, str>,
    file: PathBuf,
    base_dir: PathBuf,
}

fn read_source(source: Source<'_>) -> Result<Input<'_>, Diagnostics> {
    match source {
        Source::Text { text, name, base_dir } => {
            Ok(Input { text: Cow::Borrowed(text), file: PathBuf::from(name), base_dir: base_dir.to_path_buf() })
        }
        Source::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                let message = format!("cannot read the config file: {e}");
                Diagnostics(vec![Diagnostic {
                    file: path.to_path_buf(),
                    path: KeyPath::root(),
                    location: None,
                    message,
                }])
            })?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let base_dir = parent.canonicalize().unwrap_or_else(|_| parent.to_path_buf());
            Ok(Input { text: Cow::Owned(text), file: path.to_path_buf(), base_dir })
        }
    }
}

/// Keeps `version` and the nodes at `parts`, each at its place; drops the rest. Where a part's
/// path runs into something that is not a mapping, that node is kept, so the schema still
/// says what is wrong with it.
fn keep_only(value: &mut Value, parts: &[&str]) {
    let Value::Object(map) = value else { return };
    let mut kept = serde_json::Map::new();
    if let Some(version) = map.remove("version") {
        kept.insert("version".to_owned(), version);
    }
    for part in parts {
        let keys: Vec<String> = part.split('/').skip(1).map(|k| k.replace("~1", "/").replace("~0", "~")).collect();
        let (mut from, mut to) = (&*map, &mut kept);
        for (i, key) in keys.iter().enumerate() {
            let Some(node) = from.get(key) else { break };
            match node {
                Value::Object(inner) if i + 1 < keys.len() => {
                    let slot = to.entry(key.clone()).or_insert_with(|| Value::Object(serde_json::Map::new()));
                    let Value::Object(slot) = slot else { break };
                    (from, to) = (inner, slot);
                }
                _ => {
                    to.insert(key.clone(), node.clone());
                    break;
                }
            }
        }
    }
    *map = kept;
}

/// Absolute stays, relative joins `base_dir` (SPEC §2).
fn resolve_path(base_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) }
}

/// Whether JSON pointer `pointer` is `root` or inside it.
fn is_within(pointer: &str, root: &str) -> bool {
    pointer.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `Ok(Some(_))` for a problem worth reporting beside the others (a missing or mistyped
/// version); `Err` when nothing else is worth checking (not a mapping, another version).
fn check_version(value: &Value, locations: &Locations) -> Result<Option<Diagnostic>, Diagnostics> {
    let root = KeyPath::root();
    let fatal = |message: String| Err(Diagnostics(vec![locations.diagnostic(&root, message)]));
    let map = match value {
        Value::Object(map) => map,
        Value::Null => {
            return fatal("the config file is empty; it must start with `version: 1`".into());
        }
        other => {
            let got = schema::kind_of(other);
            return fatal(format!("the config file must be a mapping starting with `version: 1`, not {got}"));
        }
    };
    let path = root.key("version");
    match map.get("version") {
        None => Ok(Some(locations.diagnostic(&path, "missing `version: 1` (the config format version)"))),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(None),
        // Another format version: the rest of the file is not ours to judge.
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Err(Diagnostics(vec![
            locations.diagnostic(&path, format!("unsupported config version {n}; this Portcullis reads `version: 1`")),
        ])),
        Some(other) => Ok(Some(
            locations.diagnostic(&path, format!("`version` must be the number 1, not {}", schema::kind_of(other))),
        )),
    }
}

/// The schema has passed, so this only fails where the schema is looser than the types
/// (an integer wider than its field); still a diagnostic, never a panic.
fn deserialize(value: &Value, locations: &Locations) -> Result<Document, Diagnostics> {
    Document::deserialize(value)
        .map_err(|e| Diagnostics(vec![locations.diagnostic(&KeyPath::root(), format!("invalid config: {e}"))]))
}
