use std::time::Duration;

use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use portcullis_core::snapshot::CacheSpec;

use super::{CacheKey, store_ttl};

fn key(shared: bool, uri: &str, consumer: Option<&str>) -> CacheKey {
    let spec = CacheSpec { ttl: Duration::from_secs(30), shared };
    let uri: Uri = uri.parse().unwrap_or_default();
    CacheKey::new(&"r".into(), spec, Some("api.example.com"), &uri, consumer)
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
}
