//! `--stage NAME` overlays.

use std::path::Path;

use super::{FULL, FakeEnv, at, errors_of, line_of, load_in, loaded};
use crate::load::{Source, stage_names};
use crate::{KeyPath, Location};

const BASE: &str = "version: 1
upstreams:
  orders:
    targets: [\"http://10.0.1.10:8080\", \"http://10.0.1.11:8080\"]
    timeouts: { connect: 2s, response: 29s }
waf: { mode: block, rules: [sqli, xss] }
routes:
  - name: list-orders
    match: { path: /v1/orders, methods: [GET] }
    upstream: orders
    auth: none
    timeout: 10s
stages:
  dev:
    upstreams:
      orders:
        targets: [\"http://127.0.0.1:9000\"]
        timeouts: { response: 5s }
    waf: { rules: [xss] }
    routes:
      - name: list-orders
        timeout: 1s
      - name: debug
        match: { path: /debug }
        upstream: orders
        auth: none
  broken:
    routes:
      - name: list-orders
        timeout: 1 second
  empty:
";

fn with_stage(text: &str, stage: &str) -> Result<crate::Loaded, crate::Diagnostics> {
    load_in(text, Path::new("/"), Some(stage), &FakeEnv::default())
}

#[test]
fn maps_merge_deeply_and_lists_are_replaced_whole() {
    let l = loaded(with_stage(BASE, "dev"));
    let orders = &l.value["upstreams"]["orders"];
    assert_eq!(orders["targets"], serde_json::json!(["http://127.0.0.1:9000"]));
    assert_eq!(orders["timeouts"], serde_json::json!({ "connect": "2s", "response": "5s" }));
    assert_eq!(l.value["waf"], serde_json::json!({ "mode": "block", "rules": ["xss"] }));
    assert_eq!(l.stage.as_deref(), Some("dev"));
}

#[test]
fn routes_merge_by_name_and_new_routes_are_appended() {
    let l = loaded(with_stage(BASE, "dev"));
    let routes = &l.document.routes;
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].name, "list-orders");
    assert_eq!(routes[0].matcher.path, "/v1/orders");
    assert_eq!(routes[0].timeout.map(|t| t.to_string()).as_deref(), Some("1s"));
    assert_eq!(routes[1].name, "debug");
    // Each node is placed where it was written: base keys in the base, overlay keys in the stage.
    let locate = |p: &str| l.locations.locate(&KeyPath::from_pointer(p)).map(|loc| loc.line);
    assert_eq!(locate("/routes/0/match/path"), Some(9));
    assert_eq!(locate("/routes/0/timeout"), Some(22));
    assert_eq!(locate("/routes/1/match"), Some(24));
    assert_eq!(locate("/upstreams/orders/targets/0"), Some(17));
}

#[test]
fn a_list_an_overlay_replaces_is_not_placed_at_the_base_items() {
    let text =
        "version: 1\nwaf:\n  rules: [sqli, xss, protocol]\nstages:\n  s:\n    waf:\n      rules: [sqli, bogus]\n";
    let d = errors_of(with_stage(text, "s"));
    assert_eq!(line_of(at(&d, "waf.rules[1]")), 7);
}

#[test]
fn an_error_inside_the_overlay_is_reported_at_the_overlay_line() {
    let d = errors_of(with_stage(BASE, "broken"));
    assert_eq!(d.len(), 1, "{d}");
    let timeout = at(&d, "routes[0].timeout");
    assert_eq!(timeout.location, Some(Location { line: 30, column: 9 }));
}

#[test]
fn without_a_stage_only_the_base_is_checked() {
    let l = loaded(load_in(BASE, Path::new("/"), None, &FakeEnv::default()));
    assert_eq!(l.document.routes.len(), 1);
    assert_eq!(l.document.routes[0].timeout.map(|t| t.to_string()).as_deref(), Some("10s"));
}

#[test]
fn an_empty_stage_changes_nothing() {
    let l = loaded(with_stage(BASE, "empty"));
    assert_eq!(l.document.routes.len(), 1);
}

#[test]
fn unknown_stage_is_an_error_listing_the_known_ones() {
    let d = errors_of(with_stage(BASE, "staging"));
    assert_eq!(d.len(), 1);
    assert_eq!(d.0[0].message, "unknown stage `staging`; the config file defines `broken`, `dev`, `empty`");
    assert_eq!(line_of(&d.0[0]), 13);
    let also = errors_of(with_stage("stages: { dev: {} }\n", "prod"));
    assert_eq!(also.len(), 2, "a missing version is still reported: {also}");
    let none = errors_of(with_stage("version: 1\n", "dev"));
    assert_eq!(none.0[0].message, "unknown stage `dev`: the config file defines no `stages`");
}

#[test]
fn a_stage_that_is_not_a_mapping_is_an_error() {
    let d = errors_of(with_stage("version: 1\nstages:\n  dev: [1]\n", "dev"));
    assert_eq!(at(&d, "stages.dev").message, "stage `dev` must be a mapping of the sections it overrides, not a list");
}

#[test]
fn stage_names_lists_every_stage_so_each_can_be_validated() {
    let source = Source::Text { text: FULL, name: "full.yaml", base_dir: Path::new("/") };
    let names = stage_names(source, &FakeEnv::default()).expect("stage names");
    assert_eq!(names, ["dev", "prod"]);
    let env = FakeEnv::with(&[("PORTCULLIS_ADMIN_TOKEN", "t")]);
    for name in &names {
        let l = loaded(load_in(FULL, Path::new("/"), Some(name), &env));
        assert_eq!(l.stage.as_deref(), Some(name.as_str()));
    }
    let dev = loaded(load_in(FULL, Path::new("/"), Some("dev"), &env));
    assert_eq!(dev.value["waf"]["mode"], "detect");
    assert_eq!(dev.value["waf"]["deny_ips"][0], "203.0.113.0/24");
}
