//! The fast evaluation (prefilter, multiMatch steps only where a transformation changes the
//! value, transformation scans, libinjection verdicts reused) changes no verdict: Debian's CRS
//! (installed by scripts/modsecurity-crs.sh) scores the WAF's attack and benign corpora, and
//! variants of them placed in cookies, headers, argument names, multipart and XML bodies,
//! the same fast and as the reference: the same score, verdict and matched rules in order.

use crate::{CrsRules, CrsVerdict, Transaction, engine};
use std::path::Path;

struct Case {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

fn install() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/modsecurity-crs.sh");
    let status = std::process::Command::new("bash").arg(&script).status().expect("run scripts/modsecurity-crs.sh");
    assert!(status.success(), "scripts/modsecurity-crs.sh failed: {status}");
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-waf/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the WAF corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read corpus");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let mut headers: Vec<(String, Vec<u8>)> =
                vec![("Host".into(), b"api.example.com".to_vec()), ("Accept".into(), b"application/json".to_vec())];
            for h in v["headers"].as_array().into_iter().flatten() {
                headers.push((
                    h[0].as_str().unwrap_or_default().to_string(),
                    h[1].as_str().unwrap_or_default().as_bytes().to_vec(),
                ));
            }
            let body = v["body"].as_str().map(|b| b.as_bytes().to_vec());
            if let Some(b) = &body {
                headers.push(("Content-Length".into(), b.len().to_string().into_bytes()));
            }
            out.push(Case { method: s("method"), uri: s("uri"), headers, body });
        }
    }
    // The same data in other places: a query string as a cookie, a header, argument names, a
    // multipart field and XML text.
    let mut variants = Vec::new();
    for c in &out {
        let Some((_, q)) = c.uri.split_once('?') else { continue };
        let mut base = vec![("Host".to_string(), b"api.example.com".to_vec())];
        base.push(("Cookie".into(), format!("sid=abc; pref={q}").into_bytes()));
        base.push(("Referer".into(), format!("https://example.com/?{q}").into_bytes()));
        base.push(("X-Filter".into(), q.as_bytes().to_vec()));
        variants.push(Case { method: "GET".into(), uri: "/api/profile".into(), headers: base, body: None });
        let names: String = q.split('&').map(|kv| format!("{}=1", kv.replace('=', "_"))).collect::<Vec<_>>().join("&");
        variants.push(Case { method: "GET".into(), uri: format!("/api/x?{names}"), headers: Vec::new(), body: None });
        let multipart = format!(
            "--B\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n{q}\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{q}.txt\"\r\nContent-Type: text/plain\r\n\r\ndata\r\n--B--\r\n"
        );
        variants.push(Case {
            method: "POST".into(),
            uri: "/upload".into(),
            headers: vec![("Content-Type".into(), b"multipart/form-data; boundary=B".to_vec())],
            body: Some(multipart.into_bytes()),
        });
        let xml = format!("<r><q>{}</q></r>", q.replace('&', "&amp;").replace('<', "&lt;"));
        variants.push(Case {
            method: "POST".into(),
            uri: "/soap".into(),
            headers: vec![("Content-Type".into(), b"application/xml".to_vec())],
            body: Some(xml.into_bytes()),
        });
    }
    out.extend(variants);
    out
}

fn eval(rules: &CrsRules, c: &Case, fast: bool) -> CrsVerdict {
    let headers: Vec<(&str, &[u8])> = c.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let tx = Transaction {
        method: &c.method,
        uri: &c.uri,
        protocol: "HTTP/1.1",
        client_ip: "192.0.2.10".parse().expect("ip"),
        headers: &headers,
        body: c.body.as_deref(),
    };
    engine::evaluate_with(&rules.program, &tx, &[], fast)
}

#[test]
fn prefilter_changes_no_verdict() {
    install();
    let cases = corpus();
    assert!(cases.len() > 3000, "{} cases", cases.len());
    for pl in [1u8, 4] {
        let rules = CrsRules::load(Path::new("/usr/share/modsecurity-crs"), pl, 5).expect("Debian CRS loads");
        let pf = &rules.program.prefilter;
        assert!(
            pf.slots() * 2 > rules.rule_count(),
            "PL{pl}: only {} of {} rules filtered",
            pf.slots(),
            rules.rule_count()
        );
        let (mut matched, mut blocked) = (0usize, 0usize);
        let mut differ = Vec::new();
        for c in &cases {
            let on = eval(&rules, c, true);
            let off = eval(&rules, c, false);
            matched += usize::from(!off.matches.is_empty());
            blocked += usize::from(off.blocked);
            if on != off {
                differ.push(format!(
                    "{} {} {:?}\n  on:  {:?}\n  off: {:?}",
                    c.method,
                    c.uri,
                    c.body.as_deref().map(String::from_utf8_lossy),
                    on,
                    off
                ));
            }
        }
        println!(
            "PL{pl}: {} cases, {} with a match, {} blocked, {} of {} rules filtered",
            cases.len(),
            matched,
            blocked,
            pf.slots(),
            rules.rule_count()
        );
        // The comparison means something only when many rules match.
        assert!(matched > 1000 && blocked > 500, "PL{pl}: {matched} matched, {blocked} blocked");
        assert!(
            differ.is_empty(),
            "PL{pl}: {} verdicts differ:\n{}",
            differ.len(),
            differ.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}
