use std::time::Duration;

use http::Uri;
use portcullis_core::cache::CacheKey;
use portcullis_core::snapshot::CacheSpec;

fn key(shared: bool, uri: &str, consumer: Option<&str>) -> CacheKey {
    let spec = CacheSpec { ttl: Duration::from_secs(30), shared };
    let uri: Uri = uri.parse().unwrap_or_default();
    CacheKey::new(&"r".into(), spec, false, Some("api.example.com"), &uri, consumer)
}

fn over_https(key: CacheKey) -> CacheKey {
    CacheKey { https: true, ..key }
}

mod redis_store {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http::HeaderMap;
    use http::header::{CONTENT_TYPE, LINK};

    use super::key;
    use crate::cache::Entry;
    use crate::cache::redis_store::{decode, encode, key_name, purge_pattern, purged};

    fn entry(body: &'static [u8]) -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().expect("value"));
        headers.append(LINK, "<a>".parse().expect("value"));
        headers.append(LINK, "<b>".parse().expect("value"));
        Entry { headers, body: Bytes::from_static(body), stored: Instant::now(), ttl: Duration::from_secs(30) }
    }

    #[test]
    fn an_entry_reads_back_whole_with_its_age_from_the_ttl_left() {
        let original = entry(b"{\"n\":1}");
        let encoded = encode(&original).expect("storable");
        let back = decode(encoded, Duration::from_secs(20)).expect("decodes");
        assert_eq!(
            (back.headers.clone(), back.body.clone(), back.ttl),
            (original.headers, original.body, original.ttl)
        );
        let (head, body) = back.response(false);
        assert_eq!((head.headers.get("age").map(|v| v.as_bytes()), &body[..]), (Some(&b"10"[..]), &b"{\"n\":1}"[..]));
        assert!(back.fresh());
    }

    #[test]
    fn truncated_or_foreign_values_are_misses_not_panics() {
        let encoded = encode(&entry(b"body")).expect("storable");
        for len in 0..encoded.len() - 4 {
            assert!(decode(encoded.slice(..len), Duration::from_secs(1)).is_none(), "cut at {len}");
        }
        assert!(decode(Bytes::from_static(b"\x09garbage"), Duration::from_secs(1)).is_none());
    }

    #[test]
    fn bodies_over_the_entry_cap_are_not_encoded() {
        let mut big = entry(b"");
        big.body = Bytes::from(vec![0u8; crate::cache::MAX_ENTRY_BYTES + 1]);
        assert!(encode(&big).is_none());
    }

    #[test]
    fn key_names_keep_consumers_apart_and_show_route_and_path() {
        let acme = key_name(&key(false, "/v1/x?a=1", Some("acme")));
        assert_ne!(acme, key_name(&key(false, "/v1/x?a=1", Some("globex"))));
        assert_eq!(key_name(&key(false, "/v1/x?a=1", None)), key_name(&key(false, "/v1/x?a=1", None)));
        assert!(acme.starts_with("portcullis:cache:1:r:") && acme.ends_with(":/v1/x"), "{acme}");
        let plain = key(false, "/v1/x", None);
        assert_ne!(key_name(&plain), key_name(&super::over_https(plain.clone())), "http and https apart");
    }

    #[test]
    fn purge_selects_exactly_the_route_and_path_prefix() {
        let name = key_name(&key(false, "/v1/x", None));
        assert!(purged(name.as_bytes(), Some("r"), Some("/v1/")));
        assert!(purged(name.as_bytes(), None, Some("/v1")));
        assert!(purged(name.as_bytes(), None, None));
        assert!(!purged(name.as_bytes(), Some("r2"), None));
        assert!(!purged(name.as_bytes(), Some("r"), Some("/v2")));
        assert!(!purged(b"portcullis:cache:junk", None, None));
        // Glob characters in names are matched literally.
        assert_eq!(
            purge_pattern(Some("a*b"), Some("/[x]")),
            format!("portcullis:cache:3:a\\*b:{}:/\\[x\\]*", "?".repeat(32))
        );
        assert_eq!(purge_pattern(None, Some("/v1")), "portcullis:cache:*");
    }
}
