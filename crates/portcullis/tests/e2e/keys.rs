//! Consumers and API keys in the database (SPEC §1 `keys`, `hash-key`; §3 API keys; §5; §7
//! audit; §8): the admin API and the CLI write them, every instance's key index follows
//! within a second, on SQLite (the config folder's file) and on PostgreSQL (a schema of its
//! own, at `DATABASE_URL` or the local default; skipped without one, except under CI=true).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::kit::{Reply, TestGateway, client, eventually, scratch_dir, send};
use crate::reload::{TOKEN, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// An admin listener with a token, the audit log beside the config, plan `gold`, and
/// `database` (SQLite in the config folder when `None`).
pub(crate) fn config(database: Option<&str>) -> String {
    let state = database.map(|url| format!("state: {{ database: \"{url}\" }}\n")).unwrap_or_default();
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }}, audit: {{ path: audit.jsonl }} }}
{state}plans: {{ gold: {{ rate: 100/s }} }}
consumers: {{ declared: {{ plan: gold }} }}
auth: {{ keys: {{ type: api_key, header: X-Api-Key }} }}
upstreams: {{ hello: {{ mock: {{ status: 200, body: "hi" }} }} }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: hello, auth: none }}
  - {{ name: k, match: {{ path: /k }}, upstream: hello, auth: {{ any: [keys] }} }}
"#
    )
}

pub(crate) async fn start(dir: &Path, database: Option<&str>) -> TestGateway {
    let path = write_config(dir, &config(database));
    TestGateway::from_file(&path).await.with_admin().await
}

/// An admin request with the token and an optional JSON body.
pub(crate) async fn call(gw: &TestGateway, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(gw.admin_url(path))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    send(&client(), request).await
}

/// The status of `GET /k` with `key` in `X-Api-Key`, and the problem code if refused.
pub(crate) async fn use_key(gw: &TestGateway, key: &str) -> (u16, String) {
    let r = crate::kit::get(&gw.url("/k"), &[("x-api-key", key)]).await;
    let code = if r.status == StatusCode::OK { String::new() } else { r.code() };
    (r.status.as_u16(), code)
}

/// Whether the gateway's in-memory index accepts `key` now.
fn indexed(gw: &TestGateway, key: &str) -> bool {
    let runtime = gw.handle.current();
    let sync = runtime.database.as_ref().expect("the gateway opened its database");
    sync.keys().lookup(key.as_bytes()).is_some()
}

fn audit_file(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_creates_lists_and_revokes_keys_and_audits_every_write() {
    let dir = scratch_dir();
    let gw = start(&dir, None).await;
    assert!(dir.join("portcullis.db").exists(), "the default database is a file in the config folder");
    let created = call(&gw, "POST", "/consumers", Some(json!({"name": "acme", "plan": "gold"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["plan"], "gold");

    let consumers = call(&gw, "GET", "/consumers", None).await.json();
    let sources: Vec<_> =
        consumers.as_array().expect("array").iter().map(|c| (c["name"].clone(), c["source"].clone())).collect();
    assert!(sources.contains(&(json!("acme"), json!("database"))), "{consumers}");
    assert!(sources.contains(&(json!("declared"), json!("config"))), "{consumers}");
    assert_eq!(call(&gw, "GET", "/consumers/acme", None).await.json()["plan"], "gold");

    let key = call(&gw, "POST", "/consumers/acme/keys", Some(json!({"expires_at": "2999-01-01T00:00:00+01:00"}))).await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text());
    let key = key.json();
    let (id, secret, prefix) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"), &key["prefix"]);
    assert!(secret.starts_with(prefix.as_str().expect("prefix")));
    assert_eq!(key["expires_at"], "2998-12-31T23:00:00Z");
    assert!(indexed(&gw, secret), "this instance sees its own write at once");
    assert_eq!(use_key(&gw, secret).await, (200, String::new()), "the new key opens the route");

    let listed = call(&gw, "GET", "/consumers/acme/keys", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()[0]["id"], id);
    assert_eq!(listed.json()[0]["revoked"], false);
    assert!(!listed.text().contains(secret), "a listing never shows the key");

    assert_eq!(call(&gw, "DELETE", &format!("/keys/{id}"), None).await.status, StatusCode::NO_CONTENT);
    assert!(!indexed(&gw, secret), "a revoked key leaves the index");
    assert_eq!(use_key(&gw, secret).await, (401, "invalid_api_key".to_owned()), "a revoked key is refused");
    assert_eq!(call(&gw, "GET", "/consumers/acme/keys", None).await.json()[0]["revoked"], true);
    assert_eq!(call(&gw, "DELETE", "/consumers/acme", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(call(&gw, "GET", "/consumers/acme", None).await.status, StatusCode::NOT_FOUND);

    let audit = call(&gw, "GET", "/audit?limit=10", None).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text());
    let actions: Vec<_> = audit.json().as_array().expect("array").iter().map(|a| a["action"].clone()).collect();
    assert_eq!(actions, [json!("consumer.create"), json!("key.create"), json!("key.revoke"), json!("consumer.delete")]);
    assert!(!audit.text().contains(secret), "the audit trail never holds the key");
    let file = audit_file(&dir);
    let in_file: Vec<_> = file.iter().map(|a| a["action"].clone()).collect();
    assert_eq!(in_file, actions, "the audit file has the same entries");
    assert!(file.iter().all(|a| !a.to_string().contains(secret)));
    let since = call(&gw, "GET", "/audit?since=2999-01-01T00:00:00Z", None).await;
    assert_eq!(since.json(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused() {
    let dir = scratch_dir();
    let gw = start(&dir, None).await;
    assert_eq!(call(&gw, "POST", "/consumers", Some(json!({"name": "brief"}))).await.status, StatusCode::CREATED);
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let expires_at = portcullis_store::rfc3339(soon);
    let key = call(&gw, "POST", "/consumers/brief/keys", Some(json!({ "expires_at": expires_at }))).await.json();
    let secret = key["key"].as_str().expect("key");
    assert_eq!(use_key(&gw, secret).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(use_key(&gw, secret).await, (401, "invalid_api_key".to_owned()), "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_unknown_plans_duplicates_and_unknown_keys_with_problems() {
    let dir = scratch_dir();
    let gw = start(&dir, None).await;
    let expect = |r: &Reply, status: StatusCode, code: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.code(), code);
    };
    let r = call(&gw, "POST", "/consumers", Some(json!({"name": "acme", "plan": "platinum"}))).await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_plan");
    assert_eq!(call(&gw, "POST", "/consumers", Some(json!({"name": "acme"}))).await.status, StatusCode::CREATED);
    expect(&call(&gw, "POST", "/consumers", Some(json!({"name": "acme"}))).await, StatusCode::CONFLICT, "conflict");
    let declared = call(&gw, "POST", "/consumers", Some(json!({"name": "declared"}))).await;
    expect(&declared, StatusCode::CONFLICT, "conflict");
    expect(
        &call(&gw, "POST", "/consumers", Some(json!({"name": "a b"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    expect(&call(&gw, "POST", "/consumers", Some(json!({"nme": "x"}))).await, StatusCode::BAD_REQUEST, "bad_request");
    expect(&call(&gw, "DELETE", "/keys/key_nope", None).await, StatusCode::NOT_FOUND, "not_found");
    expect(&call(&gw, "POST", "/consumers/nobody/keys", None).await, StatusCode::NOT_FOUND, "not_found");
    let past = call(&gw, "POST", "/consumers/acme/keys", Some(json!({"expires_at": "2001-01-01T00:00:00Z"}))).await;
    expect(&past, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let garbage = call(&gw, "POST", "/consumers/acme/keys", Some(json!({"expires_at": "tomorrow"}))).await;
    expect(&garbage, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    expect(&call(&gw, "GET", "/audit?limit=x", None).await, StatusCode::BAD_REQUEST, "bad_request");
    let no_token = crate::reload::admin(&gw, "GET", "/consumers", None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let ready = crate::reload::admin(&gw, "GET", "/ready", None).await;
    assert_eq!((ready.status, ready.json()["database"].clone()), (StatusCode::OK, json!("ok")));
}

pub(crate) const CLI_USER: &str = "op-erin";

pub(crate) fn portcullis(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    // The OS user a `keys` command is audited as (`cli:<user>`).
    let mut child = Command::new(BIN)
        .args(args)
        .env("USER", CLI_USER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis");
    if let Some(mut input) = child.stdin.take() {
        std::io::Write::write_all(&mut input, stdin).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn hash_key_prints_the_stored_form_of_one_line_and_refuses_empty_input() {
    const TEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for input in [&b"test"[..], b"test\n", b"test\r\n", b"test\nsecond line\n"] {
        let (code, out, err) = portcullis(&["hash-key"], input);
        assert_eq!((code, out.trim()), (0, TEST), "{input:?}: {err}");
    }
    for empty in [&b""[..], b"\n", b"\r\n"] {
        assert_eq!(portcullis(&["hash-key"], empty).0, 2, "{empty:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_cli_creates_lists_and_revokes_and_a_running_gateway_follows() {
    let dir = scratch_dir();
    let path: PathBuf = write_config(&dir, &config(None));
    let c = path.to_str().expect("utf-8 path");
    let (code, out, err) =
        portcullis(&["keys", "create", "-c", c, "--consumer", "acme", "--plan", "gold", "--json"], b"");
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    let (id, secret) = (created["id"].as_str().expect("id"), created["key"].as_str().expect("key"));
    assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));

    let (code, out, err) = portcullis(&["keys", "create", "-c", c, "--consumer", "acme", "--plan", "bronze"], b"");
    assert_eq!(code, 1, "an unknown plan is refused: {out}{err}");
    let (code, out, _) = portcullis(&["keys", "list", "-c", c, "--consumer", "acme"], b"");
    assert_eq!(code, 0);
    assert!(out.contains(id) && !out.contains(secret), "{out}");

    let gw = start(&dir, None).await;
    assert!(indexed(&gw, secret), "a key made by the CLI is usable at start");
    let (code, out, err) = portcullis(&["keys", "revoke", "-c", c, id], b"");
    assert_eq!(code, 0, "{out}{err}");
    let started = Instant::now();
    eventually("the CLI's revocation reaches the running gateway", || async { (!indexed(&gw, secret)).then_some(()) })
        .await;
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_eq!(portcullis(&["keys", "revoke", "-c", c, "key_nope"], b"").0, 1);
    let audit = call(&gw, "GET", "/audit", None).await.json();
    let actors: Vec<_> =
        audit.as_array().expect("array").iter().map(|a| (a["actor"].clone(), a["action"].clone())).collect();
    assert!(actors.contains(&(json!(format!("cli:{CLI_USER}")), json!("key.revoke"))), "{audit}");
}

/// `keys` reads only the database, the audit log and the plans: an `${env:}` elsewhere (the
/// admin token, a listener) need not be set; one in `state.database` must be, and is named.
#[test]
fn keys_cli_needs_only_the_references_it_reads() {
    let dir = scratch_dir();
    let text = config(Some("${env:PCL_E2E_KEYS_DB}"))
        .replace(&format!("token: \"{TOKEN}\""), "token: \"${env:PCL_E2E_UNSET_ADMIN_TOKEN}\"")
        .replace("bind: \"127.0.0.1:0\"", "bind: \"${env:PCL_E2E_UNSET_BIND}\"");
    let path = write_config(&dir, &text);
    let c = path.to_str().expect("utf-8 path");
    let keys = |args: &[&str], database: Option<&str>| {
        let mut command = Command::new(BIN);
        command.arg("keys").args(args).args(["-c", c]).env_remove("PCL_E2E_UNSET_ADMIN_TOKEN");
        command.env_remove("PCL_E2E_UNSET_BIND").env_remove("PCL_E2E_KEYS_DB");
        if let Some(url) = database {
            command.env("PCL_E2E_KEYS_DB", url);
        }
        let out = command.output().expect("run portcullis");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = keys(&["list"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("state.database") && err.contains("`PCL_E2E_KEYS_DB`"), "{err}");
    assert!(!err.contains("PCL_E2E_UNSET"), "only what `keys` reads is resolved:\n{err}");

    let database = format!("sqlite://{}", dir.join("keys.db").display());
    let (code, out, err) = keys(&["create", "--consumer", "acme", "--plan", "gold", "--json"], Some(&database));
    assert_eq!(code, 0, "{out}{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    let id = created["id"].as_str().expect("id");
    let (code, out, err) = keys(&["create", "--consumer", "acme", "--plan", "bronze"], Some(&database));
    assert_eq!(code, 1, "plans are still read: {out}{err}");
    let (code, out, err) = keys(&["list", "--consumer", "acme"], Some(&database));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(id), "{out}");
    let (code, out, err) = keys(&["revoke", id], Some(&database));
    assert_eq!(code, 0, "{out}{err}");
    let actions: Vec<_> = audit_file(&dir).iter().map(|a| a["action"].clone()).collect();
    assert_eq!(actions, [json!("consumer.create"), json!("key.create"), json!("key.revoke")], "audited as before");
}

/// A fresh schema on the test PostgreSQL; `None` (a failure under CI=true) without one.
async fn postgres_schema() -> Option<(String, String)> {
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "PostgreSQL is required under CI: {e}");
            eprintln!("skipping: no PostgreSQL ({e})");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("t_e2e_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((format!("{base}{sep}options=-c%20search_path%3D{schema}"), schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_leaves_another_instances_index_within_a_second() {
    let Some((url, schema)) = postgres_schema().await else { return };
    let (a, b) = (start(&scratch_dir(), Some(&url)).await, start(&scratch_dir(), Some(&url)).await);
    assert_eq!(call(&a, "POST", "/consumers", Some(json!({"name": "acme"}))).await.status, StatusCode::CREATED);
    let key = call(&a, "POST", "/consumers/acme/keys", None).await.json();
    let (id, secret) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
    eventually("instance B learns the new key", || async { indexed(&b, secret).then_some(()) }).await;
    assert_eq!(use_key(&b, secret).await.0, 200, "B accepts A's key");
    assert_eq!(call(&b, "GET", "/consumers/acme/keys", None).await.json()[0]["id"], id, "B reads the shared database");

    assert_eq!(call(&a, "DELETE", &format!("/keys/{id}"), None).await.status, StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    eventually("instance B refuses the revoked key", || async {
        (use_key(&b, secret).await == (401, "invalid_api_key".to_owned())).then_some(())
    })
    .await;
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "revocation took {took:?} to reach instance B");

    a.shutdown().await;
    b.shutdown().await;
    let base = url.split('?').next().unwrap_or_default().to_owned();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn).await;
    }
}

/// A TCP forwarder to PostgreSQL that [`Cut`] can sever: the database "goes away".
struct Cut(Vec<tokio::task::AbortHandle>, std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>);

impl Cut {
    fn now(self) {
        self.0.iter().for_each(tokio::task::AbortHandle::abort);
        self.1.lock().expect("lock").iter().for_each(tokio::task::AbortHandle::abort);
    }
}

async fn forwarder(to: String) -> (std::net::SocketAddr, Cut) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = std::sync::Arc::default();
    let held = conns.clone();
    let accept = tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let to = to.clone();
            let task = tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
            held.lock().expect("lock").push(task.abort_handle());
        }
    });
    (addr, Cut(vec![accept.abort_handle()], conns))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_database_is_unreachable() {
    let Some((url, schema)) = postgres_schema().await else { return };
    // postgres://user@HOST:PORT/db?… → the same URL through the forwarder.
    let (head, rest) = url.split_once('@').expect("a user in the URL");
    let (host, tail) = rest.split_at(rest.find('/').expect("a database in the URL"));
    let (addr, cut) = forwarder(host.to_owned()).await;
    let gw = start(&scratch_dir(), Some(&format!("{head}@{addr}{tail}"))).await;
    let ready = crate::reload::admin(&gw, "GET", "/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    cut.now();
    let ready = crate::reload::admin(&gw, "GET", "/ready", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.text());
    assert_eq!(ready.json()["database"], "unreachable");
    assert_eq!(crate::reload::admin(&gw, "GET", "/health", None).await.status, StatusCode::OK, "still alive");
    gw.shutdown().await;
    let base = url.split('?').next().unwrap_or_default().to_owned();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn).await;
    }
}
