//! Upstream TLS: the gateway verifies targets against the configured CA, sends and verifies
//! `server_name`, presents its client certificate to backends that demand one, speaks h2
//! over TLS, and fails loads on bad certificate files. Certificates come from a throwaway
//! rcgen CA per test; backends are rustls servers on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::certs::{Pki, server_config};
use crate::kit::{TestGateway, WAIT, get, scratch_dir};

/// What a TLS backend saw of each completed handshake.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub(crate) sni: Option<String>,
    pub(crate) alpn: Option<Vec<u8>>,
    pub(crate) client_cert: bool,
}

/// A TLS backend serving `service` (HTTP/1.1 or HTTP/2 by what the client speaks).
pub(crate) struct TlsBackend {
    pub(crate) addr: SocketAddr,
    pub(crate) handshakes: Arc<Mutex<Vec<Handshake>>>,
    pub(crate) failed: Arc<AtomicUsize>,
}

impl TlsBackend {
    pub(crate) async fn start<S, B>(config: Arc<ServerConfig>, service: S) -> Self
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TLS backend");
        let addr = listener.local_addr().expect("addr");
        let (handshakes, failed) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let acceptor = TlsAcceptor::from(config);
        let (seen, fails) = (handshakes.clone(), failed.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen, fails, service) = (acceptor.clone(), seen.clone(), fails.clone(), service.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        fails.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let conn = tls.get_ref().1;
                    seen.lock().expect("lock").push(Handshake {
                        sni: conn.server_name().map(str::to_owned),
                        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                        client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, handshakes, failed }
    }

    /// Answers `tls-ok <version> <path>` to every request.
    pub(crate) async fn echo(config: Arc<ServerConfig>) -> Self {
        Self::start(
            config,
            service_fn(|req: Request<Incoming>| async move {
                let text = format!("tls-ok {:?} {}", req.version(), req.uri().path());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            }),
        )
        .await
    }

    pub(crate) fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().expect("lock").clone()
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

/// A gateway whose upstream `u` has `upstream` (indented body lines) and one catch-all route.
async fn gateway_in(dir: std::path::PathBuf, upstream: &str) -> TestGateway {
    TestGateway::start_in(
        &format!(
            r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
  u:
{upstream}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: u, auth: none }}
"#
        ),
        dir,
    )
    .await
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_target_signed_by_the_configured_ca_is_verified_and_reached() {
    let pki = Pki::new("internal-ca");
    let backend = TlsBackend::echo(server_config(&pki.leaf(&["127.0.0.1"], false), None)).await;
    let dir = scratch_dir();
    write(&dir, "ca.pem", &pki.ca_pem);
    let ups = format!("    targets: [\"https://{}/base\"]\n    tls: {{ ca: ca.pem }}", backend.addr);
    let gw = gateway_in(dir, &ups).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), "tls-ok HTTP/1.1 /base/x");
    let hs = backend.handshakes();
    assert_eq!(hs[0].alpn.as_deref(), Some(&b"http/1.1"[..]), "ALPN http/1.1 for protocol http1");
    assert_eq!(hs[0].sni, None, "an IP target sends no SNI");
    // The pooled TLS connection is reused.
    let r = get(&gw.url("/y"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(backend.handshakes().len(), 1, "keep-alive over TLS");
}

#[tokio::test]
async fn a_target_signed_by_another_ca_gets_502_upstream_error() {
    let (trusted, other) = (Pki::new("trusted"), Pki::new("other"));
    let backend = TlsBackend::echo(server_config(&other.leaf(&["127.0.0.1"], false), None)).await;
    let dir = scratch_dir();
    write(&dir, "ca.pem", &trusted.ca_pem);
    let gw = gateway_in(dir, &format!("    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem }}", backend.addr)).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
    assert!(backend.handshakes().is_empty(), "no request went to an unverified target");
}

#[tokio::test]
async fn server_name_is_sent_as_sni_and_verified_and_a_mismatch_fails() {
    let pki = Pki::new("internal-ca");
    let backend = TlsBackend::echo(server_config(&pki.leaf(&["orders.internal"], false), None)).await;
    let dir = scratch_dir();
    write(&dir, "ca.pem", &pki.ca_pem);
    let ups = |name: &str| {
        format!("    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem, server_name: {name} }}", backend.addr)
    };
    let gw = gateway_in(dir.clone(), &ups("orders.internal")).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(backend.handshakes()[0].sni.as_deref(), Some("orders.internal"));
    gw.shutdown().await;

    let gw = gateway_in(dir.clone(), &ups("billing.internal")).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
    gw.shutdown().await;

    // Without the override the target's host (an IP the certificate does not name) fails too.
    let gw = gateway_in(dir, &format!("    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem }}", backend.addr)).await;
    assert_eq!(get(&gw.url("/x"), &[]).await.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_backend_demanding_a_client_certificate_accepts_the_gateway_only_with_one() {
    let (servers, clients) = (Pki::new("server-ca"), Pki::new("client-ca"));
    let backend = TlsBackend::echo(server_config(&servers.leaf(&["127.0.0.1"], false), Some(&clients))).await;
    let dir = scratch_dir();
    let gw_leaf = clients.leaf(&["gateway.internal"], true);
    write(&dir, "ca.pem", &servers.ca_pem);
    write(&dir, "gw.pem", &gw_leaf.cert_pem);
    write(&dir, "gw-key.pem", &gw_leaf.key_pem);
    let with = format!(
        "    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem, client_cert: gw.pem, client_key: gw-key.pem }}",
        backend.addr
    );
    let gw = gateway_in(dir.clone(), &with).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(backend.handshakes()[0].client_cert);
    gw.shutdown().await;

    let without = format!("    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem }}", backend.addr);
    let gw = gateway_in(dir, &without).await;
    let r = get(&gw.url("/x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
    assert_eq!(backend.handshakes().len(), 1, "the backend refused the handshake without a certificate");
}

#[tokio::test]
async fn h2_over_tls_negotiates_h2_and_reaches_the_target_as_http2() {
    let pki = Pki::new("internal-ca");
    let backend = TlsBackend::echo(server_config(&pki.leaf(&["127.0.0.1"], false), None)).await;
    let dir = scratch_dir();
    write(&dir, "ca.pem", &pki.ca_pem);
    let ups = format!("    targets: [\"https://{}\"]\n    protocol: h2\n    tls: {{ ca: ca.pem }}", backend.addr);
    let gw = gateway_in(dir, &ups).await;
    for _ in 0..3 {
        let r = get(&gw.url("/h2"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.text(), "tls-ok HTTP/2.0 /h2");
    }
    let hs = backend.handshakes();
    assert_eq!(hs.len(), 1, "one multiplexed connection");
    assert_eq!(hs[0].alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn a_failed_handshake_is_a_connect_error_that_retries_elsewhere() {
    let (trusted, other) = (Pki::new("trusted"), Pki::new("other"));
    let good = TlsBackend::echo(server_config(&trusted.leaf(&["127.0.0.1"], false), None)).await;
    let bad = TlsBackend::echo(server_config(&other.leaf(&["127.0.0.1"], false), None)).await;
    let dir = scratch_dir();
    write(&dir, "ca.pem", &trusted.ca_pem);
    let ups = format!(
        "    targets: [\"https://{}\", \"https://{}\"]\n    retries: {{ attempts: 1, on: [connect_error] }}\n    tls: {{ ca: ca.pem }}",
        bad.addr, good.addr
    );
    let gw = gateway_in(dir, &ups).await;
    for _ in 0..4 {
        let r = get(&gw.url("/x"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    assert!(bad.failed.load(Ordering::Relaxed) >= 1, "the bad target was tried");
}

#[tokio::test]
async fn active_health_checks_use_the_upstreams_tls_settings() {
    let (servers, clients) = (Pki::new("server-ca"), Pki::new("client-ca"));
    let probes = Arc::new(AtomicUsize::new(0));
    let seen = probes.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            if req.uri().path() == "/healthz" {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let config = server_config(&servers.leaf(&["127.0.0.1"], false), Some(&clients));
    let backend = TlsBackend::start(config, service).await;
    let dir = scratch_dir();
    let gw_leaf = clients.leaf(&["gateway.internal"], true);
    write(&dir, "ca.pem", &servers.ca_pem);
    write(&dir, "gw.pem", &gw_leaf.cert_pem);
    write(&dir, "gw-key.pem", &gw_leaf.key_pem);
    let ups = format!(
        "    targets: [\"https://{}\"]\n    health: {{ active: {{ path: /healthz, interval: 50ms, timeout: 1s, unhealthy_after: 1 }} }}\n    tls: {{ ca: ca.pem, client_cert: gw.pem, client_key: gw-key.pem }}",
        backend.addr
    );
    let gw = gateway_in(dir, &ups).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while probes.load(Ordering::Relaxed) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no health probe arrived over TLS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&gw.url("/x"), &[]).await.status, StatusCode::OK, "the target stays healthy");
    assert_eq!(backend.failed.load(Ordering::Relaxed), 0, "every probe handshake succeeded");
}

#[tokio::test]
async fn a_missing_or_invalid_certificate_file_fails_the_load_naming_it() {
    let dir = scratch_dir();
    let pki = Pki::new("ca");
    let leaf = pki.leaf(&["gw"], true);
    write(&dir, "ca.pem", &pki.ca_pem);
    write(&dir, "gw.pem", &leaf.cert_pem);
    write(&dir, "not-a-key.pem", "-----BEGIN NOTHING-----\nSECRET-KEY-MATERIAL\n-----END NOTHING-----\n");
    write(&dir, "garbage-ca.pem", "this is not PEM\n");
    let cases = [
        ("tls: { ca: missing.pem }", "missing.pem"),
        ("tls: { ca: garbage-ca.pem }", "garbage-ca.pem"),
        ("tls: { ca: ca.pem, client_cert: gw.pem, client_key: not-a-key.pem }", "not-a-key.pem"),
        ("tls: { ca: ca.pem, client_cert: gw.pem, client_key: ca.pem }", "ca.pem"),
    ];
    for (tls, file) in cases {
        let text = format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  u: {{ targets: [\"https://127.0.0.1:1\"], {tls} }}\n"
        );
        let loaded = portcullis_config::load_str(&text, "t.yaml", &dir, None).expect("loads");
        let err = portcullis_proxy::prepare(&loaded).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(file) && err.contains("upstreams.u.tls"), "{tls}: {err}");
        assert!(!err.contains("SECRET-KEY-MATERIAL"), "key content is never echoed: {err}");
    }
}

#[test]
fn validate_reads_the_certificate_files_like_run_does() {
    let dir = scratch_dir();
    let pki = Pki::new("ca");
    write(&dir, "ca.pem", &pki.ca_pem);
    let config = |ca: &str| {
        format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nupstreams:\n  u: {{ targets: [\"https://127.0.0.1:1\"], tls: {{ ca: {ca} }} }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: u, auth: none }}\n"
        )
    };
    let run = |file: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["validate", "-c", dir.join(file).to_str().unwrap_or_default()])
            .output()
            .expect("run portcullis");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    write(&dir, "good.yaml", &config("ca.pem"));
    write(&dir, "bad.yaml", &config("gone.pem"));
    let (code, out) = run("good.yaml");
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run("bad.yaml");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("gone.pem") && out.contains("base: 1 error(s)"), "{out}");
}
