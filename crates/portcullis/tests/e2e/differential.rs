//! The gateway beside nginx and HAProxy on the same hostile bytes: nothing that both refuse
//! may reach the gateway's backend.
//!
//! nginx and HAProxy (Debian's packages, installed by `scripts/http-peers.sh` when missing)
//! are started here as plain child processes with config files of their own in a scratch
//! folder, listening on Unix sockets there (no port to race for; killed on drop), each in
//! front of its own recording backend on 127.0.0.1:0. The gateway gets one too. Every case of
//! [`CORPUS`] is written as raw bytes to all three at once; a case *reached* a backend when
//! the case's marker (an `X-Case` header in each request it holds, smuggled ones included)
//! shows up in the bytes that backend read. With `CI=true` a failure to install or start the
//! peers fails the test; elsewhere (no root, no Debian) it says so and passes.

mod corpus;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use crate::kit::{TestGateway, scratch_dir};
use corpus::{CORPUS, Case};

/// How long one case's client waits for an answer (all cases run at once).
const ANSWER_WAIT: Duration = Duration::from_millis(1500);
/// How long a backend connection may stay silent before the backend stops reading it.
const BACKEND_IDLE: Duration = Duration::from_millis(1500);
/// How long nginx or HAProxy gets to start listening.
const START_WAIT: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs the peers when missing; `false` (outside CI) when they cannot be had.
fn peers_installed() -> bool {
    let status = Command::new("bash").arg(repo().join("scripts/http-peers.sh")).status();
    if matches!(&status, Ok(s) if s.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: could not install nginx and haproxy: {status:?}");
    eprintln!("SKIPPED: nginx and haproxy could not be installed ({status:?}); run scripts/http-peers.sh as root");
    false
}

fn binary(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A reverse proxy this test started; killed when dropped.
struct Peer {
    name: &'static str,
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn nginx(dir: &Path, backend: u16) -> Self {
        let socket = dir.join("nginx.sock");
        let log = dir.join("nginx-error.log");
        let temp = |what: &str| dir.join(format!("nginx-{what}")).display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {log} info;\npid {pid};\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {body};\n  proxy_temp_path {proxy};\n  \
             fastcgi_temp_path {fcgi};\n  uwsgi_temp_path {uwsgi};\n  scgi_temp_path {scgi};\n  \
             server {{\n    listen unix:{socket};\n    location / {{\n      proxy_pass http://127.0.0.1:{backend};\n      \
             proxy_http_version 1.1;\n      proxy_request_buffering off;\n      proxy_read_timeout 5s;\n    }}\n  }}\n}}\n",
            log = log.display(),
            pid = dir.join("nginx.pid").display(),
            body = temp("body"),
            proxy = temp("proxy"),
            fcgi = temp("fcgi"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
            socket = socket.display(),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new(binary("nginx"))
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        Self { name: "nginx", child, socket, log }
    }

    fn haproxy(dir: &Path, backend: u16) -> Self {
        let socket = dir.join("haproxy.sock");
        let log = dir.join("haproxy.log");
        let conf = format!(
            "global\n  maxconn 1024\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  \
             timeout server 5s\n  timeout http-request 3s\n\nfrontend fe\n  bind unix@{socket}\n  default_backend be\n\n\
             backend be\n  server s1 127.0.0.1:{backend}\n",
            socket = socket.display(),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, conf).expect("write haproxy.cfg");
        let out = std::fs::File::create(&log).expect("haproxy log");
        let err = out.try_clone().expect("haproxy log");
        let child = Command::new(binary("haproxy"))
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start haproxy");
        Self { name: "haproxy", child, socket, log }
    }

    /// Waits until the proxy accepts connections; its log on failure.
    async fn ready(&mut self) {
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while UnixStream::connect(&self.socket).await.is_err() {
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("{} did not start ({exited:?}):\n{log}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A backend that records every byte it reads and answers each request head it sees.
struct Recorder {
    port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let all = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let slot = {
                    let mut all = all.lock().expect("lock");
                    all.push(Vec::new());
                    all.len() - 1
                };
                tokio::spawn(record(stream, all.clone(), slot));
            }
        });
        Self { port, received }
    }

    /// How many times `marker` occurs in everything this backend read.
    fn count(&self, marker: &str) -> usize {
        let needle = marker.as_bytes();
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|bytes| bytes.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
    }
}

async fn record(mut stream: TcpStream, all: Arc<Mutex<Vec<Vec<u8>>>>, slot: usize) {
    let mut buf = [0u8; 8192];
    let (mut heads, mut seen) = (0, Vec::new());
    while let Ok(Ok(n)) = tokio::time::timeout(BACKEND_IDLE, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(bytes) = all.lock().expect("lock").get_mut(slot) {
            bytes.extend_from_slice(&buf[..n]);
        }
        let ends = seen.windows(4).filter(|w| *w == b"\r\n\r\n").count();
        while heads < ends {
            heads += 1;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        }
    }
}

/// What one front end made of one case: the first status it answered (`-` for none) and
/// how many of the case's requests its backend read.
#[derive(Debug, Clone)]
struct Verdict {
    status: String,
    reached: usize,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reached == 0 {
            write!(f, "{} refused", self.status)
        } else {
            write!(f, "{} →{}", self.status, self.reached)
        }
    }
}

/// Writes the case and reads the answer until the peer closes or [`ANSWER_WAIT`] passes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: Vec<u8>) -> String {
    let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
    let mut out = Vec::new();
    // A server may answer and close before reading all of it.
    let _ = tokio::time::timeout_at(deadline, stream.write_all(&bytes)).await;
    let mut buf = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.find("HTTP/1.").and_then(|i| text.get(i + 9..i + 12)).unwrap_or("-").to_owned()
}

fn marker(index: usize) -> String {
    format!("pcd-{index:03}-q7")
}

/// The case's bytes with `{M}` replaced by its marker and `{BIG}` by 64 KiB.
fn bytes_of(case: &Case, index: usize) -> Vec<u8> {
    let marker = marker(index);
    let mut out = Vec::with_capacity(case.bytes.len() + 32);
    let mut rest = case.bytes;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"{M}") {
            out.extend_from_slice(marker.as_bytes());
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"{BIG}") {
            out.resize(out.len() + 64 * 1024, b'a');
            rest = after;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_that_both_nginx_and_haproxy_refuse_reaches_the_gateways_backend() {
    if !peers_installed() {
        return;
    }
    let dir = scratch_dir();
    let (nginx_backend, haproxy_backend, gateway_backend) =
        (Recorder::start().await, Recorder::start().await, Recorder::start().await);
    let mut nginx = Peer::nginx(&dir, nginx_backend.port);
    let mut haproxy = Peer::haproxy(&dir, haproxy_backend.port);
    nginx.ready().await;
    haproxy.ready().await;
    let gw = TestGateway::start(&format!(
        "version: 1\nlisteners: [{{ name: test, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\n\
         upstreams:\n  u: {{ targets: [\"http://127.0.0.1:{}\"] }}\nroutes:\n  \
         - {{ name: root, match: {{ path: \"/\" }}, upstream: u, auth: none }}\n  \
         - {{ name: all, match: {{ path: \"/{{*rest}}\" }}, upstream: u, auth: none }}\n",
        gateway_backend.port
    ))
    .await;

    let mut tasks = Vec::new();
    for (i, case) in CORPUS.iter().enumerate() {
        let bytes = bytes_of(case, i);
        let (n, h, g) = (nginx.socket.clone(), haproxy.socket.clone(), gw.addr);
        tasks.push(tokio::spawn(async move {
            let n = async { exchange(UnixStream::connect(&n).await.expect("connect nginx"), bytes.clone()).await };
            let h = async { exchange(UnixStream::connect(&h).await.expect("connect haproxy"), bytes.clone()).await };
            let g = async { exchange(TcpStream::connect(g).await.expect("connect gateway"), bytes.clone()).await };
            tokio::join!(n, h, g)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("case task"));
    }
    // Whatever a front end forwarded has been read by now; let late writes land.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut table = String::from("case | nginx | haproxy | portcullis\n");
    let mut violations = Vec::new();
    for (i, (case, (n, h, g))) in CORPUS.iter().zip(statuses).enumerate() {
        let m = marker(i);
        let verdicts = [
            Verdict { status: n, reached: nginx_backend.count(&m) },
            Verdict { status: h, reached: haproxy_backend.count(&m) },
            Verdict { status: g, reached: gateway_backend.count(&m) },
        ];
        let both_refuse = verdicts[0].reached == 0 && verdicts[1].reached == 0;
        let flag = if both_refuse && verdicts[2].reached > 0 {
            violations.push(case.name);
            "  <-- both refuse, the gateway forwarded"
        } else {
            ""
        };
        let _ = writeln!(table, "{} | {} | {} | {}{flag}", case.name, verdicts[0], verdicts[1], verdicts[2]);
        if case.name.starts_with("control") {
            assert!(verdicts.iter().all(|v| v.reached > 0), "a valid request did not pass everywhere:\n{table}");
        }
    }
    assert!(
        violations.is_empty(),
        "cases both nginx and HAProxy refuse reached the gateway's backend: {violations:?}\n{table}"
    );
    eprintln!("{table}");
}
