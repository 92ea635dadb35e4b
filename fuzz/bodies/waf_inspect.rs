//! The body of the `waf_inspect` fuzz target, shared with the stable test that replays it
//! (`crates/portcullis-crs/tests/fuzz_waf_inspect.rs`), so CI runs it without nightly.
//!
//! Any bytes as a request: up to the first NUL, a request line (`METHOD TARGET`, a target that
//! is not a valid URI is percent-encoded into `/f?q=…`) and `Name: value` header lines; after
//! it, the body (with no `Content-Type` line, the body's first byte picks form, JSON,
//! multipart, XML, text or none). The request goes through the WAF's decodings, the built-in
//! rules' head and body inspection (with exclusions, a small `inspect_body_bytes` and
//! `oversize: block`) and an OWASP CRS evaluation of a small inline rule set that uses the
//! transformations, operators, chains, `ctl` and body processors CRS relies on. Never a
//! panic; the built-in scan counts each rule once and scores exactly their severities; CRS
//! blocks exactly when its score reaches the threshold (the rule set denies nothing).

use std::sync::LazyLock;

use portcullis_crs::{CrsRules, ExcludedTarget, Exclusion as CrsExclusion, Member, Transaction};
use portcullis_waf::{Exclusion, Oversize, RuleId, Scan, Settings, Waf};

/// Inputs past this are not tried: every value is read whole, and what a long input finds is
/// found in its first 16 KiB too.
const MAX_INPUT: usize = 16 * 1024;
/// Small, so that bodies cross it often.
const INSPECT_BODY_BYTES: usize = 512;
const ROUTE: &str = "r";

static WAF: LazyLock<Waf> = LazyLock::new(|| {
    let targets = ["args:q", "json:/a", "headers:user-agent", "cookies:sid", "path"];
    Waf::new(Settings {
        exclusions: vec![Exclusion {
            rules: vec![RuleId(942100), RuleId(941100)],
            routes: vec![ROUTE.to_owned()],
            targets: targets.iter().map(|t| t.parse().expect("a valid target")).collect(),
        }],
        inspect_body_bytes: INSPECT_BODY_BYTES,
        oversize: Oversize::Block,
        ..Settings::default()
    })
});

const CRS_THRESHOLD: u32 = 5;

/// Setup and rules written to a scratch directory once, loaded, and the directory removed.
const CRS_SETUP: &str = "SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334\"\n";
const CRS_RULES: &str = r#"SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical_anomaly_score=5,setvar:tx.notice_anomaly_score=2,setvar:tx.anomaly_score=0"
SecRule REQUEST_HEADERS:Content-Type "@rx (?i)^application/json" "id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_URI "@validateUrlEncoding" "id:10,phase:1,pass,severity:'NOTICE',msg:'bad encoding',setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES "@validateUtf8Encoding" "id:11,phase:2,pass,severity:'NOTICE',msg:'bad utf-8',setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
SecRule REQUEST_BODY "@validateByteRange 9,10,13,32-126,128-255" "id:12,phase:2,pass,severity:'NOTICE',msg:'byte range',setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent|XML:/* "@detectSQLi" "id:20,phase:2,block,capture,t:none,t:utf8toUnicode,t:urlDecodeUni,t:removeNulls,multiMatch,severity:'CRITICAL',msg:'sqli',setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}'"
SecRule ARGS|ARGS_NAMES|REQUEST_FILENAME|XML:/* "@detectXSS" "id:21,phase:2,block,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:jsDecode,t:cssDecode,t:removeNulls,severity:'CRITICAL',msg:'xss',setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}'"
SecRule ARGS|REQUEST_BODY "@rx (?i)(?:\bunion\b.{1,100}?\bselect\b|<script[^>]*>)" "id:22,phase:2,block,capture,t:none,t:urlDecodeUni,t:replaceComments,t:compressWhitespace,t:lowercase,severity:'CRITICAL',msg:'rx',setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}',setvar:'tx.%{rule.id}-%{matched_var_name}=%{tx.0}'"
SecRule REQUEST_FILENAME|ARGS "@pm ../ /etc/passwd win.ini" "id:23,phase:2,block,t:none,t:utf8toUnicode,t:urlDecodeUni,t:normalizePathWin,t:cmdLine,severity:'CRITICAL',msg:'pm',setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}'"
SecRule ARGS "@rx ^[a-zA-Z0-9+/]{8,}={0,2}$" "id:24,phase:2,pass,t:none,t:base64DecodeExt,t:hexEncode,t:length,chain,severity:'NOTICE',msg:'chain'"
    SecRule MATCHED_VAR "@gt 40" "t:none,setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
SecRule &ARGS "@gt 20" "id:25,phase:2,pass,severity:'NOTICE',msg:'many args',setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
SecRule ARGS_NAMES "@streq debug" "id:26,phase:2,pass,nolog,ctl:ruleRemoveTargetById=22;ARGS:debug"
SecRule FILES|MULTIPART_PART_HEADERS "@rx (?i)\.(?:php|jsp)\b" "id:27,phase:2,block,t:none,t:trim,severity:'CRITICAL',msg:'upload',setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}'"
SecRule REQBODY_ERROR "!@eq 0" "id:28,phase:2,pass,severity:'NOTICE',msg:'body error',setvar:'tx.anomaly_score=+%{tx.notice_anomaly_score}'"
"#;

static CRS: LazyLock<CrsRules> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("portcullis-fuzz-waf-inspect-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).expect("scratch directory");
    std::fs::write(dir.join("crs-setup.conf"), CRS_SETUP).expect("setup file");
    std::fs::write(dir.join("rules/REQUEST-100-FUZZ.conf"), CRS_RULES).expect("rule file");
    let rules = CrsRules::load(&dir, 1, CRS_THRESHOLD);
    let _ = std::fs::remove_dir_all(&dir);
    rules.unwrap_or_else(|errors| panic!("the inline rule set loads: {errors:?}"))
});

static CRS_EXCLUSIONS: LazyLock<Vec<CrsExclusion>> = LazyLock::new(|| {
    let target = |collection: &str, member: Member| CrsExclusion {
        rules: vec![20, 21],
        target: Some(ExcludedTarget { collection: collection.to_owned(), member }),
    };
    vec![
        target("ARGS", Member::Named("q".to_owned())),
        target("ARGS", Member::Under("json.a".to_owned())),
        target("REQUEST_HEADERS", Member::Named("user-agent".to_owned())),
        CrsExclusion { rules: vec![25], target: None },
    ]
});

const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("multipart/form-data; boundary=b"),
    Some("application/xml"),
    Some("text/plain"),
    None,
];

/// What one input scored: the built-in rules, and CRS without exclusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scores {
    pub(crate) builtin: u32,
    pub(crate) crs: u32,
}

/// One input: see the module documentation. `None`: not a request (too long, or a head
/// `http` refuses).
pub(crate) fn run(data: &[u8]) -> Option<Scores> {
    if data.len() > MAX_INPUT {
        return None;
    }
    // The decodings on their own, with and without `+` as a space.
    let _ = portcullis_waf::decode::decode(data, true);
    let _ = portcullis_waf::decode::decode(data, false);
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let parts = request(head, body)?;

    let mut scan = Scan::default();
    WAF.inspect_head(ROUTE, &parts, &mut scan);
    let complete = body.len() <= INSPECT_BODY_BYTES;
    WAF.inspect_body(ROUTE, &parts, body, complete, &mut scan);
    let mut seen: Vec<RuleId> = Vec::new();
    let mut points = 0u32;
    for rule in scan.rules() {
        assert!(!seen.contains(rule), "rule {rule} counted twice");
        seen.push(*rule);
        let known = portcullis_waf::rules::rule(*rule).unwrap_or_else(|| panic!("{rule} is not a built-in rule"));
        points += known.severity.points();
    }
    assert_eq!(scan.score(), points, "the score is the matched rules' severities");

    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let tx = Transaction {
        method: parts.method.as_str(),
        uri: parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        protocol: "HTTP/1.1",
        client_ip: std::net::IpAddr::from([192, 0, 2, 1]),
        headers: &headers,
        body: (!body.is_empty()).then(|| body.get(..INSPECT_BODY_BYTES).unwrap_or(body)),
    };
    let mut crs = 0;
    for exclusions in [&[][..], &CRS_EXCLUSIONS[..]] {
        let verdict = CRS.evaluate_with(&tx, exclusions);
        assert_eq!(verdict.blocked, verdict.score >= CRS_THRESHOLD, "{verdict:?}");
        if exclusions.is_empty() {
            crs = verdict.score;
        }
    }
    Some(Scores { builtin: scan.score(), crs })
}

/// The request line and headers of `head`; a `Content-Type` picked by the body's first byte
/// when the head names none.
fn request(head: &[u8], body: &[u8]) -> Option<http::request::Parts> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let (method, target) = match line.iter().position(|&b| b == b' ') {
        Some(at) => (&line[..at], &line[at + 1..]),
        None => (&b"GET"[..], line),
    };
    let method = http::Method::from_bytes(method).unwrap_or(http::Method::POST);
    let uri = http::Uri::try_from(target).ok().filter(|u| u.path().starts_with('/')).or_else(|| {
        let q = percent_encoding::percent_encode(target, percent_encoding::NON_ALPHANUMERIC);
        http::Uri::try_from(format!("/f?q={q}")).ok()
    })?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    let mut typed = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        typed |= name == http::header::CONTENT_TYPE;
        builder = builder.header(name, value);
    }
    if !typed && let Some(ct) = CONTENT_TYPES[usize::from(body.first().copied().unwrap_or(5)) % CONTENT_TYPES.len()] {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_LENGTH, body.len());
    }
    builder.body(()).ok().map(|r| r.into_parts().0)
}
