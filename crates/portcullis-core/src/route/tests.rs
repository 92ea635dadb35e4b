//! Route table tests: precedence, methods, `routing:` options, matrix parameters.

use super::*;

type Spec<'a> = (Option<&'a str>, &'a str, Option<&'a [Method]>);

fn table(routes: &[Spec<'_>]) -> RouteTable {
    table_with(PathOptions::default(), routes)
}

fn table_with(options: PathOptions, routes: &[Spec<'_>]) -> RouteTable {
    let mut t = RouteTable::new(options);
    let flags = RouteFlags { captures: true, matrix_params: false };
    for (i, (host, path, methods)) in routes.iter().enumerate() {
        let added = t.add(Arc::from(format!("r{i}")), *host, path, methods.map(<[Method]>::to_vec), flags);
        assert!(added.is_ok(), "{path}: {added:?}");
    }
    t
}

fn found(m: RouteMatch) -> Option<usize> {
    match m {
        RouteMatch::Found { route, .. } => Some(route),
        _ => None,
    }
}

#[test]
fn exact_path_beats_parameter_beats_catch_all() {
    let t = table(&[(None, "/static/{*rest}", None), (None, "/static/{id}", None), (None, "/static/app.js", None)]);
    assert_eq!(found(t.lookup(None, &Method::GET, "/static/app.js")), Some(2));
    assert_eq!(found(t.lookup(None, &Method::GET, "/static/x")), Some(1));
    assert_eq!(found(t.lookup(None, &Method::GET, "/static/a/b")), Some(0));
}

#[test]
fn exact_host_beats_wildcard_beats_any() {
    let t = table(&[(None, "/", None), (Some("*.example.com"), "/", None), (Some("api.example.com"), "/", None)]);
    assert_eq!(found(t.lookup(Some("api.example.com"), &Method::GET, "/")), Some(2));
    assert_eq!(found(t.lookup(Some("a.b.example.com"), &Method::GET, "/")), Some(1));
    assert_eq!(found(t.lookup(Some("example.com"), &Method::GET, "/")), Some(0));
    assert_eq!(found(t.lookup(None, &Method::GET, "/")), Some(0));
}

#[test]
fn wrong_method_gives_allow_and_params_are_captured() {
    let t =
        table(&[(None, "/v1/orders/{id}", Some(&[Method::GET])), (None, "/v1/orders/{id}", Some(&[Method::DELETE]))]);
    assert_eq!(
        t.lookup(None, &Method::POST, "/v1/orders/7"),
        RouteMatch::MethodNotAllowed { allow: HeaderValue::from_static("GET, HEAD, DELETE") }
    );
    match t.lookup(None, &Method::DELETE, "/v1/orders/7") {
        RouteMatch::Found { route, params } => {
            assert_eq!(route, 1);
            assert_eq!(params, vec![(Arc::from("id"), "7".to_owned())]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(found(t.lookup(None, &Method::HEAD, "/v1/orders/7")), Some(0));
    let t = table(&[(None, "/x", Some(&[Method::GET])), (None, "/x", Some(&[Method::HEAD]))]);
    assert_eq!(found(t.lookup(None, &Method::HEAD, "/x")), Some(1), "an explicit HEAD route wins");
    assert_eq!(t.lookup(None, &Method::GET, "/v2"), RouteMatch::NotFound);
}

#[test]
fn overlapping_methods_on_one_path_are_refused() {
    let mut t = RouteTable::default();
    let flags = RouteFlags::default();
    assert!(t.add("a".into(), None, "/x", Some(vec![Method::GET]), flags).is_ok());
    assert!(t.add("b".into(), None, "/x", None, flags).is_err());
    assert!(t.add("c".into(), None, "x", None, flags).is_err());
    assert!(t.add("d".into(), None, "/{a}-{b}", None, flags).is_err());
}

const GET_PUT: &[Method] = &[Method::GET, Method::PUT];

#[test]
fn a_method_the_matching_pattern_refuses_never_falls_through_to_a_catch_all() {
    let t = table(&[(None, "/api/{*p}", None), (None, "/api/users/{id}", Some(GET_PUT))]);
    assert_eq!(
        t.lookup(None, &Method::DELETE, "/api/users/7"),
        RouteMatch::MethodNotAllowed { allow: HeaderValue::from_static("GET, PUT, HEAD") }
    );
    assert_eq!(found(t.lookup(None, &Method::DELETE, "/api/other")), Some(0));
    assert_eq!(found(t.lookup(None, &Method::PUT, "/api/users/7")), Some(1));
}

#[test]
fn a_method_the_matching_host_refuses_never_falls_through_to_a_less_specific_host() {
    let t = table(&[
        (None, "/{*p}", None),
        (Some("*.example.com"), "/users/{id}", Some(&[Method::GET])),
        (Some("api.example.com"), "/users/{id}", Some(GET_PUT)),
    ]);
    let refused =
        |host| matches!(t.lookup(Some(host), &Method::DELETE, "/users/7"), RouteMatch::MethodNotAllowed { .. });
    assert!(refused("api.example.com"), "exact host");
    assert!(refused("eu.example.com"), "wildcard host");
    assert_eq!(found(t.lookup(Some("other.org"), &Method::DELETE, "/users/7")), Some(0));
    // A host whose patterns do not match the path still leaves it to the next host.
    assert_eq!(found(t.lookup(Some("api.example.com"), &Method::GET, "/else")), Some(0));
}

#[test]
fn routing_options_fold_case_and_trailing_slash_and_keep_parameter_case() {
    let routes: &[Spec<'_>] = &[(None, "/api/Users/{name}", None), (None, "/api/{*p}", None)];
    let strict = table(routes);
    assert_eq!(found(strict.lookup(None, &Method::GET, "/api/users/Al")), Some(1));
    assert_eq!(found(strict.lookup(None, &Method::GET, "/api/Users/Al/")), Some(1));
    let lenient = table_with(PathOptions { case_insensitive: true, ignore_trailing_slash: true }, routes);
    match lenient.lookup(None, &Method::GET, "/API/USERS/AliCe/") {
        RouteMatch::Found { route, params } => {
            assert_eq!(route, 0);
            assert_eq!(params, vec![(Arc::from("name"), "AliCe".to_owned())]);
        }
        other => panic!("{other:?}"),
    }
    let slash =
        table_with(PathOptions { ignore_trailing_slash: true, ..PathOptions::default() }, &[(None, "/a/", None)]);
    assert_eq!(found(slash.lookup(None, &Method::GET, "/a")), Some(0));
    assert_eq!(found(slash.lookup(None, &Method::GET, "/a/")), Some(0));
}

#[test]
fn patterns_equal_under_the_routing_options_clash() {
    let mut t = RouteTable::new(PathOptions { case_insensitive: true, ignore_trailing_slash: true });
    let flags = RouteFlags::default();
    assert!(t.add("a".into(), None, "/Users", None, flags).is_ok());
    assert!(t.add("b".into(), None, "/users/", None, flags).is_err());
}

#[test]
fn matrix_parameters_need_a_route_that_takes_them_and_the_same_route_either_way() {
    let mut t = RouteTable::default();
    let plain = RouteFlags::default();
    let matrix = RouteFlags { matrix_params: true, ..RouteFlags::default() };
    assert!(t.add("public".into(), None, "/api/{*p}", None, matrix).is_ok());
    assert!(t.add("admin".into(), None, "/api/admin/{*p}", None, plain).is_ok());
    assert!(t.add("files".into(), None, "/files/{name}", None, matrix).is_ok());
    assert!(t.add("readme".into(), None, "/files/readme", None, matrix).is_ok());
    let get = |path| t.lookup(None, &Method::GET, path);
    assert!(matches!(get("/api/admin;jsessionid=1/x"), RouteMatch::BadPath(_)), "read as /api/admin/x");
    assert!(matches!(get("/api/admin/x;v=1"), RouteMatch::BadPath(_)));
    assert_eq!(found(get("/api/public;v=1/x")), Some(0));
    assert_eq!(found(get("/files/a;v=1")), Some(2));
    assert!(matches!(get("/files/readme;v=1"), RouteMatch::BadPath(_)), "two routes, one per reading");
    assert!(matches!(get("/api/x/;v=1/y"), RouteMatch::BadPath(_)), "an empty segment once stripped");
}
