//! Origin normalisation and matching, preflight checks, the rendered headers.

use super::*;

fn pattern(text: &str) -> OriginPattern {
    OriginPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn matches(pattern_text: &str, origin: &str) -> bool {
    let p = pattern(pattern_text);
    parse_origin(origin, false).is_ok_and(|o| p.matches(&o))
}

#[test]
fn origins_compare_after_normalising_scheme_host_case_and_default_port() {
    assert!(matches("https://portal.example.com", "https://portal.example.com"));
    assert!(matches("https://Portal.Example.COM", "https://portal.example.com"));
    assert!(matches("https://portal.example.com", "HTTPS://PORTAL.example.com"));
    assert!(matches("https://portal.example.com:443", "https://portal.example.com"));
    assert!(matches("https://portal.example.com", "https://portal.example.com:443"));
    assert!(matches("http://localhost:80", "http://localhost"));
    assert!(matches("http://127.0.0.1:3000", "http://127.0.0.1:3000"));
    assert!(matches("http://[::1]:8080", "http://[::1]:8080"));
    assert!(matches("https://portal.example.com", "https://portal.example.com."));
    // Exactly: another scheme, port, host or a suffix trick is another origin.
    assert!(!matches("https://portal.example.com", "http://portal.example.com"));
    assert!(!matches("https://portal.example.com", "https://portal.example.com:8443"));
    assert!(!matches("http://localhost:80", "http://localhost:8080"));
    assert!(!matches("https://portal.example.com", "https://portal.example.com.evil.test"));
    assert!(!matches("https://portal.example.com", "https://evilportal.example.com"));
    assert!(!matches("https://portal.example.com", "https://xportal.example.com"));
    // The default port is per scheme.
    assert!(!matches("https://portal.example.com:80", "https://portal.example.com"));
}

#[test]
fn texts_that_are_no_origin_are_refused() {
    for bad in [
        "null",
        "",
        "portal.example.com",
        "https://portal.example.com/",
        "https://portal.example.com/x",
        "https://portal.example.com?x",
        "https://user@portal.example.com",
        "https://portal.example.com:",
        "https://portal.example.com:99999",
        "https://portal.example.com:0",
        "https://*.example.com",
        "https://portal example.com",
        "https://pörtal.example.com",
    ] {
        assert!(parse_origin(bad, false).is_err(), "{bad}");
    }
    assert_eq!(parse_origin("null", false), Err(OriginError::Null));
    assert_eq!(parse_origin("https://a.example.com/", false), Err(OriginError::HasPath));
}

#[test]
fn a_label_wildcard_takes_exactly_one_label_in_its_scheme_and_port() {
    let p = "https://*.example.com";
    assert!(matches(p, "https://a.example.com"));
    assert!(matches(p, "https://A-1.Example.com"));
    assert!(matches(p, "https://a.example.com:443"));
    assert!(!matches(p, "https://example.com"));
    assert!(!matches(p, "https://.example.com"));
    assert!(!matches(p, "https://a.b.example.com"));
    assert!(!matches(p, "http://a.example.com"));
    assert!(!matches(p, "https://a.example.com:8443"));
    assert!(!matches(p, "https://aexample.com"));
    assert!(!matches(p, "https://a.example.com.evil.test"));
    assert!(matches("http://*.example.com:8080", "http://x.example.com:8080"));
}

#[test]
fn configured_origins_are_checked_as_written() {
    assert_eq!(OriginPattern::parse("*"), Ok(OriginPattern::Any));
    assert_eq!(
        OriginPattern::parse("HTTPS://Portal.Example.com:443"),
        Ok(OriginPattern::Exact { scheme: "https".into(), host: "portal.example.com".into(), port: None })
    );
    for bad in [
        "null",
        "https://portal.example.com/",
        "https://portal.example.com/app",
        "portal.example.com",
        "*.example.com",
        "https://*example.com",
        "https://a.*.example.com",
        "https://*.com",
        "https://**.example.com",
        "https://*",
        "https://portal.example.com:http",
    ] {
        assert!(OriginPattern::parse(bad).is_err(), "{bad}");
    }
}

fn policy(credentials: bool) -> CorsPolicy {
    CorsPolicy::new(
        Arc::from("portal"),
        vec![pattern("https://portal.example.com"), pattern("https://*.apps.example.com")],
        vec![Method::GET, Method::PUT],
        vec![HeaderName::from_static("authorization"), HeaderName::from_static("content-type")],
        &[HeaderName::from_static("x-order-version")],
        credentials,
        600,
    )
}

#[test]
fn a_preflight_is_checked_against_the_methods_and_every_requested_header() {
    let p = policy(true);
    let mut h = HeaderMap::new();
    assert_eq!(p.check_preflight(b"PUT", &h), Ok(()));
    assert_eq!(p.check_preflight(b"DELETE", &h), Err(PreflightRefusal::Method));
    assert_eq!(p.check_preflight(b"put", &h), Err(PreflightRefusal::Method));
    h.insert(http::header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("Content-Type, authorization"));
    assert_eq!(p.check_preflight(b"GET", &h), Ok(()));
    h.append(http::header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-debug"));
    assert_eq!(p.check_preflight(b"GET", &h), Err(PreflightRefusal::Header));
    let safelisted = policy(false);
    assert_eq!(safelisted.allow_methods, "GET, PUT");
}

#[test]
fn the_rendered_headers_name_the_exact_origin_and_the_gateways_own_headers() {
    let p = policy(true);
    let origin = HeaderValue::from_static("https://x.apps.example.com");
    assert!(p.allows(&origin));
    assert!(!p.allows(&HeaderValue::from_static("https://evil.test")));
    let pre = p.preflight_response(&origin);
    assert_eq!(pre.status(), http::StatusCode::NO_CONTENT);
    let h = pre.headers();
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.apps.example.com");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, PUT");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "authorization, content-type");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
    let mut actual = HeaderMap::new();
    actual.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    actual.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    p.annotate(&mut actual, Some(&origin), true);
    assert_eq!(actual[ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.apps.example.com");
    assert_eq!(
        actual[ACCESS_CONTROL_EXPOSE_HEADERS],
        "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, x-order-version"
    );
    let vary: Vec<_> = actual.get_all(VARY).iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    // Once is enough.
    p.annotate(&mut actual, Some(&origin), true);
    assert_eq!(actual.get_all(VARY).iter().count(), 2);
    let mut none = HeaderMap::new();
    policy(false).annotate(&mut none, None, true);
    assert_eq!(none.len(), 1);
    assert_eq!(none[VARY], "Origin");
}
