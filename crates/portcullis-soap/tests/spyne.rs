//! Against a real SOAP server this project did not write: spyne (Python, from PyPI).
//!
//! Each test starts `tests/spyne/service.py` on 127.0.0.1 with an ephemeral port, fetches
//! the WSDL spyne publishes, parses it, sends envelopes built by this crate and checks the
//! JSON mapping of the answers, faults included. The virtual environment is made by
//! `scripts/spyne-venv.sh` when missing; with `CI=true` a failure to make it fails the test,
//! elsewhere (no network, no python3) the tests say so and pass.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use portcullis_soap::{
    FaultKind, Limits, Operation, Placeholder, RequestTemplate, SoapResponse, SoapVersion, Style, Wsdl,
};
use serde_json::{Map, Value, json};

const IO_TIMEOUT: Duration = Duration::from_secs(15);
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/spyne-venv`, where `<target>` holds this test binary (`<target>/debug/deps/…`).
fn venv_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).map_or_else(|| repo().join("target"), PathBuf::from);
    target.join("spyne-venv")
}

/// The venv's python, set up if needed; `None` (outside CI) when it cannot be.
fn python() -> Option<PathBuf> {
    let venv = venv_dir();
    let status = Command::new("bash").arg(repo().join("scripts/spyne-venv.sh")).arg(&venv).status();
    let ok = matches!(&status, Ok(s) if s.success());
    if !ok {
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

fn start() -> Option<Spyne> {
    let python = python()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/spyne/service.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut server = Spyne { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
    let line = rx.recv_timeout(START_TIMEOUT).expect("spyne did not print its port in time");
    let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect(&line);
    server.addr.set_port(port);
    Some(server)
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 exchange with `Connection: close`, bounded by timeouts.
fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.take(16 * 1024 * 1024).read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect(&head);
    Reply { status, body: raw[split + 4..].to_vec() }
}

fn wsdl(server: &Spyne) -> Wsdl {
    let reply = exchange(server.addr, "GET", "/?wsdl", &[], b"");
    assert_eq!(reply.status, 200);
    Wsdl::parse(&reply.body).unwrap()
}

/// Sends `input` to `op` and maps the answer.
fn call(server: &Spyne, op: &Operation, input: Value) -> (u16, SoapResponse) {
    let Value::Object(input) = input else { panic!("input must be an object") };
    let request = op.build_request(&input).unwrap();
    let headers: Vec<(String, String)> =
        request.headers().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned())).collect();
    let reply = exchange(server.addr, "POST", "/", &headers, &request.body);
    let response = op.parse_response(&reply.body, &Limits::default()).unwrap();
    (reply.status, response)
}

fn output(server: &Spyne, op: &Operation, input: Value) -> Value {
    match call(server, op, input) {
        (200, SoapResponse::Output(map)) => Value::Object(map),
        (status, other) => panic!("{}: HTTP {status}, {other:?}", op.name()),
    }
}

#[test]
fn spyne_wsdl_reads_as_document_literal_soap11() {
    let Some(server) = start() else { return };
    let wsdl = wsdl(&server);
    let mut names: Vec<&str> = wsdl.operations().map(Operation::name).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "describe_nickname", "fail", "get_person", "is_even", "list_people", "list_tags"]);
    assert!(wsdl.unsupported().is_empty(), "{:?}", wsdl.unsupported());
    let op = wsdl.operation("get_person").unwrap();
    assert_eq!((op.version(), op.style(), op.action()), (SoapVersion::Soap11, Style::Document, Some("get_person")));
    assert_eq!(op.endpoint(), Some(format!("http://{}/", server.addr).as_str()));
    let routes = portcullis_soap::routes_yaml(
        &wsdl,
        &portcullis_soap::RouteOptions { upstream: "people".into(), ..Default::default() },
    );
    assert!(routes.contains("path: \"/people-service/get-person\""), "{routes}");
}

#[test]
fn spyne_nested_type_with_integer_boolean_and_nil_maps_to_json() {
    let Some(server) = start() else { return };
    let wsdl = wsdl(&server);
    let op = wsdl.operation("get_person").unwrap();
    assert_eq!(
        output(&server, op, json!({"person_id": 1})),
        json!({"get_personResult": {
            "name": "Ada <Lovelace> & co", "age": 37, "active": true, "nickname": null,
            "address": {"street": "12 St James's Square", "city": "London"}
        }})
    );
    // Through a template, as a route with `soap.request: {person_id: "{path.id}"}` would.
    let template: Map<String, Value> = serde_json::from_value(json!({"person_id": "{path.id}"})).unwrap();
    let template = RequestTemplate::parse(&template).unwrap();
    template.check(op).unwrap();
    let input =
        template.render(&|p: &Placeholder| matches!(p, Placeholder::Path(n) if n == "id").then(|| json!("2"))).unwrap();
    let person = output(&server, op, Value::Object(input));
    assert_eq!(person["get_personResult"]["nickname"], json!("countess"));
    assert_eq!(person["get_personResult"]["active"], json!(false));
    assert_eq!(person["get_personResult"]["age"], json!(38));
}

#[test]
fn spyne_arrays_are_arrays_even_with_one_item() {
    let Some(server) = start() else { return };
    let wsdl = wsdl(&server);
    let tags = wsdl.operation("list_tags").unwrap();
    assert_eq!(output(&server, tags, json!({"count": 1})), json!({"list_tagsResult": {"string": ["tag-0"]}}));
    assert_eq!(
        output(&server, tags, json!({"count": "3"})),
        json!({"list_tagsResult": {"string": ["tag-0", "tag-1", "tag-2"]}})
    );
    let people = output(&server, wsdl.operation("list_people").unwrap(), json!({"count": 2}));
    let list = people["list_peopleResult"]["Person"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0]["age"].clone(), list[1]["nickname"].clone()), (json!(37), json!("countess")));
}

#[test]
fn spyne_scalars_and_nil_inputs_round_trip() {
    let Some(server) = start() else { return };
    let wsdl = wsdl(&server);
    assert_eq!(output(&server, wsdl.operation("add").unwrap(), json!({"a": "40", "b": 2})), json!({"addResult": 42}));
    let even = wsdl.operation("is_even").unwrap();
    assert_eq!(output(&server, even, json!({"n": 4})), json!({"is_evenResult": true}));
    assert_eq!(output(&server, even, json!({"n": -3})), json!({"is_evenResult": false}));
    let nick = wsdl.operation("describe_nickname").unwrap();
    assert_eq!(output(&server, nick, json!({"nickname": null})), json!({"describe_nicknameResult": "no nickname"}));
    assert_eq!(output(&server, nick, json!({"nickname": "<&>"})), json!({"describe_nicknameResult": "nickname: <&>"}));
}

#[test]
fn spyne_client_and_server_faults_map_to_400_and_502() {
    let Some(server) = start() else { return };
    let wsdl = wsdl(&server);
    let fail = wsdl.operation("fail").unwrap();
    let (status, SoapResponse::Fault(client)) = call(&server, fail, json!({"kind": "client"})) else {
        panic!("no fault")
    };
    assert_eq!(status, 500, "SOAP 1.1 faults come with HTTP 500");
    assert_eq!(client.kind, FaultKind::Client);
    assert_eq!(client.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!((client.faultcode.as_str(), client.faultstring.as_str()), ("Client.InvalidInput", "kind was client"));
    let (_, SoapResponse::Fault(broke)) = call(&server, fail, json!({"kind": "server"})) else { panic!("no fault") };
    assert_eq!((broke.kind, broke.faultcode.as_str()), (FaultKind::Server, "Server"));
    assert_eq!(broke.faultstring, "the server broke on purpose");
    assert_eq!(broke.status(), http::StatusCode::BAD_GATEWAY);
}
