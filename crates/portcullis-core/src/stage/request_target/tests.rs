use super::*;

fn parts(method: &str, uri: &str, version: Version, headers: &[(&str, &[u8])]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri).version(version);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{method} {uri}: {e}"))
}

fn h1(method: &str, uri: &str) -> Parts {
    parts(method, uri, Version::HTTP_11, &[("host", b"api.example.com")])
}

fn refusal(parts: &Parts) -> Option<(u16, &'static str)> {
    match RequestTarget::run(parts) {
        Flow::Respond(crate::flow::Reply::Problem(p)) => Some((p.status().as_u16(), p.code.as_str())),
        Flow::Continue => None,
        other => panic!("{other:?}"),
    }
}

const BAD: Option<(u16, &str)> = Some((400, "bad_request"));

#[test]
fn each_target_form_goes_with_its_method() {
    assert_eq!(refusal(&h1("GET", "/a?b=c")), None);
    assert_eq!(refusal(&h1("GET", "http://api.example.com/a")), None);
    assert_eq!(refusal(&h1("GET", "https://api.example.com")), None);
    assert_eq!(refusal(&h1("OPTIONS", "*")), None);
    assert_eq!(refusal(&h1("GET", "admin")), BAD, "authority form");
    assert_eq!(refusal(&h1("GET", "api.example.com:80")), BAD);
    assert_eq!(refusal(&h1("GET", "*")), BAD);
    assert_eq!(refusal(&h1("CONNECT", "/")), BAD);
    assert_eq!(refusal(&h1("GET", "ftp://api.example.com/a")), BAD);
    assert_eq!(refusal(&h1("CONNECT", "api.example.com:443")), Some((405, "method_not_allowed")));
}

#[test]
fn percent_needs_two_hex_digits_and_the_path_must_decode_to_utf8() {
    for bad in [
        "/a%zz",
        "/a%2",
        "/a%",
        "/a?x=%g1",
        "/a?x=1%",
        "/%c0%ae%c0%ae/x",
        "/%c0%af",
        "/%e0%80%ae",
        "/%ed%a0%80",
        "/%f4%90%80%80",
        "/%c3",
        "/%c3/",
    ] {
        assert_eq!(refusal(&h1("GET", bad)), BAD, "{bad}");
    }
    for good in ["/caf%C3%A9", "/a%20b", "/%e2%82%ac", "/%f0%9f%98%80", "/a?x=%ff", "/é"] {
        assert_eq!(refusal(&h1("GET", good)), None, "{good}");
    }
}

#[test]
fn hosts_must_be_host_and_port() {
    let with_host = |host: &[u8]| refusal(&parts("GET", "/", Version::HTTP_11, &[("host", host)]));
    for good in [
        &b"api.example.com"[..],
        b"API.example.com:8443",
        b"10.0.0.1:80",
        b"[::1]:8080",
        b"[::1]",
        b"under_score.example",
        b"",
    ] {
        assert_eq!(with_host(good), None, "{}", String::from_utf8_lossy(good));
    }
    for bad in [
        &b"user:pw@api.example.com"[..],
        b"api.example.com/x",
        b"api.example.com\\x",
        b"api.example.com x",
        b"api.example.com\t",
        b"api.example.com\x80",
        b"api.example.com:80:81",
        b"api.example.com:",
        b"api.example.com:99999",
        b"api.example.com:+80",
        b"[::1",
        b"[zz]:80",
        b"a,b",
        b"a%2eb",
    ] {
        assert_eq!(with_host(bad), BAD, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn userinfo_in_the_authority_is_refused() {
    assert_eq!(refusal(&h1("GET", "http://user:pw@api.example.com/x")), BAD);
    let h2 = parts("GET", "https://user@api.example.com/x", Version::HTTP_2, &[]);
    assert_eq!(refusal(&h2), BAD);
}

#[test]
fn on_http2_authority_and_host_must_agree() {
    let h2 = |host: &[u8]| refusal(&parts("GET", "https://api.example.com/x", Version::HTTP_2, &[("host", host)]));
    assert_eq!(h2(b"API.example.com"), None);
    assert_eq!(h2(b"admin.example.com"), BAD);
    assert_eq!(refusal(&parts("GET", "https://api.example.com/x", Version::HTTP_2, &[])), None);
    // HTTP/1.1 absolute form: the target's host wins and `Host` is ignored (RFC 9112 §3.2.2).
    let h1 = parts("GET", "http://api.example.com/x", Version::HTTP_11, &[("host", b"other.example.com")]);
    assert_eq!(refusal(&h1), None);
}
