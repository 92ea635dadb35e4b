//! The command line: `validate` (every error with its line), `schema`, exit codes, and `run`
//! and `demo` as real processes stopped by SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::kit::{Backend, get, scratch_dir};

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

/// A running `portcullis` process and the address it listens on.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("addr=") {
                    let addr: String = line[at + 5..].chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("the gateway did not report its address");
        Self { child, addr }
    }

    fn terminate(mut self) -> i32 {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("portcullis did not exit after SIGTERM");
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
    assert_eq!(p.terminate(), 0);
}
