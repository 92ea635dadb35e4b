use http::Request;

use super::*;

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).expect("a request").into_parts().0
}

fn scan_of(waf: &Waf, uri: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Scan {
    let p = parts(uri, headers);
    let mut scan = Scan::default();
    waf.inspect_head("r", &p, &mut scan);
    if let Some(body) = body {
        waf.inspect_body("r", &p, body, true, &mut scan);
    }
    scan
}

fn ids(scan: &Scan) -> Vec<u32> {
    scan.rules().iter().map(|r| r.0).collect()
}

#[test]
fn the_issue_examples_reach_the_threshold() {
    let waf = Waf::new(Settings::default());
    let s = scan_of(&waf, "/search?q=1%27%20OR%20%271%27%3D%271", &[], None);
    assert!(s.score() >= DEFAULT_THRESHOLD, "{s:?}");
    assert!(ids(&s).contains(&942100));
    let s = scan_of(
        &waf,
        "/comments",
        &[("content-type", "application/json")],
        Some(br#"{"comment":"<script>alert(1)</script>"}"#),
    );
    assert!(ids(&s).contains(&941100), "{s:?}");
}

#[test]
fn a_clean_request_scores_nothing() {
    let waf = Waf::new(Settings::default());
    let s = scan_of(
        &waf,
        "/v1/orders?page=2&sort=created_at&q=O%27Brien",
        &[(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        )],
        None,
    );
    assert!(s.is_clean(), "{s:?}");
}

#[test]
fn each_rule_counts_once() {
    let waf = Waf::new(Settings::default());
    let s = scan_of(&waf, "/x?a=1%27%20or%201%3D1--&b=1%27%20or%201%3D1--", &[], None);
    assert_eq!(s.score(), 5, "{s:?}");
}

#[test]
fn exclusions_drop_the_rule_only_where_they_say() {
    let excl = Exclusion {
        rules: vec![rules::SQLI_LIBINJECTION],
        routes: vec!["r".into()],
        targets: vec!["args:q".parse().expect("target")],
    };
    let waf = Waf::new(Settings { exclusions: vec![excl], ..Settings::default() });
    assert!(scan_of(&waf, "/s?q=1%27%20or%201%3D1--", &[], None).is_clean());
    assert!(!scan_of(&waf, "/s?p=1%27%20or%201%3D1--", &[], None).is_clean());
}

#[test]
fn families_left_out_do_not_match() {
    let waf = Waf::new(Settings { families: [Family::Xss].into_iter().collect(), ..Settings::default() });
    assert!(scan_of(&waf, "/s?q=1%27%20or%201%3D1--", &[], None).is_clean());
}

#[test]
fn oversize_block_matches_its_rule_and_pass_does_not() {
    let body = vec![b'a'; 100];
    let h = [("content-type", "text/plain")];
    let block = Waf::new(Settings { inspect_body_bytes: 10, oversize: Oversize::Block, ..Settings::default() });
    assert_eq!(ids(&scan_of(&block, "/", &h, Some(&body))), vec![920390]);
    let pass = Waf::new(Settings { inspect_body_bytes: 10, ..Settings::default() });
    assert!(scan_of(&pass, "/", &h, Some(&body)).is_clean());
}

#[test]
fn only_the_first_inspect_body_bytes_are_read() {
    let waf = Waf::new(Settings { inspect_body_bytes: 16, ..Settings::default() });
    let mut body = vec![b'a'; 32];
    body.extend_from_slice(b"<script>alert(1)</script>");
    assert!(scan_of(&waf, "/", &[("content-type", "text/plain")], Some(&body)).is_clean());
}

#[test]
fn bodies_of_every_kind_are_read() {
    let waf = Waf::new(Settings::default());
    let cases: [(&str, &[u8]); 5] = [
        ("application/x-www-form-urlencoded", b"name=x&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("application/json", br#"{"a":[{"b":"\u003cscript\u003ealert(1)\u003c/script\u003e"}]}"#),
        ("application/json", br#"{"cut":"<script>alert(1)</script>", "more": "unfini"#),
        ("text/xml", b"<a><b x=\"1\">&lt;script&gt;alert(1)&lt;/script&gt;</b></a>"),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\n<script>alert(1)</script>\r\n--XyZ--\r\n",
        ),
    ];
    for (ct, body) in cases {
        let s = scan_of(&waf, "/", &[("content-type", ct)], Some(body));
        assert!(ids(&s).contains(&941100), "{ct}: {s:?}");
    }
}

#[test]
fn binary_bodies_are_not_wanted() {
    let waf = Waf::new(Settings::default());
    assert!(!waf.wants_body(&parts("/", &[("content-type", "image/png")])));
    assert!(waf.wants_body(&parts("/", &[("content-type", "application/json; charset=utf-8")])));
    assert!(!waf.wants_body(&parts("/", &[])));
}

#[test]
fn a_body_on_get_is_a_weak_signal() {
    let waf = Waf::new(Settings::default());
    let s = scan_of(&waf, "/", &[("content-length", "5")], None);
    assert_eq!(ids(&s), vec![920170]);
    assert!(s.score() < DEFAULT_THRESHOLD);
}

#[test]
fn the_inspected_names_are_the_inspected_headers_then_cookie() {
    assert_eq!(INSPECTED_HEADERS.len(), COOKIE_AT);
    for (label, name) in INSPECTED_HEADERS.iter().zip(&INSPECTED_NAMES) {
        assert_eq!(*label, name.as_str());
    }
    assert_eq!(INSPECTED_NAMES[COOKIE_AT], http::header::COOKIE);
}

#[test]
fn every_inspected_header_is_read_among_others_and_in_every_repeat() {
    let waf = Waf::new(Settings::default());
    for name in INSPECTED_HEADERS {
        let s = scan_of(
            &waf,
            "/x",
            &[
                ("accept", "*/*"),
                (name, "fine"),
                ("x-other", "<script>alert(1)</script>"),
                (name, "<script>alert(1)</script>"),
            ],
            None,
        );
        assert!(ids(&s).contains(&941100), "{name}: {s:?}");
    }
    let s = scan_of(&waf, "/x", &[("x-other", "a"), ("cookie", "a=1"), ("cookie", "b=1' OR '1'='1")], None);
    assert!(ids(&s).contains(&942100), "{s:?}");
    let s = scan_of(&waf, "/x", &[("x-other", "<script>alert(1)</script>"), ("authorization", "1' OR '1'='1")], None);
    assert!(s.is_clean(), "{s:?}");
}
