//! Property tests (bounded case counts, in the normal test suite): random bytes in every place
//! the WAF reads — path, query, cookies, inspected headers, and bodies of every content type it
//! parses, whole or cut at `inspect_body_bytes` — never panic, and every scan counts each rule
//! once with exactly its severity. `fuzz/fuzz_targets/waf_inspect.rs` is the coverage-guided
//! version (nightly); this runs on every commit.

use http::request::Parts;
use portcullis_waf::{Exclusion, Oversize, RuleId, Scan, Settings, Waf, decode};
use proptest::prelude::*;

fn waf(inspect_body_bytes: usize) -> Waf {
    let targets = ["args:q", "json:/a", "cookies:sid", "headers:user-agent"];
    Waf::new(Settings {
        exclusions: vec![Exclusion {
            rules: vec![RuleId(942100)],
            routes: vec!["r".into()],
            targets: targets.iter().map(|t| t.parse().expect("a valid target")).collect(),
        }],
        inspect_body_bytes,
        oversize: Oversize::Block,
        ..Settings::default()
    })
}

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "application/problem+json",
    "multipart/form-data; boundary=b",
    "multipart/form-data; boundary=\"\"",
    "application/xml",
    "text/plain",
    "image/png",
];

/// Bytes that matter to the decodings and parsers, so random values reach deep paths.
const INTERESTING: &[u8] = b"\0%+&=;:/\\.<>\"'`{}[]()#-*!|$\r\n u0123456789abcdefABCDEFxX\xc3\xa9\xef\xbc\x8e\xff";

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        prop::collection::vec(prop::sample::select(INTERESTING), 0..max),
    ]
}

fn pct(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A request whose path, query and headers carry `raw` (each in a form `http` accepts).
fn parts(path: &[u8], query: &[u8], cookie: &[u8], agent: &[u8], content_type: &str, length: usize) -> Parts {
    // Raw query bytes as they came where the URI allows them, else percent-encoded.
    let raw = std::str::from_utf8(query).ok().map(|q| format!("/{}?{q}", pct(path)));
    let uri = raw
        .and_then(|u| http::Uri::try_from(u).ok())
        .unwrap_or_else(|| http::Uri::try_from(format!("/{}?{}", pct(path), pct(query))).expect("an encoded URI"));
    let mut b = http::Request::builder().method("POST").uri(uri).header("content-type", content_type);
    if let Ok(v) = http::HeaderValue::from_bytes(cookie) {
        b = b.header("cookie", v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(agent) {
        b = b.header("user-agent", v);
    }
    b = b.header("content-length", length);
    b.body(()).expect("a request from encoded parts").into_parts().0
}

fn check(scan: &Scan) {
    let mut points = 0;
    for (i, rule) in scan.rules().iter().enumerate() {
        assert!(!scan.rules()[..i].contains(rule), "rule {rule} counted twice");
        points += portcullis_waf::rules::rule(*rule).expect("a built-in rule").severity.points();
    }
    assert_eq!(scan.score(), points);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic_and_score_their_rules(
        path in bytes(64),
        query in bytes(200),
        cookie in bytes(100),
        agent in bytes(100),
        body in bytes(700),
        ct in prop::sample::select(CONTENT_TYPES),
        limit in 1usize..600,
        complete in any::<bool>(),
    ) {
        let waf = waf(limit);
        let p = parts(&path, &query, &cookie, &agent, ct, body.len());
        let mut scan = Scan::default();
        waf.inspect_head("r", &p, &mut scan);
        check(&scan);
        waf.inspect_body("r", &p, &body, complete, &mut scan);
        check(&scan);
        // A body cut at the limit, then continued, is still inspected within bounds.
        let mut other = Scan::default();
        waf.inspect_body("other", &p, &body[..body.len() / 2], false, &mut other);
        check(&other);
    }

    #[test]
    fn decoding_any_bytes_never_panics(raw in bytes(1000), plus in any::<bool>()) {
        let d = decode::decode(&raw, plus);
        prop_assert!(!d.text.contains('\0'), "NUL bytes are removed from the text");
    }
}
