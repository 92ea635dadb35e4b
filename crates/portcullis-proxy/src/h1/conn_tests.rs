//! The driver against real sockets on 127.0.0.1: a handler that echoes each request's
//! method, target and body, the client side written and read as raw bytes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;

/// A body of unknown length (so the driver must frame it itself).
struct Pieces(VecDeque<Bytes>);

impl Body for Pieces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn settings() -> Settings {
    Settings { max_head: 8192, header_read_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(10) }
}

/// Serves one connection with the echo handler; returns the client's socket and the
/// driver's outcome.
async fn start() -> (TcpStream, tokio::task::JoinHandle<Option<Bytes>>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let ended = serve(socket, Bytes::new(), settings(), stop, |request: Request<DownstreamBody>| async move {
            let (parts, body) = request.into_parts();
            let flaw = parts.extensions.get::<RawHeadFlaw>().copied();
            // As the gateway: a flawed request is answered without reading its body.
            let collected =
                if flaw.is_some() { Ok(http_body_util::Collected::default()) } else { body.collect().await };
            let text = match collected {
                Ok(c) => {
                    let trailers = c.trailers().map(|t| format!(" trailers={}", t.len())).unwrap_or_default();
                    format!(
                        "{} {} {:?} body={}{trailers}",
                        parts.method,
                        parts.uri,
                        flaw,
                        String::from_utf8_lossy(&c.to_bytes())
                    )
                }
                Err(e) => format!("{} {} broken: {e}", parts.method, parts.uri),
            };
            let pieces: VecDeque<Bytes> = text.as_bytes().chunks(7).map(Bytes::copy_from_slice).collect();
            Response::new(Pieces(pieces))
        })
        .await;
        match ended {
            Ended::Closed => None,
            Ended::Upgrade { prefix, .. } => Some(prefix),
        }
    });
    (TcpStream::connect(addr).await.unwrap(), server, stop_tx)
}

/// Reads one chunked answer (up to its last chunk).
async fn read_answer(client: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed mid-answer: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read_all(client: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The bodies of the chunked answers in `raw`, in order.
fn bodies(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = raw.as_bytes();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = response.parse(rest) else { return found };
        assert!(response.headers.iter().any(|h| h.name == "transfer-encoding" && h.value == b"chunked"));
        rest = &rest[len..];
        let mut decoder = super::super::chunked::ChunkedDecoder::new(4);
        let mut buf = bytes::BytesMut::from(rest);
        let mut body = Vec::new();
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::End(_) => break,
                Decoded::NeedMore => panic!("a truncated answer: {raw}"),
            }
        }
        found.push(String::from_utf8(body).unwrap());
        rest = &rest[rest.len() - buf.len()..];
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_with_their_bodies() {
    let (mut client, server, _stop) = start().await;
    client
        .write_all(
            b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
              POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n\
              GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let raw = read_all(&mut client).await;
    assert_eq!(
        bodies(&raw),
        ["POST /a None body=hello", "POST /b None body=abcde trailers=1", "GET /c None body="],
        "{raw}"
    );
    assert!(raw.contains("connection: close"), "{raw}");
    assert_eq!(server.await.unwrap(), None);
}

#[tokio::test]
async fn a_body_arriving_slowly_streams_and_a_half_closed_client_gets_its_answer() {
    let (mut client, server, _stop) = start().await;
    client.write_all(b"PUT /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab").await.unwrap();
    tokio::task::yield_now().await;
    client.write_all(b"cd\r\n0\r\n\r\n").await.unwrap();
    client.shutdown().await.unwrap();
    let raw = read_all(&mut client).await;
    assert_eq!(bodies(&raw), ["PUT /s None body=abcd"], "{raw}");
    assert_eq!(server.await.unwrap(), None);
}

#[tokio::test]
async fn expect_continue_is_answered_when_the_body_is_read() {
    let (mut client, _server, _stop) = start().await;
    client.write_all(b"PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").await.unwrap();
    let mut first = [0u8; 25];
    client.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"ok").await.unwrap();
    client.shutdown().await.unwrap();
    let raw = read_all(&mut client).await;
    assert_eq!(bodies(&raw), ["PUT /e None body=ok"], "{raw}");
}

#[tokio::test]
async fn hostile_heads_are_refused_and_the_connection_closed() {
    for (stream, status) in [
        (&b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\nGET /next HTTP/1.1\r\n\r\n"[..], "400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
    ] {
        let (mut client, server, _stop) = start().await;
        client.write_all(stream).await.unwrap();
        let raw = read_all(&mut client).await;
        assert!(raw.starts_with(&format!("HTTP/1.1 {status} ")), "{raw}");
        assert!(!raw.contains("/next"), "{raw}");
        assert_eq!(server.await.unwrap(), None);
    }
}

#[tokio::test]
async fn flaws_reach_the_pipeline_and_the_connection_then_closes() {
    let (mut client, _server, _stop) = start().await;
    client
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let raw = read_all(&mut client).await;
    let answers = bodies(&raw);
    assert_eq!(answers.len(), 1, "{raw}");
    assert!(answers[0].starts_with("POST / Some(AmbiguousFraming)"), "{raw}");
    let (mut client, _server, _stop) = start().await;
    client.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").await.unwrap();
    let raw = read_all(&mut client).await;
    assert!(bodies(&raw)[0].starts_with("POST / Some(MalformedBody)"), "{raw}");
}

#[tokio::test]
async fn http10_is_answered_in_http10_and_closed() {
    let (mut client, _server, _stop) = start().await;
    client.write_all(b"GET /old HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n").await.unwrap();
    let raw = read_all(&mut client).await;
    assert!(raw.starts_with("HTTP/1.0 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("GET /old None body="), "{raw}");
    assert!(!raw.contains("never"), "{raw}");
}

#[tokio::test]
async fn an_upgrade_is_handed_back_with_every_byte_read() {
    let (mut client, server, _stop) = start().await;
    let upgrade = b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes";
    client.write_all(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    assert_eq!(bodies(&read_answer(&mut client).await), ["GET /first None body="]);
    client.write_all(upgrade).await.unwrap();
    let prefix = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    // The driver may have read the trailing bytes with the head, or not yet.
    let prefix = prefix.expect("handed back");
    assert!(upgrade.starts_with(&prefix) && prefix.len() >= upgrade.len() - 6, "{prefix:?}");
}

#[tokio::test]
async fn shutdown_closes_a_waiting_connection() {
    let (mut client, server, stop) = start().await;
    client.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    read_answer(&mut client).await;
    let mut buf = [0u8; 64];
    stop.send(true).unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap(), None);
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn no_buffer_is_held_between_requests() {
    let (mut client, _server, _stop) = start().await;
    client.write_all(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi").await.unwrap();
    assert_eq!(bodies(&read_answer(&mut client).await), ["POST /a None body=hi"]);
    // The driver's thread returned its read buffer: the pool of some runtime thread holds it.
    // (Observed through the pool on this thread only when the test runs single-threaded.)
    let pooled = POOL.with(|p| p.borrow().len());
    assert!(pooled >= 1, "pool {pooled}");
}

/// The server side of an in-memory connection that notes each write in `log`.
struct Noted {
    io: tokio::io::DuplexStream,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl AsyncRead for Noted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Noted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.log.lock().unwrap().push("write");
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn an_answer_goes_out_after_the_tasks_already_ready_on_the_thread() {
    // The test runtime is the single-threaded one the gateway runs on one core.
    let (mut client, server) = tokio::io::duplex(4096);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_stop_tx, stop) = watch::channel(false);
    let noted = Noted { io: server, log: log.clone() };
    let seen = log.clone();
    let served = tokio::spawn(serve(noted, Bytes::new(), settings(), stop, move |_: Request<DownstreamBody>| {
        let log = seen.clone();
        async move {
            // Another connection's work becomes ready while this answer is made.
            tokio::spawn(async move { log.lock().unwrap().push("other") });
            Response::new(http_body_util::Full::new(Bytes::from_static(b"ok")))
        }
    }));
    client.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut raw)).await.unwrap().unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.ends_with("\r\n\r\nok"), "{raw}");
    let order = log.lock().unwrap().clone();
    assert_eq!(order.first(), Some(&"other"), "{order:?}");
    assert!(matches!(served.await.unwrap(), Ended::Closed));
}
