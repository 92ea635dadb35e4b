//! The access log (SPEC §7): one JSON object per request, every field present, no secrets.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::kit::{Backend, TestGateway, WAIT, client, send};

/// Every field SPEC §7 lists, and `sni`; each must be present on every line.
const FIELDS: [&str; 24] = [
    "ts",
    "request_id",
    "trace_id",
    "client_ip",
    "method",
    "host",
    "path",
    "route",
    "upstream",
    "target",
    "status",
    "duration_ms",
    "upstream_ms",
    "bytes_in",
    "bytes_out",
    "consumer",
    "auth",
    "outcome",
    "cache",
    "user_agent",
    "tls",
    "sni",
    "decided_by",
    "waf",
];

fn config(backend: &Backend) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ name: api, match: {{ path: "/api/{{*rest}}" }}, upstream: api, auth: none }}
"#,
        backend.url()
    )
}

/// Reads the log until it holds `n` lines (bounded by [`WAIT`]); returns the raw lines.
pub(crate) async fn wait_for_lines(gw: &TestGateway, n: usize) -> Vec<String> {
    let path = gw.dir.join("access.jsonl");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n && text.ends_with('\n') {
            return lines;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {n} access log lines, found:\n{text}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmm` then `Z` or `±HH:MM`.
fn is_rfc3339_millis(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let shape = b.len() >= 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23);
    let zone = &ts[23.min(ts.len())..];
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes()[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| zone.as_bytes()[i].is_ascii_digit()));
    shape && zone_ok
}

fn by_request_id<'a>(lines: &'a [(String, Value)], id: &str) -> &'a (String, Value) {
    let found: Vec<_> = lines.iter().filter(|(_, v)| v["request_id"] == id).collect();
    assert_eq!(found.len(), 1, "exactly one line for request {id}: {lines:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_complete_json_line_without_secrets() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend)).await;
    let c = client();

    // A proxied 200 carrying credentials, a cookie and a query value that must not be logged.
    // Every secret holds a letter past `f`: the other lines' request and trace ids are random hex,
    // and a hex-only secret would turn up in one of them now and then.
    let trace_id = "11112222333344445555666677778888";
    let ok = Request::get(gw.url("/api/items?search=hunter2query"))
        .header("authorization", "Bearer secret-token")
        .header("cookie", "session=kumquat")
        .header("user-agent", "log-test/1.0")
        .header("x-request-id", "req-ok-1")
        .header("traceparent", format!("00-{trace_id}-0102030405060708-01"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let ok = send(&c, ok).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("x-request-id"), Some("req-ok-1"));

    // A 404 with a generated request id.
    let missing =
        send(&c, Request::get(gw.url("/nowhere?token=qqq777")).body(Full::new(Bytes::new())).expect("request")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing_id = missing.header("x-request-id").expect("X-Request-Id").to_owned();

    // A POST whose body is counted in.
    let body = vec![b'p'; 1234];
    let posted =
        send(&c, Request::post(gw.url("/api/upload")).body(Full::new(Bytes::from(body))).expect("request")).await;
    assert_eq!(posted.status, StatusCode::OK);
    let posted_id = posted.header("x-request-id").expect("X-Request-Id").to_owned();

    let raw = wait_for_lines(&gw, 3).await;
    assert_eq!(raw.len(), 3, "one line per request: {raw:#?}");
    let lines: Vec<(String, Value)> = raw
        .into_iter()
        .map(|line| {
            let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value.is_object(), "not an object: {line}");
            (line, value)
        })
        .collect();

    for (line, value) in &lines {
        for field in FIELDS {
            assert!(value.get(field).is_some(), "field `{field}` missing: {line}");
        }
        let ts = value["ts"].as_str().expect("ts is a string");
        assert!(is_rfc3339_millis(ts), "ts is not RFC 3339 with milliseconds: {ts}");
        assert_eq!(value["client_ip"], "127.0.0.1");
        assert!(value["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{line}");
        assert!(value["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{line}");
        assert!(value["host"].as_str().is_some_and(|h| h.starts_with("127.0.0.1")), "{line}");
        assert!(value["tls"].is_null(), "plain HTTP: {line}");
        assert!(value["consumer"].is_null() && value["auth"].is_null(), "auth: none: {line}");
        assert!(value["cache"].is_null(), "no cache configured: {line}");
        assert!(!value["path"].as_str().unwrap_or("?").contains('?'), "query string logged: {line}");
        for secret in ["hunter2query", "qqq777", "secret-token", "Bearer", "session", "kumquat"] {
            assert!(!line.contains(secret), "`{secret}` leaked into the access log: {line}");
        }
    }

    let (line, v) = by_request_id(&lines, "req-ok-1");
    assert_eq!(v["trace_id"], trace_id, "{line}");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/api/items");
    assert_eq!(v["route"], "api");
    assert_eq!(v["upstream"], "api");
    assert_eq!(v["target"], backend.url().as_str());
    assert_eq!(v["status"], 200);
    assert_eq!(v["outcome"], "ok");
    assert!(v["upstream_ms"].as_f64().is_some_and(|d| d >= 0.0), "{line}");
    assert_eq!(v["bytes_in"], 0);
    assert_eq!(v["bytes_out"], ok.body.len());
    assert_eq!(v["user_agent"], "log-test/1.0");
    assert!(v["decided_by"].is_null(), "forwarded: no phase decided: {line}");

    let (line, v) = by_request_id(&lines, &missing_id);
    assert_eq!(v["decided_by"], "route", "the route phase refused: {line}");
    assert_eq!(v["path"], "/nowhere", "{line}");
    assert_eq!(v["status"], 404);
    assert_eq!(v["outcome"], "no_route");
    for field in ["route", "upstream", "target", "upstream_ms", "user_agent"] {
        assert!(v[field].is_null(), "`{field}` should be null on a 404: {line}");
    }
    assert_eq!(v["bytes_out"], missing.body.len(), "the problem document's size: {line}");

    let (line, v) = by_request_id(&lines, &posted_id);
    assert_eq!(v["method"], "POST", "{line}");
    assert_eq!(v["path"], "/api/upload");
    assert_eq!(v["status"], 200);
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["bytes_in"], 1234);
    assert_eq!(v["bytes_out"], posted.body.len());
    assert_eq!(backend.requests().last().map(|r| r.body.len()), Some(1234));
}
