//! The WAF phase (SPEC §2 `waf`, route `waf`, §3 `waf_blocked`, §7 log field and metric):
//! block, detect and off, route overrides, exclusions, a reload swapping the rules, bodies in
//! chunks, multipart and cookies, and bodies far beyond `inspect_body_bytes`.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::access_log::wait_for_lines;
use crate::kit::{Backend, TestGateway, client, get, raw, send};
use crate::reload::{TOKEN, metric, write_config};

const SQLI: &str = "1%27%20OR%20%271%27%3D%271";

/// Routes `search` (`/search`, its own `waf` when given), `open` (`/open`, `waf: off`) and
/// `api` (`/api/{*rest}`) to `backend`; `waf` is the text of the `waf` section.
fn config(backend: &Backend, waf: &str, search_mode: &str) -> String {
    let search_waf = if search_mode.is_empty() { String::new() } else { format!(", waf: {search_mode}") };
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: access.jsonl }} }}
waf: {waf}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: search, match: {{ path: /search }}, upstream: b, auth: none{search_waf} }}
  - {{ name: open, match: {{ path: /open }}, upstream: b, auth: none, waf: off }}
  - {{ name: api, match: {{ path: "/api/{{*rest}}" }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

async fn gateway(text: &str) -> TestGateway {
    let dir = crate::kit::scratch_dir();
    let path = write_config(&dir, text);
    TestGateway::from_file(&path).await.with_admin().await
}

async fn post(gw: &TestGateway, path: &str, content_type: &str, body: impl Into<Bytes>) -> crate::kit::Reply {
    let req =
        Request::post(gw.url(path)).header("content-type", content_type).body(Full::new(body.into())).expect("request");
    send(&client(), req).await
}

fn last_log(lines: &[String]) -> Value {
    serde_json::from_str(lines.last().expect("a line")).expect("JSON line")
}

#[tokio::test]
async fn an_sqli_query_is_refused_with_a_problem_naming_the_rule_logged_and_counted() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block }", "")).await;
    let r = get(&gw.url(&format!("/search?q={SQLI}")), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "waf_blocked");
    let doc = r.json();
    let detail = doc["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("942100"), "{detail}");
    assert!(!detail.contains("OR") && !detail.contains('\''), "the payload is echoed: {detail}");
    assert!(doc["decided_by"].as_str().unwrap_or_default().starts_with("waf:942100"), "{doc}");
    assert_eq!(backend.count(), 0);
    let line = last_log(&wait_for_lines(&gw, 1).await);
    assert_eq!(line["waf"]["action"], "block");
    assert!(line["waf"]["score"].as_u64().unwrap_or(0) >= 5, "{line}");
    assert!(line["waf"]["rules"].as_array().is_some_and(|r| r.contains(&Value::from("942100"))), "{line}");
    assert_eq!(line["outcome"], "waf_blocked");
    let counted = metric(&gw, r#"portcullis_waf_matches_total{rule="942100",action="block"}"#).await;
    assert_eq!(counted, Some(1.0));
}

#[tokio::test]
async fn a_clean_request_passes_and_logs_waf_null() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block }", "")).await;
    let r = get(&gw.url("/search?q=O%27Brien&since=2024-05-01&sort=name"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let line = last_log(&wait_for_lines(&gw, 1).await);
    assert!(line["waf"].is_null(), "{line}");
}

#[tokio::test]
async fn detect_forwards_and_records_and_off_does_not_look() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: detect }", "")).await;
    let r = get(&gw.url(&format!("/search?q={SQLI}")), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(backend.count(), 1);
    let r = get(&gw.url(&format!("/open?q={SQLI}")), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    // Lines are written as each answer's body ends, not in request order: found by path.
    let lines: Vec<Value> =
        wait_for_lines(&gw, 2).await.iter().map(|l| serde_json::from_str(l).expect("json")).collect();
    let by_path = |path: &str| lines.iter().find(|l| l["path"] == path).cloned().unwrap_or_default();
    let detect = by_path("/search");
    assert_eq!(detect["waf"]["action"], "detect", "{lines:?}");
    let off = by_path("/open");
    assert_eq!(off["route"], "open", "{lines:?}");
    assert!(off["waf"].is_null(), "{off}");
    let counted = metric(&gw, r#"portcullis_waf_matches_total{rule="942100",action="detect"}"#).await;
    assert_eq!(counted, Some(1.0));
}

#[tokio::test]
async fn a_route_override_blocks_under_a_detect_default_and_opens_under_block() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: detect }", "block")).await;
    assert_eq!(get(&gw.url(&format!("/search?q={SQLI}")), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&gw.url(&format!("/api/x?q={SQLI}")), &[]).await.status, StatusCode::OK);
    let gw = gateway(&config(&backend, "{ mode: block }", "detect")).await;
    assert_eq!(get(&gw.url(&format!("/search?q={SQLI}")), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url(&format!("/api/x?q={SQLI}")), &[]).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_exclusion_lifts_its_rule_on_its_route_and_target_only() {
    let backend = Backend::ok().await;
    let waf = r#"{ mode: block, exclusions: [{ rules: ["942100", 942440], routes: [search], targets: ["args:q", "json:/comment"] }] }"#;
    let gw = gateway(&config(&backend, waf, "")).await;
    assert_eq!(get(&gw.url(&format!("/search?q={SQLI}")), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url(&format!("/search?p={SQLI}")), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&gw.url(&format!("/api/x?q={SQLI}")), &[]).await.status, StatusCode::FORBIDDEN);
    let body = r#"{"comment":"1' OR '1'='1"}"#;
    let r = send(
        &client(),
        Request::post(gw.url("/search"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("req"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn bad_exclusions_are_config_errors_naming_the_key() {
    let text = "version: 1\nlisteners: [{ name: m, bind: \"127.0.0.1:0\" }]\nwaf:\n  exclusions:\n    - { rules: [\"94x100\", 1], routes: [nope], targets: [\"arg:q\"] }\nupstreams: { b: { targets: [\"http://127.0.0.1:9\"] } }\nroutes:\n  - { name: r, match: { path: /r }, upstream: b, auth: none }\n";
    let loaded = portcullis_config::load_str(text, "t.yaml", std::path::Path::new("."), None).expect("parses");
    let errors = portcullis_core::compile::compile(&loaded).expect_err("refused").to_string();
    for want in [
        "waf.exclusions[0].rules[0]",
        "waf.exclusions[0].rules[1]",
        "waf.exclusions[0].routes[0]",
        "waf.exclusions[0].targets[0]",
    ] {
        assert!(errors.contains(want), "{want} missing in:\n{errors}");
    }
}

#[tokio::test]
async fn a_reload_swaps_the_rules() {
    let backend = Backend::ok().await;
    let dir = crate::kit::scratch_dir();
    let path = write_config(&dir, &config(&backend, "{ mode: block, rules: [xss] }", ""));
    let gw = TestGateway::from_file(&path).await;
    assert_eq!(get(&gw.url(&format!("/search?q={SQLI}")), &[]).await.status, StatusCode::OK);
    write_config(&dir, &config(&backend, "{ mode: block, rules: [sqli] }", ""));
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    assert_eq!(get(&gw.url(&format!("/search?q={SQLI}")), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&gw.url("/search?q=%3Cscript%3Ealert(1)%3C/script%3E"), &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn attacks_in_json_escapes_multipart_and_cookies_are_refused() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block }", "")).await;
    let r = post(&gw, "/api/c", "application/json", r#"{"c":"\u003cscript\u003ealert(1)\u003c/script\u003e"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let multipart = "--b0\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n1' UNION SELECT password FROM users--\r\n--b0--\r\n";
    let r = post(&gw, "/api/u", "multipart/form-data; boundary=b0", multipart).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&gw.url("/api/me"), &[("cookie", "theme=%3Cscript%3Ealert(1)%3C/script%3E")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn an_attack_split_across_chunks_is_refused() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block }", "")).await;
    let addr = gw.listener("main").expect("listener");
    let chunks = ["{\"c\":\"<scr", "ipt>alert(", "1)</scr", "ipt>\"}"];
    let mut wire = String::from(
        "POST /api/x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for c in chunks {
        wire.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    wire.push_str("0\r\n\r\n");
    let answer = raw(addr, wire.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("waf_blocked"), "{answer}");
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn a_body_far_beyond_inspect_body_bytes_streams_on_or_is_refused_by_oversize() {
    let backend = Backend::ok().await;
    let waf = "{ mode: block, inspect_body_bytes: 1024 }";
    let gw = gateway(&config(&backend, waf, "")).await;
    // 4 MiB of clean text, an attack past the inspected part: forwarded whole (oversize: pass).
    let mut big = "lorem ipsum dolor sit amet ".repeat(4 * 1024 * 1024 / 27).into_bytes();
    big.extend_from_slice(b"<script>alert(1)</script>");
    let r = post(&gw, "/api/upload", "text/plain", big.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(backend.requests().last().map(|q| q.body.len()), Some(big.len()));
    // The attack within the first 1024 bytes is seen.
    let mut early = b"<script>alert(1)</script>".to_vec();
    early.extend_from_slice(&big);
    assert_eq!(post(&gw, "/api/upload", "text/plain", early).await.status, StatusCode::FORBIDDEN);
    let gw = gateway(&config(&backend, "{ mode: block, inspect_body_bytes: 1024, oversize: block }", "")).await;
    let r = post(&gw, "/api/upload", "text/plain", big).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["detail"].as_str().unwrap_or_default().contains("920390"), "{}", r.text());
}
