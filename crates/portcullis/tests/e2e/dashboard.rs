//! The admin dashboard (SPEC §5 `GET /`) in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `scripts/chromium.sh`; with `CI=true` it must run) loads the page
//! from the admin listener. Without a token it shows the token form and no number, and a wrong
//! token brings the form back; with the token (given in the URL fragment, which the page reads
//! once into the tab's storage) it shows the traffic, and the numbers move when traffic passes
//! while the page is open. No console message and no CSP violation on the way, and names
//! holding `<script>` are text.
//!
//! Chromium runs with a virtual time budget: timers (the page's poll) run as fast as the page
//! is idle, and virtual time stops while a request is pending. So a relay between the browser
//! and the admin API holds the page's second poll until the test has sent more traffic, and
//! the page's last numbers must include it: deterministic, and bounded by [`BROWSER_WAIT`].

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use crate::cors::browser::{BROWSER_WAIT, chromium_installed};
use crate::kit::{Backend, TestGateway, get, scratch_dir};
use crate::reload::{admin, write_config};

const TOKEN: &str = "dashboard-admin-token-7f3a";
const XSS: &str = "<script>alert(1)</script>";
/// `XSS` as Chromium serializes text: what the DOM holds when the name stayed text.
const XSS_TEXT: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const KEY: &str = "pcl_dashboard_xss_key";

fn config(backend: &Backend) -> String {
    config_with(backend, &format!(r#"token: "{TOKEN}""#))
}

/// [`config`] with `admin` holding `bind` and `admin`.
fn config_with(backend: &Backend, admin: &str) -> String {
    let stored = portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(KEY.as_bytes()));
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", {admin} }}
logging: {{ access: {{ path: off }} }}
auth: {{ keys: {{ type: api_key, header: X-Api-Key }} }}
plans: {{ tiny: {{ quota: 100/day }} }}
consumers: {{ "{XSS}": {{ plan: tiny, keys: ["{stored}"] }} }}
upstreams: {{ b: {{ targets: ["{backend}"] }} }}
routes:
  - {{ name: orders, match: {{ path: /orders }}, upstream: b, auth: none }}
  - {{ name: keyed, match: {{ path: /keyed }}, upstream: b, auth: {{ any: [keys] }} }}
  - {{ name: "{XSS}", match: {{ path: "/x/{XSS}" }}, upstream: b, auth: none }}
"#,
        backend = backend.url()
    )
}

/// What one Chromium run left: the DOM it dumped and its log (console messages included).
struct Run {
    dom: String,
    stderr: String,
}

/// Loads `url` in headless Chromium for `budget` of virtual time and dumps the DOM.
async fn chromium(url: &str, budget: Duration) -> Run {
    let profile = scratch_dir();
    let mut command = std::process::Command::new("timeout");
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
            // Console messages (CSP violations among them) go to stderr as `:CONSOLE` lines.
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null());
    let out =
        tokio::task::spawn_blocking(move || command.output()).await.expect("chromium's waiter").expect("chromium ran");
    let _ = std::fs::remove_dir_all(&profile);
    Run {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    /// Neither the browser's console nor the page saw a problem: no console message, no CSP
    /// violation (the page also lists any `securitypolicyviolation` and script error it sees).
    fn assert_clean(&self, what: &str) {
        let console: Vec<&str> = self.stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{what}: console messages:\n{}", console.join("\n"));
        assert!(!self.stderr.contains("Content Security Policy"), "{what}: a CSP violation:\n{}", self.stderr);
        assert!(
            self.dom.contains(r#"<ul id="page-problems" class="problems" hidden=""></ul>"#),
            "{what}: {}",
            self.dom
        );
    }

    /// The text of a table's cell: table `table`, the row whose `name` cell is `row`, column `field`.
    fn cell(&self, table: &str, row: &str, field: &str) -> Option<String> {
        let start = self.dom.find(&format!(r#"<table id="{table}">"#))?;
        let table = &self.dom[start..start + self.dom[start..].find("</table>")?];
        let name = format!(r#"data-field="name">{row}</td>"#);
        let tr = table.split("<tr>").find(|tr| tr.contains(&name))?;
        let at = tr.find(&format!(r#"data-field="{field}""#))?;
        let text = &tr[at..];
        let text = &text[text.find('>')? + 1..];
        Some(text[..text.find("</td>")?].to_owned())
    }

    fn number(&self, table: &str, row: &str, field: &str) -> u64 {
        let cell = self.cell(table, row, field);
        cell.as_deref().and_then(|c| c.parse().ok()).unwrap_or_else(|| {
            panic!("{table}/{row}/{field} is not a number ({cell:?}); DOM:\n{}\nstderr:\n{}", self.dom, self.stderr)
        })
    }
}

/// A TCP relay to the admin API that holds the page's `hold`-th `GET /dashboard/data` until
/// released, and says when it holds it.
struct Relay {
    addr: SocketAddr,
    held: mpsc::Receiver<()>,
    release: Arc<Notify>,
}

impl Relay {
    async fn start(upstream: SocketAddr, hold: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let (held_tx, held) = mpsc::channel(1);
        let release = Arc::new(Notify::new());
        let polls = Arc::new(AtomicUsize::new(0));
        let gate = release.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(pipe(client, upstream, polls.clone(), hold, held_tx.clone(), gate.clone()));
            }
        });
        Self { addr, held, release }
    }
}

async fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    polls: Arc<AtomicUsize>,
    hold: usize,
    held: mpsc::Sender<()>,
    release: Arc<Notify>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    });
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(BROWSER_WAIT, from_client.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        // A browser's GET head arrives whole in one read.
        if chunk[..n].windows(19).any(|w| w == b"GET /dashboard/data")
            && polls.fetch_add(1, Ordering::SeqCst) + 1 == hold
        {
            let _ = held.send(()).await;
            let _ = tokio::time::timeout(BROWSER_WAIT, release.notified()).await;
        }
        if to_server.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    let _ = to_server.shutdown().await;
}

async fn traffic(gw: &TestGateway, orders: usize, keyed: usize) {
    for _ in 0..orders {
        assert_eq!(get(&gw.url("/orders"), &[]).await.status, StatusCode::OK);
    }
    for _ in 0..keyed {
        assert_eq!(get(&gw.url("/keyed"), &[("x-api-key", KEY)]).await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_carry_a_strict_csp_and_the_data_needs_the_token() {
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let gw = TestGateway::from_file(&write_config(&dir, &config(&backend))).await.with_admin().await;
    for path in ["/", "/dashboard/app.js", "/dashboard/app.css"] {
        let r = get(&gw.admin_url(path), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert!(!r.text().contains(TOKEN), "{path}");
    }
    let r = admin(&gw, "GET", "/dashboard/data", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "missing_credentials");
    let r = admin(&gw, "GET", "/dashboard/data", Some("not-the-token")).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    let r = admin(&gw, "GET", "/dashboard/data", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.json()["routes"].is_array(), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_numbers_only_with_the_token_they_move_with_traffic_and_names_stay_text() {
    if !chromium_installed() {
        return;
    }
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let gw = TestGateway::from_file(&write_config(&dir, &config(&backend))).await.with_admin().await;
    traffic(&gw, 3, 2).await;
    assert_eq!(get(&gw.url("/nowhere"), &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&gw.url("/keyed"), &[]).await.status, StatusCode::UNAUTHORIZED);

    // Without a token: the form, and no number.
    let page = gw.admin_url("/");
    let run = chromium(&page, Duration::from_secs(4)).await;
    run.assert_clean("without a token");
    assert!(run.dom.contains(r#"<main id="board" hidden="">"#), "the board stays hidden: {}", run.dom);
    assert!(run.dom.contains(r#"<form id="login" autocomplete="off">"#), "the form shows: {}", run.dom);
    assert!(!run.dom.contains("data-field="), "no value at all: {}", run.dom);

    // A wrong token: refused (401), forgotten, the form again with the reason, and no number.
    // (Chromium logs the 401 itself on the console, so only the page's own problems count.)
    let run = chromium(&format!("{page}#token=not-the-token"), Duration::from_secs(4)).await;
    assert!(!run.stderr.contains("Content Security Policy"), "{}", run.stderr);
    assert!(run.dom.contains(r#"<form id="login" autocomplete="off">"#), "the form shows again: {}", run.dom);
    assert!(
        run.dom.contains(r#"<p id="login-error" class="error">The admin API refused this token.</p>"#),
        "{}",
        run.dom
    );
    assert!(!run.dom.contains("data-field=") && !run.dom.contains("not-the-token"), "{}", run.dom);

    // With the token: the numbers of the traffic so far, then the page's second poll is held
    // until more traffic has passed, and the page shows that too.
    let mut relay = Relay::start(gw.admin.expect("admin"), 2).await;
    let url = format!("http://{}/#token={TOKEN}", relay.addr);
    let mut browser = tokio::spawn(async move { chromium(&url, Duration::from_secs(15)).await });
    // Chromium is bounded by BROWSER_WAIT, so this wait is too.
    let mut ended = None;
    let held = tokio::select! {
        held = relay.held.recv() => held.is_some(),
        run = &mut browser => {
            ended = Some(run);
            false
        }
    };
    if held {
        traffic(&gw, 4, 1).await;
    }
    relay.release.notify_one();
    let run = match ended {
        Some(run) => run,
        None => browser.await,
    }
    .expect("the browser task");
    assert!(held, "the page polled a second time; DOM:\n{}\nstderr:\n{}", run.dom, run.stderr);
    run.assert_clean("with the token");
    assert!(run.dom.contains(r#"<form id="login" autocomplete="off" hidden="">"#), "{}", run.dom);
    assert_eq!(run.number("routes", "orders", "requests"), 7, "3 before the page, 4 while it was open");
    assert_eq!(run.number("routes", "keyed", "requests"), 4);
    assert_eq!(run.number("routes", "keyed", "refused"), 1);
    assert!(run.cell("routes", "orders", "p99").is_some_and(|p| p.parse::<f64>().is_ok()), "{}", run.dom);
    assert_eq!(run.number("consumers", XSS_TEXT, "quota_used"), 3, "2 before, 1 while the page was open");
    assert_eq!(run.number("consumers", XSS_TEXT, "quota_limit"), 100);
    let target = format!(r#"{}</td><td data-field="health" class="#, backend.addr);
    assert!(run.dom.contains(r#"data-field="upstream">b</td><td data-field="target">"#), "{}", run.dom);
    assert!(run.dom.contains(&target), "the upstream target is listed with its health: {}", run.dom);
    for (code, decided) in [("no_route", "route"), ("missing_credentials", "authenticate")] {
        assert!(
            run.dom.contains(&format!(r#"data-field="code">{code}</td><td data-field="decided_by">{decided}"#)),
            "{code}: {}",
            run.dom
        );
    }

    // Names holding markup are text: in the DOM as escaped text, no script element added.
    assert_eq!(run.cell("routes", XSS_TEXT, "path").as_deref(), Some(format!("/x/{XSS_TEXT}").as_str()));
    assert!(run.cell("consumers", XSS_TEXT, "plan").is_some_and(|p| p == "tiny"), "{}", run.dom);
    assert_eq!(run.dom.matches("<script").count(), 1, "only the page's own script element: {}", run.dom);
    assert!(!run.dom.contains(TOKEN), "the token is not written into the page");
}

/// A gateway without an admin token (loopback only): the page asks anyway, and an empty token
/// reads the data without `Authorization`, which the loopback rules let a same-origin page do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_tokenless_loopback_gateway_with_an_empty_token() {
    if !chromium_installed() {
        return;
    }
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let gw = TestGateway::from_file(&write_config(&dir, &config_with(&backend, "public_metrics: false")))
        .await
        .with_admin()
        .await;
    traffic(&gw, 2, 0).await;
    let page = gw.admin_url("/");
    let run = chromium(&page, Duration::from_secs(4)).await;
    run.assert_clean("tokenless, before the form");
    assert!(!run.dom.contains("data-field="), "the form first, even here: {}", run.dom);
    let run = chromium(&format!("{page}#token="), Duration::from_secs(4)).await;
    run.assert_clean("tokenless, an empty token");
    assert_eq!(run.number("routes", "orders", "requests"), 2, "{}", run.dom);
}
