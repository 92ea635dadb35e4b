//! The HTTP/1.1 connection driver on the codec: serves one client connection's requests in
//! order, without a buffer while the connection waits for its next request.
//!
//! - Reads go into a buffer taken from a per-thread pool only once the socket has bytes; the
//!   buffer goes back to the pool as soon as it is empty between requests.
//! - The request body streams from the socket through `DownstreamBody` (whoever polls it —
//!   the upstream's connection — reads the socket under a short lock); it ends where its
//!   framing says, and the connection reads the next head after it.
//! - The response is written with vectored writes: head and each body chunk together,
//!   chunked encoding when the length is not known.
//! - One timer per connection: the head deadline while waiting for a request, then the
//!   stall deadline while the answer is written.
//! - An upgrade request (WebSocket) is handed back with every byte read so far, to be served
//!   by hyper's upgrade machinery.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRAILER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::chunked::{ChunkedDecoder, Decoded};
use super::head::{self, Framing, HeadError, MAX_HEADERS};
use crate::body::DownstreamBody;
use portcullis_core::stage::RawHeadFlaw;

/// Size of a pooled read buffer.
const READ_BUF: usize = 8 * 1024;
/// Buffers kept per thread for the next reads.
const POOL_MAX: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

fn take_buf() -> BytesMut {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_else(|| BytesMut::with_capacity(READ_BUF))
}

fn give_buf(mut buf: BytesMut) {
    // A buffer whose memory is still shared (a large body piece sliced off it) would be
    // copied on its next use: only whole ones go back.
    if !super::reclaim(&mut buf, READ_BUF) {
        return;
    }
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    });
}

/// Empty boxes of one future type, each a `Pin<Box<Option<F>>>`.
type Slots = (TypeId, Vec<Box<dyn Any>>);

thread_local! {
    /// The boxes of finished handler futures, by future type, for the next requests served
    /// on this thread.
    static SLOTS: RefCell<Vec<Slots>> = const { RefCell::new(Vec::new()) };
}
/// Boxes kept per future type and thread: enough for the requests in flight at once on a
/// busy core, a bounded few MiB after a burst.
const SLOTS_MAX: usize = 256;

/// A box for one handler future. The future is several KiB: a fresh box per request was a
/// fresh allocation per request, whose pages the allocator gave back to the kernel (it purges
/// at once, for idle memory) and the kernel faulted in and zeroed again on the next request.
fn take_slot<F: 'static>() -> Pin<Box<Option<F>>> {
    let id = TypeId::of::<F>();
    // `try_with`: a task dropped while its thread is ending finds no pool, and needs none.
    let found =
        SLOTS.try_with(|s| s.borrow_mut().iter_mut().find(|(t, _)| *t == id).and_then(|(_, v)| v.pop())).ok().flatten();
    match found.map(<Box<dyn Any>>::downcast::<Pin<Box<Option<F>>>>) {
        Some(Ok(slot)) => *slot,
        _ => Box::pin(None),
    }
}

fn give_slot<F: 'static>(mut slot: Pin<Box<Option<F>>>) {
    slot.set(None);
    let id = TypeId::of::<F>();
    let _ = SLOTS.try_with(|s| {
        let mut s = s.borrow_mut();
        let kept = match s.iter_mut().find(|(t, _)| *t == id) {
            Some((_, kept)) => kept,
            None => {
                s.push((id, Vec::new()));
                let Some((_, kept)) = s.last_mut() else { return };
                kept
            }
        };
        if kept.len() < SLOTS_MAX {
            kept.push(Box::new(slot));
        }
    });
}

/// The future `make` returns, in a pooled box (see [`take_slot`]), to be awaited there. Not an
/// `async fn`: the future goes into its box at once and never becomes part of the caller's
/// state. Made here, inlined, rather than passed in: a future passed by value was copied
/// twice on its way into the box (callgrind: two `memcpy` of its several KiB per request).
#[inline(always)]
fn in_slot<F: Future + 'static>(make: impl FnOnce() -> F) -> Slotted<F> {
    let mut slot = take_slot::<F>();
    slot.set(Some(make()));
    Slotted { slot: Some(slot) }
}

/// A future running in a pooled box, which goes back to the pool when the future ends or is
/// dropped.
struct Slotted<F: 'static> {
    slot: Option<Pin<Box<Option<F>>>>,
}

impl<F: Future + 'static> Future for Slotted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(future) = self.slot.as_mut().and_then(|s| s.as_mut().as_pin_mut()) else { return Poll::Pending };
        let output = ready!(future.poll(cx));
        if let Some(slot) = self.slot.take() {
            give_slot(slot);
        }
        Poll::Ready(output)
    }
}

impl<F: 'static> Drop for Slotted<F> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            give_slot(slot);
        }
    }
}

/// The limits a connection is served with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The most bytes a request head may take (`server::h1_buf_size`).
    pub max_head: usize,
    /// From the moment a request is awaited until its head is complete.
    pub header_read_timeout: Duration,
    /// How long writing an answer may make no progress.
    pub idle_timeout: Duration,
}

/// How a connection ended.
pub enum Ended<S> {
    /// Closed (by either side, a refusal, a timeout or shutdown).
    Closed,
    /// An upgrade request arrived: `prefix` (its head and everything read after it) is still to
    /// be served, on `io`, by a codec that can upgrade.
    Upgrade { io: S, prefix: Bytes },
}

/// The socket and what was read from it, shared by the driver and the request body.
struct Wire<S> {
    io: Option<S>,
    /// Bytes read and not yet used; `None` while there are none (the buffer is pooled).
    buf: Option<BytesMut>,
    eof: bool,
    /// The body being read, numbered so that a body of an earlier request, still held
    /// somewhere, can no longer read.
    body: Reading,
    body_id: u64,
    /// `100 Continue` still to go out before the body is first read: bytes left of it.
    continue_left: usize,
}

enum Reading {
    None,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    /// The body broke (framing, early end): the connection cannot go on.
    Broken,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client closed the connection before the body's end")]
    Incomplete,
    #[error("the chunked request body is malformed: {0}")]
    Chunked(#[from] super::chunked::ChunkedError),
    #[error("the request body is no longer readable")]
    Gone,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Reads more into the buffer: `Ok(0)` at the client's end. A buffer is taken from the
    /// pool only for the read and given back if the socket had nothing.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Ok(0)) };
        if self.eof {
            return Poll::Ready(Ok(0));
        }
        let mut buf = self.buf.take().unwrap_or_else(take_buf);
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUF);
        }
        // Into the buffer's spare capacity as it is: zeroing 8 KiB before every read (and
        // every read that finds the socket empty) cost more than the parse.
        let polled = tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut buf);
        self.put_back(buf);
        match polled {
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    self.eof = true;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn put_back(&mut self, buf: BytesMut) {
        if buf.is_empty() {
            give_buf(buf);
        } else {
            self.buf = Some(buf);
        }
    }

    fn buffered(&self) -> usize {
        self.buf.as_ref().map_or(0, BytesMut::len)
    }

    fn poll_write_all(&mut self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<io::Result<()>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Err(io::ErrorKind::NotConnected.into())) };
        while out.iter().any(|b| !b.is_empty()) {
            let mut n = {
                let slices: SmallVec<[IoSlice<'_>; 4]> =
                    out.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            for b in out.iter_mut() {
                let take = n.min(b.len());
                b.advance(take);
                n -= take;
                if n == 0 {
                    break;
                }
            }
        }
        out.clear();
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// The next piece of body `id`.
    fn poll_body(&mut self, cx: &mut Context<'_>, id: u64) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if id != self.body_id {
            return Poll::Ready(Some(Err(BodyError::Gone)));
        }
        while self.continue_left > 0 {
            let Some(io) = self.io.as_mut() else { return Poll::Ready(Some(Err(BodyError::Gone))) };
            let from = CONTINUE.len() - self.continue_left;
            match ready!(Pin::new(io).poll_write(cx, &CONTINUE[from..])) {
                Ok(0) => return Poll::Ready(Some(Err(BodyError::Io(io::ErrorKind::WriteZero.into())))),
                Ok(n) => self.continue_left -= n,
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
        loop {
            match &mut self.body {
                Reading::None => return Poll::Ready(None),
                Reading::Broken => return Poll::Ready(Some(Err(BodyError::Incomplete))),
                Reading::Length(left) => {
                    if let Some(buf) = self.buf.as_mut() {
                        let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                        let data = super::take_bytes(buf, n);
                        *left -= n as u64;
                        if *left == 0 {
                            self.body = Reading::None;
                        }
                        if let Some(buf) = self.buf.take() {
                            self.put_back(buf);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Reading::Chunked(decoder) => {
                    if let Some(buf) = self.buf.as_mut() {
                        let decoded = decoder.decode(buf);
                        if let Some(buf) = self.buf.take() {
                            self.put_back(buf);
                        }
                        match decoded {
                            Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                            Ok(Decoded::End(trailers)) => {
                                self.body = Reading::None;
                                return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                            }
                            Ok(Decoded::NeedMore) => {}
                            Err(e) => {
                                self.body = Reading::Broken;
                                return Poll::Ready(Some(Err(e.into())));
                            }
                        }
                    }
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => {
                    self.body = Reading::Broken;
                    return Poll::Ready(Some(Err(BodyError::Incomplete)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.body = Reading::Broken;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    /// Ends the current body without reading further: whether what was already read holds
    /// its end (then the connection may go on).
    fn finish_body(&mut self) -> bool {
        let done = match &mut self.body {
            Reading::None => true,
            Reading::Broken => false,
            Reading::Length(left) => {
                let buffered = self.buf.as_ref().map_or(0, BytesMut::len) as u64;
                if buffered >= *left {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX);
                    if let Some(buf) = self.buf.as_mut() {
                        buf.advance(n);
                    }
                    true
                } else {
                    false
                }
            }
            Reading::Chunked(decoder) => match self.buf.as_mut() {
                Some(buf) => loop {
                    match decoder.decode(buf) {
                        Ok(Decoded::Data(_)) => {}
                        Ok(Decoded::End(_)) => break true,
                        Ok(Decoded::NeedMore) | Err(_) => break false,
                    }
                },
                None => false,
            },
        };
        self.body = Reading::None;
        self.body_id += 1;
        self.continue_left = 0;
        if let Some(buf) = self.buf.take() {
            self.put_back(buf);
        }
        done
    }
}

/// The request body as the pipeline sees it (a `DownstreamBody` variant).
pub struct RequestBody {
    wire: Arc<Mutex<dyn Source>>,
    id: u64,
    ended: bool,
    length: Option<u64>,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").field("id", &self.id).field("ended", &self.ended).finish_non_exhaustive()
    }
}

/// A `Wire` of any socket type, for the body.
trait Source: Send {
    fn poll_body(&mut self, cx: &mut Context<'_>, id: u64) -> Poll<Option<Result<Frame<Bytes>, BodyError>>>;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Source for Wire<S> {
    fn poll_body(&mut self, cx: &mut Context<'_>, id: u64) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Wire::poll_body(self, cx, id)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let polled = match this.wire.lock() {
            Ok(mut wire) => wire.poll_body(cx, this.id),
            Err(_) => Poll::Ready(Some(Err(BodyError::Gone))),
        };
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            this.ended = true;
        }
        if let (Poll::Ready(Some(Ok(frame))), Some(left)) = (&polled, this.length.as_mut()) {
            *left = left.saturating_sub(frame.data_ref().map_or(0, |d| d.len() as u64));
            if *left == 0 {
                this.ended = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.length.map_or_else(http_body::SizeHint::default, http_body::SizeHint::with_exact)
    }
}

/// What the answer must follow from its request.
struct Asked {
    head_request: bool,
    version: Version,
    keep_alive: bool,
    /// The request's `TE` lists `trailers`: the answer may end with trailer fields.
    te_trailers: bool,
}

/// Serves `io` (after `prefix`, bytes already read for protocol detection) until it closes,
/// `stop` turns true, or an upgrade request arrives. `handler` answers each request.
pub async fn serve<S, H, F, B>(
    io: S,
    prefix: Bytes,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
    mut handler: H,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: FnMut(Request<DownstreamBody>) -> F,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes>,
{
    let buf = (!prefix.is_empty()).then(|| BytesMut::from(&prefix[..]));
    let wire =
        Arc::new(Mutex::new(Wire { io: Some(io), buf, eof: false, body: Reading::None, body_id: 0, continue_left: 0 }));
    // The connection's one timer, re-armed for each phase.
    let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(settings.header_read_timeout));
    loop {
        if *stop.borrow() {
            return close(&wire);
        }
        // A connection with nothing of a request yet closes after the shorter of the idle and
        // header-read timeouts; once a head has started, the header-read one applies.
        let waiting = Instant::now();
        timer.as_mut().reset(waiting + settings.header_read_timeout.min(settings.idle_timeout));
        let mut stopping = false;
        let head = loop {
            tokio::select! {
                head = poll_fn(|cx| poll_head(&wire, cx, settings.max_head)) => break head,
                () = timer.as_mut() => {
                    let deadline = waiting + settings.header_read_timeout;
                    if lock(&wire).buffered() == 0 || Instant::now() >= deadline {
                        return close(&wire);
                    }
                    timer.as_mut().reset(deadline);
                }
                _ = stop.changed(), if !stopping => {
                    // Shutdown closes a connection waiting for its next request; one whose
                    // request has started arriving is still served.
                    stopping = true;
                    if lock(&wire).buffered() == 0 {
                        return close(&wire);
                    }
                }
            }
        };
        let head = match head {
            Ok(Some(head)) => head,
            Ok(None) => return close(&wire),
            Err(e) => {
                let _ = Box::pin(write_refusal(&wire, e)).await;
                return close(&wire);
            }
        };
        if head.wants_upgrade {
            let mut guard = lock(&wire);
            let rest = guard.buf.take();
            let Some(io) = guard.io.take() else { return Ended::Closed };
            let mut prefix = BytesMut::from(&head.raw[..]);
            if let Some(rest) = rest {
                prefix.extend_from_slice(&rest);
            }
            return Ended::Upgrade { io, prefix: prefix.freeze() };
        }
        let (request, asked) = {
            let mut guard = lock(&wire);
            let mut flaw = head.flaw;
            if flaw.is_none()
                && head.framing == Framing::Chunked
                && guard.buf.as_ref().is_some_and(|b| head::body_already_malformed(b))
            {
                flaw = Some(RawHeadFlaw::MalformedBody);
            }
            guard.body = match head.framing {
                Framing::Empty => Reading::None,
                Framing::Length(n) => Reading::Length(n),
                Framing::Chunked => Reading::Chunked(Box::new(ChunkedDecoder::new(MAX_HEADERS))),
            };
            guard.continue_left =
                if head.expect_continue && head.framing != Framing::Empty { CONTINUE.len() } else { 0 };
            let id = guard.body_id;
            drop(guard);
            let mut parts = head.parts;
            if let Some(flaw) = flaw {
                parts.extensions.insert(flaw);
            }
            let asked = Asked {
                head_request: parts.method == Method::HEAD,
                version: parts.version,
                keep_alive: head.keep_alive,
                te_trailers: super::trailers::te_lists_trailers(&parts.headers),
            };
            let body = match head.framing {
                Framing::Empty => DownstreamBody::empty(),
                framing => DownstreamBody::h1(RequestBody {
                    wire: wire.clone(),
                    id,
                    ended: false,
                    length: if let Framing::Length(n) = framing { Some(n) } else { None },
                }),
            };
            (Request::from_parts(parts, body), asked)
        };
        // In a box: the connection's own future stays small while it waits for the next
        // request. A pooled one: see `take_slot`.
        let response = in_slot(|| handler(request)).await;
        let closing = *stop.borrow();
        // Boxed too: an answer's state (its body, the head, pending slices) is not carried by
        // the connection while it waits.
        let keep_alive =
            Box::pin(write_response(&wire, response, &asked, closing, &mut timer, settings.idle_timeout)).await;
        let body_done = lock(&wire).finish_body();
        if !(keep_alive && body_done) {
            return close(&wire);
        }
    }
}

fn lock<S>(wire: &Mutex<Wire<S>>) -> std::sync::MutexGuard<'_, Wire<S>> {
    wire.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn close<S>(wire: &Mutex<Wire<S>>) -> Ended<S> {
    let mut guard = lock(wire);
    guard.body_id += 1;
    if let Some(buf) = guard.buf.take() {
        give_buf(buf);
    }
    drop(guard.io.take());
    Ended::Closed
}

/// The next head: `Ok(None)` when the client closed before one (or within one).
fn poll_head<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &Mutex<Wire<S>>,
    cx: &mut Context<'_>,
    max_head: usize,
) -> Poll<Result<Option<head::Head>, HeadError>> {
    let mut guard = lock(wire);
    loop {
        if let Some(buf) = guard.buf.as_mut() {
            let parsed = head::parse(buf, max_head);
            if let Some(buf) = guard.buf.take() {
                guard.put_back(buf);
            }
            match parsed {
                Ok(Some(head)) => return Poll::Ready(Ok(Some(head))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match ready!(guard.poll_fill(cx)) {
            Ok(0) | Err(_) => return Poll::Ready(Ok(None)),
            Ok(_) => {}
        }
    }
}

async fn write_refusal<S: AsyncRead + AsyncWrite + Unpin>(wire: &Mutex<Wire<S>>, error: HeadError) -> io::Result<()> {
    let status = error.status();
    let head = format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    let mut out = vec![Bytes::from(head)];
    poll_fn(|cx| lock(wire).poll_write_all(cx, &mut out)).await?;
    poll_fn(|cx| lock(wire).poll_flush(cx)).await
}

/// How the answer's body goes on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    None,
    Length,
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    Close,
}

/// Writes the answer; whether the connection may carry another request.
async fn write_response<S, B>(
    wire: &Mutex<Wire<S>>,
    response: Response<B>,
    asked: &Asked,
    closing: bool,
    timer: &mut Pin<Box<Sleep>>,
    stall: Duration,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Body<Data = Bytes>,
{
    let (mut parts, body) = response.into_parts();
    let mut keep_alive = asked.keep_alive && !closing;
    if parts.headers.get_all(CONNECTION).iter().any(|v| has_token(v, "close")) {
        keep_alive = false;
    }
    let status = parts.status;
    let no_body = asked.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut out = if parts.headers.contains_key(CONTENT_LENGTH) {
        Out::Length
    } else if status.is_informational() || status == StatusCode::NO_CONTENT {
        Out::None
    } else if let Some(n) = body.size_hint().exact() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        Out::Length
    } else if asked.version == Version::HTTP_11 {
        parts.headers.remove(TRANSFER_ENCODING);
        parts.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Out::Chunked
    } else {
        keep_alive = false;
        Out::Close
    };
    if no_body {
        out = Out::None;
    }
    // The trailer fields the answer may end with (none unless chunked and the client asked).
    let trailer_names =
        if out == Out::Chunked && asked.te_trailers { super::trailers::declared(&parts.headers) } else { Vec::new() };
    if asked.version == Version::HTTP_10 || no_body {
        // As hyper: an answer that cannot be chunked (HTTP/1.0, or without a body) announces
        // no trailers.
        parts.headers.remove(TRAILER);
    }
    let version = if asked.version == Version::HTTP_10 { "HTTP/1.0" } else { "HTTP/1.1" };
    if asked.version == Version::HTTP_10 {
        let says_keep_alive = parts.headers.get_all(CONNECTION).iter().any(|v| has_token(v, "keep-alive"));
        if keep_alive && !says_keep_alive {
            parts.headers.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    } else if !keep_alive && !parts.headers.get_all(CONNECTION).iter().any(|v| has_token(v, "close")) {
        parts.headers.append(CONNECTION, HeaderValue::from_static("close"));
    }
    if !parts.headers.contains_key(DATE) {
        parts.headers.insert(DATE, date());
    }
    let head = encode_head(version, status, &parts.headers);
    let mut pending = vec![head];
    // In an `Option`, to drop it where it is pinned once it has ended.
    let mut body = std::pin::pin!(Some(body));
    // A client that stops reading, or an upstream that stalls mid-body, cannot hold the
    // connection: each step of the answer must move within twice the idle timeout (what the
    // hyper listener's watchdog allowed: an idle period, then another after a graceful close).
    let limit = stall.max(Duration::from_millis(10)) * 2;
    // The declared length, to close the connection rather than let the client misframe an
    // answer whose body came out longer or shorter.
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Encoded: the fields' memory goes now, not when the answer has waited its turn (`send`).
    drop(parts);
    let mut sent = 0u64;
    let mut last_chunk = Bytes::from_static(b"0\r\n\r\n");
    let mut stepped = false;
    if out != Out::None {
        loop {
            let next = poll_fn(|cx| match body.as_mut().as_pin_mut() {
                Some(body) => body.poll_frame(cx),
                None => Poll::Ready(None),
            });
            let Some(frame) = timed(timer, limit, next).await else {
                return false;
            };
            let Some(frame) = frame else { break };
            let Ok(frame) = frame else { return false };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => match frame.into_trailers() {
                    // Trailers end the body (as under hyper, nothing after them is read).
                    Ok(trailers) => {
                        if let Some(end) = super::trailers::encode(&trailers, &trailer_names) {
                            last_chunk = end;
                        }
                        break;
                    }
                    Err(_) => continue,
                },
            };
            if data.is_empty() {
                continue;
            }
            if out == Out::Chunked {
                pending.push(Bytes::from(format!("{:x}\r\n", data.len())));
                pending.push(data);
                pending.push(Bytes::from_static(b"\r\n"));
            } else {
                sent += data.len() as u64;
                if out == Out::Length && declared.is_some_and(|n| sent > n) {
                    return false;
                }
                pending.push(data);
                if declared == Some(sent) {
                    // The last bytes wait for the body's end, which a complete body reports at
                    // once: its access-log line is written before the client holds the whole
                    // answer and can send its next request (as under hyper), so the log keeps
                    // request order.
                    continue;
                }
            }
            let write = send(wire, &mut pending, &mut stepped);
            if !matches!(timed(timer, limit, write).await, Some(Ok(()))) {
                return false;
            }
        }
        // Ended: what it holds (its log line written, its upstream connection back in the
        // pool) goes before the answer waits its turn to be written (`send`).
        body.set(None);
        if out == Out::Chunked {
            pending.push(last_chunk);
        }
        if out == Out::Length && declared.is_some_and(|n| sent != n) {
            // Short: what was written goes out, then the connection closes.
            let _ = timed(timer, limit, send(wire, &mut pending, &mut stepped)).await;
            return false;
        }
    }
    let write = async {
        send(wire, &mut pending, &mut stepped).await?;
        poll_fn(|cx| lock(wire).poll_flush(cx)).await
    };
    matches!(timed(timer, limit, write).await, Some(Ok(()))) && keep_alive && out != Out::Close
}

/// Writes `pending` out; an answer's first write (`stepped` still false) first steps behind
/// the tasks already ready on this thread.
///
/// Those are, under load, the rest of the readiness batch the runtime just took from the
/// kernel: other connections whose answers are coming in. Stepping back lets their work run
/// first, so the batch's answers go out back to back. Each write to a client whose side sleeps
/// wakes it (on loopback, across cores: an inter-processor interrupt, a VM exit on a VM), and
/// answers written far apart in time found the client asleep again nearly every time; written
/// together, the first one wakes it and the rest find it running (nginx, which writes the
/// answers of one `epoll_wait` batch in one pass, gets the same). The cost is one more poll of
/// this task, no system call.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &Mutex<Wire<S>>,
    pending: &mut Vec<Bytes>,
    stepped: &mut bool,
) -> io::Result<()> {
    if !std::mem::replace(stepped, true) {
        super::step_back().await;
    }
    poll_fn(|cx| lock(wire).poll_write_all(cx, pending)).await
}

/// `fut` under the connection's timer, re-armed for `limit`; `None` when it fired first.
async fn timed<T>(timer: &mut Pin<Box<Sleep>>, limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    timer.as_mut().reset(Instant::now() + limit);
    tokio::select! {
        value = fut => Some(value),
        () = timer.as_mut() => None,
    }
}

fn encode_head(version: &str, status: StatusCode, headers: &HeaderMap) -> Bytes {
    let mut head = BytesMut::with_capacity(128 + headers.len() * 32);
    head.extend_from_slice(version.as_bytes());
    head.extend_from_slice(b" ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.extend_from_slice(b" ");
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.freeze()
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

thread_local! {
    static DATE_CACHE: RefCell<(u64, Option<HeaderValue>)> = const { RefCell::new((0, None)) };
}

/// The `Date` header, formatted once per second per thread.
fn date() -> HeaderValue {
    let now = std::time::SystemTime::now();
    let second = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE_CACHE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second || cached.1.is_none() {
            let value = HeaderValue::from_str(&httpdate::fmt_http_date(now)).unwrap_or(HeaderValue::from_static(""));
            *cached = (second, Some(value));
        }
        cached.1.clone().unwrap_or(HeaderValue::from_static(""))
    })
}

#[cfg(test)]
#[path = "conn_tests.rs"]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

#[cfg(test)]
mod slot_tests {
    use super::{in_slot, take_slot};

    #[tokio::test]
    async fn a_finished_future_leaves_its_box_for_the_next() {
        let make = |n: u32| async move { n + 1 };
        assert_eq!(in_slot(|| make(1)).await, 2);
        // A type of its own has a pool of its own, empty.
        assert!(take_slot::<std::future::Ready<u8>>().is_none());
        let again = in_slot(|| make(2));
        let first = again.slot.as_ref().map(|s| std::ptr::from_ref(&**s) as usize);
        assert_eq!(again.await, 3);
        let reused = in_slot(|| make(3));
        assert_eq!(reused.slot.as_ref().map(|s| std::ptr::from_ref(&**s) as usize), first);
        // A dropped (cancelled) future gives its box back too.
        drop(reused);
        let after = in_slot(|| make(4));
        assert_eq!(after.slot.as_ref().map(|s| std::ptr::from_ref(&**s) as usize), first);
        assert_eq!(after.await, 5);
    }
}
