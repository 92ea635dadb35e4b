//! One HTTP/1.1 exchange with an upstream, driven in the request's own task: no connection
//! task, no channel between the request and the socket. The request head is written once
//! into a buffer from a per-thread pool and goes out with the body's first piece in one
//! vectored write; the response head is parsed in place ([`super::h1head`]); the response
//! body reads straight from the socket and, ended cleanly on a connection both sides keep
//! open, gives the connection back to its pool.
//!
//! The request body keeps streaming while the response arrives (an upstream may answer
//! early): the response body drives what is left of it before each read. A connection whose
//! request body did not go out in full is never reused.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWrite;

use super::h1head::{self, Framing, Parsed};
use super::h1io::{Io, Upgraded};
use super::h1pool::H1Pool;
use crate::body::{BodyLimitExceeded, RequestBody};
use crate::h1::chunked::{ChunkedDecoder, Decoded};
use portcullis_core::UpstreamError as ProxyError;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 * 1024;

thread_local! {
    /// Request head buffers, reused by the requests this thread writes.
    static HEADS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}
const POOLED_HEADS: usize = 64;
/// A head buffer that grew past this is not kept.
const POOLED_HEAD_MAX: usize = 16 * 1024;

thread_local! {
    /// Response read buffers, reused by the exchanges this thread drives.
    static READS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}
const POOLED_READS: usize = 64;

fn read_buffer() -> BytesMut {
    READS.try_with(|r| r.borrow_mut().pop()).ok().flatten().unwrap_or_default()
}

/// Back to the pool, if its memory is its own again (no body piece still shares it).
fn give_back_read(mut buf: BytesMut) {
    if buf.capacity() == 0 || !crate::h1::reclaim(&mut buf, READ_SIZE) {
        return;
    }
    let _ = READS.try_with(|r| {
        let mut r = r.borrow_mut();
        if r.len() < POOLED_READS {
            r.push(buf);
        }
    });
}

fn head_buffer() -> Vec<u8> {
    HEADS.with(|h| h.borrow_mut().pop()).unwrap_or_else(|| Vec::with_capacity(1024))
}

fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > POOLED_HEAD_MAX {
        return;
    }
    buf.clear();
    HEADS.with(|h| {
        let mut h = h.borrow_mut();
        if h.len() < POOLED_HEADS {
            h.push(buf);
        }
    });
}

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Length(u64),
    Chunked,
}

/// The request as it goes out: the head already serialised.
pub(crate) struct Outgoing {
    pub(crate) method: Method,
    head: Vec<u8>,
    encoding: Encoding,
    /// The request asked for the connection to close after it.
    close: bool,
    pub(crate) body: RequestBody,
    /// The body had nothing to send, so the request can go again as it was.
    pub(crate) bodiless: bool,
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.head));
    }
}

impl Outgoing {
    /// Serialises the head of `method target HTTP/1.1` with `headers`, framing the body the
    /// way the hyper client did: a body that has ended is sent with no `Transfer-Encoding`;
    /// a stated length is kept; an unknown length goes chunked (no body at all for `GET`,
    /// `HEAD` and `CONNECT`); a known one gets its `Content-Length`.
    pub(crate) fn new(method: Method, target: &str, mut headers: HeaderMap, body: RequestBody) -> Self {
        let ended = body.is_end_stream();
        let stated = content_length(&headers);
        let encoding = if ended {
            headers.remove(TRANSFER_ENCODING);
            Encoding::Length(0)
        } else if headers.contains_key(TRANSFER_ENCODING) {
            let chunked = headers.get_all(TRANSFER_ENCODING).iter().next_back().is_some_and(|v| {
                v.to_str().is_ok_and(|v| {
                    v.rsplit(',').next().is_some_and(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"))
                })
            });
            if !chunked {
                headers.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
            headers.remove(CONTENT_LENGTH);
            Encoding::Chunked
        } else if let Some(n) = stated {
            Encoding::Length(n)
        } else if let Some(n) = body.size_hint().exact() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            Encoding::Length(n)
        } else if matches!(method, Method::GET | Method::HEAD | Method::CONNECT) {
            Encoding::Length(0)
        } else {
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            Encoding::Chunked
        };
        let close = headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("close")))
        });
        let mut head = head_buffer();
        head.extend_from_slice(method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(target.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Self { method, head, encoding, close, body, bodiless: ended }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let n = values.next()?.to_str().ok()?.trim().parse().ok()?;
    values.next().is_none().then_some(n)
}

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The client's body failed (too large, broken off, stalled): the exchange is void.
    Client(ProxyError),
    /// The connection failed or the upstream answered nothing usable. `answered`: some of a
    /// response had arrived; `sent`: the request went out in full.
    Upstream { answered: bool, sent: bool },
}

/// The request's bytes still to write: the head, then each body piece with its chunk framing.
struct Writer {
    head: Vec<u8>,
    head_pos: usize,
    /// A chunk-size line (`{hex}\r\n`) before `data`.
    prefix: [u8; 18],
    prefix_len: usize,
    prefix_pos: usize,
    data: Bytes,
    tail: &'static [u8],
    body: Option<RequestBody>,
    encoding: Encoding,
    /// Body bytes still owed under a `Content-Length`.
    owed: u64,
    unflushed: bool,
}

/// How a write step ended.
enum WriteError {
    Client(ProxyError),
    Io,
}

impl Writer {
    fn new(out: &mut Outgoing, body: RequestBody) -> Self {
        let owed = match out.encoding {
            Encoding::Length(n) => n,
            Encoding::Chunked => 0,
        };
        let body = (!out.bodiless).then_some(body);
        Self {
            head: std::mem::take(&mut out.head),
            head_pos: 0,
            prefix: [0; 18],
            prefix_len: 0,
            prefix_pos: 0,
            data: Bytes::new(),
            tail: b"",
            body,
            encoding: out.encoding,
            owed,
            unflushed: false,
        }
    }

    fn pending(&self) -> bool {
        self.head_pos < self.head.len()
            || self.prefix_pos < self.prefix_len
            || !self.data.is_empty()
            || !self.tail.is_empty()
    }

    /// Takes the body's next piece into the write buffers; `Ready(true)` when there was one.
    fn pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, WriteError>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(Ok(false)) };
        match ready!(Pin::new(body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { return Poll::Ready(Ok(true)) };
                if data.is_empty() {
                    return Poll::Ready(Ok(true));
                }
                match self.encoding {
                    Encoding::Length(_) => {
                        let len = data.len() as u64;
                        if len > self.owed {
                            return Poll::Ready(Err(WriteError::Client(ProxyError::ClientBody)));
                        }
                        self.owed -= len;
                    }
                    Encoding::Chunked => {
                        self.prefix_len = chunk_size_line(&mut self.prefix, data.len());
                        self.prefix_pos = 0;
                        self.tail = b"\r\n";
                    }
                }
                self.data = data;
                Poll::Ready(Ok(true))
            }
            Some(Err(e)) => {
                let error = if e.is::<BodyLimitExceeded>() { ProxyError::BodyTooLarge } else { ProxyError::ClientBody };
                Poll::Ready(Err(WriteError::Client(error)))
            }
            None => {
                self.body = None;
                match self.encoding {
                    Encoding::Length(_) if self.owed > 0 => {
                        Poll::Ready(Err(WriteError::Client(ProxyError::ClientBody)))
                    }
                    Encoding::Length(_) => Poll::Ready(Ok(true)),
                    Encoding::Chunked => {
                        self.tail = b"0\r\n\r\n";
                        Poll::Ready(Ok(true))
                    }
                }
            }
        }
    }

    /// Writes until the request is out (`Ready(Ok)`), the body or the socket waits, or fails.
    fn poll(&mut self, io: &mut Io, cx: &mut Context<'_>) -> Poll<Result<(), WriteError>> {
        loop {
            // The body's next piece joins the head (or the previous piece's tail) in one write.
            let mut body_waits = false;
            if self.data.is_empty() && self.prefix_pos >= self.prefix_len && self.tail.is_empty() {
                match self.pull(cx) {
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => body_waits = true,
                }
            }
            if self.pending() {
                let slices = [
                    IoSlice::new(&self.head[self.head_pos..]),
                    IoSlice::new(&self.prefix[self.prefix_pos..self.prefix_len]),
                    IoSlice::new(&self.data),
                    IoSlice::new(self.tail),
                ];
                let n = match Pin::new(&mut *io).poll_write_vectored(cx, &slices) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Err(WriteError::Io)),
                    Poll::Ready(Ok(n)) => n,
                    Poll::Pending => return Poll::Pending,
                };
                self.advance(n);
                self.unflushed = true;
                continue;
            }
            if self.unflushed {
                match Pin::new(&mut *io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(WriteError::Io)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if body_waits {
                return Poll::Pending;
            }
            if self.body.is_none() {
                return Poll::Ready(Ok(()));
            }
        }
    }

    fn advance(&mut self, mut n: usize) {
        let take = n.min(self.head.len() - self.head_pos);
        self.head_pos += take;
        n -= take;
        let take = n.min(self.prefix_len - self.prefix_pos);
        self.prefix_pos += take;
        n -= take;
        let take = n.min(self.data.len());
        let _ = self.data.split_to(take);
        n -= take;
        let take = n.min(self.tail.len());
        self.tail = &self.tail[take..];
    }

    /// The head's bytes, for the request to go again on another connection.
    fn take_head(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.head)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.head));
    }
}

/// Writes `{len:x}\r\n` into `buf`; its length.
fn chunk_size_line(buf: &mut [u8; 18], len: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut count = 0;
    loop {
        digits[count] = HEX[n & 0xf];
        count += 1;
        n >>= 4;
        if n == 0 || count == digits.len() {
            break;
        }
    }
    for (i, d) in digits[..count].iter().rev().enumerate() {
        buf[i] = *d;
    }
    buf[count] = b'\r';
    buf[count + 1] = b'\n';
    count + 2
}

/// Reads more of the response into `buf`: `Ready(Ok(0))` at the connection's end.
fn poll_fill(io: &mut Io, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Sends `out` on `io` and waits for the final response head. On failure `out` keeps its head
/// (and, bodiless, can go again on another connection).
pub(crate) async fn exchange(mut io: Io, out: &mut Outgoing, pool: &Arc<H1Pool>) -> Result<Response<H1Body>, Failure> {
    let body = std::mem::replace(&mut out.body, RequestBody::empty());
    let mut writer = Some(Writer::new(out, body));
    let mut buf = read_buffer();
    let mut answered = false;
    let mut write_failed = false;
    let head = poll_fn(|cx| {
        if let Some(w) = writer.as_mut() {
            let finished = match w.poll(&mut io, cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(WriteError::Client(e))) => return Poll::Ready(Err(Failure::Client(e))),
                // The upstream may have answered before it stopped reading: read on.
                Poll::Ready(Err(WriteError::Io)) => {
                    write_failed = true;
                    true
                }
                Poll::Pending => false,
            };
            if finished {
                out.head = w.take_head();
                writer = None;
            }
        }
        loop {
            match h1head::parse(&mut buf, &out.method) {
                Ok(Parsed::Final(head)) => return Poll::Ready(Ok(head)),
                Ok(Parsed::Informational) => continue,
                Ok(Parsed::Partial) => {}
                Err(h1head::Invalid) => {
                    return Poll::Ready(Err(Failure::Upstream { answered: true, sent: !write_failed }));
                }
            }
            match ready!(poll_fill(&mut io, &mut buf, cx)) {
                Ok(n) if n > 0 => answered = true,
                _ => return Poll::Ready(Err(Failure::Upstream { answered, sent: !write_failed && writer.is_none() })),
            }
        }
    })
    .await;
    let head = match head {
        Ok(head) => head,
        Err(failure) => {
            if let Some(mut w) = writer {
                out.head = w.take_head();
            }
            return Err(failure);
        }
    };
    let (parts, ()) = head.response.into_parts();
    let body = H1Body {
        conn: Some(io),
        buf,
        writer: writer.map(Box::new),
        write_failed,
        framing: match head.framing {
            Framing::Empty => BodyFraming::Length(0),
            Framing::Length(n) => BodyFraming::Length(n),
            Framing::Chunked => BodyFraming::Chunked(Box::new(ChunkedDecoder::new(h1head::MAX_HEADERS))),
            Framing::Close => BodyFraming::Close,
            Framing::Upgrade => BodyFraming::Upgrade,
        },
        reusable: head.keep_alive && !out.close && head.framing != Framing::Upgrade,
        pool: pool.clone(),
        done: false,
    };
    let mut body = body;
    if body.is_end_stream() && body.framing != BodyFraming::Upgrade {
        body.finish();
    }
    Ok(Response::from_parts(parts, body))
}

#[derive(Debug)]
enum BodyFraming {
    /// Bytes still to come.
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    Close,
    Upgrade,
}

impl PartialEq for BodyFraming {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Length(a), Self::Length(b)) => a == b,
            (Self::Close, Self::Close) | (Self::Upgrade, Self::Upgrade) => true,
            _ => false,
        }
    }
}

/// The response body of an HTTP/1.1 upstream, read from its connection as it is polled.
#[derive(Debug)]
pub(crate) struct H1Body {
    conn: Option<Io>,
    buf: BytesMut,
    /// What is left of the request (rarely any), sent before each read.
    writer: Option<Box<Writer>>,
    write_failed: bool,
    framing: BodyFraming,
    reusable: bool,
    pool: Arc<H1Pool>,
    done: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("encoding", &self.encoding).finish_non_exhaustive()
    }
}

/// A response body that ended short or broke its framing.
#[derive(Debug, thiserror::Error)]
#[error("the upstream's response body was cut short or malformed")]
pub(crate) struct BodyBroken;

impl H1Body {
    /// The connection after a 101, for the tunnel; `None` for any other response.
    pub(crate) fn take_upgrade(&mut self) -> Option<Upgraded> {
        if self.framing != BodyFraming::Upgrade || self.writer.is_some() {
            return None;
        }
        self.done = true;
        let io = self.conn.take()?;
        Some(Upgraded { io, read_ahead: std::mem::take(&mut self.buf) })
    }

    /// The body has ended: the connection goes back to the pool if it can serve again.
    fn finish(&mut self) {
        self.done = true;
        let clean = self.reusable && self.writer.is_none() && !self.write_failed && self.buf.is_empty();
        if let (true, Some(io)) = (clean, self.conn.take()) {
            self.pool.checkin(io);
        }
        self.conn = None;
        give_back_read(std::mem::take(&mut self.buf));
    }

    fn fail(&mut self) -> Poll<Option<Result<Frame<Bytes>, BodyBroken>>> {
        self.done = true;
        self.conn = None;
        self.writer = None;
        Poll::Ready(Some(Err(BodyBroken)))
    }

    fn drive_writer(&mut self, cx: &mut Context<'_>) {
        let (Some(w), Some(io)) = (self.writer.as_mut(), self.conn.as_mut()) else { return };
        match w.poll(io, cx) {
            Poll::Ready(Ok(())) => self.writer = None,
            Poll::Ready(Err(_)) => {
                self.writer = None;
                self.write_failed = true;
            }
            Poll::Pending => {}
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BodyBroken;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyBroken>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        this.drive_writer(cx);
        loop {
            match &mut this.framing {
                BodyFraming::Upgrade | BodyFraming::Length(0) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                BodyFraming::Length(owed) => {
                    if !this.buf.is_empty() {
                        let n = usize::try_from(*owed).unwrap_or(usize::MAX).min(this.buf.len());
                        let data = crate::h1::take_bytes(&mut this.buf, n);
                        *owed -= n as u64;
                        if *owed == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                BodyFraming::Chunked(decoder) => match decoder.decode(&mut this.buf) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Decoded::NeedMore) => {}
                    Ok(Decoded::End(trailers)) => {
                        this.finish();
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Err(_) => return this.fail(),
                },
                BodyFraming::Close => {
                    if !this.buf.is_empty() {
                        let n = this.buf.len();
                        return Poll::Ready(Some(Ok(Frame::data(crate::h1::take_bytes(&mut this.buf, n)))));
                    }
                }
            }
            let Some(io) = this.conn.as_mut() else { return this.fail() };
            match ready!(poll_fill(io, &mut this.buf, cx)) {
                Ok(n) if n > 0 => {}
                Ok(_) if this.framing == BodyFraming::Close => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                _ => return this.fail(),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || matches!(self.framing, BodyFraming::Length(0) | BodyFraming::Upgrade)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            BodyFraming::Length(n) if !self.done => SizeHint::with_exact(n),
            _ if self.is_end_stream() => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        let mut buf = [0u8; 18];
        for (len, line) in
            [(0, &b"0\r\n"[..]), (10, b"a\r\n"), (4096, b"1000\r\n"), (usize::MAX, b"ffffffffffffffff\r\n")]
        {
            let n = chunk_size_line(&mut buf, len);
            assert_eq!(&buf[..n], line);
        }
    }

    fn serialised(method: Method, headers: &[(&'static str, &'static str)], body: RequestBody) -> (String, bool) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        let out = Outgoing::new(method, "/p?q=1", map, body);
        (String::from_utf8_lossy(&out.head).into_owned(), out.encoding == Encoding::Chunked)
    }

    #[test]
    fn request_heads_are_framed_as_the_hyper_client_framed_them() {
        let (head, chunked) = serialised(Method::GET, &[("host", "t"), ("x-a", "1")], RequestBody::empty());
        assert_eq!(head, "GET /p?q=1 HTTP/1.1\r\nhost: t\r\nx-a: 1\r\n\r\n");
        assert!(!chunked);
        let (head, chunked) = serialised(Method::POST, &[("host", "t")], RequestBody::full(Bytes::from_static(b"abc")));
        assert_eq!(head, "POST /p?q=1 HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n\r\n");
        assert!(!chunked);
        let (head, chunked) = serialised(
            Method::POST,
            &[("transfer-encoding", "gzip"), ("content-length", "3")],
            RequestBody::full(Bytes::from_static(b"abc")),
        );
        assert_eq!(head, "POST /p?q=1 HTTP/1.1\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(chunked);
        let (head, _) = serialised(Method::POST, &[("transfer-encoding", "chunked")], RequestBody::empty());
        assert_eq!(head, "POST /p?q=1 HTTP/1.1\r\n\r\n", "an ended body sends no coding");
    }
}
