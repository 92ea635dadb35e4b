//! The OWASP Core Rule Set in the WAF phase (`waf.crs`), loaded from Debian's
//! `modsecurity-crs` package (CRS 3.3.x, installed by `scripts/modsecurity-crs.sh`; in CI a
//! failed install fails these tests): the whole attack and benign corpora of `portcullis-waf`
//! through a running gateway with CRS alone and with the built-in rules, `detect` and `off`,
//! route overrides, exclusions by CRS rule id and target, reloads (the paranoia level in the
//! config, an edited rule file), the problem document, the access log field, the metric,
//! HTTP/2, load errors, and a body far beyond `inspect_body_bytes` streamed through a gateway
//! process whose memory stays bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::access_log::wait_for_lines;
use crate::kit::{Backend, Reply, TestGateway, client, eventually, scratch_dir, send};
use crate::reload::{TOKEN, metric, write_config};

const CRS: &str = "/usr/share/modsecurity-crs";
const SQLI: &str = "1%27%20OR%20%271%27%3D%271";
const XSS: &str = "%3Cscript%3Ealert(document.cookie)%3C/script%3E";

/// Debian's CRS, installed once per test run; a failed install fails the test everywhere.
fn crs() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/modsecurity-crs.sh");
        let status = Command::new("bash").arg(&script).status().expect("run scripts/modsecurity-crs.sh");
        assert!(status.success(), "scripts/modsecurity-crs.sh failed: {status}");
    });
    CRS
}

/// Routes `search` (`/search`, its own `waf` when given), `open` (`/open`, `waf: off`) and
/// `api` (`/api/{*rest}`) to `backend`; `waf` is the text of the `waf` section, where `@CRS@`
/// stands for Debian's CRS directory.
fn config(backend: &Backend, waf: &str, search_mode: &str) -> String {
    let search_waf = if search_mode.is_empty() { String::new() } else { format!(", waf: {search_mode}") };
    let waf = waf.replace("@CRS@", crs());
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
    let path = write_config(&scratch_dir(), text);
    TestGateway::from_file(&path).await.with_admin().await
}

/// A request as an API client sends it: a host name (not the numeric address, which CRS
/// counts against a request), `Accept` and a browser-like `User-Agent` unless `headers` say.
async fn request(gw: &TestGateway, method: &str, uri: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let mut b = Request::builder().method(method).uri(gw.url(uri)).header("host", "api.example.com");
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("accept") {
        b = b.header("accept", "application/json");
    }
    if !has("user-agent") {
        b = b.header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let body = body.map_or_else(Bytes::new, |s| Bytes::copy_from_slice(s.as_bytes()));
    send(&client(), b.body(Full::new(body)).expect("request")).await
}

async fn get(gw: &TestGateway, uri: &str) -> Reply {
    request(gw, "GET", uri, &[], None).await
}

async fn post_json(gw: &TestGateway, uri: &str, body: &str) -> Reply {
    request(gw, "POST", uri, &[("content-type", "application/json")], Some(body)).await
}

fn log_line(line: &str) -> Value {
    serde_json::from_str(line).expect("a JSON access log line")
}

fn rule_ids(line: &Value) -> Vec<String> {
    line["waf"]["rules"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_owned)).collect()
}

// --- the corpora ------------------------------------------------------------------------------

fn corpus(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-waf/tests/corpus").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))).collect()
}

/// Every case of the attack files (sqli, xss, path traversal, command injection, protocol
/// anomalies, and the evasions in cookies, headers, multipart and XML): 562 requests.
fn attacks() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in [
        "attacks-sqli.jsonl",
        "attacks-xss.jsonl",
        "attacks-path_traversal.jsonl",
        "attacks-command_injection.jsonl",
        "attacks-protocol.jsonl",
        "attacks-evasions.jsonl",
    ] {
        out.extend(corpus(file).into_iter().map(|c| (file.to_owned(), c)));
    }
    out
}

/// One corpus case through the gateway (its path under `/api`).
async fn replay(gw: &TestGateway, case: &Value) -> Reply {
    let uri = format!("/api{}", case["uri"].as_str().unwrap_or("/"));
    let headers: Vec<(String, String)> = case["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h[0].as_str().unwrap_or_default().to_owned(), h[1].as_str().unwrap_or_default().to_owned()))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    request(gw, case["method"].as_str().unwrap_or("GET"), &uri, &headers, case["body"].as_str()).await
}

/// What the gateway did with a list of cases.
#[derive(Default)]
struct Tally {
    /// 403 `waf_blocked`.
    waf: usize,
    /// Refused before the WAF by an earlier phase (a `%` not followed by two hex digits is a
    /// 400 from `request_target`): not forwarded either.
    earlier: usize,
    /// A line for each case on the wrong side.
    wrong: Vec<String>,
}

/// Replays `cases`; `attacks`: each should be refused, else each should be forwarded (200).
async fn replay_all(gw: &TestGateway, cases: &[(String, Value)], attacks: bool) -> Tally {
    let mut t = Tally::default();
    for (file, case) in cases {
        let r = replay(gw, case).await;
        let refused = match r.status {
            StatusCode::OK => false,
            StatusCode::FORBIDDEN => {
                assert_eq!(r.code(), "waf_blocked", "{case}");
                t.waf += 1;
                true
            }
            status => {
                assert!(status.is_client_error(), "{case}: {}", r.text());
                assert_ne!(r.json()["decided_by"], "waf", "{case}");
                t.earlier += 1;
                true
            }
        };
        if refused != attacks {
            t.wrong.push(format!("{file}: {} {} {}: {}", case["note"], case["uri"], case["body"], r.text()));
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpora_through_a_gateway_with_crs_alone_and_with_the_built_in_rules() {
    let backend = Backend::ok().await;
    // The whole corpora, not a sample: about 12 s for both gateways in a debug build.
    let attacks = attacks();
    let benign: Vec<(String, Value)> =
        corpus("benign.jsonl").into_iter().map(|c| ("benign.jsonl".to_owned(), c)).collect();
    assert!(attacks.len() >= 500 && benign.len() >= 1000, "{} attacks, {} benign", attacks.len(), benign.len());
    let started = Instant::now();

    // CRS alone: the built-in families switched off.
    let gw = gateway(&config(&backend, "{ mode: block, rules: [], crs: { path: @CRS@ } }", "")).await;
    let a = replay_all(&gw, &attacks, true).await;
    let b = replay_all(&gw, &benign, false).await;
    println!(
        "CRS 3.3 PL1 alone: {} of {} attacks refused by the WAF, {} before it; {} of {} benign refused",
        a.waf,
        attacks.len(),
        a.earlier,
        b.waf + b.earlier,
        benign.len()
    );
    // Debian's CRS 3.3.4 at PL1 on these corpora: 528 of 562 refused (it lets short command
    // injections such as `| id`, double-encoded JSON values and XML attributes through) and
    // 9 of 1,200 benign requests refused (932100 on "Salt & pepper; cat food too", 942360 on
    // "-- SELECT your seat", 942100 on `Null and void "double quoted"`): CRS's own false
    // positives, which exclusions are for. Bounds a little looser than measured.
    let missed = attacks.len() - a.waf - a.earlier;
    println!("CRS alone let through:\n{}\nCRS alone refused:\n{}", a.wrong.join("\n"), b.wrong.join("\n"));
    assert!(missed * 100 <= attacks.len() * 8, "CRS alone let {missed} of {} through", attacks.len());
    assert!(b.wrong.len() * 100 <= benign.len(), "CRS refused {} of {} benign requests", b.wrong.len(), benign.len());

    // Both: a request is refused when either says block, so every attack is.
    let gw = gateway(&config(&backend, "{ mode: block, crs: { path: @CRS@ } }", "")).await;
    let a = replay_all(&gw, &attacks, true).await;
    let b = replay_all(&gw, &benign, false).await;
    println!(
        "built-in + CRS: {} of {} attacks refused by the WAF, {} before it; {} of {} benign refused; {:?}",
        a.waf,
        attacks.len(),
        a.earlier,
        b.waf + b.earlier,
        benign.len(),
        started.elapsed()
    );
    assert!(a.wrong.is_empty(), "not refused:\n{}", a.wrong.join("\n"));
    // The built-in rules refuse none of the benign corpus; what is refused is CRS's.
    assert!(b.wrong.len() * 100 <= benign.len(), "{} of {} benign refused", b.wrong.len(), benign.len());
    let builtin_score = |w: &str| -> u32 {
        let at = w.find("(anomaly score ").expect("a WAF refusal") + "(anomaly score ".len();
        w[at..].split(' ').next().and_then(|n| n.parse().ok()).expect("a score")
    };
    assert!(b.wrong.iter().all(|w| builtin_score(w) < 5), "{}", b.wrong.join("\n"));
}

// --- refusal, log, metric ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crs_refuses_with_a_problem_naming_its_rules_logged_and_counted() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block, rules: [], crs: { path: @CRS@ } }", "")).await;
    let r = get(&gw, &format!("/search?q={SQLI}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.code(), "waf_blocked");
    assert_eq!(backend.count(), 0);
    let doc = r.json();
    let detail = doc["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("CRS inbound score"), "{detail}");
    assert!(!detail.contains(" OR ") && !detail.contains('\'') && !detail.contains("1=1"), "input echoed: {detail}");
    let line = log_line(&wait_for_lines(&gw, 1).await[0]);
    assert_eq!(line["waf"]["action"], "block", "{line}");
    assert_eq!(line["waf"]["score"], 0, "no built-in rule ran: {line}");
    assert!(line["waf"]["crs_score"].as_u64().unwrap_or(0) >= 5, "{line}");
    let ids = rule_ids(&line);
    assert!(ids.iter().any(|id| id.starts_with("942")), "a CRS SQL injection rule: {line}");
    for id in &ids {
        assert!(id.len() == 6 && id.bytes().all(|b| b.is_ascii_digit()), "{id} is a rule id");
        assert!(detail.contains(id.as_str()), "{id} is named in {detail}");
        let counted = metric(&gw, &format!(r#"portcullis_waf_matches_total{{rule="{id}",action="block"}}"#)).await;
        assert_eq!(counted, Some(1.0), "{id}");
    }
    assert!(doc["decided_by"].as_str().unwrap_or_default().starts_with("waf:"), "{doc}");
    // A clean request: nothing recorded.
    let r = get(&gw, "/search?q=O%27Brien&since=2024-05-01").await;
    assert_eq!(r.status, StatusCode::OK);
    // Lines are written as each answer's body ends, not in request order: the 200's line.
    let lines: Vec<Value> = wait_for_lines(&gw, 2).await.iter().map(|l| log_line(l)).collect();
    let line = lines.iter().find(|l| l["status"] == 200).cloned().unwrap_or_default();
    assert_eq!(line["path"], "/search", "{lines:?}");
    assert!(line["waf"].is_null(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_engine_reaching_its_threshold_refuses() {
    let backend = Backend::ok().await;
    // CRS would let it through (threshold out of reach); the built-in rules refuse.
    let gw = gateway(&config(&backend, "{ mode: block, crs: { path: @CRS@, inbound_threshold: 10000 } }", "")).await;
    let r = get(&gw, &format!("/search?q={SQLI}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("of threshold 5;") && detail.contains("of threshold 10000"), "{detail}");
    // The built-in rules would let it through; CRS refuses.
    let gw = gateway(&config(&backend, "{ mode: block, threshold: 10000, crs: { path: @CRS@ } }", "")).await;
    assert_eq!(get(&gw, &format!("/search?q={SQLI}")).await.status, StatusCode::FORBIDDEN);
    // Both below: forwarded, recorded as `pass` with both scores.
    let waf = "{ mode: block, threshold: 10000, crs: { path: @CRS@, inbound_threshold: 10000 } }";
    let gw = gateway(&config(&backend, waf, "")).await;
    assert_eq!(get(&gw, &format!("/search?q={SQLI}")).await.status, StatusCode::OK);
    let line = log_line(&wait_for_lines(&gw, 1).await[0]);
    assert_eq!(line["waf"]["action"], "pass", "{line}");
    assert!(line["waf"]["score"].as_u64().unwrap_or(0) >= 5 && line["waf"]["crs_score"].as_u64().unwrap_or(0) >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_request_shows_crs_its_authority_as_host() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: block, rules: [], crs: { path: @CRS@ } }", "")).await;
    // HTTP/2 has no Host header: CRS would count 920280 (missing Host) against every request.
    let url = format!("http://localhost:{}/search?q=shoes", gw.addr.port());
    let req = Request::get(url)
        .header("accept", "application/json")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let r = send(&crate::kit::h2_client(), req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let line = log_line(&wait_for_lines(&gw, 1).await[0]);
    assert!(line["waf"].is_null(), "{line}");
}

// --- modes ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_forwards_and_records_and_off_does_not_evaluate() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: detect, rules: [], crs: { path: @CRS@ } }", "")).await;
    assert_eq!(get(&gw, &format!("/search?q={XSS}")).await.status, StatusCode::OK);
    assert_eq!(get(&gw, &format!("/open?q={XSS}")).await.status, StatusCode::OK);
    assert_eq!(backend.count(), 2);
    // Each line is written when its answer's body ends, on the connection's own task: the
    // order of two requests' lines is not the order of the answers, so find them by path.
    let lines: Vec<_> = wait_for_lines(&gw, 2).await.iter().map(|l| log_line(l)).collect();
    let by_path = |path: &str| lines.iter().find(|l| l["path"] == path).cloned().unwrap_or_default();
    let detect = by_path("/search");
    assert_eq!(detect["waf"]["action"], "detect", "{detect}");
    assert!(detect["waf"]["crs_score"].as_u64().unwrap_or(0) >= 5, "{detect}");
    let ids = rule_ids(&detect);
    assert!(ids.iter().any(|id| id.starts_with("941")), "a CRS XSS rule: {detect}");
    let open = by_path("/open");
    assert_eq!(open["route"], "open", "{lines:?}");
    assert!(open["waf"].is_null(), "waf: off evaluates nothing");
    let counted = metric(&gw, &format!(r#"portcullis_waf_matches_total{{rule="{}",action="detect"}}"#, ids[0])).await;
    assert_eq!(counted, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_override_applies_to_crs_either_way() {
    let backend = Backend::ok().await;
    let gw = gateway(&config(&backend, "{ mode: detect, rules: [], crs: { path: @CRS@ } }", "block")).await;
    assert_eq!(get(&gw, &format!("/search?q={XSS}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&gw, &format!("/api/x?q={XSS}")).await.status, StatusCode::OK);
    let gw = gateway(&config(&backend, "{ mode: block, rules: [], crs: { path: @CRS@ } }", "detect")).await;
    assert_eq!(get(&gw, &format!("/search?q={XSS}")).await.status, StatusCode::OK);
    assert_eq!(get(&gw, &format!("/api/x?q={XSS}")).await.status, StatusCode::FORBIDDEN);
}

// --- exclusions -----------------------------------------------------------------------------

/// The CRS rules an XSS in `q` of `/search` matches, as the gateway logs them in `detect`.
async fn rules_matching_xss_in_q(backend: &Backend) -> Vec<String> {
    let gw = gateway(&config(backend, "{ mode: detect, rules: [], crs: { path: @CRS@ } }", "")).await;
    assert_eq!(get(&gw, &format!("/search?q={XSS}")).await.status, StatusCode::OK);
    let ids = rule_ids(&log_line(&wait_for_lines(&gw, 1).await[0]));
    assert!(!ids.is_empty());
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusion_by_crs_rule_id_and_target_lifts_those_rules_there_only() {
    let backend = Backend::ok().await;
    let ids = rules_matching_xss_in_q(&backend).await;
    let list = ids.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", ");
    let waf = format!(
        "{{ mode: block, rules: [], crs: {{ path: @CRS@ }}, exclusions: [{{ rules: [{list}], routes: [search], targets: [\"args:q\", \"json:/comment\"] }}] }}"
    );
    let gw = gateway(&config(&backend, &waf, "")).await;
    assert_eq!(get(&gw, &format!("/search?q={XSS}")).await.status, StatusCode::OK, "excluded on args:q");
    assert_eq!(get(&gw, &format!("/search?p={XSS}")).await.status, StatusCode::FORBIDDEN, "another argument");
    assert_eq!(get(&gw, &format!("/api/x?q={XSS}")).await.status, StatusCode::FORBIDDEN, "another route");
    let comment = r#"{"comment":"<script>alert(document.cookie)</script>","n":1}"#;
    assert_eq!(post_json(&gw, "/search", comment).await.status, StatusCode::OK, "excluded on json:/comment");
    let other = r#"{"title":"<script>alert(document.cookie)</script>"}"#;
    assert_eq!(post_json(&gw, "/search", other).await.status, StatusCode::FORBIDDEN, "another JSON member");

    // Rule ids alone (no targets): those rules do not run on the route at all.
    let waf = format!(
        "{{ mode: block, rules: [], crs: {{ path: @CRS@ }}, exclusions: [{{ rules: [{list}], routes: [search] }}] }}"
    );
    let gw = gateway(&config(&backend, &waf, "")).await;
    assert_eq!(get(&gw, &format!("/search?p={XSS}")).await.status, StatusCode::OK);
    assert_eq!(get(&gw, &format!("/api/x?p={XSS}")).await.status, StatusCode::FORBIDDEN);
}

fn compile_errors(text: &str) -> Option<String> {
    let loaded = portcullis_config::load_str(text, "t.yaml", Path::new("."), None).expect("parses");
    portcullis_core::compile::compile(&loaded).err().map(|e| e.to_string())
}

fn bare(waf: &str) -> String {
    format!(
        "version: 1\nlisteners: [{{ name: m, bind: \"127.0.0.1:0\" }}]\nwaf: {}\nupstreams: {{ b: {{ targets: [\"http://127.0.0.1:9\"] }} }}\nroutes:\n  - {{ name: r, match: {{ path: /r }}, upstream: b, auth: none }}\n",
        waf.replace("@CRS@", crs())
    )
}

#[test]
fn exclusions_name_loaded_crs_rule_ids_and_unknown_ids_are_errors() {
    // 920350 (numeric Host) exists only in CRS: known once CRS is loaded, not before.
    let ok =
        bare("{ crs: { path: @CRS@ }, exclusions: [{ rules: [920350, \"942100\"], targets: [\"headers:host\"] }] }");
    assert_eq!(compile_errors(&ok), None);
    let without = bare("{ exclusions: [{ rules: [920350] }] }");
    assert!(compile_errors(&without).is_some_and(|e| e.contains("waf.exclusions[0].rules[0]")));
    let unknown = bare("{ crs: { path: @CRS@ }, exclusions: [{ rules: [999999, 941100] }] }");
    let errors = compile_errors(&unknown).expect("an unknown id is refused");
    assert!(errors.contains("waf.exclusions[0].rules[0]") && errors.contains("999999"), "{errors}");
    assert!(!errors.contains("rules[1]"), "{errors}");
}

#[test]
fn a_rule_file_crs_cannot_evaluate_is_an_error_naming_file_line_and_rule() {
    let dir = scratch_dir().join("crs");
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    std::fs::write(dir.join("crs-setup.conf"), "SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.x=1\"\n")
        .expect("setup");
    std::fs::write(
        dir.join("rules/REQUEST-100-LOCAL.conf"),
        "# local rules\nSecRule ARGS \"@rx ok\" \"id:100001,phase:2,pass\"\nSecRule ARGS \"@inspectFile /bin/check\" \"id:100002,phase:2,deny\"\n",
    )
    .expect("rules");
    let text = bare(&format!("{{ crs: {{ path: {} }} }}", dir.display()));
    let errors = compile_errors(&text).expect("refused");
    assert!(errors.contains("waf.crs.path"), "{errors}");
    assert!(errors.contains("REQUEST-100-LOCAL.conf:3") && errors.contains("rule 100002"), "{errors}");
    let bad = bare("{ crs: { path: @CRS@, paranoia_level: 5, inbound_threshold: 0 } }");
    let errors = compile_errors(&bad).expect("refused");
    assert!(errors.contains("waf.crs.paranoia_level") && errors.contains("waf.crs.inbound_threshold"), "{errors}");
    let missing = bare("{ crs: { path: /nonexistent/crs } }");
    assert!(compile_errors(&missing).is_some_and(|e| e.contains("waf.crs.path")));
}

#[test]
fn a_reload_watches_the_crs_rule_files() {
    let text = bare("{ crs: { path: @CRS@ } }");
    let loaded = portcullis_config::load_str(&text, "t.yaml", Path::new("."), None).expect("parses");
    let snap = portcullis_core::compile::compile(&loaded).expect("compiles");
    let rules = Path::new(CRS).join("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf");
    assert!(snap.watch.contains(&rules), "{:?}", snap.watch);
    assert!(snap.watch.contains(&PathBuf::from("/etc/modsecurity/crs/crs-setup.conf")), "{:?}", snap.watch);
}

// --- reload ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reload_changing_the_paranoia_level_changes_the_verdict() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    // PL2 adds rules PL1 does not run, among them 920300: a request without `Accept`.
    let waf = |pl: u8| {
        format!("{{ mode: block, rules: [], crs: {{ path: @CRS@, paranoia_level: {pl}, inbound_threshold: 2 }} }}")
    };
    let path = write_config(&dir, &config(&backend, &waf(1), ""));
    let gw = TestGateway::start_watching(&path).await.with_admin().await;
    let bare_request = || async {
        let r = Request::get(gw.url("/search?q=shoes"))
            .header("host", "api.example.com")
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
            .body(Full::new(Bytes::new()))
            .expect("request");
        send(&client(), r).await.status
    };
    assert_eq!(bare_request().await, StatusCode::OK);
    write_config(&dir, &config(&backend, &waf(2), ""));
    eventually("the watcher to load paranoia level 2", || async {
        (bare_request().await == StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    assert_eq!(get(&gw, "/search?q=shoes").await.status, StatusCode::OK, "with `Accept`, still clean");
    write_config(&dir, &config(&backend, &waf(1), ""));
    eventually("the watcher to load paranoia level 1 again", || async {
        (bare_request().await == StatusCode::OK).then_some(())
    })
    .await;
}

/// A CRS release layout with one local rule refusing `ARGS` equal to `word`.
fn write_local_crs(dir: &Path, word: &str) {
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    std::fs::write(
        dir.join("crs-setup.conf"),
        "SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=334\"\n",
    )
    .expect("setup");
    let rules = format!(
        "SecAction \"id:100000,phase:1,pass,nolog,setvar:tx.anomaly_score=0\"\nSecRule ARGS \"@streq {word}\" \"id:100001,phase:2,block,t:none,t:lowercase,severity:'CRITICAL',msg:'local word',setvar:'tx.anomaly_score=+5'\"\n"
    );
    std::fs::write(dir.join("rules/REQUEST-100-LOCAL.conf"), rules).expect("rules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_crs_rule_file_reloads_the_rules() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let crs_dir = dir.join("crs");
    write_local_crs(&crs_dir, "apple");
    let waf = format!("{{ mode: block, rules: [], crs: {{ path: {} }} }}", crs_dir.display());
    let gw = TestGateway::start_watching(&write_config(&dir, &config(&backend, &waf, ""))).await;
    assert_eq!(get(&gw, "/search?q=Apple").await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&gw, "/search?q=banana").await.status, StatusCode::OK);
    // Only the rule file changes, not the config.
    write_local_crs(&crs_dir, "banana");
    eventually("the watcher to reload the edited rule file", || async {
        (get(&gw, "/search?q=banana").await.status == StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    assert_eq!(get(&gw, "/search?q=apple").await.status, StatusCode::OK);
}

// --- a body far beyond inspect_body_bytes, in a gateway process -----------------------------

/// `portcullis run -c CONFIG` as a child process; killed on drop.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    fn run(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["run", "-c"])
            .arg(config)
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portcullis");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find(" addr=") {
                    let addr: String = line[at + 6..].chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the gateway did not report its address");
        Self { child, addr }
    }

    /// `VmRSS` of the process, in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("VmRSS in {status}"))
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Streams a POST of `len` bytes (`text/plain`, 64 KiB writes) and returns the status line.
async fn stream_post(addr: &str, path: &str, len: usize) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nUser-Agent: curl/8.5.0\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    let chunk = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(64 * 1024 / 56 + 1);
    let chunk = &chunk.as_bytes()[..64 * 1024];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        s.write_all(&chunk[..n]).await.expect("write body");
        sent += n;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_body_streams_through_crs_with_bounded_gateway_memory() {
    let backend = Backend::start(|_| crate::kit::text(StatusCode::OK, "stored")).await;
    let dir = scratch_dir();
    let text = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
logging: {{ access: {{ path: off }} }}
limits: {{ max_body_bytes: 104857600 }}
waf: {{ mode: block, crs: {{ path: {} }}, inspect_body_bytes: 65536, oversize: pass }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: upload, match: {{ path: /upload }}, upstream: b, auth: none }}
"#,
        crs(),
        backend.url()
    );
    let gw = Process::run(&write_config(&dir, &text));
    // Warm up: a small body, so the baseline holds the allocator's and CRS's working set.
    assert!(stream_post(&gw.addr, "/upload", 256 * 1024).await.contains(" 200 "));
    let before = gw.rss_kib();
    // VmRSS sampled every 10 ms while the body streams: the highest seen.
    let pid = gw.child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    const LEN: usize = 50 * 1024 * 1024;
    let started = Instant::now();
    let status = stream_post(&gw.addr, "/upload", LEN).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("the sampler").max(gw.rss_kib());
    assert!(status.contains(" 200 "), "{status}");
    let received = backend.requests().last().map(|r| r.body.len());
    assert_eq!(received, Some(LEN), "forwarded whole (oversize: pass)");
    let grew = peak.saturating_sub(before);
    println!(
        "50 MiB through CRS in {:?}: VmRSS {before} KiB before, {peak} KiB at most (+{grew} KiB)",
        started.elapsed()
    );
    assert!(grew < 20 * 1024, "the gateway's memory grew by {grew} KiB for a 50 MiB body");
}
