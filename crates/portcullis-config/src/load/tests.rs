//! Loader tests: what a user sees when a config file loads or does not.
//! Message wording, references, stages and robustness live in the sibling files.

mod messages;
mod references;
mod robustness;
mod stages;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::{Diagnostic, Location};

/// The SPEC §2 example, which uses every key.
const FULL: &str = include_str!("../../testdata/full.yaml");

/// An environment for tests, so the process environment stays untouched.
#[derive(Default)]
struct FakeEnv(HashMap<String, String>);

impl FakeEnv {
    fn with(pairs: &[(&str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }
}

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn load_in(text: &str, base_dir: &Path, stage: Option<&str>, env: &FakeEnv) -> Result<Loaded, Diagnostics> {
    load(Source::Text { text, name: "test.yaml", base_dir }, stage, env)
}

fn load_text(text: &str) -> Result<Loaded, Diagnostics> {
    load_in(text, Path::new("/etc/portcullis"), None, &FakeEnv::default())
}

fn errors_of(result: Result<Loaded, Diagnostics>) -> Diagnostics {
    match result {
        Ok(_) => panic!("expected the config to be refused"),
        Err(diagnostics) => diagnostics,
    }
}

fn loaded(result: Result<Loaded, Diagnostics>) -> Loaded {
    result.unwrap_or_else(|d| panic!("expected the config to load, got:\n{d}"))
}

/// The one diagnostic at `path` (as displayed, `routes[0].auth`).
fn at<'d>(diagnostics: &'d Diagnostics, path: &str) -> &'d Diagnostic {
    let found: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.path.to_string() == path).collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!("expected one diagnostic at {path}, got:\n{diagnostics}"),
    }
}

fn line_of(d: &Diagnostic) -> usize {
    d.location.map_or(0, |l| l.line)
}

/// A scratch folder for tests that need files; removed by the caller.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

const ROUTE: &str = "
routes:
  - name: r
    match: { path: /r }
    upstream: u
    auth: none
";

#[test]
fn three_different_mistakes_are_all_reported_each_on_its_line() {
    let text = "version: 1
limits:
  idle_timeout: 10 seconds
  max_connections: many
routes:
  - name: list-orders
    match: { path: /v1/orders }
    upstream: orders
    auth: none
    timeuot: 10s
";
    let d = errors_of(load_text(text));
    assert_eq!(d.len(), 3, "{d}");
    let duration = at(&d, "limits.idle_timeout");
    assert_eq!(line_of(duration), 3);
    assert!(duration.message.contains("a duration such as 250ms"), "{}", duration.message);
    assert!(duration.message.contains("`10 seconds`"), "{}", duration.message);
    let count = at(&d, "limits.max_connections");
    assert_eq!(line_of(count), 4);
    assert_eq!(count.message, "expected an integer, got `many`");
    let unknown = at(&d, "routes[0].timeuot");
    assert_eq!(unknown.location, Some(Location { line: 10, column: 5 }));
    assert_eq!(unknown.message, "unknown key `timeuot`; did you mean `timeout`?");
    // Printed top to bottom, each with file, line and column.
    let printed = d.to_string();
    assert!(printed.starts_with("test.yaml:3:3: limits.idle_timeout: "), "{printed}");
}

#[test]
fn unknown_top_level_key_is_placed_at_the_key() {
    let d = errors_of(load_text("version: 1\nupstreem: {}\n"));
    let unknown = at(&d, "upstreem");
    assert_eq!(unknown.location, Some(Location { line: 2, column: 1 }));
    assert_eq!(unknown.message, "unknown key `upstreem`; did you mean `upstreams`?");
}

#[test]
fn missing_required_key_is_placed_at_its_mapping() {
    let d = errors_of(load_text("version: 1\nroutes:\n  - name: r\n    match: { path: /r }\n    auth: none\n"));
    let missing = at(&d, "routes[0].upstream");
    assert_eq!(missing.message, "missing required key `upstream`");
    assert_eq!(line_of(missing), 3);
}

#[test]
fn yaml_syntax_error_has_a_line_and_column() {
    let d = errors_of(load_text("version: 1\nlimits: [1\nroutes: []\n"));
    assert_eq!(d.len(), 1);
    let syntax = &d.0[0];
    assert_eq!(syntax.path.to_string(), "(document)");
    assert!(syntax.message.starts_with("invalid YAML: "), "{}", syntax.message);
    assert!(!syntax.message.contains(" at line "), "{}", syntax.message);
    assert_eq!(line_of(syntax), 3);
}

#[test]
fn duplicate_keys_are_an_error() {
    let d = errors_of(load_text("version: 1\nwaf: {}\nwaf: {}\n"));
    assert_eq!(d.0[0].message, "invalid YAML: duplicate key `waf`");
    assert_eq!(line_of(&d.0[0]), 3);
}

#[test]
fn a_second_yaml_document_is_an_error() {
    let d = errors_of(load_text("version: 1\n---\nversion: 1\n"));
    assert_eq!(d.0[0].message, "the config file must hold a single YAML document; found another one (`---`)");
    assert_eq!(line_of(&d.0[0]), 3);
}

#[test]
fn version_2_is_refused_alone() {
    let d = errors_of(load_text("version: 2\nbogus: 1\n"));
    assert_eq!(d.len(), 1, "{d}");
    assert_eq!(at(&d, "version").message, "unsupported config version 2; this Portcullis reads `version: 1`");
}

#[test]
fn missing_version_is_reported_beside_other_mistakes() {
    let d = errors_of(load_text("waf: { mode: blok }\n"));
    assert_eq!(d.len(), 2, "{d}");
    assert_eq!(at(&d, "version").message, "missing `version: 1` (the config format version)");
    let typed = errors_of(load_text("version: \"1\"\n"));
    assert_eq!(at(&typed, "version").message, "`version` must be the number 1, not the string `1`");
}

#[test]
fn empty_or_non_mapping_documents_are_errors() {
    for text in ["", "# only a comment\n", "~\n"] {
        let d = errors_of(load_text(text));
        assert_eq!(d.0[0].message, "the config file is empty; it must start with `version: 1`");
    }
    let d = errors_of(load_text("- version: 1\n"));
    assert!(d.0[0].message.contains("not a list"), "{d}");
}

#[test]
fn the_spec_example_loads() {
    let env = FakeEnv::with(&[("PORTCULLIS_ADMIN_TOKEN", "t0ken")]);
    let l = loaded(load_in(FULL, Path::new("/srv/gw"), None, &env));
    let doc = &l.document;
    assert_eq!(doc.listeners.len(), 2);
    assert_eq!(doc.admin.as_ref().and_then(|a| a.token.as_deref()), Some("t0ken"));
    assert_eq!(doc.routes.len(), 2);
    assert_eq!(doc.routes[0].name, "list-orders");
    assert!(matches!(doc.auth.get("corp"), Some(crate::surface::AuthProvider::Jwt(_))));
    assert_eq!(doc.stages.len(), 2);
    assert_eq!(l.stage, None);
    assert_eq!(l.value["routes"][1]["name"], "get-contact");
    assert_eq!(l.resolve_path("certs/api.pem"), PathBuf::from("/srv/gw/certs/api.pem"));
    assert_eq!(l.resolve_path("/abs/ca.pem"), PathBuf::from("/abs/ca.pem"));
    let route = l.locations.locate(&KeyPath::from_pointer("/routes/1/soap/operation"));
    assert_eq!(route.map(|loc| loc.line), Some(136));
}

#[test]
fn load_file_reads_the_file_and_resolves_paths_against_its_folder() {
    let dir = scratch_dir("load-file");
    let file = dir.join("portcullis.yaml");
    std::fs::write(&file, format!("version: 1{ROUTE}")).expect("write config");
    let l = loaded(load_file(&file, None));
    let canonical = dir.canonicalize().expect("canonical dir");
    assert_eq!(l.base_dir, canonical);
    assert_eq!(l.resolve_path("specs/a.yaml"), canonical.join("specs/a.yaml"));
    assert_eq!(l.locations.file, file);
    std::fs::write(&file, "version: 1\nwaf: 3\n").expect("write config");
    let d = errors_of(load_file(&file, None));
    assert_eq!(d.0[0].file, file);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unreadable_config_file_is_a_diagnostic() {
    let missing = Path::new("/nonexistent/portcullis.yaml");
    let d = errors_of(load_file(missing, None));
    assert_eq!(d.len(), 1);
    assert_eq!(d.0[0].path.to_string(), "(document)");
    assert_eq!(d.0[0].file, missing);
    assert!(d.0[0].message.starts_with("cannot read the config file: "), "{d}");
}

#[test]
fn aliases_are_located_and_their_contents_where_the_anchor_wrote_them() {
    let text = "version: 1
upstreams:
  a: &base
    timeouts: { connect: 2 seconds }
  b: *base
  c:
    <<: *base
    targets: [\"http://c\"]
";
    let d = errors_of(load_text(text));
    for path in ["upstreams.a.timeouts.connect", "upstreams.b.timeouts.connect", "upstreams.c.timeouts.connect"] {
        assert_eq!(line_of(at(&d, path)), 4, "{path}: {d}");
    }
}

#[test]
fn json_schema_denies_unknown_keys_and_describes_route_auth() {
    let schema = json_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["Route"]["additionalProperties"], false);
    assert!(schema["$defs"]["Route"]["properties"]["auth"].is_object());
    assert!(schema["$defs"]["Route"]["required"].as_array().is_some_and(|r| r.contains(&"auth".into())));
}

/// One route named `name` with response header `X-Note: note`, on mock upstream `u`.
fn named_route(name: &str, note: &str) -> String {
    format!(
        "version: 1
upstreams: {{ u: {{ mock: {{ status: 200 }} }} }}
routes:
  - name: {name}
    match: {{ path: /r }}
    upstream: u
    auth: none
    headers: {{ response: {{ set: {{ X-Note: {note} }} }} }}
"
    )
}

#[test]
fn yaml_1_1_booleans_are_text_where_text_is_wanted() {
    for word in ["y", "n", "yes", "no", "on", "off", "Y", "NO", "On"] {
        let l = loaded(load_text(&named_route(word, word)));
        assert_eq!(l.document.routes[0].name, word);
        let set = &l.document.routes[0].headers.as_ref().expect("headers").response.set;
        assert_eq!(set.get("X-Note").map(String::as_str), Some(word));
    }
}

#[test]
fn numbers_and_booleans_are_text_as_written_where_text_is_wanted() {
    for word in ["8080", "1.0", "0x1F", "0o17", "1e3", "-0", "+12", "007", "1_000", ".5", ".inf", ".Inf", "-.inf"] {
        let l = loaded(load_text(&named_route(word, word)));
        assert_eq!(l.document.routes[0].name, word);
        assert_eq!(l.value["routes"][0]["headers"]["response"]["set"]["X-Note"], word);
    }
    let l = loaded(load_text(&named_route("true", "FALSE")));
    assert_eq!(l.document.routes[0].name, "true");
    assert_eq!(l.value["routes"][0]["headers"]["response"]["set"]["X-Note"], "FALSE");
}

#[test]
fn map_keys_and_list_items_read_like_values() {
    let text = "version: 1
consumers:
  no: {}
  1.0: {}
  0x1F: {}
trusted_proxies: [10.0.0.1, yes]
cors:
  on: { origins: [\"*\"], methods: [GET], headers: [off, 8080] }
";
    let l = loaded(load_text(text));
    let names: Vec<&str> = l.document.consumers.keys().map(String::as_str).collect();
    assert_eq!(names, ["0x1F", "1.0", "no"]);
    assert_eq!(l.document.trusted_proxies, ["10.0.0.1", "yes"]);
    assert_eq!(l.document.cors["on"].headers, ["off", "8080"]);
}

#[test]
fn numbers_and_booleans_stay_typed_where_the_schema_wants_them() {
    let text = "version: 1
limits: { max_connections: 0x10 }
listeners: [{ name: 8080, bind: \"127.0.0.1:8080\", http2: False }]
tracing: { sample_ratio: 1 }
";
    let l = loaded(load_text(text));
    assert_eq!(l.value["limits"]["max_connections"], 16);
    assert_eq!(l.document.listeners[0].name, "8080");
    assert!(!l.document.listeners[0].http2);
    assert_eq!(l.value["tracing"]["sample_ratio"], 1);
}

#[test]
fn yaml_1_1_booleans_where_a_boolean_is_wanted_are_refused_with_a_hint() {
    let text = "version: 1\nlisteners:\n  - name: l\n    bind: \"127.0.0.1:8080\"\n    http2: yes\n";
    let d = errors_of(load_text(text));
    let refused = at(&d, "listeners[0].http2");
    assert_eq!(refused.message, "expected true or false, got `yes` (`yes`, `no`, `on` and `off` are text in YAML 1.2)");
    assert_eq!(refused.location, Some(Location { line: 5, column: 5 }));
    let d = errors_of(load_text("version: 1\nlimits: { max_connections: 1.5 }\n"));
    assert_eq!(at(&d, "limits.max_connections").message, "expected an integer, got `1.5`");
}

#[test]
fn null_where_text_is_wanted_is_nothing_and_quoted_or_tagged_scalars_keep_their_type() {
    for nothing in ["~", "null", "NULL", ""] {
        let d = errors_of(load_text(&named_route(nothing, "x")));
        let refused = at(&d, "routes[0].name");
        assert_eq!(refused.message, "expected a string, got nothing", "{nothing:?}");
        assert_eq!(line_of(refused), 4);
    }
    let l = loaded(load_text(&named_route("\"null\"", "'~'")));
    assert_eq!(l.document.routes[0].name, "null");
    let d = errors_of(load_text(&named_route("!!int 12", "!!bool true")));
    assert_eq!(at(&d, "routes[0].name").message, "expected a string, got `12`");
    assert_eq!(at(&d, "routes[0].headers.response.set.X-Note").message, "expected a string, got `true`");
}

#[test]
fn aliased_and_merged_scalars_keep_their_text() {
    let text = "version: 1
upstreams:
  u: { mock: { status: 200, headers: { X-Version: &one 1.10 } } }
  w:
    mock:
      <<: { status: 200, body: 2.50 }
      headers: { X-Copy: *one }
";
    let l = loaded(load_text(text));
    assert_eq!(l.value["upstreams"]["u"]["mock"]["headers"]["X-Version"], "1.10");
    assert_eq!(l.value["upstreams"]["w"]["mock"]["headers"]["X-Copy"], "1.10");
    assert_eq!(l.value["upstreams"]["w"]["mock"]["body"], "2.50");
    assert_eq!(l.value["upstreams"]["w"]["mock"]["status"], 200);
}

#[test]
fn stage_overlays_read_their_scalars_like_the_base_and_merge_routes_by_that_name() {
    let text = format!(
        "{}stages:\n  prod:\n    routes:\n      - {{ name: 1.0, upstream: v }}\n    upstreams: {{ v: {{ mock: {{ status: 204, body: 3.0 }} }} }}\n",
        named_route("1.0", "on")
    );
    let l = loaded(load_in(&text, Path::new("/etc/portcullis"), Some("prod"), &FakeEnv::default()));
    assert_eq!(l.document.routes.len(), 1, "the overlay's route merged into the base route of that name");
    assert_eq!(l.document.routes[0].name, "1.0");
    assert_eq!(l.document.routes[0].upstream, "v");
    assert_eq!(l.value["upstreams"]["v"]["mock"]["body"], "3.0");
}

fn load_parts_of(text: &str, stage: Option<&str>, env: &FakeEnv, parts: &[&str]) -> Result<Loaded, Diagnostics> {
    load_parts(Source::Text { text, name: "test.yaml", base_dir: Path::new("/etc/portcullis") }, stage, env, parts)
}

const KEYS_CONFIG: &str = "version: 1
admin: { bind: \"127.0.0.1:9901\", token: \"${env:ADMIN_TOKEN}\" }
listeners: [{ name: l, bind: \"${env:BIND}\" }]
state: { database: \"${env:DB}\", redis: \"${env:REDIS}\" }
plans: { gold: { rate: 10/s } }
routes: [{ name: r, upstream: nowhere }]
stages:
  local:
    state: { database: \"sqlite://local.db\" }
";

#[test]
fn loading_parts_resolves_and_checks_only_those_parts() {
    let env = FakeEnv::with(&[("DB", "postgres://db/keys")]);
    let l = loaded(load_parts_of(KEYS_CONFIG, None, &env, &["/state/database", "/plans"]));
    assert_eq!(l.document.state.database.as_deref(), Some("postgres://db/keys"));
    assert_eq!(l.document.state.redis, None, "not asked for, not resolved");
    assert!(l.document.plans.contains_key("gold"));
    assert!(l.document.admin.is_none() && l.document.routes.is_empty(), "{}", l.value);
    // The same document, whole, needs every reference and a valid route.
    let d = errors_of(load_in(KEYS_CONFIG, Path::new("/etc/portcullis"), None, &env));
    assert!(d.len() >= 4, "{d}");
}

#[test]
fn a_reference_in_a_part_asked_for_is_still_an_error_naming_it() {
    let d = errors_of(load_parts_of(KEYS_CONFIG, None, &FakeEnv::default(), &["/state/database"]));
    assert_eq!(d.len(), 1, "{d}");
    let missing = at(&d, "state.database");
    assert_eq!(missing.message, "environment variable `DB` (from `${env:DB}`) is not set");
    assert_eq!(line_of(missing), 4);
    // The stage is applied first: its database needs no environment.
    let l = loaded(load_parts_of(KEYS_CONFIG, Some("local"), &FakeEnv::default(), &["/state/database"]));
    assert_eq!(l.document.state.database.as_deref(), Some("sqlite://local.db"));
    // A part whose path is not a mapping is kept, so the mistake is still reported.
    let d = errors_of(load_parts_of("version: 1\nstate: 5\n", None, &FakeEnv::default(), &["/state/database"]));
    assert_eq!(at(&d, "state").message, "expected a mapping, got `5`");
}

/// `check` keeps the parts whose shape is right, names what it left out, and places a later
/// diagnostic of a renumbered list back at the entry as written.
#[test]
fn check_keeps_the_well_shaped_parts() {
    let text = "version: 1
listeners: [{ name: l, bind: \"127.0.0.1:0\" }]
upstreams:
  orders: { targets: [\"http://127.0.0.1:9\"], timeouts: { connect: soon } }
  billing: { targets: [\"http://127.0.0.1:9\"] }
routes:
  - { name: a, match: { path: /a }, upstream: orders, auth: none, retries: lots }
  - { name: b, match: { path: /b }, upstream: billing, auth: none }
";
    let checked =
        check(Source::Text { text, name: "test.yaml", base_dir: Path::new("/etc") }, None, &FakeEnv::default());
    assert_eq!(checked.diagnostics.len(), 2, "{}", checked.diagnostics);
    let partial = checked.loaded.as_ref().unwrap_or_else(|| panic!("a partial document"));
    assert!(partial.document.upstreams.contains_key("billing"));
    assert!(!partial.document.upstreams.contains_key("orders"));
    assert!(partial.broken.contains("upstreams", "orders") && partial.broken.contains("routes", "a"));
    assert!(!partial.broken.contains("upstreams", "billing"));
    assert_eq!(partial.document.routes.len(), 1);
    assert_eq!(partial.document.routes[0].name, "b");
    // Found in the partial document at routes[0]: that is routes[1], line 8, as written.
    let found = partial.locations.diagnostic(&KeyPath::from_pointer("/routes/0/upstream"), "x");
    let placed = checked.place(found);
    assert_eq!(placed.path.to_string(), "routes[1].upstream");
    assert_eq!(placed.location.map(|l| l.line), Some(8));
}

#[test]
fn check_of_a_whole_document_has_no_diagnostics_and_nothing_broken() {
    let text = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:0\" }]\n";
    let checked =
        check(Source::Text { text, name: "test.yaml", base_dir: Path::new("/etc") }, None, &FakeEnv::default());
    assert!(checked.diagnostics.is_empty(), "{}", checked.diagnostics);
    assert!(checked.loaded.is_some_and(|l| l.broken.is_empty()));
}

#[test]
fn check_salvages_nothing_from_a_wrong_version() {
    let text = "version: \"one\"\nlisteners: [{ name: l, bind: 5 }]\n";
    let checked =
        check(Source::Text { text, name: "test.yaml", base_dir: Path::new("/etc") }, None, &FakeEnv::default());
    assert!(!checked.diagnostics.is_empty());
    assert!(checked.loaded.is_none());
}
