//! The audit trail of the admin API (SPEC §7): `actor` names the admin token used and the
//! client's address, a file-watch reload says so; refused logins are audited, at most
//! [`PER_MINUTE`] a minute, the rest counted; every entry reaches both the audit file and the
//! database, so `GET /audit` shows reloads and cache purges too. And `/openapi.json`
//! describes exactly the endpoints the router serves.

use std::path::Path;

use http::StatusCode;
use serde_json::{Value, json};

use crate::keys::call;
use crate::kit::{TestGateway, scratch_dir};
use crate::reload::{TOKEN, admin, metric, write_config};

const OPS_TOKEN: &str = "ops-token-5e4f3a";
/// `portcullis_admin`'s budget of audited refusals per minute.
const PER_MINUTE: usize = 10;

/// An admin token (`admin`) and a named one (`ops`), the audit file in the config's folder,
/// the database the default SQLite file there.
fn config() -> String {
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin:
  bind: "127.0.0.1:1"
  token: "{TOKEN}"
  tokens: [{{ name: ops, token: "{OPS_TOKEN}" }}]
logging: {{ access: {{ path: off }}, audit: {{ path: audit.jsonl }} }}
plans: {{ gold: {{ rate: 100/s }} }}
upstreams: {{ hello: {{ mock: {{ status: 200, body: "hi" }} }} }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: hello, auth: none }}
"#
    )
}

fn file_entries(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("an audit line is JSON")).collect()
}

async fn database_entries(gw: &TestGateway) -> Vec<Value> {
    let r = call(gw, "GET", "/audit?limit=1000", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

fn has(entries: &[Value], actor: &str, action: &str) -> bool {
    entries.iter().any(|e| e["actor"] == actor && e["action"] == action)
}

async fn post(gw: &TestGateway, path: &str, token: &str, body: &str) -> crate::kit::Reply {
    use bytes::Bytes;
    use http_body_util::Full;
    let request = http::Request::builder()
        .method("POST")
        .uri(gw.admin_url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    crate::kit::send(&crate::kit::client(), request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_names_its_token_and_address_in_the_file_and_the_database() {
    let dir = scratch_dir();
    let path = write_config(&dir, &config());
    let gw = TestGateway::start_watching(&path).await.with_admin().await;

    assert_eq!(
        post(&gw, "/consumers", OPS_TOKEN, r#"{"name": "acme", "plan": "gold"}"#).await.status,
        StatusCode::CREATED
    );
    assert_eq!(admin(&gw, "POST", "/config/reload", Some(OPS_TOKEN)).await.status, StatusCode::OK);
    assert_eq!(admin(&gw, "POST", "/cache/purge", Some(TOKEN)).await.status, StatusCode::OK);
    std::fs::write(&path, config().replace("body: \"hi\"", "body: \"hello\"")).expect("rewrite config");
    // The file and the database are written one after the other: wait for both.
    crate::kit::eventually("the file-watch reload in the audit file and the database", || async {
        let both = has(&file_entries(&dir), "file-watch", "config.reload")
            && has(&database_entries(&gw).await, "file-watch", "config.reload");
        both.then_some(())
    })
    .await;

    let file = file_entries(&dir);
    let database = database_entries(&gw).await;
    for (actor, action) in [
        ("ops@127.0.0.1", "consumer.create"),
        ("ops@127.0.0.1", "config.reload"),
        ("admin@127.0.0.1", "cache.purge"),
        ("file-watch", "config.reload"),
    ] {
        assert!(has(&file, actor, action), "{actor} {action} in the file: {file:?}");
        assert!(has(&database, actor, action), "{actor} {action} in GET /audit: {database:?}");
    }
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    assert!(!text.contains(OPS_TOKEN) && !text.contains(TOKEN), "no token in the audit file: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_are_audited_up_to_a_budget_and_the_rest_counted() {
    let dir = scratch_dir();
    let gw = TestGateway::from_file(&write_config(&dir, &config())).await.with_admin().await;
    let flood = PER_MINUTE + 5;
    for i in 0..flood {
        let token = format!("guess-{i}-not-a-token");
        assert_eq!(admin(&gw, "GET", "/routes", Some(&token)).await.status, StatusCode::UNAUTHORIZED);
    }
    let file = file_entries(&dir);
    let refused: Vec<&Value> = file.iter().filter(|e| e["action"] == "admin.auth").collect();
    assert_eq!(refused.len(), PER_MINUTE, "the flood is cut at the budget: {file:?}");
    assert_eq!(
        (&refused[0]["actor"], &refused[0]["result"], &refused[0]["target"]),
        (&json!("anonymous@127.0.0.1"), &json!("error"), &json!("GET /routes")),
        "{file:?}"
    );
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    assert!(!text.contains("guess-"), "no presented token is written: {text}");
    let database = database_entries(&gw).await;
    assert_eq!(database.iter().filter(|e| e["action"] == "admin.auth").count(), PER_MINUTE, "{database:?}");
    let audited = metric(&gw, r#"portcullis_admin_auth_failures_total{audited="true"}"#).await;
    let suppressed = metric(&gw, r#"portcullis_admin_auth_failures_total{audited="false"}"#).await;
    assert_eq!((audited, suppressed), (Some(PER_MINUTE as f64), Some(5.0)));
}

/// Every path and method `/openapi.json` lists is one the router serves and the other way
/// round; and each answers on a running gateway (not 404 or 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_exactly_the_endpoints_served() {
    let dir = scratch_dir();
    let gw = TestGateway::from_file(&write_config(&dir, &config())).await.with_admin().await;
    assert_eq!(admin(&gw, "GET", "/openapi.json", None).await.status, StatusCode::UNAUTHORIZED);
    let r = admin(&gw, "GET", "/openapi.json", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{doc}");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys().filter(|k| *k != "parameters") {
            documented.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = portcullis_admin::served()
        .into_iter()
        .map(|(verb, path, _)| (verb.as_str().to_owned(), path.to_owned()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "/openapi.json and the router differ");

    // Real values for the path parameters; deletions last, so the others find what they name.
    let created = post(&gw, "/consumers", TOKEN, r#"{"name": "acme"}"#).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let key = post(&gw, "/consumers/acme/keys", TOKEN, "{}").await.json();
    let id = key["id"].as_str().expect("a key id").to_owned();
    documented.sort_by_key(|(method, _)| method == "DELETE");
    for (method, path) in &documented {
        let concrete = path.replace("{name}", "acme").replace("{id}", &id);
        let r = admin(&gw, method, &concrete, Some(TOKEN)).await;
        assert!(
            r.status != StatusCode::NOT_FOUND && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} answers {}: {}",
            r.status,
            r.text()
        );
    }
}
