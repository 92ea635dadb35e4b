//! The admin API (SPEC §5), in process on 127.0.0.1:0: `/health` and `/ready` open,
//! everything else behind the bearer token of the current config (401 problem documents with
//! `WWW-Authenticate`), `public_metrics`, the Prometheus text, `/certificates`, `/routes`,
//! `/upstreams`, and a token rotated by a reload.

use std::path::PathBuf;

use http::StatusCode;

use crate::certs::{LeafSpec, Pki, days_from_now};
use crate::kit::{Backend, TestGateway, get, scratch_dir};
use crate::reload::{TOKEN, admin, metric, write_config};

/// A plain listener, route `r` to `backend`, and the admin map's body `admin`.
fn config(backend: &Backend, admin: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", {admin} }}
logging: {{ access: {{ path: off }} }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

async fn start(backend: &Backend, admin: &str) -> (TestGateway, PathBuf) {
    let dir = scratch_dir();
    let path = write_config(&dir, &config(backend, admin));
    (TestGateway::from_file(&path).await.with_admin().await, dir)
}

fn assert_unauthorized(r: &crate::kit::Reply, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{what}: WWW-Authenticate `{challenge}`");
    assert_eq!(r.json()["status"], 401, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_answer_without_a_token() {
    let backend = Backend::ok().await;
    let (gw, _) = start(&backend, &format!("token: \"{TOKEN}\"")).await;
    let health = admin(&gw, "GET", "/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = admin(&gw, "GET", "/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    assert!(ready.json()["config_hash"].as_str().is_some_and(|h| !h.is_empty()), "{}", ready.text());
    let missing = admin(&gw, "GET", "/no-such-endpoint", Some(TOKEN)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_count_requests_by_route_method_and_status() {
    let backend = Backend::ok().await;
    let (gw, _) = start(&backend, &format!("token: \"{TOKEN}\"")).await;
    let r = admin(&gw, "GET", "/metrics", None).await;
    assert_unauthorized(&r, "no token");
    assert_eq!(r.json()["code"], "missing_credentials");
    let r = admin(&gw, "GET", "/metrics", Some("not-the-token")).await;
    assert_unauthorized(&r, "a wrong token");
    assert_eq!(r.json()["code"], "invalid_token");
    assert!(r.header("www-authenticate").is_some_and(|c| c.contains("invalid_token")));
    assert!(!r.text().contains(TOKEN) && !r.text().contains("not-the-token"), "no token echoed: {}", r.text());
    for path in ["/routes", "/upstreams", "/certificates"] {
        assert_unauthorized(&admin(&gw, "GET", path, None).await, path);
    }
    assert_unauthorized(&admin(&gw, "POST", "/config/reload", Some("nope")).await, "reload");

    for _ in 0..3 {
        assert_eq!(get(&gw.url("/r"), &[]).await.status, StatusCode::OK);
    }
    assert_eq!(get(&gw.url("/nowhere"), &[]).await.status, StatusCode::NOT_FOUND);
    let r = admin(&gw, "GET", "/metrics", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(text.contains("portcullis_requests_total{route=\"r\",method=\"GET\",status=\"200\"} 3"), "{text}");
    assert!(text.contains("status=\"404\"} 1"), "{text}");
    assert!(text.contains("portcullis_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("portcullis_upstream_duration_seconds_count{upstream=\"b\"} 3"), "{text}");
    assert!(text.contains("portcullis_connections_active{listener=\"main\"}"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_metrics_opens_metrics_and_nothing_else() {
    let backend = Backend::ok().await;
    let (gw, _) = start(&backend, &format!("token: \"{TOKEN}\", public_metrics: true")).await;
    assert_eq!(get(&gw.url("/r"), &[]).await.status, StatusCode::OK);
    let r = admin(&gw, "GET", "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("portcullis_requests_total{route=\"r\",method=\"GET\",status=\"200\"} 1"));
    assert_unauthorized(&admin(&gw, "GET", "/routes", None).await, "/routes");
    assert_unauthorized(&admin(&gw, "POST", "/config/reload", None).await, "/config/reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_upstreams_describe_the_current_config() {
    let backend = Backend::ok().await;
    let (gw, _) = start(&backend, &format!("token: \"{TOKEN}\"")).await;
    let routes = admin(&gw, "GET", "/routes", Some(TOKEN)).await.json();
    assert_eq!(routes[0]["name"], "r", "{routes}");
    assert_eq!(routes[0]["upstream"], "b", "{routes}");
    let upstreams = admin(&gw, "GET", "/upstreams", Some(TOKEN)).await.json();
    assert_eq!(upstreams[0]["name"], "b", "{upstreams}");
    assert_eq!(upstreams[0]["targets"][0]["target"], backend.url().as_str(), "{upstreams}");
    assert_eq!(upstreams[0]["targets"][0]["healthy"], true, "{upstreams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_lists_name_sans_and_days_left_and_the_expiry_metric_agrees() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let leaf = |names, days| {
        let subject = [(rcgen::DnType::CommonName, "edge")];
        pki.issue(&LeafSpec { names, client: false, subject: &subject, not_after: Some(days_from_now(days)) })
    };
    leaf(&["api.test", "www.api.test"], 30).write(&dir, "api");
    leaf(&["*.internal.test"], 400).write(&dir, "internal");
    let text = config(&backend, &format!("token: \"{TOKEN}\"")).replace(
        r#"[{ name: main, bind: "127.0.0.1:0" }]"#,
        r#"[{ name: main, bind: "127.0.0.1:0", tls: { certificates: [{ cert: api.pem, key: api-key.pem }, { cert: internal.pem, key: internal-key.pem }] } }]"#,
    );
    let gw = TestGateway::from_file(&write_config(&dir, &text)).await.with_admin().await;
    let certs = admin(&gw, "GET", "/certificates", Some(TOKEN)).await.json();
    let list = certs.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{certs}");
    assert_eq!(list[0]["name"], "api.test", "the first DNS SAN names it: {certs}");
    assert_eq!(list[0]["sans"], serde_json::json!(["DNS:api.test", "DNS:www.api.test"]), "{certs}");
    assert_eq!(list[0]["days_left"], 29, "30 days less the seconds since: {certs}");
    assert!(list[0]["not_after"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 20), "{certs}");
    assert_eq!(list[1]["name"], "*.internal.test", "{certs}");
    assert_eq!(list[1]["days_left"], 399, "{certs}");

    let seconds = metric(&gw, r#"portcullis_tls_certificate_expiry_seconds{name="api.test"}"#).await;
    let days = seconds.expect("expiry gauge of api.test") / 86_400.0;
    assert!((29.99..=30.0).contains(&days), "{days}");
    let seconds = metric(&gw, r#"portcullis_tls_certificate_expiry_seconds{name="*.internal.test"}"#).await;
    assert!(seconds.is_some_and(|s| s > 399.0 * 86_400.0), "{seconds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_admin_token() {
    let backend = Backend::ok().await;
    let (gw, dir) = start(&backend, "token: \"first-token\"").await;
    assert_eq!(admin(&gw, "GET", "/routes", Some("first-token")).await.status, StatusCode::OK);
    write_config(&dir, &config(&backend, "token: \"second-token\""));
    let r = admin(&gw, "POST", "/config/reload", Some("first-token")).await;
    assert_eq!(r.status, StatusCode::OK, "the reload is authorised by the token in force: {}", r.text());
    assert!(r.json()["hash"].as_str().is_some_and(|h| !h.is_empty()), "{}", r.text());
    assert_unauthorized(&admin(&gw, "GET", "/routes", Some("first-token")).await, "the old token");
    assert_eq!(admin(&gw, "GET", "/routes", Some("second-token")).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_file_reference_rotates_when_the_file_changes() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    std::fs::write(dir.join("admin-token"), "from-file-1\n").expect("write token");
    let path = write_config(&dir, &config(&backend, "token: \"${file:admin-token}\""));
    let gw = TestGateway::start_watching(&path).await.with_admin().await;
    assert_eq!(admin(&gw, "GET", "/routes", Some("from-file-1")).await.status, StatusCode::OK, "newline trimmed");
    std::fs::write(dir.join("admin-token"), "from-file-2\n").expect("write token");
    crate::kit::eventually("the new token to be accepted", || async {
        (admin(&gw, "GET", "/routes", Some("from-file-2")).await.status == StatusCode::OK).then_some(())
    })
    .await;
    assert_unauthorized(&admin(&gw, "GET", "/routes", Some("from-file-1")).await, "the old token");
}

/// Two Prometheus servers (an HA pair) scrape at the same moment: each must get every series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_each_get_every_series() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    pki.leaf(&["api.test"], false).write(&dir, "api");
    let text = config(&backend, &format!("token: \"{TOKEN}\"")).replace(
        r#"[{ name: main, bind: "127.0.0.1:0" }]"#,
        r#"[{ name: main, bind: "127.0.0.1:0", tls: { certificates: [{ cert: api.pem, key: api-key.pem }] } }]"#,
    );
    let gw = TestGateway::from_file(&write_config(&dir, &text)).await.with_admin().await;
    let url = gw.admin_url("/metrics");
    let scrapes = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut missing = 0;
            for _ in 0..25 {
                let r = get(&url, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
                let text = r.text();
                if !text.contains("portcullis_tls_certificate_expiry_seconds{name=\"api.test\"}")
                    || !text.contains("portcullis_upstream_target_healthy{")
                {
                    missing += 1;
                }
            }
            missing
        })
    });
    let mut missing = 0;
    for s in scrapes.collect::<Vec<_>>() {
        missing += s.await.expect("scrape task");
    }
    assert_eq!(missing, 0, "scrapes missing the certificate or target series");
}

/// The admin listener is bound once, at start. A reload that drops the token (or the whole
/// `admin` section) must not leave a listener that is off loopback open to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_without_a_token_does_not_open_an_admin_api_bound_off_loopback() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let exposed = config(&backend, &format!("token: \"{TOKEN}\"")).replace("127.0.0.1:1", "0.0.0.0:1");
    let path = write_config(&dir, &exposed);
    let gw = TestGateway::from_file(&path).await.with_admin_on("0.0.0.0:0".parse().expect("addr")).await;
    assert_eq!(admin(&gw, "GET", "/routes", Some(TOKEN)).await.status, StatusCode::OK);

    let without_admin: String =
        config(&backend, "").lines().filter(|l| !l.starts_with("admin:")).collect::<Vec<_>>().join("\n");
    write_config(&dir, &without_admin);
    let r = admin(&gw, "POST", "/config/reload", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_unauthorized(&admin(&gw, "GET", "/routes", None).await, "no token configured, listener off loopback");
    assert_unauthorized(&admin(&gw, "GET", "/metrics", None).await, "/metrics");
    assert_unauthorized(&admin(&gw, "POST", "/config/reload", None).await, "/config/reload");
    assert_eq!(admin(&gw, "GET", "/health", None).await.status, StatusCode::OK, "liveness stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_an_admin_api_on_loopback_is_open_to_local_processes() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let path = write_config(&dir, &config(&backend, "public_metrics: false"));
    let gw = TestGateway::from_file(&path).await.with_admin().await;
    assert_eq!(admin(&gw, "GET", "/routes", None).await.status, StatusCode::OK);
    assert_eq!(admin(&gw, "GET", "/metrics", None).await.status, StatusCode::OK);
}
