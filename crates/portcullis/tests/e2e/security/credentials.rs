//! Forged or unverified credentials, header poisoning, the admin API's browser exposure and
//! mTLS subjects (issue 12, items 4, 5, 7, 8 and 10). See [`super`].

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::certs::{ClientOptions, Leaf, Pki, client_config, https_get};
use crate::idp::{self, Idp, RSA1, SigningKey};
use crate::kit::{self, Backend, Reply, TestGateway, get, scratch_dir};

// --- item 4: a credential the gateway did not verify never reaches a backend ---------------

/// The stored form of the API key `pcl_test_acme_key`.
fn acme_key_stored() -> String {
    portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(b"pcl_test_acme_key"))
}

const KEY: &str = "pcl_test_acme_key";

/// `partners` (API key), `corp` (bearer JWT) and `web` (JWT from a cookie or a query
/// parameter), with routes that take them in either order, all of them, and none.
async fn credentials_gateway(idp: &Idp, backend: &Backend) -> TestGateway {
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
limits: {{ max_header_bytes: 65536 }}
auth:
  partners: {{ type: api_key, header: X-Api-Key }}
  corp:
    type: jwt
    issuer: "{issuer}"
    audiences: ["api://orders"]
    algorithms: [RS256]
  web:
    type: jwt
    issuer: "{issuer}"
    audiences: ["api://orders"]
    algorithms: [RS256]
    token_from: [cookie:session, query:access_token]
consumers:
  acme: {{ keys: ["{key}"] }}
upstreams:
  b: {{ targets: ["{backend}"] }}
routes:
  - {{ name: key-first, match: {{ path: /key-first }}, upstream: b, auth: {{ any: [partners, corp] }} }}
  - {{ name: jwt-first, match: {{ path: /jwt-first }}, upstream: b, auth: {{ any: [corp, partners] }} }}
  - {{ name: key-only, match: {{ path: /key-only }}, upstream: b, auth: {{ any: [partners] }} }}
  - {{ name: both, match: {{ path: /both }}, upstream: b, auth: {{ all: [corp, partners] }} }}
  - {{ name: web, match: {{ path: /web }}, upstream: b, auth: {{ any: [web, corp] }} }}
  - {{ name: open, match: {{ path: /open }}, upstream: b, auth: none }}
  - {{ name: open-cached, match: {{ path: /open-cached }}, upstream: b, auth: none, cache: {{ ttl: 30s }} }}
"#,
        issuer = idp.issuer,
        key = acme_key_stored(),
        backend = backend.url()
    );
    TestGateway::start(&yaml).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The one request the backend received since `before`.
fn last_seen(backend: &Backend, before: usize) -> kit::Recorded {
    let requests = backend.requests();
    assert_eq!(requests.len(), before + 1, "exactly one request forwarded");
    requests[before].clone()
}

fn header<'a>(seen: &'a kit::Recorded, name: &str) -> Vec<&'a str> {
    seen.headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("<bytes>")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_bearer_token_beside_a_valid_api_key_never_reaches_the_backend() {
    let rsa1 = SigningKey::rsa("k1", RSA1);
    let idp = Idp::start(&[&rsa1]).await;
    let backend = Backend::ok().await;
    let gw = credentials_gateway(&idp, &backend).await;
    let mut claims = idp.claims("root");
    claims["groups"] = json!(["ops-admins"]);
    let forged = idp::unsigned("k1", &claims);

    // Either provider order; and a route whose only provider reads no bearer token at all.
    for path in ["/key-first", "/jwt-first", "/key-only"] {
        let before = backend.count();
        let r = get(&gw.url(path), &[("x-api-key", KEY), ("authorization", &bearer(&forged))]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
        let seen = last_seen(&backend, before);
        assert_eq!(header(&seen, "x-consumer"), ["acme"], "{path}");
        assert_eq!(header(&seen, "x-auth-provider"), ["partners"], "{path}");
        assert!(header(&seen, "authorization").is_empty(), "{path}: an unverified bearer token was forwarded");
        assert!(header(&seen, "x-api-key").is_empty(), "{path}");
    }

    // A forged token in another provider's cookie or query parameter: only that pair goes,
    // the rest of the cookie header and the query string are the client's.
    let before = backend.count();
    let url = gw.url(&format!("/key-first?page=2&access_token={forged}&sort=asc"));
    let cookie = format!("theme=dark; session={forged}; lang=en");
    let r = get(&url, &[("x-api-key", KEY), ("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(seen.uri, "/key-first?page=2&sort=asc");
    assert_eq!(header(&seen, "cookie"), ["theme=dark; lang=en"]);
    assert_eq!(header(&seen, "x-consumer"), ["acme"]);

    // A cookie header holding nothing but the token goes altogether.
    let before = backend.count();
    let r = get(&gw.url("/key-first?access_token=x"), &[("x-api-key", KEY), ("cookie", "session=x")]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(seen.uri, "/key-first");
    assert!(header(&seen, "cookie").is_empty(), "{:?}", seen.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_token_goes_on_and_nothing_unverified_beside_it() {
    let rsa1 = SigningKey::rsa("k1", RSA1);
    let idp = Idp::start(&[&rsa1]).await;
    let backend = Backend::ok().await;
    let gw = credentials_gateway(&idp, &backend).await;
    let alice = rsa1.sign(&idp.claims("alice"));
    let forged = idp::unsigned("k1", &idp.claims("root"));

    // The token the gateway verified is forwarded (backends exchange or re-read it); the key is not.
    let before = backend.count();
    let r = get(&gw.url("/both"), &[("x-api-key", KEY), ("authorization", &bearer(&alice))]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(header(&seen, "authorization"), [bearer(&alice).as_str()]);
    assert_eq!(header(&seen, "x-auth-subject"), ["alice"]);
    assert!(header(&seen, "x-api-key").is_empty());

    // `web` accepts its cookie: that cookie goes on, a forged bearer token (corp's place, corp
    // never decided) and a forged query token (web's own second place, not the one it read) do not.
    let before = backend.count();
    let url = gw.url(&format!("/web?access_token={forged}&q=1"));
    let cookie = format!("session={alice}; theme=dark");
    let r = get(&url, &[("cookie", &cookie), ("authorization", &bearer(&forged))]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(header(&seen, "x-auth-provider"), ["web"]);
    assert_eq!(header(&seen, "cookie"), [cookie.as_str()]);
    assert!(header(&seen, "authorization").is_empty(), "{:?}", seen.headers);
    assert_eq!(seen.uri, "/web?q=1");

    // `web` finds nothing, `corp` accepts the bearer token: a forged session cookie stays behind.
    let before = backend.count();
    let cookie = format!("session={forged}; theme=dark");
    let r = get(&gw.url("/web"), &[("cookie", &cookie), ("authorization", &bearer(&alice))]).await;
    // `web` refused the forged cookie but `any` goes on to `corp`, which accepts.
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(header(&seen, "x-auth-provider"), ["corp"]);
    assert_eq!(header(&seen, "authorization"), [bearer(&alice).as_str()]);
    assert_eq!(header(&seen, "cookie"), ["theme=dark"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_route_passes_bearer_tokens_and_cookies_on_uncached_but_never_an_api_key() {
    let rsa1 = SigningKey::rsa("k1", RSA1);
    let idp = Idp::start(&[&rsa1]).await;
    let backend = Backend::ok().await;
    let gw = credentials_gateway(&idp, &backend).await;
    let forged = idp::unsigned("k1", &idp.claims("root"));
    let headers =
        [("x-api-key", KEY), ("authorization", &*bearer(&forged)), ("cookie", &*format!("session={forged}; a=1"))];

    // `auth: none` verifies nothing and asserts nothing: a backend behind it authenticates for
    // itself, with the credentials it was sent.
    let before = backend.count();
    let r = get(&gw.url("/open"), &headers).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let seen = last_seen(&backend, before);
    assert_eq!(header(&seen, "authorization"), [bearer(&forged).as_str()]);
    assert_eq!(header(&seen, "cookie"), [format!("session={forged}; a=1").as_str()]);
    assert!(header(&seen, "x-api-key").is_empty(), "a gateway key is never forwarded");
    assert!(header(&seen, "x-consumer").is_empty() && header(&seen, "x-auth-provider").is_empty());

    // Such an answer is the backend's answer for that user: never stored, never served.
    for _ in 0..2 {
        let r = get(&gw.url("/open-cached"), &headers).await;
        assert_eq!(r.header("x-cache"), Some("BYPASS"), "{r:?}");
    }
    assert_eq!(get(&gw.url("/open-cached"), &[]).await.header("x-cache"), Some("MISS"));
}

// --- item 5: rate limits keyed on a credential header ---------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

#[test]
fn validate_refuses_a_rate_limit_keyed_on_a_credential_header() {
    let dir = scratch_dir();
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
auth:
  partners: { type: api_key, header: X-Api-Key }
upstreams: { b: { targets: ["http://127.0.0.1:9"] } }
rate_limits:
  by_key: { rate: 10/s, key: "header:X-Api-Key" }
  by_key_underscore: { rate: 10/s, key: "header:x_api_key" }
  by_bearer: { rate: 10/s, key: "header:Authorization" }
  by_cookie: { rate: 10/s, key: "header:Cookie" }
  by_proxy: { rate: 10/s, key: "header:Proxy-Authorization" }
  by_tenant: { rate: 10/s, key: "header:X-Tenant" }
routes:
  - { name: r, match: { path: /r }, upstream: b, auth: { any: [partners] }, rate_limits: [by_key, by_tenant] }
"#;
    let path = dir.join("limits.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(BIN).args(["validate", "-c"]).arg(&path).output().expect("run portcullis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    let file = path.display().to_string();
    for line in 7..=11 {
        assert!(text.contains(&format!("{file}:{line}:")), "line {line} is refused:\n{text}");
    }
    assert!(!text.contains(&format!("{file}:12:")), "an ordinary header is a fine key:\n{text}");
    assert!(text.contains("key: consumer"), "the message points to `key: consumer`:\n{text}");
}

// --- item 7: headers that claim scheme, host, address or method, from untrusted peers -------

/// Every header SPEC §3 removes from the requests of peers outside `trusted_proxies`.
const POISON: [(&str, &str); 18] = [
    ("x-forwarded-scheme", "http"),
    ("x-forwarded-ssl", "off"),
    ("x-forwarded-server", "evil.example"),
    ("x-forwarded-port", "8443"),
    ("x-forwarded-prefix", "/evil"),
    ("x-host", "evil.example"),
    ("x-original-host", "evil.example"),
    ("x-original-url", "/admin"),
    ("x-rewrite-url", "/admin"),
    ("true-client-ip", "10.0.0.1"),
    ("x-client-ip", "10.0.0.1"),
    ("x-real-ip", "10.0.0.1"),
    ("x-cluster-client-ip", "10.0.0.1"),
    ("cf-connecting-ip", "10.0.0.1"),
    ("forwarded", "for=10.0.0.1;proto=http;host=evil.example"),
    ("x-http-method-override", "DELETE"),
    ("x-http-method", "DELETE"),
    ("x-method-override", "DELETE"),
];

/// A backend that, as Rack, Symfony or an allow-list would, lets these headers shape its
/// answer: the answer names every one it was sent.
async fn reflecting_backend() -> Backend {
    Backend::start(|seen| {
        let mut names: Vec<String> = POISON
            .iter()
            .map(|(n, _)| *n)
            .chain(["x-edge-country"])
            .filter(|n| seen.headers.contains_key(*n))
            .map(str::to_owned)
            .collect();
        names.sort();
        let mut r = Response::new(Full::new(Bytes::from(format!("saw: [{}]", names.join(",")))));
        r.headers_mut().insert("cache-control", HeaderValue::from_static("max-age=60"));
        r
    })
    .await
}

/// A cached public catch-all; `extra` is more top-level YAML.
fn poisoning_config(backend: &Backend, trusted: &str, extra: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
trusted_proxies: [{trusted}]
{extra}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: page, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none, cache: {{ ttl: 30s }} }}
"#,
        backend.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoning_headers_from_an_untrusted_peer_never_reach_the_backend_or_the_cache() {
    let backend = reflecting_backend().await;
    let gw = TestGateway::start(&poisoning_config(&backend, "\"10.0.0.0/8\"", "")).await;
    let r = get(&gw.url("/home"), &POISON).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.text(), "saw: []", "the backend answered from what the client claimed");
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let seen = &backend.requests()[0];
    for (name, _) in POISON {
        assert!(!seen.headers.contains_key(name), "{name} reached the backend");
    }
    assert_eq!(seen.method, "GET");

    // Another client gets the stored answer: the clean one.
    let r = get(&gw.url("/home"), &[]).await;
    assert_eq!((r.header("x-cache"), r.text().as_str()), (Some("HIT"), "saw: []"));
    assert_eq!(backend.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_headers_extends_the_list_and_a_trusted_proxy_may_still_pass_them_on() {
    let backend = reflecting_backend().await;
    let extra = "trusted_proxy_headers: [X-Edge-Country]";
    let sent = [("x-forwarded-scheme", "https"), ("true-client-ip", "203.0.113.9"), ("x-edge-country", "FR")];
    let gw = TestGateway::start(&poisoning_config(&backend, "\"10.0.0.0/8\"", extra)).await;
    let r = get(&gw.url("/untrusted"), &sent).await;
    assert_eq!(r.text(), "saw: []", "{r:?}");
    let gw = TestGateway::start(&poisoning_config(&backend, "\"127.0.0.1/32\"", extra)).await;
    let r = get(&gw.url("/trusted"), &sent).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.text(), "saw: [true-client-ip,x-edge-country,x-forwarded-scheme]");
}

// --- item 8: the admin API and web pages ----------------------------------------------------

/// An admin listener (with `token`, or none: loopback only) and a SQLite database beside it.
async fn admin_gateway(token: Option<&str>) -> TestGateway {
    let dir = scratch_dir();
    let token = token.map(|t| format!(", token: \"{t}\"")).unwrap_or_default();
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1"{token} }}
logging: {{ access: {{ path: off }} }}
upstreams: {{ hello: {{ mock: {{ status: 200, body: "hi" }} }} }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: hello, auth: none }}
"#
    );
    let path = crate::reload::write_config(&dir, &yaml);
    TestGateway::from_file(&path).await.with_admin().await
}

/// An admin request with these headers (the client sets `Host: 127.0.0.1:PORT` unless one is
/// given) and body.
async fn admin_call(gw: &TestGateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut b = Request::builder().method(method).uri(gw.admin_url(path));
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    kit::send(&kit::client(), b.body(Full::new(Bytes::from(body.to_owned()))).expect("request")).await
}

fn assert_admin_problem(r: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
    assert_eq!(r.json()["code"], code, "{what}");
    assert_eq!(r.json()["status"], status, "{what}");
}

async fn consumer_names(gw: &TestGateway, auth: &[(&str, &str)]) -> Vec<String> {
    let r = admin_call(gw, "GET", "/consumers", auth, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.json();
    let items = list.as_array().or_else(|| list["consumers"].as_array()).cloned().unwrap_or_default();
    items.iter().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_a_web_page_can_neither_write_to_nor_read_the_admin_api() {
    let gw = admin_gateway(None).await;
    let port = gw.admin.expect("admin").port();
    let body = r#"{"name": "evil"}"#;
    let rebound = format!("evil.example:{port}");
    let foreign = format!("http://evil.example:{port}");
    let text_plain = ("content-type", "text/plain");
    let json_type = ("content-type", "application/json");

    // A form or `fetch` from another site: a simple request, no preflight.
    let r = admin_call(&gw, "POST", "/consumers", &[text_plain, ("origin", "https://evil.example")], body).await;
    assert_admin_problem(&r, 403, "forbidden", "a cross-site Origin");
    let r = admin_call(&gw, "POST", "/consumers", &[json_type, ("sec-fetch-site", "cross-site")], body).await;
    assert_admin_problem(&r, 403, "forbidden", "Sec-Fetch-Site: cross-site");
    let r = admin_call(&gw, "POST", "/consumers", &[json_type, ("sec-fetch-site", "same-site")], body).await;
    assert_admin_problem(&r, 403, "forbidden", "Sec-Fetch-Site: same-site (another port of this host)");
    let r = admin_call(&gw, "POST", "/consumers", &[json_type, ("origin", "null")], body).await;
    assert_admin_problem(&r, 403, "forbidden", "Origin: null");
    // DNS rebinding: the page's own name now points at 127.0.0.1; the browser sends it as Host.
    let r = admin_call(&gw, "POST", "/consumers", &[json_type, ("host", &rebound), ("origin", &foreign)], body).await;
    assert_admin_problem(&r, 403, "forbidden", "a rebound Host");
    for path in ["/consumers", "/routes", "/upstreams", "/metrics"] {
        let r = admin_call(&gw, "GET", path, &[("host", &rebound)], "").await;
        assert_ne!(r.status, StatusCode::OK, "{path} was read through a rebound name: {}", r.text());
    }
    // A write that is not JSON: 415, even from a local tool.
    let r = admin_call(&gw, "POST", "/consumers", &[text_plain], body).await;
    assert_admin_problem(&r, 415, "unsupported_media_type", "text/plain");
    let r = admin_call(&gw, "POST", "/consumers", &[], body).await;
    assert_admin_problem(&r, 415, "unsupported_media_type", "no Content-Type");
    let r = admin_call(&gw, "POST", "/config/reload", &[], "").await;
    assert_admin_problem(&r, 415, "unsupported_media_type", "a bodiless reload");
    assert!(consumer_names(&gw, &[]).await.is_empty(), "nothing was created");

    // Local tools and the admin's own pages.
    let r = admin_call(&gw, "POST", "/consumers", &[("content-type", "application/json; charset=utf-8")], body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let own = format!("http://127.0.0.1:{port}");
    let same_origin = [("origin", own.as_str()), ("sec-fetch-site", "same-origin"), json_type];
    let r = admin_call(&gw, "POST", "/consumers", &same_origin, r#"{"name": "mine"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = admin_call(&gw, "POST", "/config/reload", &[json_type], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for host in [format!("localhost:{port}"), format!("[::1]:{port}"), "127.0.0.1".to_owned()] {
        let r = admin_call(&gw, "GET", "/routes", &[("host", &host), ("sec-fetch-site", "none")], "").await;
        assert_eq!(r.status, StatusCode::OK, "Host {host}: {}", r.text());
    }
    assert_eq!(consumer_names(&gw, &[]).await, ["evil", "mine"]);
    // Liveness probes need nothing.
    assert_eq!(admin_call(&gw, "GET", "/health", &[("host", &rebound)], "").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_admin_write_is_json_too() {
    let gw = admin_gateway(Some("admin-s3cret")).await;
    let auth = ("authorization", "Bearer admin-s3cret");
    let body = r#"{"name": "acme"}"#;
    let r = admin_call(&gw, "POST", "/consumers", &[auth, ("content-type", "text/plain")], body).await;
    assert_admin_problem(&r, 415, "unsupported_media_type", "text/plain with the token");
    let r = admin_call(&gw, "DELETE", "/consumers/acme", &[auth], "").await;
    assert_admin_problem(&r, 415, "unsupported_media_type", "a DELETE without a type");
    // Without the token the answer is 401 whatever the type: nothing is said before that.
    let r = admin_call(&gw, "POST", "/consumers", &[("content-type", "text/plain")], body).await;
    assert_admin_problem(&r, 401, "missing_credentials", "no token");
    let r = admin_call(&gw, "POST", "/consumers", &[auth, ("content-type", "application/json")], body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // A token is no ambient credential: a named host is fine with it (a remote admin).
    let r = admin_call(&gw, "GET", "/routes", &[auth, ("host", "admin.internal:9901")], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(consumer_names(&gw, &[auth]).await, ["acme"]);
}

// --- item 10: mTLS subjects compare as distinguished names ----------------------------------

/// Makes sure the `openssl` command is there (rcgen cannot write a multi-valued RDN); as root
/// it installs the Debian package when missing.
fn ensure_openssl() {
    let works = || Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if works() {
        return;
    }
    let _ = Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "openssl"]).status();
    assert!(works(), "this test needs the openssl command (apt-get install openssl)");
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A client certificate for `subject` (OpenSSL's `/`-separated form, `+` joining the
/// attributes of one RDN), signed by `ca-cert.pem` / `ca-key.pem` in `dir`.
fn openssl_client_leaf(dir: &Path, stem: &str, subject: &str) -> Leaf {
    let (key, csr, cert) = (format!("{stem}-key.pem"), format!("{stem}.csr"), format!("{stem}.pem"));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(dir, &[&["req", "-new"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", subject]].concat());
    std::fs::write(dir.join("client-ext.cnf"), "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
        .expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "client-ext.cnf",
            "-out",
            &cert,
        ],
    );
    let cert_pem = std::fs::read_to_string(dir.join(&cert)).expect("read cert");
    let key_pem = std::fs::read_to_string(dir.join(&key)).expect("read key");
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert DER");
    Leaf { cert_pem, key_pem, der }
}

/// `CN=admin,O=Acme` in both RDN orders, and `CN=admin,O=Acme` as one escaped CN value.
const FLAT: &str = r#"  admin: { mtls_subject: "CN=admin,O=Acme" }
  admin-reversed: { mtls_subject: "O=Acme,CN=admin" }
  escaped: { mtls_subject: 'CN=admin\2cO=Acme' }"#;
/// The two attributes in one RDN, written in the other order than OpenSSL's `-subj`.
const ONE_RDN: &str = r#"  team: { mtls_subject: "O=Acme + CN=admin" }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_valued_rdn_or_an_escaped_comma_is_not_another_subject() {
    ensure_openssl();
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let server = Pki::new("edge-ca");
    server.leaf(&["localhost"], false).write(&dir, "server");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    let ca_args = [&["req", "-x509"][..], &ec, &["-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2"]];
    openssl(&dir, &[&ca_args.concat()[..], &["-subj", "/CN=partners-ca"], &ca_ext].concat());
    // One RDN holding two attributes, and two RDNs holding one each (rcgen writes those).
    let multi = openssl_client_leaf(&dir, "multi", "/CN=admin+O=Acme");
    let two_rdns = openssl_client_leaf(&dir, "two", "/O=Acme/CN=admin");
    let comma = openssl_client_leaf(&dir, "comma", "/CN=admin,O=Acme");
    let plus = openssl_client_leaf(&dir, "plus", "/CN=admin\\+O=Acme");
    let yaml = |consumers: &str| {
        format!(
            r#"version: 1
listeners:
  - name: edge
    bind: "@LISTEN@"
    tls: {{ certificates: [{{ cert: server.pem, key: server-key.pem }}], client_ca: ca-cert.pem, client_cert: optional }}
logging: {{ access: {{ path: off }} }}
auth:
  partner_mtls: {{ type: mtls }}
consumers:
{consumers}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: {{ any: [partner_mtls] }} }}
"#,
            backend.url()
        )
    };
    let gw = TestGateway::start_in(&yaml(FLAT), dir.clone()).await;
    let consumer_of = |gw: &TestGateway, leaf: &Leaf| {
        let config =
            client_config(&ClientOptions { client_cert: Some(leaf), trust: Some(&server), ..ClientOptions::default() });
        let addr = gw.addr;
        let backend = &backend;
        async move {
            let before = backend.count();
            let r = https_get(addr, "localhost", config, "/who").await.expect("mTLS request");
            if r.status != StatusCode::OK {
                return format!("{} {}", r.status.as_u16(), r.code());
            }
            let seen = &backend.requests()[before];
            seen.headers.get("x-consumer").and_then(|v| v.to_str().ok()).unwrap_or("<none>").to_owned()
        }
    };
    assert_eq!(consumer_of(&gw, &two_rdns).await, "admin");
    let refused = "401 invalid_client_cert";
    assert_eq!(consumer_of(&gw, &multi).await, refused, "CN=admin+O=Acme is one RDN, not CN=admin,O=Acme");
    assert_eq!(consumer_of(&gw, &comma).await, "escaped", "CN=admin\\,O=Acme is one attribute");
    assert_eq!(consumer_of(&gw, &plus).await, refused, "CN=admin\\+O=Acme is one attribute");
    drop(gw);
    // The attributes of one RDN are a set: their order is not part of the name.
    let gw = TestGateway::start_in(&yaml(ONE_RDN), dir).await;
    assert_eq!(consumer_of(&gw, &multi).await, "team");
    assert_eq!(consumer_of(&gw, &two_rdns).await, refused);
}
