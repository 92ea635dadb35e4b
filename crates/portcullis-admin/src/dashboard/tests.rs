use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portcullis_core::ErrorCode;
use portcullis_core::record::Record;
use portcullis_telemetry::dashboard::{Dashboard, RECENT_REFUSALS};
use serde_json::Value;

use super::{Assets, CONTENT_SECURITY_POLICY, FILES, data_json, file};
use crate::{Access, Verb, served};

const XSS: &str = "<script>alert(1)</script>";

fn record(route: Option<&str>, status: u16, outcome: Option<ErrorCode>, decided_by: Option<&str>) -> Record {
    Record {
        ts_millis: 1_765_000_000_000,
        started: 0,
        request_id: String::new(),
        trace_id: String::new(),
        client_ip: "192.0.2.7".parse().expect("ip"),
        method: http::Method::GET,
        host: None,
        path: String::new(),
        user_agent: None,
        route: route.map(Arc::from),
        upstream: None,
        target: None,
        status,
        upstream_ms: None,
        bytes_in: None,
        consumer: None,
        auth: None,
        outcome,
        cache: None,
        tls: None,
        decided_by: decided_by.map(str::to_owned),
        rate_limited: None,
        plan: None,
        auth_failed: None,
        waf: None,
    }
}

/// A real runtime of a real config: route `orders` and one named like a script, a consumer
/// named like a script on a plan with a quota.
async fn runtime() -> portcullis_proxy::runtime::Runtime {
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
logging: {{ access: {{ path: off }} }}
plans: {{ tiny: {{ quota: 3/day }} }}
consumers: {{ "{XSS}": {{ plan: tiny }} }}
upstreams: {{ b: {{ targets: ["http://127.0.0.1:9"] }} }}
routes:
  - {{ name: orders, match: {{ path: /orders }}, upstream: b, auth: none }}
  - {{ name: "{XSS}", match: {{ path: "/x/{XSS}" }}, upstream: b, auth: none }}
"#
    );
    let loaded = portcullis_config::load_str(&yaml, "test.yaml", &std::env::temp_dir(), None)
        .unwrap_or_else(|e| panic!("config does not load:\n{e}"));
    let (snapshot, files) =
        portcullis_proxy::files::prepare(&loaded).unwrap_or_else(|e| panic!("config does not compile:\n{e}"));
    portcullis_proxy::runtime::Runtime::new(snapshot, files).expect("runtime")
}

#[test]
fn the_data_needs_the_token_and_the_page_and_its_files_do_not() {
    let access = |path: &str| served().into_iter().find(|(v, p, _)| *v == Verb::Get && *p == path).map(|(_, _, a)| a);
    assert_eq!(access("/dashboard/data"), Some(Access::Token));
    for (path, _, _) in FILES {
        assert_eq!(access(path), Some(Access::Page), "{path}");
    }
}

#[test]
fn every_embedded_file_is_served_with_the_strict_headers() {
    let embedded: Vec<String> = Assets::iter().map(|f| f.to_string()).collect();
    assert_eq!(embedded.len(), FILES.len(), "every file in dashboard/ has a path: {embedded:?}");
    for (i, (path, name, content_type)) in FILES.iter().enumerate() {
        assert!(embedded.iter().any(|e| e == name), "{name} is embedded");
        let response = file(i);
        assert_eq!(response.status(), 200, "{path}");
        let h = response.headers();
        assert_eq!(h["content-type"], *content_type, "{path}");
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none';"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"), "no inline or eval escape hatch");
}

/// The CSP would block inline code anyway; this keeps the files from needing it, and keeps
/// every value written as text.
#[test]
fn the_page_has_no_inline_code_and_the_script_never_writes_html() {
    let text =
        |name: &str| Assets::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
    let page = text("index.html");
    assert_eq!(page.matches("<script").count(), 1, "one script element");
    assert!(page.contains(r#"<script src="/dashboard/app.js" defer></script>"#));
    assert!(!page.contains("<style") && !page.contains(" style="), "no inline style");
    let handler = page.match_indices(" on").any(|(i, _)| {
        let name: String = page[i + 3..].chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && page[i + 3 + name.len()..].starts_with('=')
    });
    assert!(!handler, "no inline event handler");
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//fonts"), "nothing external");
    let script = text("app.js");
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(script.contains("sessionStorage") && !script.contains("localStorage"), "the token stays in the tab");
}

#[test]
fn requests_errors_and_refusals_are_counted_per_route() {
    let d = Dashboard::default();
    let ms = Duration::from_millis;
    d.observe(&record(Some("orders"), 200, None, None), ms(3));
    d.observe(&record(Some("orders"), 502, Some(ErrorCode::UpstreamError), None), ms(3));
    d.observe(&record(Some("orders"), 503, None, None), ms(3));
    d.observe(&record(Some("orders"), 429, Some(ErrorCode::RateLimited), Some("rate_limit:per_ip")), ms(1));
    // The upstream's own 404 is an answer, not a refusal.
    d.observe(&record(Some("orders"), 404, None, None), ms(3));
    d.observe(&record(None, 404, Some(ErrorCode::NoRoute), Some("route")), ms(0));
    let orders = d.route_traffic("orders");
    assert_eq!((orders.requests, orders.server_errors, orders.refused), (5, 2, 1));
    let unmatched = d.unmatched_traffic();
    assert_eq!((unmatched.requests, unmatched.refused), (1, 1));
    assert_eq!(d.route_traffic("never-seen").requests, 0);
    assert_eq!(d.route_traffic("never-seen").latency_ms, None);
}

#[test]
fn refusals_keep_the_deciding_phase_newest_first() {
    let d = Dashboard::default();
    d.observe(&record(Some("a"), 401, Some(ErrorCode::MissingCredentials), Some("authenticate:corp")), Duration::ZERO);
    d.observe(&record(Some("a"), 200, None, None), Duration::ZERO);
    d.observe(&record(None, 404, Some(ErrorCode::NoRoute), Some("route")), Duration::ZERO);
    let seen = d.recent_refusals();
    assert_eq!(seen.len(), 2, "only problem documents are refusals: {seen:?}");
    assert_eq!((seen[0].status, seen[0].code, seen[0].route.as_deref()), (404, "no_route", None));
    assert_eq!(seen[1].decided_by.as_deref(), Some("authenticate:corp"));
    assert_eq!(seen[1].code, "missing_credentials");
}

#[test]
fn percentiles_come_from_the_buckets() {
    let d = Dashboard::default();
    // 90 fast requests (the first bucket, up to 0.5 ms) and 10 slow ones (100 ms: the
    // 64–128 ms bucket).
    for _ in 0..90 {
        d.observe(&record(Some("r"), 200, None, None), Duration::from_micros(200));
    }
    for _ in 0..10 {
        d.observe(&record(Some("r"), 200, None, None), Duration::from_millis(100));
    }
    let [p50, p95, p99] = d.route_traffic("r").latency_ms.expect("latency");
    assert!(p50 <= 0.5, "p50 {p50}");
    assert!((64.0..=128.0).contains(&p95), "p95 {p95}");
    assert!((64.0..=128.0).contains(&p99) && p99 >= p95, "p99 {p99}");
    // Slower than the last bound: the open bucket answers its lower bound.
    let slow = Dashboard::default();
    slow.observe(&record(Some("r"), 200, None, None), Duration::from_secs(3600));
    let [p50, _, _] = slow.route_traffic("r").latency_ms.expect("latency");
    assert!((p50 - 32_768.0).abs() < 1e-9, "p50 {p50}");
}

#[tokio::test]
async fn the_data_has_routes_targets_certificates_refusals_and_consumers() {
    let runtime = runtime().await;
    let d = Dashboard::default();
    for _ in 0..4 {
        d.observe(&record(Some("orders"), 200, None, None), Duration::from_millis(2));
    }
    let mut refused = record(Some("orders"), 403, Some(ErrorCode::Forbidden), Some("authorize:orders_read"));
    refused.client_ip = "2001:db8::1".parse().expect("ip");
    d.observe(&refused, Duration::from_millis(1));
    let data = data_json(&runtime, &d, SystemTime::now()).await;

    assert_eq!(data["config_hash"], Value::from(runtime.snapshot.hash.clone()));
    assert!(data["generated_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{data}");
    let orders = &data["routes"][0];
    assert_eq!(
        (orders["name"].as_str(), orders["path"].as_str(), orders["upstream"].as_str()),
        (Some("orders"), Some("/orders"), Some("b"))
    );
    assert_eq!(
        (orders["requests"].as_u64(), orders["refused"].as_u64(), orders["server_errors"].as_u64()),
        (Some(5), Some(1), Some(0))
    );
    for p in ["p50", "p95", "p99"] {
        assert!(orders["latency_ms"][p].as_f64().is_some_and(|v| v > 0.0 && v <= 4.0), "{p}: {orders}");
    }
    let xss = &data["routes"][1];
    assert_eq!((xss["name"].as_str(), xss["requests"].as_u64()), (Some(XSS), Some(0)));
    assert_eq!(xss["path"].as_str(), Some(format!("/x/{XSS}").as_str()));
    assert!(xss["latency_ms"].is_null(), "no latency before a request: {xss}");
    assert_eq!(data["unmatched"]["requests"], 0);

    assert_eq!(data["upstreams"][0]["name"], "b");
    assert_eq!(data["upstreams"][0]["targets"][0]["target"], "http://127.0.0.1:9");
    assert!(data["upstreams"][0]["targets"][0]["healthy"].is_boolean());
    assert_eq!(data["certificates"], Value::Array(Vec::new()), "no TLS listener");

    let refusals = data["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 1, "{data}");
    let r = &refusals[0];
    assert_eq!(r["ts"], "2025-12-06T05:46:40.000Z");
    assert_eq!((r["route"].as_str(), r["status"].as_u64()), (Some("orders"), Some(403)));
    assert_eq!((r["code"].as_str(), r["decided_by"].as_str()), (Some("forbidden"), Some("authorize:orders_read")));
    assert_eq!(r["client_ip"], "2001:db8::1");
    let fields: Vec<&String> = r.as_object().expect("an object").keys().collect();
    assert_eq!(fields, ["client_ip", "code", "decided_by", "route", "status", "ts"], "no other field");

    let consumer = &data["consumers"][0];
    assert_eq!((consumer["name"].as_str(), consumer["plan"].as_str()), (Some(XSS), Some("tiny")));
    assert_eq!(consumer["source"], "config");
    assert_eq!((consumer["quota"]["limit"].as_u64(), consumer["quota"]["used"].as_u64()), (Some(3), Some(0)));
    assert_eq!(consumer["quota"]["period"], "day");
    assert_eq!(data["consumers_left_out"], 0);
    assert!(data["database"].is_null(), "no database in this runtime");
}

#[tokio::test]
async fn the_refusals_in_the_data_are_bounded_and_newest_first() {
    let runtime = runtime().await;
    let d = Dashboard::default();
    for i in 0..(RECENT_REFUSALS + 25) {
        let mut r = record(Some("orders"), 429, Some(ErrorCode::RateLimited), Some("rate_limit:per_ip"));
        r.ts_millis = i64::try_from(i).expect("small") * 1000;
        d.observe(&r, Duration::ZERO);
    }
    let data = data_json(&runtime, &d, SystemTime::now()).await;
    let refusals = data["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), RECENT_REFUSALS);
    assert_eq!(refusals[0]["ts"], "1970-01-01T00:02:04.000Z", "the newest first (the 125th)");
    assert_eq!(refusals[RECENT_REFUSALS - 1]["ts"], "1970-01-01T00:00:25.000Z", "the 25 oldest dropped");
    assert_eq!(data["routes"][0]["refused"], RECENT_REFUSALS as u64 + 25, "the counts are not bounded by the ring");
}
