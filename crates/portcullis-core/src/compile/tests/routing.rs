//! `routing:`, `match.matrix_params`, `headers.request.allow_underscore` and the path-variant
//! warning.

use http::HeaderName;

use super::compile_text;
use crate::route::RouteMatch;

const AUTH: &str = "auth:\n  keys: { type: api_key }\n  corp: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256] }\n";

/// The layout: two key-protected routes and a public catch-all on one upstream.
fn layout(routing: &str) -> String {
    format!(
        "{routing}{AUTH}routes:\n  \
         - {{ name: admin, match: {{ path: \"/api/admin/{{*p}}\" }}, upstream: up, auth: {{ any: [keys] }} }}\n  \
         - {{ name: users, match: {{ path: \"/api/users/{{id}}\", methods: [GET, PUT] }}, upstream: up, auth: {{ any: [keys] }} }}\n  \
         - {{ name: public, match: {{ path: \"/api/{{*p}}\" }}, upstream: up, auth: none }}\n"
    )
}

fn warnings(text: &str) -> Vec<String> {
    let snap = compile_text(text).unwrap_or_else(|e| panic!("{e}"));
    snap.warnings.iter().map(ToString::to_string).filter(|w| w.contains("weaker authentication")).collect()
}

#[test]
fn a_weaker_route_receiving_variants_of_a_stronger_ones_paths_is_a_warning_naming_both() {
    let found = warnings(&layout(""));
    assert_eq!(found.len(), 2, "{found:#?}");
    let admin = found.iter().find(|w| w.contains("route `admin`")).unwrap_or_else(|| panic!("{found:#?}"));
    assert!(admin.contains("route `public`") && admin.contains("case variants"), "{admin}");
    assert!(admin.contains("routing.case_insensitive: true"), "{admin}");
    let users = found.iter().find(|w| w.contains("route `users`")).unwrap_or_else(|| panic!("{found:#?}"));
    assert!(users.contains("case, trailing-slash variants"), "{users}");
    assert!(users.contains("t.yaml:12:"), "placed at the public route's path: {users}");
}

#[test]
fn routing_that_follows_the_backend_leaves_nothing_to_warn_about() {
    let routing = "routing: { case_insensitive: true, trailing_slash: ignore }\n";
    assert_eq!(warnings(&layout(routing)), Vec::<String>::new());
    let snap = compile_text(&layout(routing)).unwrap_or_else(|e| panic!("{e}"));
    let get = |path| snap.table.lookup(None, &http::Method::GET, path);
    assert!(matches!(get("/API/Admin/x"), RouteMatch::Found { route: 0, .. }));
    assert!(matches!(get("/api/users/7/"), RouteMatch::Found { route: 1, .. }));
}

#[test]
fn variants_on_another_upstream_or_to_an_equally_strict_route_are_no_warning() {
    let other = format!(
        "{AUTH}routes:\n  \
         - {{ name: admin, match: {{ path: \"/api/admin\" }}, upstream: up, auth: {{ any: [keys] }} }}\n  \
         - {{ name: public, match: {{ path: \"/api/{{*p}}\" }}, upstream: m, auth: none }}\n"
    );
    assert_eq!(warnings(&other), Vec::<String>::new());
    let strict = format!(
        "{AUTH}routes:\n  \
         - {{ name: admin, match: {{ path: \"/api/admin\" }}, upstream: up, auth: {{ any: [keys, corp] }} }}\n  \
         - {{ name: rest, match: {{ path: \"/api/{{*p}}\" }}, upstream: up, auth: {{ all: [corp, keys] }} }}\n"
    );
    assert_eq!(warnings(&strict), Vec::<String>::new(), "all of both is stricter than any of them");
}

#[test]
fn fewer_providers_or_policies_is_weaker() {
    let policy = "policies:\n  ops: { scopes: [ops] }\n";
    let text = format!(
        "{AUTH}{policy}routes:\n  \
         - {{ name: admin, match: {{ path: \"/api/admin\" }}, upstream: up, auth: {{ all: [keys, corp] }} }}\n  \
         - {{ name: ops, match: {{ path: \"/api/ops\" }}, upstream: up, auth: {{ any: [corp] }}, policy: ops }}\n  \
         - {{ name: rest, match: {{ path: \"/api/{{*p}}\" }}, upstream: up, auth: {{ any: [corp] }} }}\n"
    );
    let found = warnings(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().any(|w| w.contains("route `rest`") && w.contains("route `admin`")), "{found:#?}");
    assert!(found.iter().any(|w| w.contains("route `rest`") && w.contains("route `ops`")), "{found:#?}");
}

#[test]
fn matrix_params_and_allow_underscore_reach_the_route() {
    let text = "routes:\n  - { name: r, match: { path: /x, matrix_params: true }, upstream: up, auth: none, \
                headers: { request: { allow_underscore: [X_Legacy_Id] } } }\n";
    let snap = compile_text(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.routes[0].matrix_params);
    assert_eq!(snap.routes[0].allow_underscore, vec![HeaderName::from_static("x_legacy_id")]);
}

#[test]
fn allow_underscore_refuses_names_without_one_and_headers_the_gateway_owns() {
    let text = format!(
        "{AUTH}routes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: none, \
         headers: {{ request: {{ allow_underscore: [X-Plain, Content_Length, X_Api_Key, X_Consumer, \"bad name\"] }} }} }}\n"
    );
    let err = compile_text(&text).err().unwrap_or_default();
    for needle in [
        "`X-Plain` holds no `_`",
        "reads as `content-length`",
        "reads as `x-api-key`",
        "reads as `x-consumer`",
        "`bad name` is not a header name",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
}
