//! WebSocket upgrades: echoed through the gateway on a `websocket: true` route (text, binary,
//! close handshake), a refused upgrade answered normally on a connection that stays HTTP,
//! upgrade headers stripped elsewhere, nothing pipelined behind the upgrade forwarded before
//! the upstream's 101, and the spliced connection bounded by the idle timeout and the
//! shutdown grace.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};

use crate::kit::{Backend, TestGateway, WAIT, get, text};

/// An echo backend: every text or binary message comes back; records each upgrade request's
/// headers.
struct EchoBackend {
    addr: SocketAddr,
    upgrades: Arc<Mutex<Vec<http::HeaderMap>>>,
}

impl EchoBackend {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let upgrades: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
        let seen = upgrades.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    // tungstenite's callback signature fixes the large error type.
                    #[allow(clippy::result_large_err)]
                    let record = |req: &WsRequest, resp: WsResponse| {
                        seen.lock().expect("lock").push(req.headers().clone());
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, record).await else { return };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() || msg.is_binary() {
                            if ws.send(msg).await.is_err() {
                                return;
                            }
                        } else if msg.is_close() {
                            // tungstenite queued the close reply; flushing sends it.
                            let _ = ws.flush().await;
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, upgrades }
    }
}

async fn gateway(target: &str, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
{extra}
upstreams:
  ws: {{ targets: ["http://{target}"] }}
routes:
  - {{ name: ws, match: {{ path: /ws }}, upstream: ws, auth: none, websocket: true }}
  - {{ name: plain, match: {{ path: /plain }}, upstream: ws, auth: none }}
"#
    ))
    .await
}

const NO_LOG: &str = "logging: { access: { path: off } }";

async fn connect(gw: &TestGateway) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let url = format!("ws://{}/ws", gw.addr);
    let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("handshake timed out")
        .expect("handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(response.headers().contains_key("x-request-id"), "the 101 carries the gateway's request id");
    ws
}

async fn next(ws: &mut WebSocketStream<TcpStream>) -> Option<Message> {
    tokio::time::timeout(WAIT, ws.next()).await.expect("message timed out").and_then(Result::ok)
}

async fn echo_once(ws: &mut WebSocketStream<TcpStream>, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    assert_eq!(next(ws).await, Some(Message::text(text)));
}

#[tokio::test]
async fn websocket_messages_and_the_close_handshake_pass_through_and_the_101_is_logged() {
    let backend = EchoBackend::start().await;
    let dir = crate::kit::scratch_dir();
    let log_path = dir.join("access.log");
    let extra = format!("logging: {{ access: {{ path: \"{}\" }} }}", log_path.display());
    let yaml = format!(
        "version: 1\nlisteners: [{{ name: test, bind: \"@LISTEN@\" }}]\n{extra}\nupstreams:\n  ws: {{ targets: [\"http://{}\"] }}\nroutes:\n  - {{ name: ws, match: {{ path: /ws }}, upstream: ws, auth: none, websocket: true }}\n",
        backend.addr
    );
    let gw = TestGateway::start_in(&yaml, dir).await;
    let mut ws = connect(&gw).await;
    echo_once(&mut ws, "hello through the gate").await;
    ws.send(Message::binary(vec![0u8, 159, 146, 150, 255])).await.expect("send binary");
    assert_eq!(next(&mut ws).await, Some(Message::binary(vec![0u8, 159, 146, 150, 255])));
    echo_once(&mut ws, "again").await;
    ws.close(None).await.expect("close");
    assert!(matches!(next(&mut ws).await, Some(Message::Close(_))), "the close reply comes back");
    assert!(next(&mut ws).await.is_none(), "then the connection ends");

    let headers = backend.upgrades.lock().expect("lock").clone();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0]["upgrade"], "websocket");
    assert!(headers[0].contains_key("sec-websocket-key") && headers[0].contains_key("x-forwarded-for"));

    let deadline = Instant::now() + WAIT;
    let line = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<serde_json::Value>(line).expect("JSON log line");
        }
        assert!(Instant::now() < deadline, "no access log line for the upgrade");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(line["status"], 101);
    assert_eq!(line["route"], "ws");
    assert_eq!(line["outcome"], "ok");
    assert!(line["target"].is_string() && line.get("bytes_out").is_some(), "{line}");
}

/// Sends an upgrade request for `path` on a fresh HTTP/1.1 connection; returns the sender
/// (still usable if the connection stayed HTTP) and the response status and body.
async fn upgrade_request(
    addr: SocketAddr,
    path: &str,
) -> (hyper::client::conn::http1::SendRequest<Empty<Bytes>>, StatusCode, Bytes) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
    tokio::spawn(conn.with_upgrades());
    let request = Request::get(path)
        .header("host", "gw.test")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Empty::new())
        .expect("request");
    let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.expect("timed out").expect("sent");
    let status = response.status();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (sender, status, body)
}

#[tokio::test]
async fn a_refused_upgrade_is_answered_normally_and_the_connection_stays_http() {
    let backend = Backend::start(|r| {
        if r.headers.contains_key("upgrade") {
            text(StatusCode::FORBIDDEN, "no sockets today")
        } else {
            text(StatusCode::OK, "plain")
        }
    })
    .await;
    let gw = gateway(&backend.addr.to_string(), NO_LOG).await;
    let (mut sender, status, body) = upgrade_request(gw.addr, "/ws").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(&body[..], b"no sockets today");
    assert_eq!(backend.requests()[0].headers["upgrade"], "websocket", "the upgrade was forwarded on this route");
    // The same connection still speaks HTTP.
    let again = Request::get("/plain").header("host", "gw.test").body(Empty::new()).expect("request");
    let response = tokio::time::timeout(WAIT, sender.send_request(again)).await.expect("timed out").expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_websocket_on_the_route_the_upstream_sees_no_upgrade() {
    let backend = Backend::ok().await;
    let gw = gateway(&backend.addr.to_string(), NO_LOG).await;
    let (_, status, body) = upgrade_request(gw.addr, "/plain").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"backend-ok");
    let seen = &backend.requests()[0].headers;
    assert!(!seen.contains_key("upgrade") && !seen.contains_key("connection"), "{seen:?}");
    assert!(seen.contains_key("sec-websocket-key"), "end-to-end headers still pass");
}

/// Reads up to the end of an HTTP head.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte)).await.expect("head timed out").expect("read");
        assert_eq!(n, 1, "closed before the end of the head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn read_exactly(tcp: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut buf)).await.expect("read timed out").expect("read");
    buf
}

#[tokio::test]
async fn bytes_pipelined_behind_the_upgrade_wait_for_the_upstreams_101() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = listener.local_addr().expect("addr");
    let upstream = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let head = read_head(&mut tcp).await;
        // Nothing may follow the head before we answer 101.
        let mut early = [0u8; 64];
        let waited = tokio::time::timeout(Duration::from_millis(400), tcp.read(&mut early)).await;
        assert!(waited.is_err(), "bytes arrived before the 101: {waited:?}");
        tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n").await.expect("write 101");
        let after = read_exactly(&mut tcp, b"PIPELINED-BYTES".len()).await;
        tcp.write_all(b"FROM-UPSTREAM").await.expect("write");
        (head, after)
    });
    let gw = gateway(&target.to_string(), NO_LOG).await;
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    client
        .write_all(b"GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nPIPELINED-BYTES")
        .await
        .expect("write");
    let head = read_head(&mut client).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("connection: upgrade"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    assert_eq!(read_exactly(&mut client, b"FROM-UPSTREAM".len()).await, b"FROM-UPSTREAM");
    let (upstream_head, after) =
        tokio::time::timeout(WAIT, upstream).await.expect("upstream timed out").expect("upstream");
    assert_eq!(after, b"PIPELINED-BYTES");
    assert!(upstream_head.to_ascii_lowercase().contains("upgrade: websocket"), "{upstream_head}");
}

#[tokio::test]
async fn a_101_nobody_asked_for_is_an_upstream_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = read_head(&mut tcp).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                .await;
            tokio::time::sleep(WAIT).await;
        }
    });
    let gw = gateway(&target.to_string(), NO_LOG).await;
    let r = get(&gw.url("/plain"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "upstream_error");
}

#[tokio::test]
async fn a_tunnel_lives_while_bytes_move_and_closes_after_the_idle_timeout() {
    let backend = EchoBackend::start().await;
    let gw = gateway(&backend.addr.to_string(), &format!("{NO_LOG}\nlimits: {{ idle_timeout: 400ms }}")).await;
    let mut ws = connect(&gw).await;
    // Three idle periods of steady traffic: the tunnel stays.
    let busy_until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < busy_until {
        echo_once(&mut ws, "tick").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then silence: closed within 1.5× the timeout (plus scheduling slack), not left open.
    let quiet = Instant::now();
    assert!(next(&mut ws).await.is_none(), "the idle tunnel was closed");
    let waited = quiet.elapsed();
    assert!(waited >= Duration::from_millis(350) && waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn shutdown_drains_an_open_tunnel_until_the_grace_ends_then_closes_it() {
    let backend = EchoBackend::start().await;
    let gw = gateway(&backend.addr.to_string(), &format!("{NO_LOG}\nshutdown_grace: 1s")).await;
    let mut ws = connect(&gw).await;
    echo_once(&mut ws, "before").await;
    let started = Instant::now();
    let drain = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo_once(&mut ws, "during the grace").await;
    assert!(!drain.is_finished(), "the drain waits for the tunnel");
    assert!(next(&mut ws).await.is_none(), "closed once the grace is over");
    tokio::time::timeout(WAIT, drain).await.expect("drain timed out").expect("drain");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
}
