//! The HTTP source against a tiny IdP on 127.0.0.1: JWKS, discovery, Cache-Control, refusals,
//! and an IdP that goes away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::jwt::http::{checked_uri, max_age};
use crate::jwt::{FetchError, HttpJwksSource, JwksSource, JwtError};

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn ok(body: impl Into<Vec<u8>>, headers: Vec<(&'static str, String)>) -> Reply {
    Reply { status: 200, headers, body: body.into() }
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;
type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// Serves fixed replies by path, counting requests per path; unknown paths get a 404.
struct Idp {
    addr: SocketAddr,
    scheme: &'static str,
    routes: Routes,
    hits: Hits,
    task: tokio::task::JoinHandle<()>,
}

impl Idp {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Over TLS with a fresh self-signed certificate for 127.0.0.1; also returns its PEM.
    async fn start_tls() -> (Self, String) {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        let private = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private)
            .expect("server config");
        (Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await, cert.pem())
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (routes, hits): (Routes, Hits) = (Arc::default(), Arc::default());
        let (r, h) = (routes.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (routes, hits, tls) = (r.clone(), h.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(stream, routes, hits).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                answer(stream, routes, hits).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, scheme, routes, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().expect("lock").insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }

    fn stop(self) {
        self.task.abort();
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, routes: Routes, hits: Hits) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
    *hits.lock().expect("lock").entry(path.clone()).or_default() += 1;
    let reply = routes.lock().expect("lock").get(&path).cloned();
    let Some(reply) = reply else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    if reply.status == 0 {
        // Accept and never answer.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut out = format!("HTTP/1.1 {} X\r\ncontent-length: {}\r\n", reply.status, reply.body.len());
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.shutdown().await;
}

fn jwks_settings(idp: &Idp) -> JwtSettings {
    JwtSettings { jwks_uri: Some(idp.url("/keys")), ..settings() }
}

async fn fetch(settings: &JwtSettings) -> Result<crate::jwt::Fetched, FetchError> {
    HttpJwksSource::new(settings).expect("source").fetch().await
}

#[tokio::test]
async fn jwks_is_fetched_with_its_max_age() {
    let idp = Idp::start().await;
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![("cache-control", "public, max-age=300".into())]));
    let fetched = fetch(&jwks_settings(&idp)).await.expect("fetched");
    assert_eq!(fetched.jwks, standard_jwks());
    assert_eq!(fetched.max_age, Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn oidc_discovery_finds_the_keys_once() {
    let idp = Idp::start().await;
    let issuer = idp.url("/tenant");
    let discovery = json!({ "issuer": issuer, "jwks_uri": idp.url("/keys") }).to_string();
    idp.route("/tenant/.well-known/openid-configuration", ok(discovery, vec![]));
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![]));
    let settings = JwtSettings { issuer: issuer.clone(), ..settings() };
    let source = Arc::new(HttpJwksSource::new(&settings).expect("source"));
    let provider = JwtProvider::for_test(settings, source, Arc::new(Recorder::default()), Duration::ZERO);
    provider.clone().refetch_for_unknown_kid().await;
    provider.clone().refetch_for_unknown_kid().await;
    let mut claims = claims();
    claims["iss"] = json!(issuer);
    assert!(provider.verify_now(&rs256(&claims)).is_ok());
    assert_eq!(idp.hits("/keys"), 2);
    assert_eq!(idp.hits("/tenant/.well-known/openid-configuration"), 1, "the discovered jwks_uri is kept");
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let idp = Idp::start().await;
    let discovery = json!({ "issuer": "https://evil.test", "jwks_uri": idp.url("/keys") }).to_string();
    idp.route("/tenant/.well-known/openid-configuration", ok(discovery, vec![]));
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![]));
    let settings = JwtSettings { issuer: idp.url("/tenant"), ..settings() };
    assert!(matches!(fetch(&settings).await, Err(FetchError::Discovery(_))));
    assert_eq!(idp.hits("/keys"), 0);
}

#[tokio::test]
async fn redirects_errors_and_huge_bodies_are_failures() {
    let idp = Idp::start().await;
    let moved = Reply { status: 302, headers: vec![("location", idp.url("/keys"))], body: vec![] };
    idp.route("/moved", moved);
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![]));
    idp.route("/huge", ok(vec![b' '; crate::jwt::http::MAX_BODY_BYTES + 1], vec![]));
    let at = |path: &str| JwtSettings { jwks_uri: Some(idp.url(path)), ..settings() };
    assert!(matches!(fetch(&at("/moved")).await, Err(FetchError::Status(302))));
    assert!(matches!(fetch(&at("/missing")).await, Err(FetchError::Status(404))));
    assert!(matches!(fetch(&at("/huge")).await, Err(FetchError::BodyTooLarge)));
    assert_eq!(idp.hits("/keys"), 0, "the redirect was not followed");
}

#[tokio::test(start_paused = true)]
async fn an_idp_that_never_answers_times_out() {
    let idp = Idp::start().await;
    idp.route("/keys", Reply { status: 0, headers: vec![], body: vec![] });
    assert!(matches!(fetch(&jwks_settings(&idp)).await, Err(FetchError::Timeout)));
}

#[tokio::test]
async fn https_fetch_trusts_the_configured_ca_only() {
    let (idp, ca_pem) = Idp::start_tls().await;
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![]));
    let ca = std::env::temp_dir().join(format!("portcullis-jwt-ca-{}-{}.pem", std::process::id(), idp.addr.port()));
    std::fs::write(&ca, ca_pem).expect("write CA");
    let trusted = JwtSettings { ca: Some(ca.clone()), ..jwks_settings(&idp) };
    let fetched = fetch(&trusted).await;
    let _ = std::fs::remove_file(&ca);
    assert_eq!(fetched.expect("fetched over TLS").jwks, standard_jwks());
    // The system roots do not know the self-signed certificate.
    assert!(matches!(fetch(&jwks_settings(&idp)).await, Err(FetchError::Tls(..))));
    assert_eq!(idp.hits("/keys"), 1);
}

#[tokio::test]
async fn known_keys_keep_working_while_the_idp_is_down() {
    let idp = Idp::start().await;
    idp.route("/keys", ok(standard_jwks().to_vec(), vec![]));
    let settings = jwks_settings(&idp);
    let events = Arc::new(Recorder::default());
    let source = Arc::new(HttpJwksSource::new(&settings).expect("source"));
    let provider = JwtProvider::for_test(settings, source, events.clone(), Duration::ZERO);
    provider.clone().refetch_for_unknown_kid().await;
    idp.route("/keys", ok("{ not json", vec![]));
    provider.clone().refetch_for_unknown_kid().await;
    idp.stop();
    tokio::time::sleep(Duration::from_millis(20)).await;
    provider.clone().refetch_for_unknown_kid().await;
    assert_eq!(events.results(), ["ok", "error", "error"]);
    assert!(provider.verify_now(&token(Algorithm::ES256, &ec1(), "ec1", &claims())).is_ok());
    assert_eq!(provider.verify_now(&token(Algorithm::RS256, &rsa2(), "rs2", &claims())), Err(JwtError::UnknownKid));
}

#[test]
fn only_https_or_loopback_http_is_fetched() {
    assert!(checked_uri("https://login.example.com/keys").is_ok());
    assert!(checked_uri("http://127.0.0.1:8080/keys").is_ok());
    assert!(checked_uri("http://[::1]/keys").is_ok());
    assert!(checked_uri("http://localhost/keys").is_ok());
    for bad in [
        "http://login.example.com/keys",
        "ftp://127.0.0.1/",
        "/keys",
        "",
        "http://10.0.0.1/",
        "https://user:pw@idp.test/",
    ] {
        assert!(checked_uri(bad).is_err(), "{bad}");
    }
    let plain = JwtSettings { jwks_uri: Some("http://idp.example.com/keys".into()), ..settings() };
    assert!(HttpJwksSource::new(&plain).is_err());
    let missing_ca = JwtSettings { ca: Some("/nonexistent/ca.pem".into()), ..settings() };
    assert!(HttpJwksSource::new(&missing_ca).is_err());
}

#[test]
fn cache_control_sets_the_refresh() {
    let parse = |values: &[&str]| {
        let mut headers = http::HeaderMap::new();
        for v in values {
            headers.append(http::header::CACHE_CONTROL, v.parse().expect("header value"));
        }
        max_age(&headers)
    };
    assert_eq!(parse(&[]), None);
    assert_eq!(parse(&["public, max-age=3600"]), Some(Duration::from_secs(3600)));
    assert_eq!(parse(&["Max-Age=10"]), Some(Duration::from_secs(10)));
    assert_eq!(parse(&["max-age=3600, no-cache"]), Some(Duration::ZERO));
    assert_eq!(parse(&["private", "no-store"]), Some(Duration::ZERO));
    assert_eq!(parse(&["max-age=banana"]), None);
}
