//! Certificate rotation (SPEC §4): under a steady stream of fresh handshakes and keep-alive
//! HTTP/1.1 and HTTP/2 requests, certificate files replaced by rename, rewritten in place
//! (cert, then key, apart) and swapped Kubernetes-style through a symlink are served to new
//! handshakes within seconds with zero failed requests, and the expiry gauge follows; a
//! shutdown closes idle TLS connections without waiting for the grace.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use rustls_pki_types::CertificateDer;

use crate::certs::{ClientOptions, HttpsConn, Leaf, LeafSpec, Pki, client_config, days_from_now};
use crate::kit::{Backend, TestGateway, WAIT, eventually, scratch_dir};
use crate::reload::{TOKEN, metric, write_config};

/// Requests made while certificates rotate: fresh connections, and a keep-alive connection
/// each over HTTP/1.1 and HTTP/2 (counted together).
#[derive(Default)]
struct Traffic {
    stop: AtomicBool,
    fresh_ok: AtomicUsize,
    kept_ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// The certificate the latest fresh handshake was given.
    latest: Mutex<Option<CertificateDer<'static>>>,
}

impl Traffic {
    fn fail(&self, what: String) {
        self.failures.lock().expect("lock").push(what);
    }

    fn start(self: &Arc<Self>, addr: SocketAddr, pki: &Pki) -> Vec<tokio::task::JoinHandle<()>> {
        let config = client_config(&ClientOptions { trust: Some(pki), ..ClientOptions::default() });
        let fresh = self.clone();
        let fresh_config = config.clone();
        let fresh = tokio::spawn(async move {
            while !fresh.stop.load(Ordering::Relaxed) {
                match HttpsConn::connect(addr, "a.test", fresh_config.clone()).await {
                    Ok(mut conn) => {
                        *fresh.latest.lock().expect("lock") = conn.peer_cert.clone();
                        match conn.get("/one").await {
                            Ok(r) if r.status == StatusCode::OK => fresh.fresh_ok.fetch_add(1, Ordering::Relaxed),
                            other => return fresh.fail(format!("fresh request: {other:?}")),
                        };
                    }
                    Err(e) => return fresh.fail(format!("fresh handshake: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let h2 = client_config(&ClientOptions { trust: Some(pki), alpn: &[b"h2"], ..ClientOptions::default() });
        let mut tasks = vec![fresh];
        for config in [config, h2] {
            let kept = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = match HttpsConn::connect(addr, "a.test", config).await {
                    Ok(conn) => conn,
                    Err(e) => return kept.fail(format!("keep-alive handshake: {e}")),
                };
                while !kept.stop.load(Ordering::Relaxed) {
                    match conn.get("/one").await {
                        Ok(r) if r.status == StatusCode::OK => kept.kept_ok.fetch_add(1, Ordering::Relaxed),
                        other => return kept.fail(format!("keep-alive request ({:?}): {other:?}", conn.alpn)),
                    };
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
        tasks
    }

    fn assert_clean(&self) {
        let failures = self.failures.lock().expect("lock");
        assert!(failures.is_empty(), "failed requests during rotation: {failures:#?}");
    }

    /// Waits until both clients have made `n` more successful requests.
    async fn advance(&self, n: usize) {
        let (fresh, kept) = (self.fresh_ok.load(Ordering::Relaxed), self.kept_ok.load(Ordering::Relaxed));
        eventually("requests to keep succeeding", || async {
            self.assert_clean();
            let moved =
                self.fresh_ok.load(Ordering::Relaxed) >= fresh + n && self.kept_ok.load(Ordering::Relaxed) >= kept + n;
            moved.then_some(())
        })
        .await;
    }

    /// Waits until a fresh handshake is given `cert`; returns how long that took.
    async fn until_served(&self, cert: &CertificateDer<'static>) -> Duration {
        let started = Instant::now();
        eventually("new handshakes to get the new certificate", || async {
            self.assert_clean();
            (self.latest.lock().expect("lock").as_ref() == Some(cert)).then_some(())
        })
        .await;
        started.elapsed()
    }
}

/// A certificate for `a.test` expiring in `days`.
fn a_test(pki: &Pki, days: u64) -> Leaf {
    let subject = [(rcgen::DnType::CommonName, "a.test")];
    pki.issue(&LeafSpec { names: &["a.test"], client: false, subject: &subject, not_after: Some(days_from_now(days)) })
}

/// The expiry gauge of `a.test`, as days.
async fn expiry_days(gw: &TestGateway) -> Option<f64> {
    metric(gw, r#"portcullis_tls_certificate_expiry_seconds{name="a.test"}"#).await.map(|s| s / 86_400.0)
}

async fn wait_for_expiry(gw: &TestGateway, days: u64) {
    let want = days as f64;
    eventually(&format!("the expiry metric to show {days} days"), || async {
        expiry_days(gw).await.filter(|d| (want - 0.01..=want).contains(d))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_certificate_files_under_steady_traffic_fails_no_request() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    a_test(&pki, 30).write(&dir, "a");
    let config = format!(
        r#"version: 1
listeners:
  - name: edge
    bind: "127.0.0.1:0"
    tls: {{ certificates: [{{ cert: a.pem, key: a-key.pem }}] }}
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }} }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: one, match: {{ path: /one }}, upstream: b, auth: none }}
"#,
        backend.url()
    );
    let gw = TestGateway::start_watching(&write_config(&dir, &config)).await.with_admin().await;
    wait_for_expiry(&gw, 30).await;
    let traffic = Arc::new(Traffic::default());
    let clients = traffic.start(gw.addr, &pki);
    traffic.advance(20).await;

    // 1. Written aside, then renamed over the old files (cert, then key).
    let second = a_test(&pki, 90);
    second.write(&dir, "next");
    std::fs::rename(dir.join("next.pem"), dir.join("a.pem")).expect("rename cert");
    std::fs::rename(dir.join("next-key.pem"), dir.join("a-key.pem")).expect("rename key");
    let took = traffic.until_served(&second.der).await;
    assert!(took < Duration::from_secs(5), "the renamed certificate was served after {took:?}");
    wait_for_expiry(&gw, 90).await;
    traffic.advance(20).await;

    // 2. Written in place, the key well after the certificate: the watcher may load the new
    // certificate with the old key in between, which must be refused without harm.
    let third = a_test(&pki, 120);
    std::fs::write(dir.join("a.pem"), &third.cert_pem).expect("write cert");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    traffic.advance(5).await;
    std::fs::write(dir.join("a-key.pem"), &third.key_pem).expect("write key");
    let took = traffic.until_served(&third.der).await;
    assert!(took < Duration::from_secs(5), "the rewritten certificate was served after {took:?}");
    wait_for_expiry(&gw, 120).await;
    traffic.advance(20).await;

    traffic.stop.store(true, Ordering::Relaxed);
    for c in clients {
        tokio::time::timeout(WAIT, c).await.expect("client stops").expect("client task");
    }
    traffic.assert_clean();
    let (fresh, kept) = (traffic.fresh_ok.load(Ordering::Relaxed), traffic.kept_ok.load(Ordering::Relaxed));
    assert!(fresh >= 60 && kept >= 60, "fresh {fresh}, keep-alive {kept}");
    let ok = metric(&gw, r#"portcullis_config_reloads_total{result="ok"}"#).await.unwrap_or(0.0);
    assert!(ok >= 2.0, "one reload per rotation at least: {ok}");
}

/// Kubernetes mounts a Secret as symlinks into a `..data` link that is swapped atomically.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_style_symlink_swap_rotates_the_certificate() {
    use std::os::unix::fs::symlink;
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let secret = |version: &str, days| {
        let leaf = a_test(&pki, days);
        std::fs::create_dir_all(dir.join(version)).expect("mkdir");
        leaf.write(&dir.join(version), "a");
        leaf
    };
    let first = secret("..v1", 30);
    symlink("..v1", dir.join("..data")).expect("link ..data");
    symlink("..data/a.pem", dir.join("a.pem")).expect("link cert");
    symlink("..data/a-key.pem", dir.join("a-key.pem")).expect("link key");
    let config = format!(
        "version: 1\nlisteners: [{{ name: edge, bind: \"127.0.0.1:0\", tls: {{ certificates: [{{ cert: a.pem, key: a-key.pem }}] }} }}]\n\
         logging: {{ access: {{ path: off }} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\n\
         routes:\n  - {{ name: one, match: {{ path: /one }}, upstream: b, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::start_watching(&write_config(&dir, &config)).await;
    let client = client_config(&ClientOptions { trust: Some(&pki), ..ClientOptions::default() });
    let served = || async {
        let conn = HttpsConn::connect(gw.addr, "a.test", client.clone()).await.expect("handshake");
        conn.peer_cert.expect("a certificate")
    };
    assert!(served().await == first.der);

    let second = secret("..v2", 90);
    symlink("..v2", dir.join("..data_tmp")).expect("link ..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    eventually("the swapped-in certificate to be served", || async { (served().await == second.der).then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_tls_keep_alive_connections_without_waiting_for_the_grace() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    a_test(&pki, 30).write(&dir, "a");
    let config = format!(
        "version: 1\nlisteners: [{{ name: edge, bind: \"127.0.0.1:0\", tls: {{ certificates: [{{ cert: a.pem, key: a-key.pem }}] }} }}]\n\
         shutdown_grace: 30s\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  b: {{ targets: [\"{}\"] }}\n\
         routes:\n  - {{ name: one, match: {{ path: /one }}, upstream: b, auth: none }}\n",
        backend.url()
    );
    let gw = TestGateway::from_file(&write_config(&dir, &config)).await;
    let mut idle = Vec::new();
    for alpn in [&[&b"http/1.1"[..]][..], &[&b"h2"[..]][..]] {
        let client = client_config(&ClientOptions { trust: Some(&pki), alpn, ..ClientOptions::default() });
        let mut conn = HttpsConn::connect(gw.addr, "a.test", client).await.expect("handshake");
        assert_eq!(conn.get("/one").await.expect("request").status, StatusCode::OK);
        idle.push(conn);
    }
    let started = Instant::now();
    gw.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the drain waited {:?} for idle connections",
        started.elapsed()
    );
    drop(idle);
}
