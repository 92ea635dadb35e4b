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
    // No `Content-Type` at all: wanted, to be read if it is JSON (see
    // `an_unlabelled_body_that_is_json_is_read_as_json`).
    assert!(waf.wants_body(&parts("/", &[])));
}

#[test]
fn a_body_on_get_is_a_weak_signal() {
    let waf = Waf::new(Settings::default());
    let s = scan_of(&waf, "/", &[("content-length", "5")], None);
    assert_eq!(ids(&s), vec![920170]);
    assert!(s.score() < DEFAULT_THRESHOLD);
}

#[test]
fn a_content_type_with_a_byte_past_ascii_still_has_its_body_read() {
    // `HeaderValue::to_str` refuses obs-text, and the body went unread as of no known kind;
    // Werkzeug (latin-1 decoded) still reads `application/json; charset=\xff` as JSON.
    let waf = Waf::new(Settings::default());
    let mut p = parts("/comments", &[]);
    let odd = http::HeaderValue::from_bytes(b"application/json; charset=\xff").expect("obs-text is a valid value");
    p.headers.insert(http::header::CONTENT_TYPE, odd);
    assert!(waf.wants_body(&p));
    let mut scan = Scan::default();
    waf.inspect_body("r", &p, br#"{"q":"1' OR '1'='1"}"#, true, &mut scan);
    assert!(ids(&scan).contains(&942100), "{scan:?}");
}

#[test]
fn an_unlabelled_body_that_is_json_is_read_as_json() {
    // FastAPI parses a body without `Content-Type` as JSON: the WAF must read it too.
    let waf = Waf::new(Settings::default());
    let p = parts("/comments", &[]);
    assert!(waf.wants_body(&p));
    for body in [
        &br#"{"q":"1' OR '1'='1"}"#[..],
        b" \r\n[\"<script>alert(1)</script>\"]",
        b"\xef\xbb\xbf{\"q\":\"; cat /etc/passwd\"}",
    ] {
        let mut scan = Scan::default();
        waf.inspect_body("r", &p, body, true, &mut scan);
        assert!(scan.score() >= DEFAULT_THRESHOLD, "{}: {scan:?}", String::from_utf8_lossy(body));
    }
    // Anything else without a label (a binary upload) stays unread, as before.
    let mut scan = Scan::default();
    waf.inspect_body("r", &p, b"\x00\x01\x02' OR 1=1 --", true, &mut scan);
    assert!(scan.is_clean(), "{scan:?}");
}

#[test]
fn one_token_values_are_still_checked_by_the_rules_that_read_them() {
    // A value of letters, digits and `-_@:.,` was cleared of every rule unread; libinjection
    // flags such tokens (`1--` ends a numeric query on PostgreSQL, SQLite and SQL Server,
    // `-1union`) and the OS-file list names some (`web.config`, `wp-config.php`).
    for waf in [Waf::new(Settings::default()), Waf::reference(Settings::default())] {
        for (uri, rule) in [
            ("/items?id=1--", 942100),
            ("/items?id=-1union", 942100),
            ("/items?1--=x", 942100),
            ("/download?f=web.config", 930120),
            ("/download?f=wp-config.php", 930120),
        ] {
            let s = scan_of(&waf, uri, &[], None);
            assert!(ids(&s).contains(&rule), "{uri}: {s:?}");
            assert!(s.score() >= DEFAULT_THRESHOLD, "{uri}: {s:?}");
        }
        let body = br#"{"id":"1--","file":"web.config"}"#;
        let s = scan_of(&waf, "/items", &[("content-type", "application/json")], Some(body));
        assert!(ids(&s).contains(&942100) && ids(&s).contains(&930120), "{s:?}");
        let s = scan_of(&waf, "/items", &[("cookie", "id=1--")], None);
        assert!(ids(&s).contains(&942100), "{s:?}");
    }
    // Ordinary tokens stay clean.
    let waf = Waf::new(Settings::default());
    let s = scan_of(&waf, "/v1/orders?since=2024-05-01&by=user@example.com&v=v1.2.3&t=10:30", &[], None);
    assert!(s.is_clean(), "{s:?}");
}

#[test]
fn json_that_serde_refuses_still_has_its_escapes_undone() {
    // Python's `json.loads` takes `NaN` and `Infinity`; serde_json does not, and such a body is
    // read by its string literals, whose `\"` and `\/` escapes were left in: the backend's
    // `x" OR "1"="1` was inspected as `x\" OR \"1\"=\"1`, which libinjection does not flag.
    let waf = Waf::new(Settings::default());
    let json = [("content-type", "application/json")];
    for (body, rule) in [
        (&br#"{"n": NaN, "q": "x\" OR \"1\"=\"1"}"#[..], 942100),
        (br#"{"n": Infinity, "q": "; cat \/etc\/passwd"}"#, 930120),
    ] {
        let s = scan_of(&waf, "/x", &json, Some(body));
        assert!(ids(&s).contains(&rule), "{}: {s:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_quoted_cookie_value_is_also_read_unescaped_as_python_reads_it() {
    // Django (`parse_cookie`) and Werkzeug unquote a double-quoted cookie value, undoing `\ooo`
    // octal and `\c` escapes: `"1\047 OR \0471\047=\0471"` is `1' OR '1'='1` to them.
    let waf = Waf::new(Settings::default());
    for (cookie, rule) in [
        (r#"q="1\047 OR \0471\047=\0471""#, 942100),
        (r#"q="\074script\076alert(1)\074/script\076""#, 941110),
        (r#"q="x\" OR \"1\"=\"1""#, 942100),
    ] {
        let s = scan_of(&waf, "/x", &[("cookie", cookie)], None);
        assert!(ids(&s).contains(&rule), "{cookie}: {s:?}");
    }
    let s = scan_of(&waf, "/x", &[("cookie", r#"pref="dark\054compact"; sid="a\\b""#)], None);
    assert!(s.is_clean(), "{s:?}");
}

#[test]
fn an_xml_entity_declared_in_the_doctype_is_inspected() {
    // The WAF never expands a DTD, but lxml and Python's ElementTree expand internal
    // entities: `<q>&e;</q>` is the entity's text to such a backend.
    let waf = Waf::new(Settings::default());
    let xml = [("content-type", "application/xml")];
    for (body, rule) in [
        (&br#"<!DOCTYPE q [<!ENTITY e "1' OR '1'='1">]><q>&e;</q>"#[..], 942100),
        (br#"<!DOCTYPE q [<!ENTITY e "<script>alert(1)</script>">]><q>&e;</q>"#, 941110),
    ] {
        let s = scan_of(&waf, "/x", &xml, Some(body));
        assert!(ids(&s).contains(&rule), "{}: {s:?}", String::from_utf8_lossy(body));
    }
    let xhtml = br#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html><p>hi</p></html>"#;
    let s = scan_of(&waf, "/x", &xml, Some(xhtml));
    assert!(s.is_clean(), "{s:?}");
}

#[test]
fn a_body_in_a_content_coding_the_waf_cannot_read_is_refused() {
    // Express's body-parser inflates gzip, deflate and br request bodies before parsing them;
    // the WAF read the compressed bytes and found nothing, whatever they held.
    let waf = Waf::new(Settings::default());
    let compressed = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56\x2a\x54\xb2\x52\x32\x54\x57\xf0";
    for coding in ["gzip", "deflate", "br", "GZIP", "identity, gzip"] {
        let h = [("content-type", "application/json"), ("content-encoding", coding)];
        let s = scan_of(&waf, "/x", &h, Some(compressed));
        assert!(ids(&s).contains(&920599), "{coding}: {s:?}");
        assert!(s.score() >= DEFAULT_THRESHOLD, "{coding}: {s:?}");
    }
    // `identity` is no coding; and a body the WAF does not read (binary) is not its business.
    let s = scan_of(&waf, "/x", &[("content-type", "application/json"), ("content-encoding", "identity")], Some(b"{}"));
    assert!(s.is_clean(), "{s:?}");
    let s = scan_of(&waf, "/x", &[("content-type", "image/png"), ("content-encoding", "gzip")], Some(compressed));
    assert!(s.is_clean(), "{s:?}");
}

#[test]
fn a_multipart_body_is_read_with_every_boundary_its_content_type_names() {
    // Werkzeug and python-multipart keep the last of two `boundary` parameters, the WAF read
    // the body with the first: the parts went uninspected (and the whole body, read as one
    // text, starts with `--`, a comment to libinjection).
    let waf = Waf::new(Settings::default());
    // The first boundary only after the end of the parts the backend reads: the WAF found
    // no part at all.
    let body = b"--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n1' OR '1'='1\r\n--b--\r\n--a--\r\n";
    for content_type in ["multipart/form-data; boundary=a; boundary=b", "multipart/form-data; boundary=b; boundary=a"] {
        let s = scan_of(&waf, "/x", &[("content-type", content_type)], Some(body));
        assert!(ids(&s).contains(&942100), "{content_type}: {s:?}");
    }
}

#[test]
fn a_multipart_part_is_read_wherever_a_backend_may_end_its_headers() {
    // Werkzeug ends a part's headers at the first blank line of any line break (`\n\n`); the
    // WAF looked for `\r\n\r\n` first and read the content before it as headers.
    let waf = Waf::new(Settings::default());
    let h = [("content-type", "multipart/form-data; boundary=b")];
    let body = b"--b\r\nContent-Disposition: form-data; name=\"q\"\n\n1' OR '1'='1\r\n\r\nx\r\n--b--\r\n";
    let s = scan_of(&waf, "/x", &h, Some(body));
    assert!(ids(&s).contains(&942100), "{s:?}");
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

/// The JSON scanner answers a string it has already found clean from its slots, but a string
/// that matched is checked again wherever it repeats: excluded at one pointer, it still
/// counts at the next; clean keys repeated around it change nothing.
#[test]
fn repeated_json_strings_are_judged_at_every_pointer() {
    let excl = Exclusion {
        rules: vec![rules::XSS_LIBINJECTION, rules::XSS_SCRIPT_TAG],
        routes: vec!["r".into()],
        targets: vec!["json:/0/note".parse().expect("target")],
    };
    let waf = Waf::new(Settings { exclusions: vec![excl], ..Settings::default() });
    let h = [("content-type", "application/json")];
    let item = r#"{"id":1,"sku":"SKU-00001","note":"<script>alert(1)</script>"}"#;
    let once = format!("[{item}]");
    assert!(scan_of(&waf, "/", &h, Some(once.as_bytes())).is_clean());
    let twice = format!("[{item},{item}]");
    let s = scan_of(&waf, "/", &h, Some(twice.as_bytes()));
    assert!(ids(&s).contains(&941100), "{s:?}");
    // A string that starts as the clean one at its place in the previous item did is read
    // whole, key or value.
    for body in [
        &br#"[{"a":"abc"},{"a":"abc<script>alert(1)</script>"}]"#[..],
        br#"[{"a":1},{"a<script>alert(1)</script>":1}]"#,
        br#"[{"k":"x","v":"note"},{"k":"x","v":"note","w":"<script>alert(1)</script>"}]"#,
    ] {
        let s = scan_of(&waf, "/", &h, Some(body));
        assert!(ids(&s).contains(&941100), "{}: {s:?}", String::from_utf8_lossy(body));
    }
    // A key found clean, then the same bytes as an attack's value elsewhere: the same verdict.
    let s = scan_of(&waf, "/", &h, Some(br#"[{"x' OR '1'='1":1},{"a":"x' OR '1'='1"}]"#));
    assert!(ids(&s).contains(&942100), "{s:?}");
}
