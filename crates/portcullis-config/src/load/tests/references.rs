//! `${env:…}`, `${file:…}` and `$${`.

use std::path::Path;

use super::{FakeEnv, at, errors_of, line_of, load_in, loaded, scratch_dir};

fn admin_token(token: &str) -> String {
    format!("version: 1\nadmin:\n  bind: 127.0.0.1:9901\n  token: \"{token}\"\n")
}

#[test]
fn missing_env_var_is_reported_at_its_key_without_any_resolved_value() {
    let env = FakeEnv::with(&[("PREFIX", "s3cret")]);
    let text = admin_token("${env:PREFIX}-${env:MISSING_TOKEN}");
    let d = errors_of(load_in(&text, Path::new("/"), None, &env));
    assert_eq!(d.len(), 1, "{d}");
    let missing = at(&d, "admin.token");
    assert_eq!(line_of(missing), 4);
    assert_eq!(missing.message, "environment variable `MISSING_TOKEN` (from `${env:MISSING_TOKEN}`) is not set");
    assert!(!d.to_string().contains("s3cret"));
}

#[test]
fn every_missing_reference_is_reported() {
    let text = "version: 1\nadmin: { bind: \"${env:A}\", token: \"${env:B} ${env:C}\" }\n";
    let d = errors_of(load_in(text, Path::new("/"), None, &FakeEnv::default()));
    assert_eq!(d.len(), 3, "{d}");
}

#[test]
fn several_references_resolve_anywhere_in_a_string() {
    let env = FakeEnv::with(&[("USER", "ops"), ("TOKEN", "abc")]);
    let l = loaded(load_in(&admin_token("Bearer ${env:USER}:${env:TOKEN}!"), Path::new("/"), None, &env));
    assert_eq!(l.document.admin.and_then(|a| a.token).as_deref(), Some("Bearer ops:abc!"));
}

#[test]
fn a_value_that_is_one_reference_stays_a_string() {
    let env = FakeEnv::with(&[("PORT", "9901")]);
    let text = "version: 1\nadmin: { bind: \"${env:PORT}\" }\n";
    let l = loaded(load_in(text, Path::new("/"), None, &env));
    assert_eq!(l.value["admin"]["bind"], "9901");
}

#[test]
fn resolved_values_are_not_quoted_in_schema_errors() {
    let env = FakeEnv::with(&[("GRACE", "hunter2")]);
    let text = "version: 1\nshutdown_grace: \"${env:GRACE}\"\n";
    let d = errors_of(load_in(text, Path::new("/"), None, &env));
    let grace = at(&d, "shutdown_grace");
    assert_eq!(grace.message, "expected a duration such as 250ms, 10s, 5m or 1h");
    assert!(!d.to_string().contains("hunter2"));
}

#[test]
fn file_reference_reads_relative_to_base_dir_and_trims_trailing_newlines() {
    let dir = scratch_dir("file-ref");
    std::fs::create_dir_all(dir.join("secrets")).expect("create secrets dir");
    std::fs::write(dir.join("secrets/token"), "abc def\n\n").expect("write secret");
    let l = loaded(load_in(&admin_token("${file:secrets/token}"), &dir, None, &FakeEnv::default()));
    assert_eq!(l.document.admin.and_then(|a| a.token).as_deref(), Some("abc def"));
    assert_eq!(l.files, vec![dir.join("secrets/token")]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unreadable_file_reference_names_the_reference_and_the_path() {
    let text = admin_token("${file:nope.txt}");
    let d = errors_of(load_in(&text, Path::new("/nonexistent"), None, &FakeEnv::default()));
    let missing = at(&d, "admin.token");
    assert!(
        missing.message.starts_with("cannot read `${file:nope.txt}` (/nonexistent/nope.txt): "),
        "{}",
        missing.message
    );
}

#[test]
fn dollar_dollar_brace_is_a_literal_dollar_brace() {
    let env = FakeEnv::with(&[("X", "resolved")]);
    let text = "version: 1\nupstreams:\n  m: { mock: { body: \"$${env:X} costs $5, ${env:X}\" } }\n";
    let l = loaded(load_in(text, Path::new("/"), None, &env));
    assert_eq!(l.value["upstreams"]["m"]["mock"]["body"], "${env:X} costs $5, resolved");
}

#[test]
fn malformed_references_are_errors() {
    let text = "version: 1\nadmin: { bind: \"${vault:x}\", token: \"${env:X\" }\n";
    let d = errors_of(load_in(text, Path::new("/"), None, &FakeEnv::default()));
    assert!(at(&d, "admin.bind").message.starts_with("unknown reference `${vault:x}`"), "{d}");
    assert!(at(&d, "admin.token").message.starts_with("unterminated reference `${env:X`"), "{d}");
}

#[test]
fn keys_and_non_strings_are_not_interpolated() {
    let env = FakeEnv::with(&[("K", "v")]);
    let text = "version: 1\nupstreams:\n  m: { mock: { headers: { \"${env:K}\": \"${env:K}\" } } }\n";
    let l = loaded(load_in(text, Path::new("/"), None, &env));
    assert_eq!(l.value["upstreams"]["m"]["mock"]["headers"]["${env:K}"], "v");
}

#[test]
fn references_in_stages_not_applied_are_not_resolved() {
    let text = "version: 1\nstages:\n  prod:\n    admin: { bind: \"${env:PROD_ONLY}\" }\n";
    let l = loaded(load_in(text, Path::new("/"), None, &FakeEnv::default()));
    assert_eq!(l.value["stages"]["prod"]["admin"]["bind"], "${env:PROD_ONLY}");
    let d = errors_of(load_in(text, Path::new("/"), Some("prod"), &FakeEnv::default()));
    assert_eq!(line_of(at(&d, "admin.bind")), 4);
}

#[test]
fn a_missing_reference_does_not_hide_schema_errors() {
    let text = "version: 1\nadmin: { bind: \"${env:NOPE}\" }\nwaf: { mode: blok }\n";
    let d = errors_of(load_in(text, Path::new("/"), None, &FakeEnv::default()));
    assert_eq!(d.len(), 2, "{d}");
}
