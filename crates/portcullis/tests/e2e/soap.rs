//! SOAP to REST through the gateway (SPEC §6), against spyne: a SOAP server this project did
//! not write (Python, from PyPI; the service is `portcullis-soap`'s `tests/spyne/service.py`).
//!
//! Each test starts spyne on an ephemeral port, fetches the WSDL it publishes, runs the real
//! `portcullis soap routes --wsdl … --upstream crm --public`, starts a gateway on that output,
//! and checks the JSON of each operation and the fault mapping. The virtual environment is
//! made by `scripts/spyne-venv.sh` when missing; with `CI=true` a failure to make it fails the
//! test, elsewhere (no network, no python3) the test says so and passes.
//!
//! [`hostile`]: answers no SOAP server should give (XXE, billion laughs, …) and the request
//! side's limits, against small hyper backends. [`cli`]: `soap routes`, `openapi` and
//! `validate` on SOAP configs. [`reload`]: a WSDL edit reloads a running gateway.

mod cli;
mod hostile;
mod reload;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::kit::{Reply, TestGateway, client, get, scratch_dir, send};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The soap crate's WSDL fixtures.
fn fixtures() -> PathBuf {
    repo().join("crates/portcullis-soap/tests/fixtures")
}

/// `<target>/spyne-venv`, shared with `portcullis-soap`'s tests (`<target>/debug/deps/e2e-…`).
fn venv_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe.ancestors().nth(3).map_or_else(|| repo().join("target"), PathBuf::from);
    target.join("spyne-venv")
}

/// The venv's python, set up if needed; `None` (outside CI) when it cannot be.
fn python() -> Option<PathBuf> {
    let venv = venv_dir();
    let status = Command::new("bash").arg(repo().join("scripts/spyne-venv.sh")).arg(&venv).status();
    if !matches!(&status, Ok(s) if s.success()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: could not set up spyne: {status:?}");
        eprintln!("SKIPPED: could not set up the spyne virtual environment ({status:?}); run scripts/spyne-venv.sh");
        return None;
    }
    Some(venv.join("bin/python"))
}

/// The spyne server, killed when dropped.
struct Spyne {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Spyne {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_spyne() -> Option<Spyne> {
    let python = python()?;
    let mut child = Command::new(python)
        .arg(repo().join("crates/portcullis-soap/tests/spyne/service.py"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start spyne");
    let stdout = child.stdout.take().expect("spyne stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut spyne = Spyne { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
    let line = rx.recv_timeout(START_TIMEOUT).expect("spyne did not print its port in time");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect(&line);
    spyne.addr.set_port(port);
    Some(spyne)
}

/// `portcullis ARGS…`: exit code, stdout, stderr.
fn portcullis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run portcullis");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A route beside the generated ones: a GET whose template reads the path.
const PERSON_BY_ID: &str = r#"  - name: person-by-id
    match: { path: "/people/{id}", methods: [GET] }
    upstream: crm
    auth: none
    soap: { operation: get_person, request: { person_id: "{path.id}" } }
"#;

/// spyne, and a gateway in front of it on the generated routes (plus [`PERSON_BY_ID`]).
struct Crm {
    gateway: TestGateway,
    _spyne: Spyne,
}

impl Crm {
    async fn start() -> Option<Self> {
        let spyne = start_spyne()?;
        let dir = scratch_dir();
        let wsdl = get(&format!("http://{}/?wsdl", spyne.addr), &[]).await;
        assert_eq!(wsdl.status, StatusCode::OK, "spyne publishes its WSDL");
        let file = dir.join("people.wsdl");
        std::fs::write(&file, &wsdl.body).expect("write the WSDL");
        let file = file.to_str().expect("UTF-8 path");
        let (code, routes, err) = portcullis(&["soap", "routes", "--wsdl", file, "--upstream", "crm", "--public"]);
        assert_eq!(code, 0, "{err}");
        let config = format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  crm: {{ targets: [\"http://{}\"], soap: {{ wsdl: people.wsdl }} }}\n{routes}{PERSON_BY_ID}",
            spyne.addr
        );
        let gateway = TestGateway::start_in(&config, dir).await;
        Some(Self { gateway, _spyne: spyne })
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        post_json(&self.gateway.url(path), &body.to_string()).await
    }

    /// The operation's JSON output, asserting a 200 `application/json` answer.
    async fn output(&self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("x-request-id").is_some());
        reply.json()
    }
}

pub(crate) async fn post_json(url: &str, body: &str) -> Reply {
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    send(&client(), request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spyne_operations_answer_json_through_the_generated_routes() {
    let Some(crm) = Crm::start().await else { return };
    // A nested type, an integer, a boolean and a nil.
    assert_eq!(
        crm.output("/people-service/get-person", json!({"person_id": 1})).await,
        json!({"get_personResult": {
            "name": "Ada <Lovelace> & co", "age": 37, "active": true, "nickname": null,
            "address": {"street": "12 St James's Square", "city": "London"}
        }})
    );
    // Arrays, also of one item, also of complex types.
    assert_eq!(
        crm.output("/people-service/list-tags", json!({"count": 1})).await,
        json!({"list_tagsResult": {"string": ["tag-0"]}})
    );
    let people = crm.output("/people-service/list-people", json!({"count": 2})).await;
    let list = people["list_peopleResult"]["Person"].as_array().expect("an array");
    assert_eq!((list.len(), list[0]["age"].clone(), list[1]["nickname"].clone()), (2, json!(37), json!("countess")));
    // Scalars: a number given as a string is sent as the integer it holds; nil inputs.
    assert_eq!(crm.output("/people-service/add", json!({"a": "40", "b": 2})).await, json!({"addResult": 42}));
    assert_eq!(crm.output("/people-service/is-even", json!({"n": 4})).await, json!({"is_evenResult": true}));
    assert_eq!(crm.output("/people-service/is-even", json!({"n": -3})).await, json!({"is_evenResult": false}));
    let nickname = "/people-service/describe-nickname";
    assert_eq!(
        crm.output(nickname, json!({"nickname": null})).await,
        json!({"describe_nicknameResult": "no nickname"})
    );
    assert_eq!(
        crm.output(nickname, json!({"nickname": "<&>"})).await,
        json!({"describe_nicknameResult": "nickname: <&>"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spyne_faults_are_soap_fault_problems_400_for_the_client_502_for_the_server() {
    let Some(crm) = Crm::start().await else { return };
    let client = crm.post("/people-service/fail", json!({"kind": "client"})).await;
    assert_eq!(client.status, StatusCode::BAD_REQUEST);
    assert_eq!(client.code(), "soap_fault");
    let body = client.json();
    assert_eq!(
        (body["faultcode"].clone(), body["faultstring"].clone()),
        (json!("Client.InvalidInput"), json!("kind was client"))
    );
    assert_eq!(body["status"], 400);
    let server = crm.post("/people-service/fail", json!({"kind": "server"})).await;
    assert_eq!(server.status, StatusCode::BAD_GATEWAY);
    assert_eq!(server.code(), "soap_fault");
    assert_eq!(server.json()["faultcode"], "Server");
    assert_eq!(server.json()["faultstring"], "the server broke on purpose");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_route_fills_the_operation_from_the_path_and_bad_input_is_400() {
    let Some(crm) = Crm::start().await else { return };
    let person = get(&crm.gateway.url("/people/2"), &[]).await;
    assert_eq!(person.status, StatusCode::OK, "{}", person.text());
    let person = &person.json()["get_personResult"];
    assert_eq!((person["age"].clone(), person["nickname"].clone()), (json!(38), json!("countess")));
    // Not an integer: refused by the gateway with the field's pointer, spyne never asked.
    let bad = get(&crm.gateway.url("/people/abc"), &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "invalid_request");
    assert!(bad.json()["detail"].as_str().is_some_and(|d| d.contains("/person_id")), "{}", bad.text());
    let unknown = crm.post("/people-service/get-person", json!({"person_id": 1, "nope": true})).await;
    assert_eq!(unknown.code(), "invalid_request");
    assert!(unknown.json()["detail"].as_str().is_some_and(|d| d.contains("/nope")), "{}", unknown.text());
    // The generated routes are POST only.
    let get_generated = get(&crm.gateway.url("/people-service/get-person"), &[]).await;
    assert_eq!(get_generated.status, StatusCode::METHOD_NOT_ALLOWED);
}
