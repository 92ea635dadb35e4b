//! How schema errors read: untagged enums, tags, enums and ranges say what is allowed.

use super::{ROUTE, at, errors_of, load_text};

#[test]
fn route_auth_mistakes_read_as_the_forms_auth_may_take() {
    let word = errors_of(load_text(&format!("version: 1{}", ROUTE.replace("auth: none", "auth: nonee"))));
    assert_eq!(at(&word, "routes[0].auth").message, "must be `none`, {any: [...]} or {all: [...]}, got `nonee`");
    let inner = errors_of(load_text(&format!("version: 1{}", ROUTE.replace("auth: none", "auth: { any: corp }"))));
    assert_eq!(at(&inner, "routes[0].auth.any").message, "expected a list, got `corp`");
    let extra =
        errors_of(load_text(&format!("version: 1{}", ROUTE.replace("auth: none", "auth: { any: [a], anny: [b] }"))));
    assert_eq!(at(&extra, "routes[0].auth.anny").message, "unknown key `anny`; did you mean `any`?");
}

#[test]
fn other_untagged_values_read_as_their_forms() {
    let text = format!(
        "version: 1
upstreams:
  u:
    retries: {{ attempts: 2, on: [conect_error, 404, 503] }}{}    policy: {{ name: p }}
",
        ROUTE
    );
    let d = errors_of(load_text(&text));
    assert_eq!(d.len(), 3, "{d}");
    let forms = "must be an integer from 500 to 599, `connect_error` or `timeout`";
    assert_eq!(at(&d, "upstreams.u.retries.on[0]").message, format!("{forms}, got `conect_error`"));
    assert_eq!(at(&d, "upstreams.u.retries.on[1]").message, format!("{forms}, got `404`"));
    assert_eq!(at(&d, "routes[0].policy").message, "must be a string or a list of strings, got a mapping");
}

#[test]
fn unknown_auth_provider_type_names_the_known_types() {
    let d = errors_of(load_text(
        "version: 1\nauth:\n  corp: { type: oauth, issuer: x }\n  keys: { type: jwt, issuerr: x }\n",
    ));
    assert_eq!(at(&d, "auth.corp.type").message, "must be `jwt`, `api_key` or `mtls`, got `oauth`");
    assert_eq!(at(&d, "auth.keys.issuerr").message, "unknown key `issuerr`; did you mean `issuer`?");
    assert_eq!(at(&d, "auth.keys.issuer").message, "missing required key `issuer`");
}

#[test]
fn enum_and_range_mistakes_say_what_is_allowed() {
    let d = errors_of(load_text("version: 1\nwaf: { mode: blok }\ntracing: { sample_ratio: 2 }\n"));
    assert_eq!(at(&d, "waf.mode").message, "must be `block`, `detect`, `off` or `false`, got `blok`");
    assert_eq!(at(&d, "tracing.sample_ratio").message, "must be at most 1.0, got `2`");
}

#[test]
fn numbers_too_large_for_their_field_are_reported_at_the_key() {
    let d = errors_of(load_text("version: 1\nlimits: { max_connections: 99999999999 }\n"));
    let big = at(&d, "limits.max_connections");
    assert_eq!(big.message, "must be at most 4294967295, got `99999999999`");
}

#[test]
fn a_value_the_schema_passes_but_the_type_refuses_is_still_a_diagnostic() {
    // JSON Schema counts 1000.0 as an integer; serde does not.
    let d = errors_of(load_text("version: 1\nlimits: { max_connections: 1.0e3 }\n"));
    assert_eq!(d.len(), 1, "{d}");
    assert!(d.0[0].message.starts_with("invalid config: "), "{d}");
}
