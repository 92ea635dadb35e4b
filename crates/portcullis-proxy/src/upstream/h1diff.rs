//! Differential test of the upstream HTTP/1.1 exchange: a corpus of valid, odd and hostile
//! responses, each served by a raw socket on 127.0.0.1, read once through [`H1Pool::send`]
//! and once through hyper's HTTP/1.1 client plus the framing check the gateway applied on top
//! of it before (`prior_framing`). Both must take the same decision (refuse, or accept with
//! the same status and fields) and, where both accept, yield the same body bytes, trailers,
//! or failure mid-body.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::h1pool::H1Pool;
use crate::body::RequestBody;

/// A guard against a hang, not a measure: every case completes in milliseconds.
const HANG: Duration = Duration::from_secs(20);

/// A body's bytes and trailers, or its failure.
type BodyOutcome = Result<(Vec<u8>, Option<Vec<(String, Vec<u8>)>>), ()>;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused,
    Answered { status: u16, fields: Vec<(String, Vec<u8>)>, body: BodyOutcome },
}

fn fields(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())).collect()
}

/// Serves `response` to every connection once a request head has arrived, then closes.
async fn raw_upstream(response: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// The check the gateway ran on hyper's responses before the exchange was its own.
fn prior_framing(headers: &mut HeaderMap) -> bool {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    let Some(only) = codings.next() else { return true };
    let chunked = only.to_str().is_ok_and(|v| v.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"));
    if !chunked || codings.next().is_some() {
        return false;
    }
    headers.remove(CONTENT_LENGTH);
    true
}

async fn through_hyper(addr: SocketAddr, method: &Method) -> Outcome {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await else {
        return Outcome::Refused;
    };
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method.clone())
        .uri("/x")
        .header("host", "t")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let Ok(mut response) = sender.send_request(request).await else { return Outcome::Refused };
    if !prior_framing(response.headers_mut()) {
        return Outcome::Refused;
    }
    let status = response.status().as_u16();
    let fields = fields(response.headers());
    let body = response
        .into_body()
        .collect()
        .await
        .map(|c| {
            let trailers = c.trailers().map(self::fields);
            (c.to_bytes().to_vec(), trailers)
        })
        .map_err(|_| ());
    Outcome::Answered { status, fields, body }
}

async fn through_gateway(addr: SocketAddr, method: &Method) -> Outcome {
    let pool = H1Pool::new(addr.to_string(), HANG, 4, None);
    let request = Request::builder()
        .method(method.clone())
        .uri("/x")
        .header("host", "t")
        .body(RequestBody::empty())
        .expect("request");
    let Ok(response) = pool.send(request).await else { return Outcome::Refused };
    let status = response.status().as_u16();
    let fields = fields(response.headers());
    let body = response
        .into_body()
        .collect()
        .await
        .map(|c| {
            let trailers = c.trailers().map(self::fields);
            (c.to_bytes().to_vec(), trailers)
        })
        .map_err(|_| ());
    Outcome::Answered { status, fields, body }
}

fn corpus() -> Vec<(&'static str, Method, Vec<u8>)> {
    let mut cases: Vec<(&'static str, Method, Vec<u8>)> = [
        ("length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        ("length, no reason", "HTTP/1.1 200\r\nContent-Length: 5\r\n\r\nhello"),
        ("zero length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        (
            "chunked, uppercase hex and extension",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA;x=\"y\"\r\n0123456789\r\n0\r\n\r\n",
        ),
        (
            "chunked, whitespace after size",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \t\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunked, trailers",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
        ),
        (
            "chunked, coding in another case",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        ),
        (
            "CL beside TE",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "TE beside CL",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        ("TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        ("TE chunked, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        (
            "two TE fields",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        ),
        ("TE gzip only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhi"),
        ("TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi"),
        ("TE on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        ("duplicate CL, same", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"),
        ("CL list, same", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi"),
        ("duplicate CL, differing", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!"),
        ("CL list, differing", "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nhi!"),
        ("CL with sign", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi"),
        ("CL negative", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi"),
        ("CL hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nhi"),
        ("CL empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhi"),
        ("CL overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhi"),
        ("CL at u64::MAX", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nhi"),
        ("CL short of the body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello"),
        ("premature close in a length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"),
        ("premature close in chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
        ("no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        ("chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        ("chunk size negative", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        (
            "chunk size overflow",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("chunk size with bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        ("chunk data with bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
        ("chunk data too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
        (
            "chunk extension with bare LF",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
        ),
        ("space inside chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n"),
        ("bare LF head", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"),
        ("bare CR head", "HTTP/1.1 200 OK\rContent-Length: 5\r\r\nhello"),
        ("obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 5\r\n\r\nhello"),
        ("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"),
        ("space in a name", "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 5\r\n\r\nhello"),
        ("NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello"),
        ("empty lines first", "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        ("100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        (
            "103 with fields then 200",
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        ),
        ("only a 100", "HTTP/1.1 100 Continue\r\n\r\n"),
        ("204 with a body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
        ("304 with a bad length", "HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n"),
        ("close delimited", "HTTP/1.1 200 OK\r\n\r\nall of it until close"),
        ("HTTP/1.0 close delimited", "HTTP/1.0 200 OK\r\n\r\nold style"),
        ("HTTP/2 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
        ("status 2 digits", "HTTP/1.1 20 Odd\r\nContent-Length: 0\r\n\r\n"),
        ("status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"),
        ("lowercase version", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("garbage", "this is not http at all\r\n\r\n"),
        ("nothing at all", ""),
        ("head cut short", "HTTP/1.1 200 OK\r\nContent-Le"),
    ]
    .into_iter()
    .map(|(name, bytes)| (name, Method::GET, bytes.as_bytes().to_vec()))
    .collect();
    cases.push((
        "obs-text in reason and value",
        Method::GET,
        b"HTTP/1.1 200 \xffOK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ));
    cases.push(("HEAD with a length", Method::HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()));
    cases.push(("HEAD with chunked", Method::HEAD, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()));
    cases.push(("HEAD with TE gzip", Method::HEAD, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec()));
    let many = [&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"[..], &b"X-A: 1\r\n".repeat(120), b"\r\n"].concat();
    cases.push(("too many fields", Method::GET, many));
    let fields = [&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"[..], &b"X-A: 1\r\n".repeat(99), b"\r\n"].concat();
    cases.push(("just under the field limit", Method::GET, fields));
    // Past twice the limit: hyper reads up to its limit at a time and checks the limit only on
    // an incomplete head, so a head between one and two limits long is refused or taken by it
    // as the reads happen to split (the gateway refuses it always: `h1head`'s own tests).
    let huge = [&b"HTTP/1.1 200 OK\r\nX-Big: "[..], &vec![b'a'; 1_000_000], b"\r\nContent-Length: 0\r\n\r\n"].concat();
    cases.push(("huge head", Method::GET, huge));
    let big = [&b"HTTP/1.1 200 OK\r\nX-Big: "[..], &vec![b'a'; 100_000], b"\r\nContent-Length: 0\r\n\r\n"].concat();
    cases.push(("big head under the limit", Method::GET, big));
    let large = [&b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n"[..], &vec![b'x'; 300_000]].concat();
    cases.push(("large body", Method::GET, large));
    let mut chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..200u32 {
        chunks.extend_from_slice(format!("{:x}\r\n", i + 1).as_bytes());
        chunks.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, i as usize + 1));
        chunks.extend_from_slice(b"\r\n");
    }
    chunks.extend_from_slice(b"0\r\n\r\n");
    cases.push(("many chunks", Method::GET, chunks));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_in_the_corpus_gets_the_decision_and_bytes_hyper_gave() {
    let mut accepted = 0;
    let mut refused = 0;
    for (name, method, bytes) in corpus() {
        let addr = raw_upstream(bytes).await;
        let hyper = tokio::time::timeout(HANG, through_hyper(addr, &method)).await.expect("hyper hung");
        let ours = tokio::time::timeout(HANG, through_gateway(addr, &method)).await.expect("the exchange hung");
        assert_eq!(ours, hyper, "{name}");
        match ours {
            Outcome::Refused => refused += 1,
            Outcome::Answered { .. } => accepted += 1,
        }
    }
    // The corpus exercises both sides of the decision.
    assert!(accepted >= 20 && refused >= 20, "accepted {accepted}, refused {refused}");
}
