//! The downstream socket as the HTTP codecs see it: bytes already read for protocol detection
//! are replayed first, and every read or write stamps the connection's last activity so an
//! idle connection can be closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether bytes moved since the watchdog last looked: a flag, not a clock read per I/O.
#[derive(Debug)]
pub(crate) struct Activity {
    touched: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { touched: AtomicBool::new(false) })
    }

    fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    /// Whether anything moved since the previous call.
    pub(crate) fn take_touched(&self) -> bool {
        self.touched.swap(false, Ordering::Relaxed)
    }
}

/// Largest request head the framing scan will accumulate across reads; hyper refuses larger.
const MAX_SCANNED_HEAD: usize = 32 * 1024;

/// Watches HTTP/1.1 request heads for `Content-Length` together with `Transfer-Encoding`:
/// hyper resolves that per RFC 9112 (drops the length, closes after the response), but the
/// gateway refuses such requests outright, which needs the head as the client sent it.
///
/// Best effort by design: the scan only knows where a head starts while every request on the
/// connection so far had no body; after a request with a body it stops (hyper's own handling
/// still applies). It never decides timing — hyper's header-read timer does.
#[derive(Debug)]
pub(crate) struct FramingScan {
    /// The next bytes read start a request head.
    expect_head: AtomicBool,
    /// A request with a body was seen: head boundaries are no longer known.
    off: AtomicBool,
    ambiguous: AtomicBool,
}

impl FramingScan {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            expect_head: AtomicBool::new(true),
            off: AtomicBool::new(false),
            ambiguous: AtomicBool::new(false),
        })
    }

    /// Called when hyper hands over a request: after a bodiless one the next bytes are a new
    /// head; after one with a body the scan stops for good.
    pub(crate) fn request_dispatched(&self, bodiless: bool) {
        if bodiless && !self.off.load(Ordering::Relaxed) {
            self.expect_head.store(true, Ordering::Relaxed);
        } else {
            self.off.store(true, Ordering::Relaxed);
            self.expect_head.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the head just parsed was ambiguous (and forgets it).
    pub(crate) fn take_ambiguous(&self) -> bool {
        self.ambiguous.swap(false, Ordering::Relaxed)
    }
}

/// Per-connection scan state: the part of a head that arrived in earlier reads.
#[derive(Debug)]
struct Scan {
    shared: Arc<FramingScan>,
    partial: Vec<u8>,
}

impl Scan {
    fn feed(&mut self, data: &[u8]) {
        if data.is_empty() || !self.shared.expect_head.load(Ordering::Relaxed) {
            return;
        }
        if !self.partial.is_empty() {
            self.partial.extend_from_slice(data);
            // A head can only complete with a line end: do not re-parse a trickle byte by byte.
            if !data.contains(&b'\n') {
                self.give_up_if_too_long();
                return;
            }
        }
        let joined;
        let bytes: &[u8] = if self.partial.is_empty() {
            data
        } else {
            joined = std::mem::take(&mut self.partial);
            &joined
        };
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(bytes) {
            Ok(httparse::Status::Complete(_)) => {
                let has = |name: &str| request.headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
                if has("content-length") && has("transfer-encoding") {
                    self.shared.ambiguous.store(true, Ordering::Relaxed);
                }
                self.shared.expect_head.store(false, Ordering::Relaxed);
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_SCANNED_HEAD => self.partial = bytes.to_vec(),
            // Malformed, too many headers or too long: hyper's own parser answers it.
            _ => self.shared.request_dispatched(false),
        }
    }

    fn give_up_if_too_long(&mut self) {
        if self.partial.len() >= MAX_SCANNED_HEAD {
            self.partial = Vec::new();
            self.shared.request_dispatched(false);
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct ConnIo<T> {
        prefix: Bytes,
        #[pin]
        inner: T,
        activity: Arc<Activity>,
        scan: Option<Scan>,
    }
}

impl<T> ConnIo<T> {
    pub(crate) fn new(inner: T, prefix: Bytes, activity: Arc<Activity>, framing: Option<Arc<FramingScan>>) -> Self {
        let scan = framing.map(|shared| Scan { shared, partial: Vec::new() });
        Self { prefix, inner, activity, scan }
    }
}

impl<T: AsyncRead> AsyncRead for ConnIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            if let Some(scan) = this.scan.as_mut() {
                scan.feed(&this.prefix[..n]);
            }
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
            if let Some(scan) = this.scan.as_mut() {
                scan.feed(&buf.filled()[before..]);
            }
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for ConnIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
