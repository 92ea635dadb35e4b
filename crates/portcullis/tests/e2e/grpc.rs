//! gRPC through the gateway: HTTP/2 prior knowledge from the client, an h2 upstream over h2c
//! or TLS, unary and server-streaming calls, and statuses carried in trailers. The backend is
//! a hand-written hyper HTTP/2 server with gRPC's length-prefixed framing (flag byte, u32
//! big-endian length, message) and real trailers; messages are opaque bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use crate::certs::{Pki, server_config};
use crate::kit::{Backend, TestGateway, WAIT, client, scratch_dir, send, text};
use crate::upstream_tls::TlsBackend;

/// One gRPC message frame.
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).expect("small message"));
    out.put_slice(message);
    out.freeze()
}

/// Splits a gRPC body into its messages; panics on a torn frame.
fn messages(mut body: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "torn gRPC frame header");
        assert_eq!(body.get_u8(), 0, "uncompressed");
        let len = body.get_u32() as usize;
        assert!(body.len() >= len, "torn gRPC message");
        out.push(body.split_to(len));
    }
    out
}

fn status_trailers(code: u8, message: &str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if !message.is_empty() {
        t.insert("grpc-message", HeaderValue::from_str(message).expect("ascii"));
    }
    t
}

/// A response body fed frame by frame from the handler (so a stream really streams).
struct Frames(mpsc::Receiver<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// What the backend saw of a call.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    te: Option<String>,
    version: http::Version,
    /// The request's trailers as the backend received them.
    trailers: Option<HeaderMap>,
}

/// The gRPC service: `Unary` echoes, `Stream` sends three messages (the second only once
/// `release` is notified), `Fail` answers NOT_FOUND in trailers.
#[derive(Clone)]
struct Echo {
    calls: Arc<Mutex<Vec<Call>>>,
    release: Arc<Notify>,
}

impl Echo {
    fn new() -> Self {
        Self { calls: Arc::default(), release: Arc::new(Notify::new()) }
    }

    async fn call(self, req: Request<Incoming>) -> Result<Response<Frames>, Infallible> {
        let (parts, body) = req.into_parts();
        let te = parts.headers.get("te").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let path = parts.uri.path().to_owned();
        let collected = body.collect().await.ok();
        let trailers = collected.as_ref().and_then(|c| c.trailers().cloned());
        let request = collected.map(|c| c.to_bytes()).unwrap_or_default();
        self.calls.lock().expect("lock").push(Call { path: path.clone(), te, version: parts.version, trailers });
        let (tx, rx) = mpsc::channel(8);
        let release = self.release.clone();
        tokio::spawn(async move {
            match path.as_str() {
                "/echo.Echo/Unary" => {
                    let input = messages(request).concat();
                    let _ = tx.send(Frame::data(frame(&[b"echo:", &input[..]].concat()))).await;
                    let _ = tx.send(Frame::trailers(status_trailers(0, ""))).await;
                }
                "/echo.Echo/Stream" => {
                    let _ = tx.send(Frame::data(frame(b"one"))).await;
                    release.notified().await;
                    let _ = tx.send(Frame::data(frame(b"two"))).await;
                    let _ = tx.send(Frame::data(frame(b"three"))).await;
                    let _ = tx.send(Frame::trailers(status_trailers(0, ""))).await;
                }
                _ => {
                    let _ = tx.send(Frame::trailers(status_trailers(5, "no such thing"))).await;
                }
            }
        });
        let mut response = Response::new(Frames(rx));
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
        Ok(response)
    }

    fn service(
        &self,
    ) -> impl hyper::service::Service<Request<Incoming>, Response = Response<Frames>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static {
        let echo = self.clone();
        service_fn(move |req| echo.clone().call(req))
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
}

/// Serves `echo` over plaintext HTTP/2 (h2c, prior knowledge).
async fn h2c_backend(echo: &Echo) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = echo.service();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

async fn gateway_to(upstream: &str, dir: std::path::PathBuf) -> TestGateway {
    TestGateway::start_in(
        &format!(
            r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
  grpc:
{upstream}
    protocol: h2
routes:
  - {{ name: grpc, match: {{ path: "/echo.Echo/{{method}}", methods: [POST] }}, upstream: grpc, auth: none }}
"#
        ),
        dir,
    )
    .await
}

/// A gRPC client: one HTTP/2 prior-knowledge connection to the gateway.
struct GrpcClient {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    base: String,
}

/// A call's response as it arrives.
struct Reply {
    status: StatusCode,
    body: Incoming,
}

impl GrpcClient {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.expect("h2 handshake");
        tokio::spawn(conn);
        Self { sender, base: format!("http://{addr}") }
    }

    async fn call(&mut self, method: &str, message: &[u8]) -> Reply {
        let request = Request::post(format!("{}/echo.Echo/{method}", self.base))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(frame(message)))
            .expect("request");
        let response = tokio::time::timeout(WAIT, self.sender.send_request(request))
            .await
            .expect("call timed out")
            .expect("call failed");
        let (parts, body) = response.into_parts();
        assert_eq!(parts.headers.get("content-type").map(HeaderValue::as_bytes), Some(&b"application/grpc"[..]));
        Reply { status: parts.status, body }
    }
}

impl Reply {
    /// The next frame: data or trailers (`None` at the end).
    async fn next(&mut self) -> Option<Frame<Bytes>> {
        tokio::time::timeout(WAIT, self.body.frame()).await.expect("frame timed out").map(|f| f.expect("frame"))
    }

    /// Every message, then the trailers.
    async fn finish(mut self) -> (Vec<Bytes>, HeaderMap) {
        let mut data = BytesMut::new();
        let mut trailers = HeaderMap::new();
        while let Some(frame) = self.next().await {
            match frame.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(frame) => trailers = frame.into_trailers().unwrap_or_default(),
            }
        }
        (messages(data.freeze()), trailers)
    }
}

fn grpc_status(trailers: &HeaderMap) -> Option<&str> {
    trailers.get("grpc-status").and_then(|v| v.to_str().ok())
}

/// Unary, streaming (proved incremental: the second message waits on the client having the
/// first) and an error status, against a gateway in front of `echo`.
async fn unary_stream_and_error_pass_through(gw: &TestGateway, echo: &Echo) {
    let mut grpc = GrpcClient::connect(gw.addr).await;
    let reply = grpc.call("Unary", b"hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    let (msgs, trailers) = reply.finish().await;
    assert_eq!(msgs, vec![Bytes::from_static(b"echo:hello")]);
    assert_eq!(grpc_status(&trailers), Some("0"), "trailers: {trailers:?}");

    let mut reply = grpc.call("Stream", b"go").await;
    let first = reply.next().await.and_then(|f| f.into_data().ok()).expect("first message before the rest");
    assert_eq!(messages(first), vec![Bytes::from_static(b"one")]);
    echo.release.notify_one();
    let (rest, trailers) = reply.finish().await;
    assert_eq!(rest, vec![Bytes::from_static(b"two"), Bytes::from_static(b"three")]);
    assert_eq!(grpc_status(&trailers), Some("0"));

    let (msgs, trailers) = grpc.call("Fail", b"x").await.finish().await;
    assert!(msgs.is_empty());
    assert_eq!(grpc_status(&trailers), Some("5"));
    assert_eq!(trailers.get("grpc-message").map(HeaderValue::as_bytes), Some(&b"no such thing"[..]));

    for call in echo.calls() {
        assert_eq!(call.version, http::Version::HTTP_2, "{call:?}");
        assert_eq!(call.te.as_deref(), Some("trailers"), "gRPC needs TE: trailers upstream: {call:?}");
    }
    let paths: Vec<String> = echo.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(paths, ["/echo.Echo/Unary", "/echo.Echo/Stream", "/echo.Echo/Fail"]);
}

#[tokio::test]
async fn grpc_unary_streaming_and_error_status_pass_through_over_h2c() {
    let echo = Echo::new();
    let addr = h2c_backend(&echo).await;
    let gw = gateway_to(&format!("    targets: [\"http://{addr}\"]"), scratch_dir()).await;
    unary_stream_and_error_pass_through(&gw, &echo).await;
}

#[tokio::test]
async fn grpc_unary_streaming_and_error_status_pass_through_over_tls() {
    let pki = Pki::new("grpc-ca");
    let echo = Echo::new();
    let backend = TlsBackend::start(server_config(&pki.leaf(&["grpc.internal"], false), None), echo.service()).await;
    let dir = scratch_dir();
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).expect("write CA");
    let ups =
        format!("    targets: [\"https://{}\"]\n    tls: {{ ca: ca.pem, server_name: grpc.internal }}", backend.addr);
    let gw = gateway_to(&ups, dir).await;
    unary_stream_and_error_pass_through(&gw, &echo).await;
    assert_eq!(backend.handshakes()[0].alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn te_trailers_reaches_an_h2_upstream_but_no_other_te_and_never_an_http1_one() {
    let backend = Backend::start(|_| text(StatusCode::OK, "ok")).await;
    let gw = TestGateway::start(&format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
upstreams:
  h2: {{ targets: ["{url}"], protocol: h2 }}
  h1: {{ targets: ["{url}"] }}
routes:
  - {{ name: h2, match: {{ path: /h2 }}, upstream: h2, auth: none }}
  - {{ name: h1, match: {{ path: /h1 }}, upstream: h1, auth: none }}
"#,
        url = backend.url()
    ))
    .await;
    let get = |path: &str, te: &'static str| {
        Request::get(gw.url(path)).header("te", te).body(Full::new(Bytes::new())).expect("request")
    };
    for (path, te) in [("/h2", "trailers, deflate"), ("/h2", "gzip"), ("/h1", "trailers")] {
        assert_eq!(send(&client(), get(path, te)).await.status, StatusCode::OK);
    }
    let seen: Vec<Option<String>> = backend
        .requests()
        .iter()
        .map(|r| r.headers.get("te").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .collect();
    assert_eq!(seen, vec![Some("trailers".to_owned()), None, None]);
}

/// A client's request trailers never reach the backend: they would carry identity fields,
/// credentials or forwarding claims past every rule the gateway applies to the head.
#[tokio::test]
async fn request_trailers_are_not_forwarded_to_an_h2_upstream() {
    let echo = Echo::new();
    let addr = h2c_backend(&echo).await;
    let gw = gateway_to(&format!("    targets: [\"http://{addr}\"]"), scratch_dir()).await;
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake::<_, _, Frames>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel(4);
    let mut trailers = HeaderMap::new();
    for (name, value) in [
        ("x-consumer-id", "admin"),
        ("authorization", "Bearer forged"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-note", "1"),
    ] {
        trailers.insert(name, HeaderValue::from_static(value));
    }
    tx.send(Frame::data(frame(b"hello"))).await.expect("queue data");
    tx.send(Frame::trailers(trailers)).await.expect("queue trailers");
    drop(tx);
    let request = Request::post(format!("http://{}/echo.Echo/Unary", gw.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Frames(rx))
        .expect("request");
    let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.expect("timed out").expect("call");
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(WAIT, response.into_body().collect()).await.expect("timed out").expect("body");
    assert_eq!(grpc_status(body.trailers().expect("trailers")), Some("0"));
    assert_eq!(messages(body.to_bytes()), vec![Bytes::from_static(b"echo:hello")], "the body still arrives whole");

    // The same over HTTP/1.1: a chunked body's trailer section.
    let message = frame(b"hello");
    let mut raw = format!(
        "POST /echo.Echo/Unary HTTP/1.1\r\nHost: gw\r\nContent-Type: application/grpc\r\nTE: trailers\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        message.len()
    )
    .into_bytes();
    raw.extend_from_slice(&message);
    raw.extend_from_slice(b"\r\n0\r\nx-consumer-id: admin\r\nauthorization: Bearer forged\r\n\r\n");
    let mut tcp = TcpStream::connect(gw.addr).await.expect("connect");
    tcp.write_all(&raw).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer)).await.expect("timed out").expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    let calls = echo.calls();
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert_eq!(call.trailers, None, "request trailers reached the backend: {:?}", call.trailers);
    }
}
