//! Property tests (bounded case counts, in the normal test suite): random bytes in every place
//! the WAF reads — path, query, cookies, inspected headers, and bodies of every content type it
//! parses, whole or cut at `inspect_body_bytes` — never panic, and every scan counts each rule
//! once with exactly its severity. `fuzz/fuzz_targets/waf_inspect.rs` is the coverage-guided
//! version (nightly); this runs on every commit.

use http::request::Parts;
use portcullis_waf::{Exclusion, Oversize, RuleId, Scan, Settings, Waf, decode};
use proptest::prelude::*;

fn settings(inspect_body_bytes: usize) -> Settings {
    let targets = ["args:q", "json:/a", "json:/a~1b/0", "cookies:sid", "headers:user-agent"];
    Settings {
        exclusions: vec![Exclusion {
            rules: vec![RuleId(942100), RuleId(941100)],
            routes: vec!["r".into()],
            targets: targets.iter().map(|t| t.parse().expect("a valid target")).collect(),
        }],
        inspect_body_bytes,
        oversize: Oversize::Block,
        ..Settings::default()
    }
}

fn waf(inspect_body_bytes: usize) -> Waf {
    Waf::new(settings(inspect_body_bytes))
}

/// Score and rule ids in id order (the fast path checks JSON members in document order, the
/// reference path in key order).
fn verdict(scan: &Scan) -> (u32, Vec<u32>) {
    let mut rules: Vec<u32> = scan.rules().iter().map(|r| r.0).collect();
    rules.sort_unstable();
    (scan.score(), rules)
}

/// A request's verdict, head then body (whole, or cut at the limit).
fn inspect(waf: &Waf, route: &str, p: &Parts, body: &[u8], complete: bool) -> (u32, Vec<u32>) {
    let mut scan = Scan::default();
    waf.inspect_head(route, p, &mut scan);
    waf.inspect_body(route, p, body, complete, &mut scan);
    verdict(&scan)
}

/// Pieces of attacks and of ordinary text, so random JSON holds both.
const FRAGMENTS: &[&str] = &[
    "1' OR '1'='1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "x onmouseover=alert(1)",
    "javascript:alert(1)",
    "../../etc/passwd",
    "; cat /etc/passwd",
    "UN/**/ION SEL/**/ECT 1",
    "%253Cscript%253E",
    "\\u003csvg onload=alert(1)\\u003e",
    "&lt;iframe src=javascript:alert(1)&gt;",
    "O'Brien",
    "Blue cotton shirt, size M",
    "select the blue one",
    "a=b",
    "<b>bold</b>",
    "2024-05-01",
    "",
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let text = prop_oneof![
        prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
        prop::collection::vec(prop::sample::select(INTERESTING), 0..24)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let leaf = prop_oneof![
        text.clone().prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    let key =
        prop_oneof![prop::sample::select(&["a", "b", "a/b", "~", "q", "onload"][..]).prop_map(str::to_owned), text,];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
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

    /// The fast path (pre-screens, per-body memo, JSON checked as it parses) scores random
    /// requests of every body type exactly as the reference path does, exclusions included.
    #[test]
    fn the_fast_path_gives_the_reference_verdict_on_random_requests(
        path in bytes(64),
        query in bytes(200),
        cookie in bytes(100),
        agent in bytes(100),
        body in bytes(700),
        ct in prop::sample::select(CONTENT_TYPES),
        limit in 1usize..800,
        complete in any::<bool>(),
        route in prop::sample::select(&["r", "other"][..]),
    ) {
        let (fast, reference) = (Waf::new(settings(limit)), Waf::reference(settings(limit)));
        let p = parts(&path, &query, &cookie, &agent, ct, body.len());
        prop_assert_eq!(
            inspect(&fast, route, &p, &body, complete),
            inspect(&reference, route, &p, &body, complete)
        );
    }

    /// The same over JSON documents of attack and ordinary strings, whole, cut short (the
    /// string-literal fallback) and repeated (the memo), with excluded JSON Pointers.
    #[test]
    fn the_fast_path_gives_the_reference_verdict_on_random_json(
        value in json_value(),
        cut in 0usize..2000,
        route in prop::sample::select(&["r", "other"][..]),
    ) {
        let (fast, reference) = (Waf::new(settings(64 * 1024)), Waf::reference(settings(64 * 1024)));
        let alone = serde_json::to_vec(&value).expect("JSON");
        let twice = serde_json::to_vec(&serde_json::json!([value.clone(), value])).expect("JSON");
        let p = parts(b"", b"", b"", b"", "application/json", twice.len());
        for body in [&alone[..], &twice[..], &twice[..cut.min(twice.len())]] {
            prop_assert_eq!(inspect(&fast, route, &p, body, true), inspect(&reference, route, &p, body, true));
        }
    }
}
