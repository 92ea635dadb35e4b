//! The attack and benign corpora (`tests/corpus/*.jsonl`, made by `generate.py` there): every
//! attack, in every family and evasion, reaches the default threshold; no benign request
//! does. The false-positive rate is printed (`--nocapture`) and must be zero.

use std::path::Path;

use http::Request;
use portcullis_waf::{DEFAULT_THRESHOLD, Scan, Settings, Waf};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))).collect()
}

fn scan(waf: &Waf, case: &Value) -> Scan {
    let mut builder =
        Request::builder().method(case["method"].as_str().unwrap_or("GET")).uri(case["uri"].as_str().unwrap_or("/"));
    for h in case["headers"].as_array().into_iter().flatten() {
        builder = builder.header(h[0].as_str().unwrap_or_default(), h[1].as_str().unwrap_or_default());
    }
    let body = case["body"].as_str().map(str::as_bytes);
    if let Some(body) = body {
        builder = builder.header("content-length", body.len());
    }
    let parts = builder.body(()).unwrap_or_else(|e| panic!("{case}: {e}")).into_parts().0;
    let mut scan = Scan::default();
    waf.inspect_head("corpus", &parts, &mut scan);
    if let Some(body) = body {
        waf.inspect_body("corpus", &parts, body, true, &mut scan);
    }
    scan
}

fn all_refused(file: &str, at_least: usize) {
    let waf = Waf::new(Settings::default());
    let cases = load(file);
    assert!(cases.len() >= at_least, "{file}: {} cases", cases.len());
    let missed: Vec<String> = cases
        .iter()
        .filter(|c| scan(&waf, c).score() < DEFAULT_THRESHOLD)
        .map(|c| format!("{} {} {}", c["note"], c["uri"], c["body"]))
        .collect();
    println!("{file}: {} cases, {} missed", cases.len(), missed.len());
    assert!(missed.is_empty(), "{file}: {} of {} not refused:\n{}", missed.len(), cases.len(), missed.join("\n"));
}

#[test]
fn every_sqli_attack_is_refused() {
    all_refused("attacks-sqli.jsonl", 150);
}

#[test]
fn every_xss_attack_is_refused() {
    all_refused("attacks-xss.jsonl", 100);
}

#[test]
fn every_path_traversal_attack_is_refused() {
    all_refused("attacks-path_traversal.jsonl", 90);
}

#[test]
fn every_command_injection_is_refused() {
    all_refused("attacks-command_injection.jsonl", 100);
}

#[test]
fn every_protocol_anomaly_case_is_refused() {
    all_refused("attacks-protocol.jsonl", 30);
}

#[test]
fn every_evasion_in_cookies_headers_multipart_and_xml_is_refused() {
    all_refused("attacks-evasions.jsonl", 10);
}

#[test]
fn no_benign_request_is_refused() {
    let waf = Waf::new(Settings::default());
    let cases = load("benign.jsonl");
    assert!(cases.len() >= 1000);
    let mut flagged = 0;
    let refused: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let s = scan(&waf, c);
            flagged += usize::from(!s.is_clean());
            (s.score() >= DEFAULT_THRESHOLD)
                .then(|| format!("{:?} {} {} {}", s.rules(), c["note"], c["uri"], c["body"]))
        })
        .collect();
    println!(
        "benign.jsonl: {} requests, {} refused (false-positive rate {:.2} %), {} with a sub-threshold match",
        cases.len(),
        refused.len(),
        refused.len() as f64 * 100.0 / cases.len() as f64,
        flagged
    );
    assert!(refused.is_empty(), "{} benign requests refused:\n{}", refused.len(), refused.join("\n"));
}

/// The rule ids of a scan in order of id: the fast path checks JSON members in document order,
/// the reference path in key order, so the two may list the same rules in another order.
fn verdict(scan: &Scan) -> (u32, Vec<u32>) {
    let mut rules: Vec<u32> = scan.rules().iter().map(|r| r.0).collect();
    rules.sort_unstable();
    (scan.score(), rules)
}

/// The fast path (pre-screens, per-body memo, JSON checked as it parses) gives every corpus
/// request exactly the reference path's score and rules, sub-threshold matches included.
#[test]
fn the_fast_path_gives_the_reference_verdict_on_every_corpus_request() {
    let fast = Waf::new(Settings::default());
    let reference = Waf::reference(Settings::default());
    let files = [
        "attacks-sqli.jsonl",
        "attacks-xss.jsonl",
        "attacks-path_traversal.jsonl",
        "attacks-command_injection.jsonl",
        "attacks-protocol.jsonl",
        "attacks-evasions.jsonl",
        "benign.jsonl",
    ];
    let mut compared = 0;
    for file in files {
        for case in load(file) {
            let (f, r) = (scan(&fast, &case), scan(&reference, &case));
            assert_eq!(verdict(&f), verdict(&r), "{file}: {case}");
            compared += 1;
        }
    }
    assert!(compared > 1500, "{compared} requests compared");
}
