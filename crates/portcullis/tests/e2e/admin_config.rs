//! `GET /config` (SPEC §5): the effective config with every secret shown as `<redacted>`,
//! its hash the one `/ready` reports, and a hash that changes when only a certificate does;
//! `/certificates` with each served certificate's serial and SHA-256 fingerprint.

use http::StatusCode;

use crate::certs::Pki;
use crate::kit::{Backend, TestGateway, scratch_dir};
use crate::reload::{TOKEN, admin, write_config};

const OPS_TOKEN: &str = "ops-token-0f9e8d";
const FILE_SECRET: &str = "upstream-bearer-7c6b5a";
const REDIS_PASSWORD: &str = "redis-pw-4d3c2b";
const KEY_DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A config holding every kind of secret: admin tokens (one plain, one named), a key digest,
/// a Redis password in its URL, a private key file, a `${file:}` value and an `${env:}` one.
fn config(backend: &Backend) -> String {
    format!(
        r#"version: 1
listeners:
  - {{ name: main, bind: "127.0.0.1:0", tls: {{ certificates: [{{ cert: api.pem, key: api-key.pem }}] }} }}
admin:
  bind: "127.0.0.1:1"
  token: "{TOKEN}"
  tokens: [{{ name: ops, token: "{OPS_TOKEN}" }}]
logging: {{ access: {{ path: off }} }}
state: {{ redis: "redis://:{REDIS_PASSWORD}@127.0.0.1:1", on_redis_error: local }}
auth:
  keys: {{ type: api_key }}
consumers:
  acme: {{ keys: ["{KEY_DIGEST}"] }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - name: r
    match: {{ path: /r }}
    upstream: b
    auth: none
    headers:
      request:
        set: {{ X-Upstream-Auth: "${{file:upstream-secret}}", X-From-Env: "${{env:HOME}}" }}
"#,
        backend.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_the_effective_config_without_any_secret() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let leaf = pki.leaf(&["api.test"], false);
    leaf.write(&dir, "api");
    std::fs::write(dir.join("upstream-secret"), format!("{FILE_SECRET}\n")).expect("write secret");
    let gw = TestGateway::from_file(&write_config(&dir, &config(&backend))).await.with_admin().await;

    assert_eq!(admin(&gw, "GET", "/config", None).await.status, StatusCode::UNAUTHORIZED);
    let r = admin(&gw, "GET", "/config", Some(OPS_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let home = std::env::var("HOME").unwrap_or_default();
    let mut secrets = vec![TOKEN, OPS_TOKEN, FILE_SECRET, REDIS_PASSWORD, KEY_DIGEST, "PRIVATE KEY"];
    secrets.push(&leaf.key_pem[40..80]);
    if home.len() > 1 {
        secrets.push(&home);
    }
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` shown in {text}");
    }
    let body = r.json();
    let config = &body["config"];
    assert_eq!(config["admin"]["token"], "<redacted>", "{body}");
    assert_eq!(config["admin"]["tokens"][0]["name"], "ops", "names are not secrets: {body}");
    assert_eq!(config["state"]["redis"], "redis://:<redacted>@127.0.0.1:1", "{body}");
    assert_eq!(config["routes"][0]["match"]["path"], "/r", "the rest is shown: {body}");
    assert_eq!(config["listeners"][0]["tls"]["certificates"][0]["cert"], "api.pem", "{body}");
    assert!(body["loaded_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    let ready = admin(&gw, "GET", "/ready", None).await.json();
    assert_eq!(body["hash"], ready["config_hash"], "one hash for one config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_only_reload_changes_the_hash_serial_and_fingerprint() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let first = pki.leaf(&["api.test"], false);
    first.write(&dir, "api");
    std::fs::write(dir.join("upstream-secret"), "s\n").expect("write secret");
    let gw = TestGateway::from_file(&write_config(&dir, &config(&backend))).await.with_admin().await;
    let before = admin(&gw, "GET", "/config", Some(TOKEN)).await.json();
    let certs = admin(&gw, "GET", "/certificates", Some(TOKEN)).await.json();
    assert_eq!(certs[0]["sha256"], fingerprint(&first.der), "{certs}");
    let serial = certs[0]["serial"].as_str().unwrap_or_default().to_owned();
    assert!(!serial.is_empty() && serial.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{certs}");

    let second = pki.leaf(&["api.test"], false);
    second.write(&dir, "api");
    let r = admin(&gw, "POST", "/config/reload", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = admin(&gw, "GET", "/config", Some(TOKEN)).await.json();
    assert_eq!(before["config"], after["config"], "the config text did not change");
    assert_ne!(before["hash"], after["hash"], "but the certificate did");
    assert_eq!(r.json()["hash"], after["hash"], "the reload answers the hash now in force");
    assert_eq!(admin(&gw, "GET", "/ready", None).await.json()["config_hash"], after["hash"]);
    let certs = admin(&gw, "GET", "/certificates", Some(TOKEN)).await.json();
    assert_eq!(certs[0]["sha256"], fingerprint(&second.der), "the new certificate is live: {certs}");
    assert_ne!(certs[0]["serial"], serial.as_str(), "{certs}");
}

/// SHA-256 of a DER certificate as `/certificates` writes it: `ab:cd:…`.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}
