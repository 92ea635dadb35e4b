//! TLS listeners: the certificate chosen by SNI against each certificate's SANs (the first as
//! the default), HTTP/1.1 and HTTP/2 by ALPN, `X-Forwarded-Proto: https` and the access log's
//! `tls`, TLS 1.1 and (with `min_version: "1.3"`) TLS 1.2 refused, and client certificates
//! required or optional. Certificates come from a throwaway rcgen CA per test.

use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::certs::{ClientOptions, HttpsConn, Leaf, Pki, client_config, https_get};
use crate::kit::{Backend, TestGateway, WAIT, eventually, scratch_dir};

/// A gateway with one TLS listener: `tls` is the body of its `tls:` map (one line), every path
/// goes to `backend`, the access log goes to `access.jsonl` in `dir`.
async fn tls_gateway(dir: PathBuf, tls: &str, backend: &Backend) -> TestGateway {
    let yaml = format!(
        r#"version: 1
listeners:
  - name: edge
    bind: "@LISTEN@"
    tls: {{ {tls} }}
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none }}
"#,
        backend.url()
    );
    TestGateway::start_in(&yaml, dir).await
}

/// One server certificate `server.pem` for `localhost`, and the CA that signed it.
fn one_cert(dir: &std::path::Path) -> Pki {
    let pki = Pki::new("edge-ca");
    pki.leaf(&["localhost"], false).write(dir, "server");
    pki
}

const ONE_CERT: &str = "certificates: [{ cert: server.pem, key: server-key.pem }]";

fn trusting(pki: &Pki) -> ClientOptions<'_> {
    ClientOptions { trust: Some(pki), ..ClientOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_naming_the_host_and_the_first_otherwise() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let (a, b, wild) =
        (pki.leaf(&["a.test"], false), pki.leaf(&["b.test"], false), pki.leaf(&["*.wild.test", "wild.test"], false));
    a.write(&dir, "a");
    b.write(&dir, "b");
    wild.write(&dir, "wild");
    let certs = "certificates: [{ cert: a.pem, key: a-key.pem }, { cert: b.pem, key: b-key.pem }, \
                 { cert: wild.pem, key: wild-key.pem }]";
    let gw = tls_gateway(dir, certs, &backend).await;
    let cases: [(&str, &Leaf, &str); 7] = [
        ("a.test", &a, "exact"),
        ("b.test", &b, "exact, not the default"),
        ("B.Test", &b, "names compare without case"),
        ("api.wild.test", &wild, "a one-label wildcard"),
        ("wild.test", &wild, "the wildcard certificate's other SAN"),
        ("deep.api.wild.test", &a, "a wildcard covers one label only: the default"),
        ("unknown.test", &a, "no certificate names it: the default"),
    ];
    let any = client_config(&ClientOptions::default());
    for (host, expected, why) in cases {
        let mut conn = HttpsConn::connect(gw.addr, host, any.clone()).await.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(conn.peer_cert.as_ref() == Some(&expected.der), "{host}: {why}");
        let r = conn.get("/sni").await.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }
    // No SNI at all: the first certificate.
    let no_sni = client_config(&ClientOptions { sni: false, ..ClientOptions::default() });
    let conn = HttpsConn::connect(gw.addr, "b.test", no_sni).await.expect("handshake without SNI");
    assert!(conn.peer_cert.as_ref() == Some(&a.der), "without SNI the first certificate is served");
    // A verifying client gets a certificate it accepts for each name it asks for.
    let verifying = client_config(&trusting(&pki));
    for host in ["a.test", "b.test", "x.wild.test"] {
        let r = https_get(gw.addr, host, verifying.clone(), "/v").await.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_by_alpn_reach_the_backend_as_https_and_log_the_tls_version() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let gw = tls_gateway(dir, ONE_CERT, &backend).await;

    let h2 = client_config(&ClientOptions { alpn: &[b"h2", b"http/1.1"], ..trusting(&pki) });
    let mut conn = HttpsConn::connect(gw.addr, "localhost", h2).await.expect("h2 handshake");
    assert_eq!(conn.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(conn.version, Some(rustls::ProtocolVersion::TLSv1_3), "TLS 1.3 by default");
    for _ in 0..2 {
        let r = conn.get("/over-h2").await.expect("h2 request");
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.text(), "backend-ok");
    }

    let h1 = client_config(&trusting(&pki));
    let mut conn = HttpsConn::connect(gw.addr, "localhost", h1).await.expect("h1 handshake");
    assert_eq!(conn.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let r = conn.get("/over-h1").await.expect("h1 request");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let seen = backend.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for r in &seen {
        assert_eq!(r.headers.get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"https"[..]), "{}", r.uri);
    }
    assert!(seen.iter().any(|r| r.uri == "/over-h2") && seen.iter().any(|r| r.uri == "/over-h1"));

    let log = gw.dir.join("access.jsonl");
    let lines = eventually("three access log lines", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 3 && text.ends_with('\n')).then_some(text)
    })
    .await;
    for line in lines.lines() {
        assert!(line.contains(r#""tls":"TLSv1.3""#), "{line}");
    }
}

/// A TLS 1.1 ClientHello with CBC suites and no extensions, in a record of `record_version`.
fn tls11_client_hello(record_version: [u8; 2]) -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version: TLS 1.1
    hello.extend([0x5a; 32]); // random
    hello.push(0); // no session id
    // TLS_RSA_WITH_AES_128_CBC_SHA, TLS_RSA_WITH_AES_256_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    hello.extend([0x00, 0x06, 0x00, 0x2f, 0x00, 0x35, 0xc0, 0x13]);
    hello.extend([0x01, 0x00]); // compression: null only
    let len = u32::try_from(hello.len()).expect("small").to_be_bytes();
    let mut handshake = vec![0x01, len[1], len[2], len[3]]; // ClientHello
    handshake.extend(hello);
    let len = u16::try_from(handshake.len()).expect("small").to_be_bytes();
    let mut record = vec![0x16, record_version[0], record_version[1], len[0], len[1]];
    record.extend(handshake);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_1_1_client_hello_gets_an_alert_and_never_a_server_hello() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    one_cert(&dir);
    let gw = tls_gateway(dir, ONE_CERT, &backend).await;
    for record_version in [[0x03, 0x01], [0x03, 0x02]] {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(&tls11_client_hello(record_version)).await.expect("write hello");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await.expect("the gateway answers or closes");
        // A reset also refuses; anything read must be an alert record.
        if read.is_ok() && !answer.is_empty() {
            assert_eq!(answer[0], 0x15, "an alert record, not a handshake (ServerHello): {answer:02x?}");
        }
    }
    assert_eq!(backend.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_1_3_refuses_a_tls_1_2_client_that_the_default_accepts() {
    let backend = Backend::ok().await;
    let tls12_only = |pki| client_config(&ClientOptions { versions: &[&rustls::version::TLS12], ..trusting(pki) });

    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let default = tls_gateway(dir, ONE_CERT, &backend).await;
    let mut conn = HttpsConn::connect(default.addr, "localhost", tls12_only(&pki)).await.expect("TLS 1.2 by default");
    assert_eq!(conn.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(conn.get("/twelve").await.expect("request").status, StatusCode::OK);
    let log = default.dir.join("access.jsonl");
    eventually("an access log line with TLSv1.2", || async {
        std::fs::read_to_string(&log).unwrap_or_default().contains(r#""tls":"TLSv1.2""#).then_some(())
    })
    .await;

    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let strict = tls_gateway(dir, &format!("{ONE_CERT}, min_version: \"1.3\""), &backend).await;
    let refused = https_get(strict.addr, "localhost", tls12_only(&pki), "/twelve").await;
    assert!(refused.is_err(), "TLS 1.2 against min_version 1.3: {refused:?}");
    let r = https_get(strict.addr, "localhost", client_config(&trusting(&pki)), "/thirteen").await.expect("TLS 1.3");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(backend.requests().iter().filter(|r| r.uri == "/twelve").count(), 1, "only the accepted one");
}

/// A listener asking for client certificates from `clients` (`mode`: required | optional),
/// a client certificate from that CA, and one from another CA.
struct Mtls {
    gw: TestGateway,
    server: Pki,
    good: Leaf,
    foreign: Leaf,
    backend: Backend,
}

async fn mtls(mode: &str) -> Mtls {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let server = one_cert(&dir);
    let (clients, other) = (Pki::new("partners-ca"), Pki::new("someone-else"));
    clients.write_ca(&dir, "partners-ca.pem");
    let good = clients.leaf(&["partner.example"], true);
    let foreign = other.leaf(&["partner.example"], true);
    let tls = format!("{ONE_CERT}, client_ca: partners-ca.pem, client_cert: {mode}");
    let gw = tls_gateway(dir, &tls, &backend).await;
    Mtls { gw, server, good, foreign, backend }
}

impl Mtls {
    /// A request on a fresh connection presenting `cert`: the handshake, or the first read
    /// after it (TLS 1.3 clients finish before the server has checked their certificate),
    /// fails when the certificate is refused.
    async fn attempt(&self, cert: Option<&Leaf>, path: &str) -> Result<StatusCode, String> {
        let config = client_config(&ClientOptions { client_cert: cert, ..trusting(&self.server) });
        https_get(self.gw.addr, "localhost", config, path).await.map(|r| r.status)
    }

    fn reached(&self, path: &str) -> bool {
        self.backend.requests().iter().any(|r| r.uri == path)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_must_be_present_and_signed_by_client_ca() {
    let m = mtls("required").await;
    let none = m.attempt(None, "/none").await;
    assert!(none.is_err(), "no certificate: {none:?}");
    let foreign = m.attempt(Some(&m.foreign), "/foreign").await;
    assert!(foreign.is_err(), "a certificate from another CA: {foreign:?}");
    assert_eq!(m.attempt(Some(&m.good), "/good").await, Ok(StatusCode::OK));
    assert!(m.reached("/good") && !m.reached("/none") && !m.reached("/foreign"));
    // Both TLS versions enforce it.
    let tls12 = client_config(&ClientOptions { versions: &[&rustls::version::TLS12], ..trusting(&m.server) });
    assert!(https_get(m.gw.addr, "localhost", tls12, "/none12").await.is_err(), "TLS 1.2 without a certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_client_certificate_may_be_absent_but_not_invalid() {
    let m = mtls("optional").await;
    assert_eq!(m.attempt(None, "/none").await, Ok(StatusCode::OK), "no certificate is fine");
    assert_eq!(m.attempt(Some(&m.good), "/good").await, Ok(StatusCode::OK));
    let foreign = m.attempt(Some(&m.foreign), "/foreign").await;
    assert!(foreign.is_err(), "an invalid certificate is refused even when optional: {foreign:?}");
    assert!(m.reached("/none") && m.reached("/good") && !m.reached("/foreign"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_by_the_header_read_timeout() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    one_cert(&dir);
    let yaml = format!(
        "version: 1\nlisteners: [{{ name: edge, bind: \"@LISTEN@\", tls: {{ {ONE_CERT} }} }}]\n\
         limits: {{ header_read_timeout: 300ms }}\nlogging: {{ access: {{ path: off }} }}\n\
         upstreams:\n  b: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ name: r, match: {{ path: / }}, upstream: b, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::start_in(&yaml, dir).await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    // Half a ClientHello record, then silence.
    s.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01]).await.expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("closed before WAIT");
    assert!(started.elapsed() < WAIT - Duration::from_secs(1), "closed by the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_and_tickets_survive_a_certificate_rotation() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let config = format!(
        "version: 1\nlisteners: [{{ name: edge, bind: \"127.0.0.1:0\", tls: {{ {ONE_CERT} }} }}]\n\
         logging: {{ access: {{ path: off }} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\n\
         routes:\n  - {{ name: r, match: {{ path: /r }}, upstream: b, auth: none }}\n",
        backend.url()
    );
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config).expect("write config");
    let gw = TestGateway::from_file(&path).await;
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let client = client_config(&ClientOptions { resumption: true, versions, ..trusting(&pki) });
        // Each connection reads a response, so TLS 1.3 tickets sent after the handshake arrive.
        let connect = || async {
            let mut conn = HttpsConn::connect(gw.addr, "localhost", client.clone()).await.expect("handshake");
            assert_eq!(conn.get("/r").await.expect("request").status, StatusCode::OK);
            conn
        };
        assert!(!connect().await.resumed, "{versions:?}: the first handshake is a full one");
        assert!(connect().await.resumed, "{versions:?}: the second resumes");
        pki.leaf(&["localhost"], false).write(&gw.dir, "server");
        gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
        assert!(connect().await.resumed, "{versions:?}: a ticket from before the reload still resumes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_active_counts_tls_connections_and_returns_to_zero() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let gw = tls_gateway(dir, ONE_CERT, &backend).await;
    let gauge = || {
        let text = gw.handle.metrics().render(&*gw.handle.current());
        text.lines()
            .find_map(|l| l.strip_prefix("portcullis_connections_active{listener=\"edge\"} ")?.parse::<i64>().ok())
    };
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut conn =
            HttpsConn::connect(gw.addr, "localhost", client_config(&trusting(&pki))).await.expect("handshake");
        assert_eq!(conn.get("/c").await.expect("request").status, StatusCode::OK);
        open.push(conn);
    }
    // Failed handshakes: a TLS 1.1 hello and a client that trusts another CA.
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(&tls11_client_hello([0x03, 0x01])).await.expect("write");
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut Vec::new())).await;
    let other = Pki::new("other");
    assert!(https_get(gw.addr, "localhost", client_config(&trusting(&other)), "/c").await.is_err());
    eventually("3 open connections", || async { (gauge() == Some(3)).then_some(()) }).await;
    drop(open);
    drop(s);
    eventually("no open connection", || async { (gauge() == Some(0)).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_session_ids_resume_across_a_reload() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = one_cert(&dir);
    let config = format!(
        "version: 1\nlisteners: [{{ name: edge, bind: \"127.0.0.1:0\", tls: {{ {ONE_CERT} }} }}]\n\
         logging: {{ access: {{ path: off }} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\n\
         routes:\n  - {{ name: r, match: {{ path: /r }}, upstream: b, auth: none }}\n",
        backend.url()
    );
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config).expect("write config");
    let gw = TestGateway::from_file(&path).await;
    let base = client_config(&ClientOptions { versions: &[&rustls::version::TLS12], ..trusting(&pki) });
    let mut client = (*base).clone();
    client.resumption =
        rustls::client::Resumption::default().tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
    let client = std::sync::Arc::new(client);
    let connect = || async {
        let mut conn = HttpsConn::connect(gw.addr, "localhost", client.clone()).await.expect("handshake");
        assert_eq!(conn.get("/r").await.expect("request").status, StatusCode::OK);
        conn
    };
    assert!(!connect().await.resumed);
    assert!(connect().await.resumed, "a session id resumes");
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    assert!(connect().await.resumed, "a session id from before the reload resumes");
}

/// A session resumed on a listener that requires client certificates must have had one
/// verified by that listener's CA: tickets from another listener, or from before a reload
/// that made certificates required, must not skip the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_never_skips_a_required_client_certificate() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let server = one_cert(&dir);
    let clients = Pki::new("partners-ca");
    clients.write_ca(&dir, "partners-ca.pem");
    let config = |partners_tls: &str| {
        format!(
            "version: 1\nlisteners:\n  - {{ name: public, bind: \"127.0.0.1:0\", tls: {{ {ONE_CERT} }} }}\n\
             \x20 - {{ name: partners, bind: \"127.0.0.2:0\", tls: {{ {ONE_CERT}{partners_tls} }} }}\n\
             logging: {{ access: {{ path: off }} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\n\
             routes:\n  - {{ name: r, match: {{ path: \"/{{*rest}}\" }}, upstream: b, auth: none }}\n",
            backend.url()
        )
    };
    let required = ", client_ca: partners-ca.pem, client_cert: required";
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config(required)).expect("write config");
    let gw = TestGateway::from_file(&path).await;
    let (public, partners) = (gw.listener("public").expect("public"), gw.listener("partners").expect("partners"));
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let no_cert = client_config(&ClientOptions { resumption: true, versions, ..trusting(&server) });
        let mut conn = HttpsConn::connect(public, "localhost", no_cert.clone()).await.expect("public handshake");
        assert_eq!(conn.get("/public").await.expect("request").status, StatusCode::OK);
        let mut again = HttpsConn::connect(public, "localhost", no_cert.clone()).await.expect("public again");
        assert!(again.resumed, "{versions:?}: resumption works on the public listener");
        assert_eq!(again.get("/public").await.expect("request").status, StatusCode::OK);
        let crossed = https_get(partners, "localhost", no_cert, "/crossed").await;
        assert!(crossed.is_err(), "{versions:?}: a public session resumed on the mTLS listener: {crossed:?}");
    }

    // A listener that becomes `required` by a reload does not honour older sessions.
    std::fs::write(&path, config("")).expect("write config");
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    let no_cert = client_config(&ClientOptions { resumption: true, ..trusting(&server) });
    let mut conn = HttpsConn::connect(partners, "localhost", no_cert.clone()).await.expect("open partners");
    assert_eq!(conn.get("/open").await.expect("request").status, StatusCode::OK);
    std::fs::write(&path, config(required)).expect("write config");
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    let after = https_get(partners, "localhost", no_cert, "/after").await;
    assert!(after.is_err(), "a session from before client certificates were required: {after:?}");
    assert!(!backend.requests().iter().any(|r| r.uri == "/crossed" || r.uri == "/after"));
}

/// `type: mtls`: the verified client certificate's subject names the consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_subject_maps_to_its_consumer() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let server = one_cert(&dir);
    let clients = Pki::new("partners-ca");
    clients.write_ca(&dir, "partners-ca.pem");
    let leaf = |subject: &[(rcgen::DnType, &str)]| {
        clients.issue(&crate::certs::LeafSpec { names: &["partner.example"], client: true, subject, not_after: None })
    };
    let acme = leaf(&[(rcgen::DnType::OrganizationName, "Acme"), (rcgen::DnType::CommonName, "acme-billing")]);
    let stranger = leaf(&[(rcgen::DnType::CommonName, "stranger")]);
    let yaml = format!(
        r#"version: 1
listeners:
  - name: edge
    bind: "@LISTEN@"
    tls: {{ {ONE_CERT}, client_ca: partners-ca.pem, client_cert: optional }}
logging: {{ access: {{ path: off }} }}
auth:
  partner_mtls: {{ type: mtls }}
consumers:
  acme: {{ mtls_subject: "CN=acme-billing, O=Acme" }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: {{ any: [partner_mtls] }} }}
"#,
        backend.url()
    );
    let gw = TestGateway::start_in(&yaml, dir).await;
    let call = |cert: Option<&Leaf>, path: &'static str| {
        let config = client_config(&ClientOptions { client_cert: cert, ..trusting(&server) });
        https_get(gw.addr, "localhost", config, path)
    };
    let r = call(Some(&acme), "/acme").await.expect("acme");
    assert_eq!(r.status, StatusCode::OK);
    let seen = &backend.requests()[0].headers;
    assert_eq!(seen["x-consumer"], "acme");
    assert_eq!(seen["x-auth-provider"], "partner_mtls");
    assert_eq!(seen["x-auth-subject"], "CN=acme-billing,O=Acme");
    let r = call(Some(&stranger), "/stranger").await.expect("stranger");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&r.body).contains("invalid_client_cert"), "{r:?}");
    let r = call(None, "/none").await.expect("no certificate");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&r.body).contains("missing_credentials"));
    assert_eq!(backend.count(), 1);
}
