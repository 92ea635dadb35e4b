//! See [`super`]. The data path: no client-sent field can blow up or blank an access log line.

use std::net::SocketAddr;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::access_log::wait_for_lines;
use crate::certs::{ClientOptions, Pki, client_config};
use crate::kit::{self, Backend, TestGateway, WAIT, get};

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
    let ua = parse(&lines[0])["user_agent"].as_str().unwrap_or_default().to_owned();
    assert!(ua.starts_with("AAAA") && ua.ends_with("…[+29488 bytes]"), "{ua}");
    assert_eq!(parse(&lines[0])["status"], 431);
    assert_eq!(parse(&lines[1])["user_agent"], ua);
    let logged_host = parse(&lines[2])["host"].as_str().unwrap_or_default().to_owned();
    assert!(logged_host.starts_with("hhhh") && logged_host.contains("…[+"), "{logged_host}");
    let logged_path = parse(&lines[3])["path"].as_str().unwrap_or_default().to_owned();
    assert!(logged_path.starts_with("/ppp") && logged_path.ends_with("…[+6977 bytes]"), "{logged_path}");
    let logged_method = parse(&lines[4])["method"].as_str().unwrap_or_default().to_owned();
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
    let lines = wait_for_lines(&gw, 2).await;
    assert_eq!(parse(&lines[0])["user_agent"], "café \\xff\\xfe bot", "{}", lines[0]);
    assert_eq!(parse(&lines[1])["host"], "b\\xffd.test", "{}", lines[1]);
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
