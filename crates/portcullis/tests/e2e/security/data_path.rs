//! See [`super`]. The data path: a slow client must not get a healthy target ejected, a
//! cached answer must not reach another user or scheme, a WebSocket tunnel needs a real
//! handshake on both sides, and no client-sent field can blow up or blank an access log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::access_log::wait_for_lines;
use crate::certs::{ClientOptions, Pki, client_config};
use crate::kit::{self, Backend, Recorded, TestGateway, WAIT, get};

/// One HTTP/1.1 response read off a raw socket: status, lower-cased head, body.
struct RawReply {
    status: u16,
    head: String,
    body: String,
}

impl RawReply {
    fn code(&self) -> String {
        assert!(self.head.contains("content-type: application/problem+json"), "not a problem: {}", self.head);
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        json["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Reads one response (head, then a `Content-Length` body), bounded by [`WAIT`].
async fn read_reply<S: AsyncRead + Unpin>(s: &mut S) -> RawReply {
    let read = async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut byte).await.expect("read");
            assert_eq!(n, 1, "closed before the end of a head: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        s.read_exact(&mut body).await.expect("body");
        RawReply { status, head, body: String::from_utf8_lossy(&body).into_owned() }
    };
    tokio::time::timeout(WAIT, read).await.expect("no response in time")
}

/// Sends `request` over TLS to `addr` with SNI `sni` (any certificate accepted) and reads one
/// response.
async fn tls_exchange(addr: SocketAddr, sni: &str, request: &[u8]) -> RawReply {
    let config = client_config(&ClientOptions::default());
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from(sni.to_owned()).expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("handshake");
    tls.write_all(request).await.expect("write");
    read_reply(&mut tls).await
}

async fn plain_exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    read_reply(&mut s).await
}

fn text_owned(body: String) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(body)))
}

const ACME_KEY: &str = "pcl_test_acme_key";

/// The stored form of the API key [`ACME_KEY`].
fn acme_key_stored() -> String {
    portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(ACME_KEY.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Issue 12, item 1: a client that stalls mid-body is the client's failure, never the target's.

fn slow_client_gateway(backend: &Backend, protocol: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
limits: {{ idle_timeout: 1s }}
upstreams:
  b:
    targets: ["{}"]
    protocol: {protocol}
    timeouts: {{ response: 300ms }}
    health: {{ passive: {{ unhealthy_after: 3, cooldown: 60s }} }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

/// Declares a 1000-byte body, sends half of it and stalls; returns what the gateway answered.
async fn stalled_upload(addr: SocketAddr) -> RawReply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 1000\r\n\r\n").await.expect("head");
    s.write_all(&[b'x'; 500]).await.expect("half the body");
    read_reply(&mut s).await
}

async fn slow_clients_cannot_eject(protocol: &str) {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&slow_client_gateway(&backend, protocol)).await;
    let stalled: Vec<_> = (0..5).map(|_| tokio::spawn(stalled_upload(gw.addr))).collect();
    let mut replies = Vec::new();
    for task in stalled {
        replies.push(task.await.expect("slow client"));
    }
    // The target is still in: a normal client is served.
    let r = get(&gw.url("/healthy"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{protocol}: a slow client got the target ejected: {}", r.text());
    for reply in &replies {
        assert_eq!((reply.status, reply.code()), (408, "request_timeout".to_owned()), "{protocol}: {}", reply.head);
    }
    let lines = wait_for_lines(&gw, 6).await;
    let timed_out = lines.iter().filter(|l| l.contains(r#""outcome":"request_timeout""#)).count();
    assert_eq!(timed_out, 5, "{protocol}: {lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stalling_mid_body_get_408_and_the_target_stays_in() {
    slow_clients_cannot_eject("http1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stalling_mid_body_get_408_and_an_h2_target_stays_in() {
    slow_clients_cannot_eject("h2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_arriving_is_not_cut_by_the_response_timeout() {
    let backend = Backend::start(|r| text_owned(format!("got {} bytes", r.body.len()))).await;
    let gw = TestGateway::start(&slow_client_gateway(&backend, "http1")).await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 400\r\n\r\n").await.expect("head");
    // Four pieces, each within the idle timeout, together longer than the response timeout.
    for _ in 0..4 {
        // A gateway that gave up already shows in the reply below.
        let _ = s.write_all(&[b'x'; 100]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = read_reply(&mut s).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "got 400 bytes"), "{}", reply.head);
}

// ---------------------------------------------------------------------------------------------
// Issue 12, item 6: a cached answer never reaches another user, nor the other scheme.

/// Answers with the credentials it was sent, as a backend answering per session would.
fn per_session(r: &Recorded) -> Response<Full<Bytes>> {
    let show = |name: &str| r.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    text_owned(format!("cookie={:?} authorization={:?}", show("cookie"), show("authorization")))
}

fn key_route_config(backend: &Backend) -> String {
    let stored = acme_key_stored();
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
auth:
  partners: {{ type: api_key, header: X-Api-Key }}
consumers:
  acme: {{ keys: ["{stored}"] }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: me, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: {{ any: [partners] }}, cache: {{ ttl: 60s }} }}
"#,
        backend.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keys_users_never_get_each_others_cached_answer_by_cookie_or_unverified_token() {
    let backend = Backend::start(per_session).await;
    let gw = TestGateway::start(&key_route_config(&backend)).await;
    let as_user = |path: &'static str, name: &'static str, value: &'static str| {
        let url = gw.url(path);
        async move { get(&url, &[("x-api-key", ACME_KEY), (name, value)]).await }
    };
    let alice = as_user("/session", "cookie", "session=ALICE").await;
    assert_eq!((alice.status, alice.header("x-cache")), (StatusCode::OK, Some("BYPASS")), "{}", alice.text());
    assert!(alice.text().contains("session=ALICE"), "{}", alice.text());
    let bob = as_user("/session", "cookie", "session=BOB").await;
    assert!(bob.text().contains("session=BOB"), "Bob was served {}", bob.text());
    assert_eq!(bob.header("x-cache"), Some("BYPASS"));

    // A bearer token no provider of the route checked: whether it is forwarded or stripped,
    // Bob never gets the answer made for Alice's.
    let alice = as_user("/token", "authorization", "Bearer alice.unverified.token").await;
    assert_eq!(alice.status, StatusCode::OK);
    let bob = as_user("/token", "authorization", "Bearer bob.unverified.token").await;
    assert!(!bob.text().contains("alice"), "Bob was served {}", bob.text());
    let reached = bob.text().contains("bob.unverified.token");
    assert!(!reached || bob.header("x-cache") == Some("BYPASS"), "{:?} {}", bob.header("x-cache"), bob.text());

    // Without a credential the gateway did not verify, the key's answers are cached as before.
    let plain = gw.url("/plain");
    assert_eq!(get(&plain, &[("x-api-key", ACME_KEY)]).await.header("x-cache"), Some("MISS"));
    assert_eq!(get(&plain, &[("x-api-key", ACME_KEY)]).await.header("x-cache"), Some("HIT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_token_cookie_is_cached_per_user_and_a_cookie_beside_it_bypasses() {
    let key = crate::idp::SigningKey::rsa("k1", crate::idp::RSA1);
    let idp = crate::idp::Idp::start(&[&key]).await;
    let backend = Backend::start(per_session).await;
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
limits: {{ max_header_bytes: 65536 }}
auth:
  web:
    type: jwt
    issuer: "{}"
    jwks_uri: "{}"
    audiences: ["api://orders"]
    algorithms: [RS256]
    token_from: [cookie:session]
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: me, match: {{ path: /me }}, upstream: b, auth: {{ any: [web] }}, cache: {{ ttl: 60s }} }}
"#,
        idp.issuer,
        idp.jwks_uri(),
        backend.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (alice, bob) = (key.sign(&idp.claims("alice")), key.sign(&idp.claims("bob")));
    let me = |cookie: String| {
        let url = gw.url("/me");
        async move { get(&url, &[("cookie", &cookie)]).await }
    };
    assert_eq!(me(format!("session={alice}")).await.header("x-cache"), Some("MISS"));
    assert_eq!(me(format!("session={alice}")).await.header("x-cache"), Some("HIT"), "the token was verified");
    let other = me(format!("session={bob}")).await;
    assert_eq!(other.header("x-cache"), Some("MISS"), "another user, another entry");
    let beside = me(format!("session={alice}; cart=BOB-CART")).await;
    assert_eq!(beside.header("x-cache"), Some("BYPASS"), "a cookie nobody verified");
    assert!(beside.text().contains("cart=BOB-CART"), "{}", beside.text());
}

/// A public cached route served on a plain and a TLS listener (`redis`: the cache's store).
async fn two_scheme_gateway(backend: &Backend, route: &str, redis: Option<&str>) -> TestGateway {
    let dir = kit::scratch_dir();
    Pki::new("edge-ca").leaf(&["api.test"], false).write(&dir, "server");
    let state = redis.map_or_else(String::new, |url| format!("state: {{ redis: \"{url}\" }}"));
    // Two listeners may not both bind port 0: two ports that were free a moment ago.
    let (plain, tls) = (kit::dead_port().await, kit::dead_port().await);
    let yaml = format!(
        r#"version: 1
listeners:
  - {{ name: plain, bind: "{plain}" }}
  - {{ name: tls, bind: "{tls}", tls: {{ certificates: [{{ cert: server.pem, key: server-key.pem }}] }} }}
logging: {{ access: {{ path: off }} }}
{state}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: {route}, match: {{ path: /page }}, upstream: b, auth: none, cache: {{ ttl: 60s, shared: true }} }}
"#,
        backend.url()
    );
    TestGateway::start_in(&yaml, dir).await
}

async fn schemes_never_cross(redis: Option<&str>) {
    // Links built from X-Forwarded-Proto: an https page must never be served over http.
    let backend = Backend::start(|r| {
        let proto = r.headers.get("x-forwarded-proto").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        text_owned(format!("<a href=\"{}://api.test/next\">", proto.unwrap_or_default()))
    })
    .await;
    let route = crate::rate_limits::unique("schemes");
    let gw = two_scheme_gateway(&backend, &route, redis).await;
    let (plain, tls) = (gw.listener("plain").expect("plain"), gw.listener("tls").expect("tls"));
    let request = b"GET /page HTTP/1.1\r\nHost: api.test\r\n\r\n";
    let over_tls = tls_exchange(tls, "api.test", request).await;
    assert_eq!((over_tls.status, over_tls.body.as_str()), (200, "<a href=\"https://api.test/next\">"));
    // The store is in the background with Redis: the https answer is there once TLS hits.
    kit::eventually("the https answer stored", || async {
        tls_exchange(tls, "api.test", request).await.head.contains("x-cache: hit").then_some(())
    })
    .await;
    let over_plain = plain_exchange(plain, request).await;
    assert_eq!(over_plain.body, "<a href=\"http://api.test/next\">", "{}", over_plain.head);
    assert!(over_plain.head.contains("x-cache: miss"), "{}", over_plain.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_over_https_is_never_served_over_http() {
    schemes_never_cross(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_an_answer_cached_over_https_is_never_served_over_http() {
    schemes_never_cross(Some(&crate::rate_limits::redis_url())).await;
}

// ---------------------------------------------------------------------------------------------
// Issue 12, item 11: a WebSocket tunnel only after a real handshake on both sides.

const KEY_ROUTES: &str = r#"  - { name: ws, match: { path: /ws }, upstream: b, auth: none, websocket: true }
  - { name: admin, match: { path: "/admin/{*rest}" }, upstream: b, auth: { any: [partners] } }
"#;

fn websocket_config(target: &str) -> String {
    let stored = acme_key_stored();
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
auth:
  partners: {{ type: api_key, header: X-Api-Key }}
consumers:
  acme: {{ keys: ["{stored}"] }}
upstreams:
  b: {{ targets: ["http://{target}"] }}
routes:
{KEY_ROUTES}"#
    )
}

/// An upstream that answers every request head with `answer` and then records every byte
/// that reaches it until the gateway closes the connection.
async fn upgrade_anything(answer: &'static [u8]) -> (SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<std::sync::Mutex<Vec<u8>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut answered = false;
                while let Ok(Ok(n)) = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
                    if n == 0 {
                        return;
                    }
                    record.lock().expect("lock").extend_from_slice(&buf[..n]);
                    if !answered && record.lock().expect("lock").windows(4).any(|w| w == b"\r\n\r\n") {
                        answered = true;
                        let _ = tcp.write_all(answer).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_with_a_wrong_accept_is_502_and_nothing_pipelined_reaches_the_upstream() {
    let (target, seen) = upgrade_anything(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBhbnN3ZXI=\r\n\r\n",
    )
    .await;
    let gw = TestGateway::start(&websocket_config(&target.to_string())).await;
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    client
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\
              GET /admin/users HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        )
        .await
        .expect("write");
    let upgrade = read_reply(&mut client).await;
    assert_eq!((upgrade.status, upgrade.code()), (502, "upstream_error".to_owned()), "{}", upgrade.head);
    // The pipelined request stays HTTP on the gateway's side: it needs the key it lacks.
    let admin = read_reply(&mut client).await;
    assert_eq!(admin.status, 401, "{}", admin.head);
    drop(client);
    drop(gw);
    let upstream_saw = String::from_utf8_lossy(&seen.lock().expect("lock")).into_owned();
    assert!(upstream_saw.starts_with("GET /ws "), "{upstream_saw}");
    assert!(!upstream_saw.contains("/admin"), "smuggled through the tunnel: {upstream_saw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_without_a_valid_key_and_version_13_never_reaches_the_upstream() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&websocket_config(&backend.addr.to_string())).await;
    let cases: [(&str, &str); 6] = [
        ("no key", "Sec-WebSocket-Version: 13\r\n"),
        ("no version", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
        ("version 8", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"),
        ("a 5-byte key", "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n"),
        ("not base64", "Sec-WebSocket-Key: !!!!not-base64-at-all!!!\r\nSec-WebSocket-Version: 13\r\n"),
        (
            "two keys",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\
             Sec-WebSocket-Version: 13\r\n",
        ),
    ];
    for (why, handshake) in cases {
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{handshake}\r\n"
        );
        let reply = plain_exchange(gw.addr, request.as_bytes()).await;
        assert_eq!((reply.status, reply.code()), (400, "bad_request".to_owned()), "{why}: {}", reply.head);
        assert!(reply.head.contains("sec-websocket-version: 13"), "{why}: {}", reply.head);
    }
    assert_eq!(backend.count(), 0, "a bad handshake reached the upstream");
}

// ---------------------------------------------------------------------------------------------
// Issue 12, item 13: access log lines are bounded, never blank a field, and show the SNI.

fn log_config(backend: &Backend, listener_tls: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@"{listener_tls} }}]
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
limits: {{ max_header_bytes: 65536 }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: small, match: {{ path: /small }}, upstream: b, auth: none, limits: {{ max_header_bytes: 16384 }} }}
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_field_a_client_sends_can_make_a_log_line_long() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&log_config(&backend, "")).await;
    let agent = "A".repeat(30_000);
    let refused = get(&gw.url("/small"), &[("user-agent", &agent)]).await;
    assert_eq!(refused.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let served = get(&gw.url("/big"), &[("user-agent", &agent)]).await;
    assert_eq!(served.status, StatusCode::OK);
    let host = format!("{}.example.com", "h".repeat(20_000));
    let _ = get(&gw.url("/host"), &[("host", &host)]).await;
    let path = format!("/{}", "p".repeat(8_000));
    let _ = get(&gw.url(&path), &[]).await;
    let method = format!("{} /method HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(20_000));
    let _ = plain_exchange(gw.addr, method.as_bytes()).await;

    let lines = wait_for_lines(&gw, 5).await;
    for line in &lines {
        assert!(line.len() < 4096, "a {}-byte log line: {}…", line.len(), &line[..200]);
    }
    // Lines are written as answers finish, not as requests were sent: each is found by its path.
    let lines: Vec<serde_json::Value> = lines.iter().map(|l| parse(l)).collect();
    let line = |path: &str| {
        lines
            .iter()
            .find(|l| l["path"].as_str().is_some_and(|p| p.starts_with(path)))
            .unwrap_or_else(|| panic!("no line for {path}: {lines:#?}"))
    };
    let ua = line("/small")["user_agent"].as_str().unwrap_or_default().to_owned();
    assert!(ua.starts_with("AAAA") && ua.ends_with("…[+29488 bytes]"), "{ua}");
    assert_eq!(line("/small")["status"], 431);
    assert_eq!(line("/big")["user_agent"], ua);
    let logged_host = line("/host")["host"].as_str().unwrap_or_default().to_owned();
    assert!(logged_host.starts_with("hhhh") && logged_host.contains("…[+"), "{logged_host}");
    let logged_path = line("/ppp")["path"].as_str().unwrap_or_default().to_owned();
    assert!(logged_path.starts_with("/ppp") && logged_path.ends_with("…[+6977 bytes]"), "{logged_path}");
    let logged_method = line("/method")["method"].as_str().unwrap_or_default().to_owned();
    assert!(logged_method.starts_with("MMMM") && logged_method.contains("…[+"), "{logged_method}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_agent_or_host_that_is_not_utf8_is_logged_with_its_bad_bytes_escaped() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&log_config(&backend, "")).await;
    let reply =
        plain_exchange(gw.addr, b"GET /ua HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xc3\xa9 \xff\xfe bot\r\n\r\n").await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    // A `Host` that is no host name at all is logged as sent, whatever the answer.
    let _ = plain_exchange(gw.addr, b"GET /host HTTP/1.1\r\nHost: b\xffd.test\r\n\r\n").await;
    let lines: Vec<serde_json::Value> = wait_for_lines(&gw, 2).await.iter().map(|l| parse(l)).collect();
    let line = |path: &str| lines.iter().find(|l| l["path"] == path).unwrap_or_else(|| panic!("no {path}: {lines:#?}"));
    assert_eq!(line("/ua")["user_agent"], "café \\xff\\xfe bot");
    assert_eq!(line("/host")["host"], "b\\xffd.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sni_is_logged_beside_the_host_so_domain_fronting_shows() {
    let backend = Backend::ok().await;
    let dir = kit::scratch_dir();
    Pki::new("edge-ca").leaf(&["front.test", "hidden.test"], false).write(&dir, "server");
    let tls = ", tls: { certificates: [{ cert: server.pem, key: server-key.pem }] }";
    let gw = TestGateway::start_in(&log_config(&backend, tls), dir).await;
    let reply = tls_exchange(gw.addr, "front.test", b"GET /fronted HTTP/1.1\r\nHost: hidden.test\r\n\r\n").await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    let line = parse(&wait_for_lines(&gw, 1).await[0]);
    assert_eq!((line["sni"].as_str(), line["host"].as_str()), (Some("front.test"), Some("hidden.test")), "{line}");
    assert!(line["tls"].is_string(), "{line}");
}
