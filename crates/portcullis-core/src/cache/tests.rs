use std::time::Duration;

use crate::snapshot::CacheSpec;
use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use super::{CacheKey, partition, store_ttl, unverified_credentials};

fn key(shared: bool, uri: &str, consumer: Option<&str>) -> CacheKey {
    let spec = CacheSpec { ttl: Duration::from_secs(30), shared };
    let uri: Uri = uri.parse().unwrap_or_default();
    CacheKey::new(&"r".into(), spec, false, Some("api.example.com"), &uri, consumer)
}

fn over_https(key: CacheKey) -> CacheKey {
    CacheKey { https: true, ..key }
}

#[test]
fn consumers_never_share_an_entry_unless_the_route_is_shared() {
    assert_ne!(key(false, "/x", Some("acme")), key(false, "/x", Some("globex")));
    assert_ne!(key(false, "/x", Some("acme")), key(false, "/x", None));
    assert_eq!(key(true, "/x", Some("acme")), key(true, "/x", Some("globex")));
}

#[test]
fn query_order_does_not_split_entries() {
    assert_eq!(key(false, "/x?b=2&a=1", None), key(false, "/x?a=1&b=2", None));
    assert_ne!(key(false, "/x?a=1", None), key(false, "/x?a=2", None));
    // Repeated names keep their order: backends differ on whether the first or last wins.
    assert_ne!(key(false, "/x?a=2&a=1", None), key(false, "/x?a=1&a=2", None));
    assert_eq!(key(false, "/x?a=2&b=0&a=1", None), key(false, "/x?b=0&a=2&a=1", None));
}

#[test]
fn one_consumer_shared_by_several_users_keeps_an_entry_per_user() {
    // `auth: { all: [user_jwt, partner_key] }`: the key's owner is the consumer of both.
    let names = [http::HeaderName::from_static("x-consumer"), http::HeaderName::from_static("x-auth-subject")];
    let sent = |subject: &'static str| headers(&[(names[0].clone(), "acme"), (names[1].clone(), subject)]);
    let alice = partition(Some("acme"), &sent("alice"), &names);
    let bob = partition(Some("acme"), &sent("bob"), &names);
    assert_ne!(alice, bob);
    assert_ne!(key(false, "/me", alice.as_deref()), key(false, "/me", bob.as_deref()));
    assert_eq!(alice, partition(Some("acme"), &sent("alice"), &names), "the same user finds its entry");
    assert_eq!(partition(None, &sent("alice"), &names), None, "anonymous requests have no partition");
}

#[test]
fn each_spelling_of_the_host_is_its_own_entry() {
    let spec = CacheSpec { ttl: Duration::from_secs(30), shared: true };
    let uri: Uri = "/x".parse().unwrap_or_default();
    let with = |host| CacheKey::new(&"r".into(), spec, false, Some(host), &uri, None);
    assert_ne!(with("api.example.com"), with("api.example.com:1"), "the upstream sees the port in X-Forwarded-Host");
}

#[test]
fn each_scheme_is_its_own_entry() {
    // The upstream sees the scheme in X-Forwarded-Proto and may build links from it.
    assert_ne!(key(true, "/x", None), over_https(key(true, "/x", None)));
}

#[test]
fn only_credentials_the_gateway_verified_for_a_consumer_leave_a_request_cacheable() {
    use crate::context::VerifiedCredentials;
    use crate::snapshot::HeaderOps;
    use http::header::{AUTHORIZATION, COOKIE};

    let none = VerifiedCredentials::default();
    let bearer = VerifiedCredentials { authorization: true, cookies: Vec::new() };
    let cookie = VerifiedCredentials { authorization: false, cookies: vec!["session".into()] };
    let no_edits = HeaderOps::default();
    let unverified =
        |h: &HeaderMap, consumer: bool, v: &VerifiedCredentials| unverified_credentials(h, consumer, v, &no_edits);

    assert!(!unverified(&HeaderMap::new(), false, &none), "nothing to tell apart");
    let session = headers(&[(COOKIE, "session=ALICE")]);
    assert!(unverified(&session, true, &none), "a session cookie beside an API key");
    assert!(unverified(&session, false, &none), "a cookie and no consumer");
    assert!(!unverified(&session, true, &cookie), "the verified token cookie");
    assert!(unverified(&headers(&[(COOKIE, "session=t; theme=dark")]), true, &cookie), "a cookie beside it");
    let token = headers(&[(AUTHORIZATION, "Bearer t")]);
    assert!(unverified(&token, true, &none), "a bearer token nobody checked");
    assert!(!unverified(&token, true, &bearer));
    assert!(unverified(&token, false, &bearer), "verified, but naming no consumer");
    let mut two = token.clone();
    two.append(AUTHORIZATION, HeaderValue::from_static("Basic eDp5"));
    assert!(unverified(&two, true, &bearer), "one of two values was not verified");
    // The route's own `headers.request` value is the same for every request.
    let own =
        HeaderOps { set: vec![(AUTHORIZATION, HeaderValue::from_static("Basic c2VydmljZQ=="))], remove: Vec::new() };
    assert!(!unverified_credentials(&token, true, &none, &own));
}

fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
    pairs.iter().map(|(n, v)| (n.clone(), HeaderValue::from_static(v))).collect()
}

#[test]
fn only_plain_200s_are_stored_for_at_most_the_upstreams_max_age() {
    let ttl = Duration::from_secs(30);
    assert_eq!(store_ttl(StatusCode::OK, &HeaderMap::new(), ttl), Some(ttl));
    assert_eq!(store_ttl(StatusCode::NOT_FOUND, &HeaderMap::new(), ttl), None);
    for cc in ["no-store", "private", "No-Cache", "public, private"] {
        assert_eq!(store_ttl(StatusCode::OK, &headers(&[(CACHE_CONTROL, cc)]), ttl), None, "{cc}");
    }
    assert_eq!(store_ttl(StatusCode::OK, &headers(&[(SET_COOKIE, "s=1")]), ttl), None);
    assert_eq!(store_ttl(StatusCode::OK, &headers(&[(VARY, "Accept")]), ttl), None);
    let short = headers(&[(CACHE_CONTROL, "max-age=5")]);
    assert_eq!(store_ttl(StatusCode::OK, &short, ttl), Some(Duration::from_secs(5)));
    let s = headers(&[(CACHE_CONTROL, "max-age=5, s-maxage=60")]);
    assert_eq!(store_ttl(StatusCode::OK, &s, ttl), Some(ttl));
    assert_eq!(store_ttl(StatusCode::OK, &headers(&[(CACHE_CONTROL, "max-age=0")]), ttl), None);
    let mut opaque = HeaderMap::new();
    opaque.insert(CACHE_CONTROL, HeaderValue::from_bytes(b"private, \xff").expect("obs-text is a valid value"));
    assert_eq!(store_ttl(StatusCode::OK, &opaque, ttl), None, "a value that is not text is not trusted to allow it");
}
