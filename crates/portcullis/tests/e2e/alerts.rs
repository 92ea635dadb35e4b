//! The operator's starting kit in `deploy/`: Prometheus alert rules that `promtool` accepts and
//! whose unit tests fire every alert (Debian's `prometheus` package, installed by
//! `scripts/prometheus.sh` when missing), and a Grafana dashboard and alert rules that name only
//! metrics a running gateway really exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use http::StatusCode;

use crate::certs::Pki;
use crate::idp::{Idp, RSA1, SigningKey};
use crate::kit::{Backend, TestGateway, get, scratch_dir};
use crate::reload::{TOKEN, admin, write_config};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(file: &str) -> PathBuf {
    repo().join("deploy").join(file)
}

fn promtool_installed() -> bool {
    let status = Command::new("bash").arg(repo().join("scripts/prometheus.sh")).status();
    if matches!(&status, Ok(s) if s.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: could not install promtool: {status:?}");
    eprintln!("SKIPPED: promtool could not be installed ({status:?}); run scripts/prometheus.sh as root");
    false
}

fn promtool(args: &[&str], file: &Path) -> String {
    let out = Command::new("promtool").args(args).arg(file).output().expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} {}:\n{text}", file.display());
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_each_alert_fires_in_its_unit_test() {
    if !promtool_installed() {
        return;
    }
    let rules = deploy("prometheus/alerts.yaml");
    let checked = promtool(&["check", "rules"], &rules);
    let alerts = alert_names(&std::fs::read_to_string(&rules).expect("alerts.yaml"));
    assert!(checked.contains(&format!("SUCCESS: {} rules found", alerts.len())), "{checked}");
    promtool(&["test", "rules"], &deploy("prometheus/alerts_test.yaml"));
    // Every alert has a unit test that expects it to fire (a non-empty `exp_alerts`).
    let tests = std::fs::read_to_string(deploy("prometheus/alerts_test.yaml")).expect("alerts_test.yaml");
    let fired: BTreeSet<String> = tests
        .split("alertname: ")
        .skip(1)
        .filter(|case| !case.lines().nth(1).unwrap_or_default().contains("exp_alerts: []"))
        .filter_map(|case| case.lines().next().map(|l| l.trim().to_owned()))
        .collect();
    let missing: Vec<_> = alerts.iter().filter(|a| !fired.contains(*a)).collect();
    assert!(missing.is_empty(), "alerts no unit test fires: {missing:?}");
}

fn alert_names(rules: &str) -> BTreeSet<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(|a| a.trim().to_owned()).collect()
}

/// Every `portcullis_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portcullis_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names a Prometheus text exposition declares: a counter `x` is sampled as
/// `x_total`, a histogram as `x_bucket`, `x_sum` and `x_count`.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(decl) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = decl.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{}{s}", name.trim_end_matches("_total")));
        }
    }
    names
}

/// A gateway whose traffic makes every metric family show: a TLS listener (certificate expiry),
/// a JWT provider (JWKS fetches), API keys with a plan's quota, a rate limit, a cached route
/// a reload, a WAF block and spans for a collector that is not there. Families without a sample are not in the exposition at all, so each needs
/// its traffic.
fn busy_config(backend: &Backend, idp: &Idp) -> String {
    let key = portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(b"pcl_alerts_key"));
    format!(
        r#"version: 1
listeners:
  - {{ name: main, bind: "127.0.0.1:0" }}
  - {{ name: edge, bind: "127.0.0.1:{tls_port}", tls: {{ certificates: [{{ cert: server.pem, key: server-key.pem }}] }} }}
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }} }}
tracing: {{ otlp_endpoint: "http://127.0.0.1:{dead_port}", sample_ratio: 1.0 }}
waf: {{ mode: block }}
auth:
  corp: {{ type: jwt, issuer: "{issuer}", jwks_uri: "{jwks}", audiences: ["api://orders"], algorithms: [RS256] }}
  keys: {{ type: api_key, header: X-Api-Key }}
plans:
  metered: {{ quota: 1000/day }}
consumers:
  acme: {{ plan: metered, keys: ["{key}"] }}
rate_limits:
  one: {{ rate: 1/m, burst: 1, key: client_ip }}
upstreams:
  b: {{ targets: ["{backend}"] }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: b, auth: none }}
  - {{ name: keyed, match: {{ path: /keyed }}, upstream: b, auth: {{ any: [keys] }} }}
  - {{ name: jwt, match: {{ path: /jwt }}, upstream: b, auth: {{ any: [corp] }} }}
  - {{ name: limited, match: {{ path: /limited }}, upstream: b, auth: none, rate_limits: [one] }}
  - {{ name: cached, match: {{ path: /cached }}, upstream: b, auth: none, cache: {{ ttl: 30s }} }}
"#,
        tls_port = free_port(),
        dead_port = free_port(),
        issuer = idp.issuer,
        jwks = idp.jwks_uri(),
        backend = backend.url()
    )
}

/// A port nothing listens on now (two listeners cannot both ask for port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_name_only_metrics_a_running_gateway_exports() {
    let backend = Backend::ok().await;
    let signer = SigningKey::rsa("k1", RSA1);
    let idp = Idp::start(&[&signer]).await;
    let dir = scratch_dir();
    Pki::new("alerts-ca").leaf(&["localhost"], false).write(&dir, "server");
    let gw = TestGateway::from_file(&write_config(&dir, &busy_config(&backend, &idp))).await.with_admin().await;
    assert_eq!(get(&gw.url("/r"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/keyed"), &[("x-api-key", "pcl_alerts_key")]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/keyed"), &[("x-api-key", "pcl_wrong")]).await.status, StatusCode::UNAUTHORIZED);
    let token = format!("Bearer {}", signer.sign(&idp.claims("alice")));
    assert_eq!(get(&gw.url("/jwt"), &[("authorization", &token)]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/jwt"), &[("authorization", "Bearer junk")]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&gw.url("/limited"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/limited"), &[]).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&gw.url("/cached"), &[]).await.status, StatusCode::OK);
    let attack = get(&gw.url("/r?q=1%27%20OR%20%271%27%3D%271"), &[]).await;
    assert_eq!((attack.status, attack.code()), (StatusCode::FORBIDDEN, "waf_blocked".to_owned()));
    // Spans to a collector nobody listens on are dropped and counted (export runs at least
    // once a second in the background).
    crate::kit::eventually("dropped spans counted", || async {
        let text = admin(&gw, "GET", "/metrics", Some(TOKEN)).await.text();
        text.contains("portcullis_trace_spans_dropped_total").then_some(())
    })
    .await;
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    let scrape = admin(&gw, "GET", "/metrics", Some(TOKEN)).await;
    assert_eq!(scrape.status, StatusCode::OK);
    let exported = exported(&scrape.text());

    let dashboard = std::fs::read_to_string(deploy("grafana/portcullis.json")).expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10), "a dashboard of panels");
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yaml")).expect("alerts.yaml");
    for (what, text) in [("dashboard", &dashboard), ("alerts.yaml", &rules)] {
        let used = metric_names(text);
        assert!(!used.is_empty(), "{what} names no metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} uses metrics /metrics does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    gw.shutdown().await;
}
