//! The command line: `validate` (every error with its line), `schema`, exit codes, and `run`
//! and `demo` as real processes: reloaded by SIGHUP, drained and stopped by SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::certs::{LeafSpec, Pki, days_from_now};
use crate::kit::{Backend, get, scratch_dir, text};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn portcullis(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("run portcullis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

const THREE_MISTAKES: &str = r#"version: 1
listeners:
  - name: public
    bind: "127.0.0.1:0"
limits:
  max_connections: many
upstreams:
  orders:
    targets: ["http://127.0.0.1:9"]
    timeouts: { connect: 10 seconds }
routes:
  - name: list
    match: { path: /v1/orders }
    upstreem: orders
    auth: none
"#;

#[test]
fn validate_prints_every_mistake_with_its_line() {
    let path = write("three.yaml", THREE_MISTAKES);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    assert!(out.contains(&format!("{file}:6:")), "max_connections on line 6:\n{out}");
    assert!(out.contains(&format!("{file}:10:")), "connect timeout on line 10:\n{out}");
    assert!(out.contains(&format!("{file}:14:")), "unknown key upstreem on line 14:\n{out}");
    assert!(out.contains("upstreem"), "{out}");
}

#[test]
fn validate_checks_the_base_and_every_stage() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
upstreams:
  up: { targets: ["http://127.0.0.1:9000"] }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: none }
stages:
  dev:
    upstreams: { up: { targets: ["http://127.0.0.1:9001"] } }
  prod:
    routes:
      - { name: r, upstream: nowhere }
"#;
    let path = write("stages.yaml", config);
    let p = path.to_str().unwrap_or_default();
    let (code, out) = portcullis(&["validate", "-c", p]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("base: ok"), "{out}");
    assert!(out.contains("stage dev: ok"), "{out}");
    assert!(out.contains("unknown upstream `nowhere`"), "{out}");
    assert!(out.contains(":12:"), "the prod error points at the overlay's line:\n{out}");
    let (code, out) = portcullis(&["validate", "-c", p, "--stage", "dev"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn route_without_auth_is_an_error() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
upstreams:
  up: { targets: ["http://127.0.0.1:9000"] }
routes:
  - { name: r1, match: { path: /a }, upstream: up }
"#;
    let path = write("noauth.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(":6:") && out.contains("routes[0]") && out.contains("auth"), "{out}");
}

#[test]
fn unknown_references_are_all_reported() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
upstreams:
  up: { targets: ["http://127.0.0.1:9000"] }
routes:
  - { name: r2, match: { path: /b }, upstream: down, auth: { any: [corp] }, policy: p, rate_limits: [x], cors: c }
"#;
    let path = write("refs.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    for needle in [
        "unknown upstream `down`",
        "unknown auth provider `corp`",
        "unknown policy `p`",
        "unknown rate limit `x`",
        "unknown cors entry `c`",
    ] {
        assert!(out.contains(needle), "missing `{needle}`:\n{out}");
    }
}

/// One run shows a schema error and the reference errors of the parts whose shape is right; a
/// reference to an entry left out for its shape is not called unknown.
#[test]
fn validate_reports_schema_and_reference_errors_in_one_run() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
upstreams:
  orders:
    targets: ["http://127.0.0.1:9"]
    timeouts: { connect: 10 seconds }
routes:
  - { name: list, match: { path: /orders }, upstream: orders, auth: none }
  - { name: pay, match: { path: /pay }, upstream: payments, auth: none, retries: lots }
  - { name: ship, match: { path: /ship }, upstream: shipping, auth: none }
"#;
    let path = write("schema-and-refs.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    assert!(out.contains(&format!("{file}:6:")) && out.contains("10 seconds"), "the schema error:\n{out}");
    assert!(out.contains(&format!("{file}:9:")) && out.contains("unknown key `retries`"), "{out}");
    assert!(
        out.contains(&format!("{file}:10:")) && out.contains("routes[2].upstream: unknown upstream `shipping`"),
        "the reference error, at the route's own index and line:\n{out}"
    );
    assert!(!out.contains("unknown upstream `orders`"), "`orders` is defined, only misshapen:\n{out}");
    assert!(!out.contains("`payments`"), "a route left out for its shape is not checked further:\n{out}");
    assert!(out.contains("base: 3 error(s)"), "{out}");
}

/// Every file that cannot be read is reported, not only the first: a `${file:}` reference and
/// both files of a listener's certificate.
#[test]
fn validate_reports_every_missing_file() {
    let config = r#"version: 1
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls: { certificates: [{ cert: no-such-cert.pem, key: no-such-key.pem }] }
admin:
  bind: "127.0.0.1:0"
  token: ${file:no-such-token}
upstreams:
  up: { targets: ["http://127.0.0.1:9"] }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: none }
"#;
    let path = write("missing-files.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    for needle in ["no-such-token", "no-such-cert.pem", "no-such-key.pem"] {
        assert!(out.contains(needle), "missing {needle}:\n{out}");
    }
    assert!(out.contains("base: 3 error(s)"), "{out}");
}

/// One run reports two bad listener certificates (a missing file, a key of another
/// certificate), an upstream client key that is no key and a schema error elsewhere, each at
/// the line of its key; a certificate near its end is a warning, not an error.
#[test]
fn validate_reports_every_file_error_beside_schema_errors_with_lines() {
    let dir = scratch_dir();
    let pki = Pki::new("files-ca");
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).expect("write CA");
    pki.leaf(&["api.example.com"], false).write(&dir, "api");
    pki.leaf(&["www.example.com"], false).write(&dir, "www");
    pki.leaf(&["gateway"], true).write(&dir, "gw");
    let subject = [(rcgen::DnType::CommonName, "soon")];
    let soon = LeafSpec { names: &["soon.test"], client: false, subject: &subject, not_after: Some(days_from_now(5)) };
    pki.issue(&soon).write(&dir, "soon");
    std::fs::write(dir.join("not-a-key.pem"), "-----BEGIN NOTHING-----\nSECRET-KEY-MATERIAL\n-----END NOTHING-----\n")
        .expect("write");
    let config = r#"version: 1
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      certificates:
        - { cert: gone.pem, key: api-key.pem }
        - { cert: www.pem, key: api-key.pem }
        - { cert: soon.pem, key: soon-key.pem }
upstreams:
  orders:
    targets: ["https://127.0.0.1:9"]
    tls: { ca: ca.pem, client_cert: gw.pem, client_key: not-a-key.pem }
limits:
  max_connections: many
routes:
  - { name: r, match: { path: /x }, upstream: orders, auth: none }
"#;
    let path = dir.join("files.yaml");
    std::fs::write(&path, config).expect("write config");
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    let at = |line: u32, key: &str, what: &str| {
        out.lines().any(|l| l.starts_with(&format!("{file}:{line}:")) && l.contains(key) && l.contains(what))
    };
    assert!(at(7, "listeners[0].tls.certificates[0].cert", "cannot read `gone.pem`"), "{out}");
    assert!(at(8, "listeners[0].tls.certificates[1].key", "`api-key.pem` is not a usable key for `www.pem`"), "{out}");
    assert!(at(13, "upstreams.orders.tls.client_key", "`not-a-key.pem` holds no PEM private key"), "{out}");
    assert!(at(15, "limits.max_connections", ""), "the schema error:\n{out}");
    assert!(out.contains("base: 4 error(s)"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!("warning: {file}:9:")) && l.contains("expires in 4 day(s)")),
        "{out}"
    );
    assert!(!out.contains("SECRET-KEY-MATERIAL"), "a key file's content is never shown:\n{out}");
}

/// An unknown reference names the nearest defined one.
#[test]
fn a_typo_in_a_reference_gets_a_suggestion() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
upstreams:
  billing: { targets: ["http://127.0.0.1:9"] }
auth:
  partners: { type: api_key }
routes:
  - { name: r, match: { path: /p }, upstream: biling, auth: { any: [partner] } }
  - { name: s, match: { path: /s }, upstream: billing, auth: { any: [warehouse] } }
"#;
    let path = write("typo.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown upstream `biling`; did you mean `billing`?"), "{out}");
    assert!(out.contains("unknown auth provider `partner`; did you mean `partners`?"), "{out}");
    assert!(out.contains("unknown auth provider `warehouse`\n"), "nothing near, no suggestion:\n{out}");
}

/// YAML 1.2 scalars: `no`, `on`, `8080` and `1.0` are text where the config wants text, as
/// written; `yes` where a boolean is wanted is refused with a hint, at its line.
#[test]
fn validate_reads_plain_words_and_numbers_as_text_where_text_is_wanted() {
    let config = r#"version: 1
listeners: [{ name: 8080, bind: "127.0.0.1:0", http2: true }]
upstreams:
  no: { mock: { status: 200, headers: { X-Flag: on, X-Port: 8080 } } }
routes:
  - name: 1.0
    match: { path: /a }
    upstream: no
    auth: none
    headers: { request: { set: { X-Enabled: yes, X-Hex: 0x1F } } }
  - { name: y, match: { path: /b }, upstream: no, auth: none }
"#;
    let path = write("scalars.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("base: ok (2 routes)"), "{out}");

    let path = write("scalars-bad.yaml", &config.replace("http2: true", "http2: on"));
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    assert!(out.contains(&format!("{file}:2:")) && out.contains("listeners[0].http2"), "{out}");
    assert!(out.contains("got `on` (`yes`, `no`, `on` and `off` are text in YAML 1.2)"), "{out}");
}

/// `forward_claims` maps claim → header; written the other way round, `validate` says so at
/// the entry's line and spells out the swap.
#[test]
fn validate_says_forward_claims_go_from_claim_to_header() {
    let config = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:0" }]
auth:
  corp:
    type: jwt
    issuer: "https://idp.example.com"
    algorithms: [RS256]
    forward_claims:
      email: X-User-Email
      X-User-Id: sub
upstreams:
  up: { mock: { status: 200 } }
routes:
  - { name: r, match: { path: /a }, upstream: up, auth: { any: [corp] } }
"#;
    let path = write("claims.yaml", config);
    let (code, out) = portcullis(&["validate", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    assert!(out.contains(&format!("{file}:10:")) && out.contains("auth.corp.forward_claims.X-User-Id"), "{out}");
    assert!(out.contains("maps a claim to a header (`claim: Header-Name`)"), "{out}");
    assert!(out.contains("write `sub: X-User-Id`"), "{out}");
    assert!(!out.contains("forward_claims.email"), "the right-way entry is fine:\n{out}");
}

#[test]
fn usage_errors_exit_2_and_schema_prints_json() {
    assert_eq!(portcullis(&["validate"]).0, 2);
    assert_eq!(portcullis(&["no-such-command"]).0, 2);
    let (code, out) = portcullis(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["routes"].is_object());
}

/// A running `portcullis` process, the address it listens on and its log (stderr) so far.
/// Killed on drop if still running, so a failed test leaves no process behind.
struct Process {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find(" addr=") {
                    let addr: String = line[at + 6..].chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
                lines.lock().expect("lock").push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("the gateway did not report its address");
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `signal` (`HUP`, `TERM`) to the process.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{signal}");
    }

    /// Waits (bounded) for a log line that satisfies `wanted`.
    async fn log_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log.lock().expect("lock").iter().find(|l| wanted(l)) {
                return line.clone();
            }
            let log = self.log.lock().expect("lock").join("\n");
            assert!(Instant::now() < deadline, "no log line {what} in:\n{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded) for the process to exit; its exit code.
    async fn exited(&mut self) -> i32 {
        self.exited_within(Duration::from_secs(10)).await
    }

    /// Waits up to `bound` for the process to exit; its exit code.
    async fn exited_within(&mut self, bound: Duration) -> i32 {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("portcullis did not exit within {bound:?}");
    }

    fn terminate(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("portcullis did not exit after SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_and_exits_0_on_sigterm() {
    let b = Backend::ok().await;
    let config = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  up: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: none }}\n",
        b.url()
    );
    let path = write("run.yaml", &config);
    let p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    let r = get(&format!("http://{}/x", p.addr), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "backend-ok");
    // `run` restarted itself (same PID) with mimalloc purging freed pages at once.
    assert_eq!(environment_of(&p, "MIMALLOC_PURGE_DELAY").as_deref(), Some("0"));
    assert_eq!(p.terminate(), 0);
}

/// A variable of the running gateway's environment, read from `/proc`.
fn environment_of(p: &Process, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{}/environ", p.child.id())).expect("environ");
    environ.split(|&b| b == 0).find_map(|entry| {
        let entry = std::str::from_utf8(entry).ok()?;
        entry.strip_prefix(name)?.strip_prefix('=').map(str::to_owned)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_keeps_the_operators_allocator_setting() {
    let b = Backend::ok().await;
    let config = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  up: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: none }}\n",
        b.url()
    );
    let path = write("run-allocator.yaml", &config);
    let p =
        Process::spawn_with_env(&["run", "-c", path.to_str().unwrap_or_default()], &[("MIMALLOC_PURGE_DELAY", "250")]);
    assert_eq!(get(&format!("http://{}/x", p.addr), &[]).await.status, StatusCode::OK);
    assert_eq!(environment_of(&p, "MIMALLOC_PURGE_DELAY").as_deref(), Some("250"));
    assert_eq!(p.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_needs_nothing_but_the_binary() {
    let p = Process::spawn(&["demo", "--bind", "127.0.0.1:0"]);
    let r = get(&format!("http://{}/hello", p.addr), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["hello"], "world");
    let r = get(&format!("http://{}/echo/who?x=1", p.addr), &[("x-consumer", "admin")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let echo = r.json();
    assert_eq!(echo["path"], "/who");
    assert!(echo["headers"].get("x-consumer").is_none(), "{echo}");
    let r = get(&format!("http://{}/private/x", p.addr), &[]).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "missing_credentials".to_owned()));
    let key = "pcl_demo_key_printed_at_start_not_a_secret";
    let r = get(&format!("http://{}/private/x", p.addr), &[("x-api-key", key)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let echo = r.json();
    assert_eq!(echo["headers"]["x-consumer"], "demo", "{echo}");
    assert!(echo["headers"].get("x-api-key").is_none(), "{echo}");
    assert_eq!(r.header("ratelimit-limit"), Some("10"), "the demo plan's burst");
    let banner = format!("Portcullis demo on http://{}", p.addr);
    p.log_line("the banner with the bound address", |l| l.contains(&banner)).await;
    assert_eq!(p.terminate(), 0);
}

/// Runs `portcullis ARGS` that is expected to stop by itself; killed after 20 s otherwise.
fn portcullis_bounded(args: &[&str]) -> (i32, String) {
    let mut child =
        Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run portcullis");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_demo_on_a_taken_port_fails_with_a_clear_error_and_no_banner() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, out) = portcullis_bounded(&["demo", "--bind", &addr]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("cannot bind {addr}")) && out.contains("in use"), "{out}");
    assert!(out.contains("--bind"), "says how to pick another address:\n{out}");
    assert!(
        !out.contains("Portcullis demo on") && !out.contains("curl"),
        "no banner for a demo that is not up:\n{out}"
    );
}

/// The SQLite file a running demo logged that it opened.
async fn demo_database(p: &Process) -> std::path::PathBuf {
    let line = p.log_line("the database", |l| l.contains("database open")).await;
    let url = line.split(" database=").nth(1).unwrap_or_default().split_whitespace().next().unwrap_or_default();
    std::path::PathBuf::from(url.strip_prefix("sqlite://").unwrap_or_else(|| panic!("a SQLite URL in: {line}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_at_once_keep_separate_databases_removed_at_exit() {
    let a = Process::spawn(&["demo", "--bind", "127.0.0.1:0"]);
    let b = Process::spawn(&["demo", "--bind", "127.0.0.1:0"]);
    let (db_a, db_b) = (demo_database(&a).await, demo_database(&b).await);
    assert_ne!(db_a.parent(), db_b.parent(), "each demo has its own folder");
    for db in [&db_a, &db_b] {
        assert!(db.exists(), "{}", db.display());
        assert!(db.starts_with(std::env::temp_dir()), "{}", db.display());
    }
    let key = ("x-api-key", "pcl_demo_key_printed_at_start_not_a_secret");
    for p in [&a, &b] {
        assert_eq!(get(&p.url("/private/x"), &[key]).await.status, StatusCode::OK);
    }
    assert_eq!(a.terminate(), 0);
    assert!(!db_a.parent().is_some_and(std::path::Path::exists), "the folder is removed at exit");
    assert!(db_b.exists(), "the other demo's database is untouched");
    assert_eq!(get(&b.url("/private/x"), &[key]).await.status, StatusCode::OK, "the other demo still serves");
    assert_eq!(b.terminate(), 0);
    assert!(!db_b.parent().is_some_and(std::path::Path::exists));
}

/// Ctrl-C after traffic through every route (pooled upstream connections, quota usage to
/// save, a client connection kept alive): a clean stop, well within a liveness bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_exits_0_soon_after_sigint() {
    let mut p = Process::spawn(&["demo", "--bind", "127.0.0.1:0"]);
    let key = ("x-api-key", "pcl_demo_key_printed_at_start_not_a_secret");
    for path in ["/hello", "/echo/x", "/private/x"] {
        assert_eq!(get(&p.url(path), &[key]).await.status, StatusCode::OK, "{path}");
    }
    let mut idle = tokio::net::TcpStream::connect(&p.addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut idle, b"GET /hello HTTP/1.1\r\nHost: demo\r\n\r\n").await.expect("write");
    let mut first = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut idle, &mut first).await.expect("a response");
    let signalled = Instant::now();
    p.signal("INT");
    assert_eq!(p.exited_within(Duration::from_secs(5)).await, 0);
    eprintln!("the demo exited {:?} after SIGINT", signalled.elapsed());
    p.log_line("the stop", |l| l.contains("stopped")).await;
}

/// A `run` config: one plain listener, `routes` (list items) to `backend`.
fn run_config(backend: &Backend, extra: &str, routes: &str) -> String {
    format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nlogging: {{ access: {{ path: off }} }}\n{extra}\
         upstreams:\n  up: {{ targets: [\"{}\"] }}\nroutes:\n{routes}",
        backend.url()
    )
}

const ROUTE_X: &str = "  - { name: x, match: { path: /x }, upstream: up, auth: none }\n";
const ROUTE_Y: &str = "  - { name: second, match: { path: /y }, upstream: up, auth: none }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file() {
    let b = Backend::ok().await;
    let audit = scratch_dir().join("audit.jsonl");
    let config = |routes: &str| {
        let logging = format!("logging: {{ access: {{ path: off }}, audit: {{ path: \"{}\" }} }}", audit.display());
        run_config(&b, "", routes).replace("logging: { access: { path: off } }", &logging)
    };
    let path = write("hup.yaml", &config(ROUTE_X));
    let p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(get(&p.url("/x"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&p.url("/y"), &[]).await.status, StatusCode::NOT_FOUND);

    std::fs::write(&path, config(&format!("{ROUTE_X}{ROUTE_Y}"))).expect("rewrite config");
    // The file watcher may also notice; the log says which trigger did what.
    p.signal("HUP");
    let line =
        p.log_line("`config reloaded` by SIGHUP", |l| l.contains("config reloaded") && l.contains("sighup")).await;
    assert!(line.contains("hash="), "{line}");
    assert_eq!(get(&p.url("/y"), &[]).await.status, StatusCode::OK, "the reloaded route");
    assert_eq!(get(&p.url("/x"), &[]).await.status, StatusCode::OK);
    crate::kit::eventually("the audit entry of the SIGHUP reload", || async {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["actor"] == "sighup" && e["action"] == "config.reload" && e["result"] == "ok")
            .then_some(())
    })
    .await;

    // A broken file on SIGHUP is refused and logged; the process keeps serving.
    std::fs::write(&path, "version: 1\nlisteners: [\n").expect("break config");
    p.signal("HUP");
    p.log_line("a refused reload", |l| l.contains("config reload refused") && l.contains("sighup")).await;
    assert_eq!(get(&p.url("/y"), &[]).await.status, StatusCode::OK, "still the last good config");
    assert_eq!(p.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let b = Backend::start_with_delay(Duration::from_millis(1500), |_| text(StatusCode::OK, "slow-ok")).await;
    let path = write("term.yaml", &run_config(&b, "shutdown_grace: 10s\n", ROUTE_X));
    let mut p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    let url = p.url("/x");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.count() == 0 {
        assert!(Instant::now() < deadline, "the slow request never reached the backend");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.signal("TERM");
    let r = tokio::time::timeout(Duration::from_secs(10), in_flight).await.expect("finishes").expect("task");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "slow-ok");
    assert_eq!(p.exited().await, 0);
    p.log_line("the drain", |l| l.contains("shutting down")).await;
    p.log_line("the stop", |l| l.contains("stopped")).await;
    assert!(tokio::net::TcpStream::connect(&p.addr).await.is_err(), "no longer listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_expiring_within_14_days_is_warned_about() {
    let b = Backend::ok().await;
    let dir = scratch_dir();
    let pki = Pki::new("edge-ca");
    let subject = [(rcgen::DnType::CommonName, "soon")];
    let soon = LeafSpec { names: &["soon.test"], client: false, subject: &subject, not_after: Some(days_from_now(7)) };
    pki.issue(&soon).write(&dir, "soon");
    let config = run_config(&b, "", ROUTE_X).replace(
        "bind: \"127.0.0.1:0\" }",
        "bind: \"127.0.0.1:0\", tls: { certificates: [{ cert: soon.pem, key: soon-key.pem }] } }",
    );
    let path = dir.join("soon.yaml");
    std::fs::write(&path, config).expect("write config");
    let p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    let line = p.log_line("an expiry warning", |l| l.contains("certificate expires soon")).await;
    assert!(line.contains("WARN") && line.contains("soon.test") && line.contains("days_left=6"), "{line}");
    assert_eq!(p.terminate(), 0);
}

/// The handlers are installed before the gateway says it is listening: signals sent the
/// moment it does are a reload and a drain, not the default action (death by signal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_sent_as_soon_as_it_listens_are_handled() {
    let b = Backend::ok().await;
    let path = write("early.yaml", &run_config(&b, "", ROUTE_X));
    let p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    p.signal("HUP");
    p.log_line("`config reloaded` by SIGHUP", |l| l.contains("config reloaded") && l.contains("sighup")).await;
    let p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    assert_eq!(p.terminate(), 0, "SIGTERM at once: a graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_bounds_the_drain() {
    let b = Backend::start_with_delay(Duration::from_secs(8), |_| text(StatusCode::OK, "too-slow")).await;
    let path = write("grace.yaml", &run_config(&b, "shutdown_grace: 300ms\n", ROUTE_X));
    let mut p = Process::spawn(&["run", "-c", path.to_str().unwrap_or_default()]);
    let url = p.url("/x");
    let in_flight = tokio::spawn(async move {
        let c = crate::kit::client();
        let req = http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new())).expect("request");
        c.request(req).await.map(|r| r.status())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.count() == 0 {
        assert!(Instant::now() < deadline, "the slow request never reached the backend");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    p.signal("TERM");
    assert_eq!(p.exited().await, 0);
    assert!(started.elapsed() < Duration::from_secs(4), "exited {:?} after SIGTERM", started.elapsed());
    p.log_line("the grace warning", |l| l.contains("shutdown grace elapsed")).await;
    let cut = tokio::time::timeout(Duration::from_secs(5), in_flight).await.expect("the client sees the end");
    assert!(cut.expect("task").is_err(), "the request past the grace was cut off");
}
