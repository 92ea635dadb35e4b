//! Response trailers from a real HTTP/1.1 upstream (chunked, `Trailer: x-checksum`, then the
//! field after the last chunk) through the gateway to HTTP/1.1 and HTTP/2 clients.
//!
//! The gateway strips the upstream's `Trailer` field as hop-by-hop (SPEC §3), and the
//! listener's HTTP/1.1 server — hyper's before, the gateway's own engine now — writes only
//! declared trailers: an HTTP/1.1 client gets the whole body and no trailer section, whether
//! or not it sent `TE: trailers`. An HTTP/2 client gets the trailers (HTTP/2 needs no
//! declaration).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::kit::{TestGateway, WAIT};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: x-checksum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc123\r\n\r\n";

/// A raw HTTP/1.1 upstream answering every request head with [`ANSWER`].
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if socket.write_all(ANSWER).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn gateway() -> TestGateway {
    let addr = upstream().await;
    TestGateway::start(&format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
  b: {{ targets: ["http://{addr}"] }}
routes:
  - {{ name: t, match: {{ path: /t }}, upstream: b, auth: none }}
"#
    ))
    .await
}

/// An HTTP/1.1 answer read raw: its fields (lower-case names), whether it was chunked, its
/// body and its trailer section's lines.
struct Raw {
    fields: Vec<(String, String)>,
    chunked: bool,
    body: Vec<u8>,
    trailer_lines: Vec<String>,
}

async fn h1_exchange(addr: SocketAddr, extra: &str) -> Raw {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET /t HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut raw)).await.expect("answer timed out").expect("read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Raw {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head");
    let head = std::str::from_utf8(&raw[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    assert!(lines.next().is_some_and(|l| l.starts_with("HTTP/1.1 200")), "{head}");
    let fields: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').expect("a field"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = fields.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    let mut rest = &raw[end + 4..];
    let (mut body, mut trailer_lines) = (Vec::new(), Vec::new());
    if !chunked {
        body = rest.to_vec();
        return Raw { fields, chunked, body, trailer_lines };
    }
    let line = |rest: &mut &[u8]| {
        let at = rest.windows(2).position(|w| w == b"\r\n").expect("a CRLF-ended line");
        let text = String::from_utf8(rest[..at].to_vec()).expect("ascii line");
        *rest = &rest[at + 2..];
        text
    };
    loop {
        let size = usize::from_str_radix(line(&mut rest).split(';').next().unwrap_or(""), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        assert_eq!(line(&mut rest), "", "CRLF after chunk data");
    }
    loop {
        let text = line(&mut rest);
        if text.is_empty() {
            break;
        }
        trailer_lines.push(text);
    }
    assert!(rest.is_empty(), "bytes after the chunked body: {rest:?}");
    Raw { fields, chunked, body, trailer_lines }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_clients_get_the_whole_chunked_body_and_no_undeclared_trailer() {
    let gw = gateway().await;
    for extra in ["TE: trailers\r\n", "TE: gzip, Trailers\r\n", ""] {
        let answer = h1_exchange(gw.addr, extra).await;
        // Chunked: trailers could have been written; they were not, being undeclared.
        assert!(answer.chunked, "{extra:?}: {:?}", answer.fields);
        assert_eq!(answer.body, b"hello world", "{extra:?}");
        assert_eq!(answer.trailer_lines, Vec::<String>::new(), "{extra:?}");
        assert!(
            !answer.fields.iter().any(|(n, _)| n == "trailer" || n == "x-checksum"),
            "{extra:?}: {:?}",
            answer.fields
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_get_the_upstreams_trailers() {
    let gw = gateway().await;
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.expect("h2 handshake");
    tokio::spawn(conn);
    for te in [Some("trailers"), None] {
        let mut request = Request::get(format!("http://{}/t", gw.addr));
        if let Some(te) = te {
            request = request.header("te", te);
        }
        let request = request.body(Empty::<Bytes>::new()).expect("request");
        let response =
            tokio::time::timeout(WAIT, sender.send_request(request)).await.expect("timed out").expect("sent");
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(response.headers().get("trailer").is_none(), "{:?}", response.headers());
        let mut body = response.into_body();
        let (mut data, mut trailers) = (BytesMut::new(), HeaderMap::new());
        while let Some(frame) = tokio::time::timeout(WAIT, body.frame()).await.expect("frame timed out") {
            match frame.expect("frame").into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(frame) => trailers = frame.into_trailers().unwrap_or_default(),
            }
        }
        assert_eq!(&data[..], b"hello world", "{te:?}");
        assert_eq!(trailers.get("x-checksum").map(|v| v.as_bytes()), Some(&b"abc123"[..]), "{te:?}: {trailers:?}");
    }
}
