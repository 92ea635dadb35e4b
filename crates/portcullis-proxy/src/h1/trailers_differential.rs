//! Response trailers through the codec's driver and through hyper's HTTP/1.1 server as the
//! listener ran it (its builder): the same request and the same answer (data, then a trailers
//! frame) give the same status line, the same fields but `Date`, and the same body bytes,
//! trailer section included.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portcullis_core::snapshot::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::conn::{Settings, serve};
use crate::body::DownstreamBody;
use crate::server::http1_builder;

/// An answer body of unknown length: its frames, in order.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }
}

/// How the test answer is built.
#[derive(Clone, Copy)]
struct Answer {
    /// The `Trailer` field of the answer's head.
    declare: Option<&'static str>,
    /// A `Content-Length` in the head (the body then is not chunked).
    length: bool,
    /// A data frame after the trailers.
    late_data: bool,
}

fn answer(spec: Answer) -> Response<Frames> {
    let mut trailers = HeaderMap::new();
    trailers.append("x-sum", HeaderValue::from_static("abc"));
    trailers.append("content-type", HeaderValue::from_static("text/x"));
    trailers.append("x-undeclared", HeaderValue::from_static("1"));
    trailers.append("x-sum", HeaderValue::from_static("def"));
    let mut frames: VecDeque<Frame<Bytes>> = [
        Frame::data(Bytes::from_static(b"hello ")),
        Frame::data(Bytes::from_static(b"world")),
        Frame::trailers(trailers),
    ]
    .into();
    if spec.late_data {
        frames.push_back(Frame::data(Bytes::from_static(b"late")));
    }
    let mut response = Response::new(Frames(frames));
    if let Some(declare) = spec.declare {
        response.headers_mut().insert(http::header::TRAILER, HeaderValue::from_static(declare));
    }
    if spec.length {
        response.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("11"));
    }
    response
}

async fn exchange<F: std::future::Future<Output = ()> + Send + 'static>(
    request: &[u8],
    server: impl FnOnce(tokio::io::DuplexStream) -> F,
) -> Vec<u8> {
    let (mut client, io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(server(io));
    client.write_all(request).await.unwrap();
    client.shutdown().await.unwrap();
    let mut output = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut output)).await.unwrap().unwrap();
    serving.await.unwrap();
    output
}

async fn through_hyper(request: &[u8], spec: Answer) -> Vec<u8> {
    exchange(request, move |io| async move {
        let service =
            service_fn(move |_: Request<hyper::body::Incoming>| async move { Ok::<_, Infallible>(answer(spec)) });
        let conn = http1_builder(&Limits::default()).serve_connection(TokioIo::new(io), service);
        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
    })
    .await
}

async fn through_codec(request: &[u8], spec: Answer) -> Vec<u8> {
    exchange(request, move |io| async move {
        let settings = Settings {
            max_head: 8192,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        };
        let (_stop_tx, stop) = watch::channel(false);
        let handler = move |_: Request<DownstreamBody>| async move { answer(spec) };
        let _ = tokio::time::timeout(Duration::from_secs(10), serve(io, Bytes::new(), settings, stop, handler)).await;
    })
    .await
}

/// The status line, the fields but `Date` (sorted), and every byte after the head.
fn normalise(raw: &[u8]) -> (String, Vec<String>, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let mut fields: Vec<String> = lines.map(str::to_ascii_lowercase).filter(|l| !l.starts_with("date:")).collect();
    fields.sort();
    (status, fields, body.to_owned())
}

const DECLARED: Answer = Answer { declare: Some("x-sum, content-type"), length: false, late_data: false };

#[tokio::test]
async fn trailers_go_out_as_under_hyper() {
    let te = b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n";
    let cases: [(&str, &[u8], Answer); 9] = [
        ("te-declared", te, DECLARED),
        ("te-listed-in-any-case", b"GET / HTTP/1.1\r\nHost: t\r\nTE: gzip, Trailers\r\n\r\n", DECLARED),
        ("te-undeclared", te, Answer { declare: None, ..DECLARED }),
        ("no-te", b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", DECLARED),
        ("te-without-trailers", b"GET / HTTP/1.1\r\nHost: t\r\nTE: gzip\r\n\r\n", DECLARED),
        ("only-forbidden-declared", te, Answer { declare: Some("content-type"), ..DECLARED }),
        ("data-after-trailers", te, Answer { late_data: true, ..DECLARED }),
        ("content-length", te, Answer { length: true, ..DECLARED }),
        ("http10", b"GET / HTTP/1.0\r\nTE: trailers\r\n\r\n", DECLARED),
    ];
    let mut differ = Vec::new();
    for (name, request, spec) in cases {
        let hyper = normalise(&through_hyper(request, spec).await);
        let codec = normalise(&through_codec(request, spec).await);
        if hyper != codec {
            differ.push(format!("{name}:\n  hyper: {hyper:?}\n  codec: {codec:?}"));
        }
        // Every case carries the whole body (a broken harness would not).
        assert!(codec.2.contains("hello ") && codec.2.contains("world"), "{name}: {codec:?}");
        assert!(!codec.2.contains("late"), "{name}: {codec:?}");
        let sent = codec.2.contains("x-sum: abc\r\nx-sum: def\r\n");
        assert_eq!(
            sent,
            matches!(name, "te-declared" | "te-listed-in-any-case" | "data-after-trailers"),
            "{name}: {codec:?}"
        );
        assert!(!codec.2.contains("text/x") && !codec.2.contains("x-undeclared"), "{name}: {codec:?}");
    }
    assert!(differ.is_empty(), "{} answers differ:\n{}", differ.len(), differ.join("\n"));
}

#[tokio::test]
async fn the_trailer_section_is_exactly_the_last_chunk_and_the_fields() {
    let raw = through_codec(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n", DECLARED).await;
    let (_, fields, body) = normalise(&raw);
    assert!(fields.contains(&"transfer-encoding: chunked".to_owned()), "{fields:?}");
    assert!(fields.contains(&"trailer: x-sum, content-type".to_owned()), "{fields:?}");
    assert_eq!(body, "6\r\nhello \r\n5\r\nworld\r\n0\r\nx-sum: abc\r\nx-sum: def\r\n\r\n");
}

#[tokio::test]
async fn an_answer_to_head_announces_no_trailers_as_under_hyper() {
    // Compared on `Trailer` and the body only: on a HEAD answer of unknown length the driver
    // writes `Transfer-Encoding: chunked` where hyper writes no framing field at all, a
    // difference of the head outside trailers.
    let request = b"HEAD / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n";
    for raw in [through_hyper(request, DECLARED).await, through_codec(request, DECLARED).await] {
        let (status, fields, body) = normalise(&raw);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(!fields.iter().any(|f| f.starts_with("trailer:")), "{fields:?}");
        assert_eq!(body, "");
    }
}
