//! CORS as a real browser judges it: headless Chromium (Debian's `chromium`, installed by
//! `scripts/chromium.sh` when missing; with `CI=true` it must run) loads a page from one
//! origin and `fetch()`es the gateway on another port. The page writes every verdict into its
//! DOM, reports to its own server that it is done, and the page server then ends the document
//! so `--dump-dom` prints it. Asserted: the listed origin reads answers (and the exposed
//! `X-Request-Id`) of simple and preflighted requests, with credentials only where the policy
//! says `credentials: true`; an unlisted origin reads nothing and its preflighted requests
//! never reach the backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::kit::{Backend, TestGateway, scratch_dir, text};

/// The whole browser run (start, page, 8 fetches, dump) is bounded by this.
pub(crate) const BROWSER_WAIT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs Chromium when missing; `false` (outside CI) when it cannot be had.
pub(crate) fn chromium_installed() -> bool {
    let status = std::process::Command::new("bash").arg(repo().join("scripts/chromium.sh")).status();
    if matches!(&status, Ok(s) if s.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: could not install chromium: {status:?}");
    eprintln!("SKIPPED: chromium could not be installed ({status:?}); run scripts/chromium.sh as root");
    false
}

/// The page: every combination of route policy (with and without `credentials: true`),
/// fetch credentials mode and request kind (simple GET, preflighted PUT with JSON and a custom
/// header), each verdict a `<li>`; then `/done` on its own origin.
///
/// The gateway's URL comes in the page's query (`?gw=`), so the gateway can bind port 0 after
/// the pages did and name their origins.
fn page() -> String {
    r#"<!doctype html><html><head><title>cors</title></head><body><ul id="out"></ul>
<script>
const gw = new URLSearchParams(location.search).get("gw");
const cases = [];
for (const policy of ["cred", "anon"])
  for (const creds of ["include", "omit"])
    for (const kind of ["simple", "preflighted"]) cases.push({ policy, creds, kind });
async function one(c) {
  const init = { credentials: c.creds, cache: "no-store" };
  if (c.kind === "preflighted") {
    init.method = "PUT";
    init.headers = { "Content-Type": "application/json", "X-Client": "page" };
    init.body = "{}";
  }
  try {
    const r = await fetch(gw + "/" + c.policy + "/" + c.kind, init);
    const body = await r.text();
    return "read " + r.status + " id=" + (r.headers.get("x-request-id") ? "yes" : "no") + " body=" + body;
  } catch (e) {
    return "blocked";
  }
}
(async () => {
  const out = document.getElementById("out");
  for (const c of cases) {
    const li = document.createElement("li");
    li.textContent = c.policy + "|" + c.creds + "|" + c.kind + "=" + (await one(c));
    out.appendChild(li);
  }
  await fetch("/done", { method: "POST", body: "done" });
})();
</script>
"#
    .to_owned()
}

/// A page server on 127.0.0.1 port 0: `GET /` streams the page and holds the document open
/// until the page POSTs `/done` (or the wait ends), then closes it; anything else is 404.
struct PageServer {
    addr: std::net::SocketAddr,
}

impl PageServer {
    async fn start(page: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page server");
        let addr = listener.local_addr().expect("addr");
        let done = Arc::new(Notify::new());
        let page = Arc::new(page);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, page.clone(), done.clone()));
            }
        });
        Self { addr }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(mut stream: TcpStream, page: Arc<String>, done: Arc<Notify>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match tokio::time::timeout(BROWSER_WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && buf.len() < 64 * 1024 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    if request_line.starts_with("GET /?") || request_line.starts_with("GET / ") {
        let start = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(start.as_bytes()).await;
        let _ = stream.write_all(page.as_bytes()).await;
        let _ = stream.flush().await;
        let _ = tokio::time::timeout(BROWSER_WAIT, done.notified()).await;
        let _ = stream.write_all(b"</body></html>\n").await;
        let _ = stream.shutdown().await;
        return;
    }
    if request_line.starts_with("POST /done ") {
        done.notify_one();
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
        let _ = stream.shutdown().await;
        return;
    }
    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    let _ = stream.shutdown().await;
}

/// Loads `url` in headless Chromium and returns the verdicts its page wrote into the DOM.
async fn verdicts(url: &str) -> BTreeMap<String, String> {
    let profile = scratch_dir();
    let mut command = std::process::Command::new("timeout");
    // Bounded: killed (and its helpers with it) if it has not dumped the DOM by then.
    command
        .args(["-k", "5", &BROWSER_WAIT.as_secs().to_string(), "/usr/bin/chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null());
    let out =
        tokio::task::spawn_blocking(move || command.output()).await.expect("chromium's waiter").expect("chromium ran");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let found: BTreeMap<String, String> = dom
        .split("<li>")
        .skip(1)
        .filter_map(|li| li.split("</li>").next())
        .filter_map(|li| li.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("&amp;", "&")))
        .collect();
    // Chromium's stderr is mostly D-Bus noise in a container: its last lines are enough.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert_eq!(found.len(), 8, "every fetch gave a verdict; DOM:\n{dom}\nstderr (last lines, newest first):\n{tail}");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reads_answers_only_from_listed_origins_and_with_credentials_only_where_allowed() {
    if !chromium_installed() {
        return;
    }
    let backend = Backend::start(|r| text(http::StatusCode::OK, if r.method == "PUT" { "put" } else { "got" })).await;
    // Both pages are served first: the gateway's policy names the listed one's origin.
    let listed = PageServer::start(page()).await;
    let unlisted = PageServer::start(page()).await;
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
logging: {{ access: {{ path: off }} }}
cors:
  cred: {{ origins: ["{listed}"], methods: [GET, PUT], headers: [Content-Type, X-Client], credentials: true }}
  anon: {{ origins: ["{listed}"], methods: [GET, PUT], headers: [Content-Type, X-Client] }}
upstreams: {{ b: {{ targets: ["{backend}"] }} }}
routes:
  - {{ name: cred, match: {{ path: "/cred/{{kind}}", methods: [GET, PUT] }}, upstream: b, auth: none, cors: cred }}
  - {{ name: anon, match: {{ path: "/anon/{{kind}}", methods: [GET, PUT] }}, upstream: b, auth: none, cors: anon }}
"#,
        listed = listed.origin(),
        backend = backend.url(),
    );
    let gw = TestGateway::start(&yaml).await;
    let query = format!("?gw=http://{}", gw.addr);

    let seen = verdicts(&format!("{}/{query}", listed.origin())).await;
    for (case, verdict) in &seen {
        let credentials_refused = case.starts_with("anon|include");
        let body = if case.ends_with("preflighted") { "put" } else { "got" };
        let want = if credentials_refused { "blocked".to_owned() } else { format!("read 200 id=yes body={body}") };
        assert_eq!(verdict, &want, "listed origin, {case}");
    }
    let puts = backend.requests().iter().filter(|r| r.method == "PUT").count();
    // Allowed preflights let three PUTs go (the fourth, with credentials on a policy without
    // them, stops at its preflight).
    assert_eq!(puts, 3, "the allowed preflighted requests reached the backend");
    assert!(backend.requests().iter().all(|r| r.method != "OPTIONS"), "no preflight was forwarded");

    let before = backend.count();
    let seen = verdicts(&format!("{}/{query}", unlisted.origin())).await;
    for (case, verdict) in &seen {
        assert_eq!(verdict, "blocked", "unlisted origin, {case}");
    }
    assert_eq!(backend.count(), before, "nothing from the unlisted origin reached the backend");
}
