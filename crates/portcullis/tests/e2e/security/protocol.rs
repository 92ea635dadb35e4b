//! See [`super`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::kit::{Backend, TestGateway, WAIT, text};

/// A gateway with one catch-all route to `upstream`; timeouts long enough that a closed
/// connection was closed on purpose.
async fn gateway(upstream: &str, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@", http2: true }}]
logging: {{ access: {{ path: off }} }}
limits: {{ header_read_timeout: 30s, idle_timeout: 60s }}
{extra}
upstreams:
  u: {{ targets: ["{upstream}"] }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: u, auth: none }}
"#
    ))
    .await
}

/// How long a test waits for the gateway to close a connection it should close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Writes `bytes`, then reads until the gateway closes the connection or [`CLOSE_WAIT`]
/// passes: the answer and whether the gateway closed.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(CLOSE_WAIT, s.read_to_end(&mut out)).await.is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

fn statuses(out: &str) -> Vec<&str> {
    out.match_indices("HTTP/1.1 ").filter_map(|(i, _)| out.get(i + 9..i + 12)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_encoding_other_than_one_chunked_is_refused_and_the_connection_closed() {
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    let body = "5\r\nhello\r\n0\r\n\r\n";
    for (te, status, code) in [
        ("Transfer-Encoding: chunked, chunked\r\n", "400", "bad_request"),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "400", "bad_request"),
        ("Transfer-Encoding: gzip, chunked\r\n", "400", "bad_request"),
        ("Transfer-Encoding: foo, chunked\r\n", "501", "not_implemented"),
    ] {
        let request = format!("POST /x HTTP/1.1\r\nHost: t\r\n{te}\r\n{body}GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
        let (out, closed) = exchange(gw.addr, request.as_bytes()).await;
        assert_eq!(statuses(&out), [status], "{te:?}: {out}");
        assert!(out.contains(&format!("\"code\":\"{code}\"")), "{te:?}: {out}");
        assert!(closed, "{te:?}: the connection stayed open after a framing error");
    }
    assert_eq!(b.count(), 0, "a request with a doubtful body reached the backend: {:?}", b.requests());
    let (out, _) = exchange(gw.addr, b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
    assert_eq!(statuses(&out), ["200"], "{out}");
    assert_eq!(b.requests()[0].body, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_in_the_request_target_is_refused_on_every_request_of_a_connection() {
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    let (out, closed) = exchange(gw.addr, b"GET /x#frag HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(statuses(&out), ["400"], "{out}");
    assert!(closed && out.contains("\"code\":\"bad_request\""), "{out}");
    // After requests with bodies of either framing, in one write and split across writes.
    let pipelined = "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nGET /c#frag HTTP/1.1\r\nHost: t\r\n\r\n";
    let (out, closed) = exchange(gw.addr, pipelined.as_bytes()).await;
    assert_eq!(statuses(&out), ["200", "200", "400"], "{out}");
    assert!(closed, "{out}");
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    for piece in pipelined.as_bytes().chunks(7) {
        s.write_all(piece).await.expect("write");
        s.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut out = Vec::new();
    let closed = tokio::time::timeout(CLOSE_WAIT, s.read_to_end(&mut out)).await.is_ok();
    let out = String::from_utf8_lossy(&out);
    assert_eq!(statuses(&out), ["200", "200", "400"], "{out}");
    assert!(closed, "{out}");
    let paths: Vec<String> = b.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(paths, ["/a", "/b", "/a", "/b"], "only the requests without a fragment reached the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_inside_a_body_are_never_taken_for_a_request_head() {
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    // Bodies that hold what looks like a flawed head: only the framing says where heads are.
    let inner = "GET /in#side HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let request = format!(
        "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{inner}POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        inner.len(),
        inner.len()
    );
    let (out, _) = exchange(gw.addr, request.as_bytes()).await;
    assert_eq!(statuses(&out), ["200", "200", "200"], "{out}");
    let bodies: Vec<_> = b.requests().iter().map(|r| (r.uri.clone(), r.body.len())).collect();
    assert_eq!(bodies, [("/a".into(), inner.len()), ("/b".into(), inner.len()), ("/c".into(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_beside_transfer_encoding_after_a_body_is_still_refused() {
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    // The smuggling shape behind a first request with a body (the scan used to stop there).
    let request = "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let (out, closed) = exchange(gw.addr, request.as_bytes()).await;
    assert_eq!(statuses(&out), ["200", "400"], "{out}");
    assert!(closed, "{out}");
    let paths: Vec<String> = b.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(paths, ["/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_that_came_with_its_head_never_reaches_the_backend() {
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    for broken in ["5\r\nhelloXX0\r\n\r\n", "3\r\nhello\r\n0\r\n\r\n", "zz\r\nhello\r\n0\r\n\r\n"] {
        let request = format!("POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{broken}");
        let (out, closed) = exchange(gw.addr, request.as_bytes()).await;
        assert_eq!(statuses(&out), ["400"], "{broken:?}: {out}");
        assert!(closed, "{broken:?}: {out}");
    }
    assert_eq!(b.count(), 0, "{:?}", b.requests());
}

/// An upstream that answers every request on a connection with `response`, counting the
/// connections it accepted.
async fn raw_upstream(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // One answer per complete request head (the tests send no bodies).
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if s.write_all(response).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_length_beside_chunked_is_dropped_and_its_connection_discarded() {
    const BODY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (up, connections) =
        raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n0\r\n\r\n").await;
    let gw = gateway(&format!("http://{up}"), "").await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let first = read_response(&mut s).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("content-length: 2\r\n"),
        "the upstream's length was relayed: {first}"
    );
    assert!(first.ends_with(BODY), "the body was cut: {first}");
    // The client connection is still in step: a second request gets a whole answer too.
    s.write_all(b"GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    let second = String::from_utf8_lossy(&rest);
    assert!(second.starts_with("HTTP/1.1 200") && second.contains(BODY), "{second}");
    assert_eq!(connections.load(Ordering::Relaxed), 2, "the upstream connection was reused");
}

/// Reads one chunked or length-framed HTTP/1.1 response (head and decoded body, as text).
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if head.contains("transfer-encoding: chunked") {
            loop {
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    s.read_exact(&mut byte).await.ok()?;
                    line.push(byte[0]);
                }
                let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).ok()?;
                let mut chunk = vec![0u8; size + 2];
                s.read_exact(&mut chunk).await.ok()?;
                if size == 0 {
                    return Some(());
                }
                buf.extend_from_slice(&chunk[..size]);
            }
        }
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.ok()?;
        buf.extend_from_slice(&body);
        Some(())
    };
    let _ = tokio::time::timeout(WAIT, read).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_transfer_encoding_other_than_chunked_is_502() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nhi",
    ] {
        let (up, _) = raw_upstream(response).await;
        let gw = gateway(&format!("http://{up}"), "").await;
        let (out, _) = exchange(gw.addr, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        assert_eq!(statuses(&out), ["502"], "{}: {out}", String::from_utf8_lossy(response));
        assert!(out.contains("\"code\":\"upstream_error\""), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    // The backend answers after the gateway has seen the client's end of input.
    let b = Backend::start_with_delay(Duration::from_millis(300), |_| text(http::StatusCode::OK, "late-answer")).await;
    let gw = gateway(&b.url(), "").await;
    for request in [&b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"[..], b"GET /x HTTP/1.0\r\n\r\n"] {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        s.shutdown().await.expect("half-close");
        let mut out = Vec::new();
        let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.is_ok();
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains(" 200 ") && out.ends_with("late-answer"), "{request:?}: {out}");
        assert!(closed, "the connection stayed open after the answer");
    }
}

/// HTTP/2 frames by hand: the gateway's side uses the h2 crate, the client side must be able
/// to send what no well-behaved client library would.
mod h2_raw {
    use super::*;

    pub(super) const GOAWAY: u8 = 0x7;
    pub(super) const RST_STREAM: u8 = 0x3;
    pub(super) const HEADERS: u8 = 0x1;
    pub(super) const DATA: u8 = 0x0;
    pub(super) const END_STREAM: u8 = 0x1;
    pub(super) const END_HEADERS: u8 = 0x4;

    #[derive(Debug)]
    pub(super) struct Frame {
        pub(super) kind: u8,
        pub(super) flags: u8,
        pub(super) stream: u32,
        pub(super) payload: Vec<u8>,
    }

    impl Frame {
        /// The error code of a GOAWAY or RST_STREAM frame.
        pub(super) fn error_code(&self) -> Option<u32> {
            let at = if self.kind == GOAWAY { 4 } else { 0 };
            let bytes = self.payload.get(at..at + 4)?;
            Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
    }

    pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("small frame").to_be_bytes();
        let mut out = vec![len[1], len[2], len[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A request header block: `method` and `path` as literals without indexing (and
    /// `:scheme http`, `:authority t`), then `extra` representations as given.
    pub(super) fn request_block(method: &str, path: &str, extra: &[u8]) -> Vec<u8> {
        let mut block = Vec::new();
        for (index, value) in [(2u8, method), (4, path), (1, "t")] {
            block.push(index);
            block.push(u8::try_from(value.len()).expect("short value"));
            block.extend_from_slice(value.as_bytes());
        }
        block.push(0x86);
        block.extend_from_slice(extra);
        block
    }

    /// Connects with the preface and an empty SETTINGS frame.
    pub(super) async fn connect(addr: SocketAddr) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(0x4, 0, 0, &[]));
        s.write_all(&hello).await.expect("preface");
        s
    }

    /// The next frame other than SETTINGS and PING (acknowledged here), or `None` when the
    /// connection ends or nothing comes within [`WAIT`].
    pub(super) async fn next(s: &mut TcpStream) -> Option<Frame> {
        loop {
            let mut head = [0u8; 9];
            tokio::time::timeout(WAIT, s.read_exact(&mut head)).await.ok()?.ok()?;
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            tokio::time::timeout(WAIT, s.read_exact(&mut payload)).await.ok()?.ok()?;
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let (kind, flags) = (head[3], head[4]);
            match kind {
                0x4 if flags & 0x1 == 0 => s.write_all(&frame(0x4, 0x1, 0, &[])).await.ok()?,
                0x4 => {}
                0x6 if flags & 0x1 == 0 => s.write_all(&frame(0x6, 0x1, 0, &payload)).await.ok()?,
                0x6 | 0x8 => {}
                _ => return Some(Frame { kind, flags, stream, payload }),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hpack_decoding_error_ends_the_connection_with_compression_error() {
    use h2_raw::*;
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "").await;
    // (what, representations before the request's fields, representations after them)
    for (what, before, after) in [
        // RFC 7541 §4.2 / §6.3: above SETTINGS_HEADER_TABLE_SIZE (4096, the default here)
        ("a table size update above the limit", &[0x3f, 0xe2, 0x1f][..], &[][..]),
        ("a table size update after a field", &[], &[0x3f, 0x01]),
        ("index 0", &[], &[0x80]),
        ("an index past both tables", &[], &[0xff, 0x00]),
        ("a literal's name index past both tables", &[], &[0x0f, 0x60, 0x01, b'x']),
        ("Huffman padding longer than 7 bits", &[], &[0x00, 0x82, 0xff, 0xff, 0x01, b'x']),
        ("Huffman padding that is not the EOS prefix", &[], &[0x00, 0x81, 0x00, 0x01, b'x']),
        ("the EOS symbol in a Huffman string", &[], &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, b'x']),
        ("an integer past 2^32", &[], &[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ("a block that ends inside a literal", &[], &[0x00, 0x05, b'a']),
    ] {
        let mut s = connect(gw.addr).await;
        let block = [before, &request_block("GET", "/x", after)].concat();
        s.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block)).await.expect("write");
        let mut seen = Vec::new();
        let goaway = loop {
            match next(&mut s).await {
                Some(f) if f.kind == GOAWAY => break Some(f),
                Some(f) => seen.push(f),
                None => break None,
            }
        };
        let code = goaway.as_ref().and_then(Frame::error_code);
        assert_eq!(code, Some(0x9), "{what}: {goaway:?} after {seen:?}");
    }
    assert_eq!(b.count(), 0);
}

/// Sends a POST on stream 1 declaring `length` bytes and its first 16 KiB, then reads until
/// the answer has ended: its body, and the RST_STREAM codes seen for stream 1 meanwhile.
async fn early_answer(s: &mut TcpStream, length: &str) -> (String, Vec<Option<u32>>) {
    use h2_raw::*;
    // content-length (static index 28), as curl sends it
    let mut extra = vec![0x0f, 0x0d, u8::try_from(length.len()).expect("short")];
    extra.extend_from_slice(length.as_bytes());
    s.write_all(&frame(HEADERS, END_HEADERS, 1, &request_block("POST", "/upload", &extra))).await.expect("write");
    s.write_all(&frame(DATA, 0, 1, &[b'a'; 16384])).await.expect("write");
    let (mut body, mut resets) = (Vec::new(), Vec::new());
    loop {
        let f = next(s).await.expect("the answer");
        assert_ne!(f.kind, GOAWAY, "the connection was ended: {f:?}");
        match (f.kind, f.stream) {
            (DATA, 1) => {
                body.extend_from_slice(&f.payload);
                if f.flags & END_STREAM != 0 {
                    return (String::from_utf8_lossy(&body).into_owned(), resets);
                }
            }
            (RST_STREAM, 1) => resets.push(f.error_code()),
            _ => {}
        }
    }
}

/// Sends a GET on stream 3 and reads until its answer ends: the RST_STREAM codes seen for
/// stream 1 meanwhile.
async fn next_stream_answers(s: &mut TcpStream) -> Vec<Option<u32>> {
    use h2_raw::*;
    let block = request_block("GET", "/next", &[]);
    s.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &block)).await.expect("write");
    let mut resets = Vec::new();
    loop {
        let f = next(s).await.expect("an answer on stream 3");
        assert_ne!(f.kind, GOAWAY, "the connection was ended: {f:?}");
        if f.kind == RST_STREAM && f.stream == 1 {
            resets.push(f.error_code());
        }
        if f.stream == 3 && f.flags & END_STREAM != 0 {
            return resets;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_refused_before_its_body_was_read_finishes_its_upload_and_keeps_the_answer() {
    use h2_raw::*;
    let b = Backend::ok().await;
    let gw = gateway(&b.url(), "waf: { mode: off, deny_ips: [\"127.0.0.0/8\"] }").await;
    for _ in 0..5 {
        let mut s = connect(gw.addr).await;
        let (body, mut resets) = early_answer(&mut s, "50000").await;
        assert!(body.contains("\"code\":\"ip_denied\""), "{body}");
        // The client goes on uploading, as curl does, to the end of its body: a reset on the
        // way would make curl 7.88 drop the answer it already has.
        for (len, flags) in [(16384, 0), (16384, 0), (848, END_STREAM)] {
            s.write_all(&frame(DATA, flags, 1, &vec![b'a'; len])).await.expect("write");
        }
        resets.extend(next_stream_answers(&mut s).await);
        assert_eq!(resets, [], "stream 1 was reset while its client was still sending");
    }
    assert_eq!(b.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_upload_past_the_limit_after_an_early_answer_gets_the_answer_then_rst_stream_no_error() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&format!(
        "version: 1\nlisteners: [{{ name: test, bind: \"@LISTEN@\", http2: true }}]\n\
         logging: {{ access: {{ path: off }} }}\nlimits: {{ max_body_bytes: 1000 }}\n\
         waf: {{ mode: off, deny_ips: [\"127.0.0.0/8\"] }}\nupstreams:\n  u: {{ targets: [\"{}\"] }}\n\
         routes:\n  - {{ name: all, match: {{ path: \"/{{*rest}}\" }}, upstream: u, auth: none }}\n",
        b.url()
    ))
    .await;
    let mut s = h2_raw::connect(gw.addr).await;
    let (body, mut resets) = early_answer(&mut s, "50000").await;
    assert!(body.contains("\"code\":"), "{body}");
    resets.extend(next_stream_answers(&mut s).await);
    assert_eq!(resets, [Some(0)], "the answer, then RST_STREAM(NO_ERROR)");
    assert_eq!(b.count(), 0);
}
