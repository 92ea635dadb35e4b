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
const MAX_SCANNED_HEAD: usize = 64 * 1024;

/// Watches HTTP/1.1 request heads as the client sends them, for two reasons:
/// - `Content-Length` together with `Transfer-Encoding`: hyper resolves that per RFC 9112
///   (drops the length, closes after the response), but the gateway refuses such requests.
/// - the header-read deadline: a head that is still incomplete (or, on a new connection, not
///   begun) is timed here, so the clock is read only for slow heads, and hyper's per-request
///   timer — which would also cut idle keep-alive connections at the header deadline — is off.
#[derive(Debug)]
pub(crate) struct FramingScan {
    /// The next bytes read start a request head.
    expect_head: AtomicBool,
    ambiguous: AtomicBool,
    start: std::time::Instant,
    /// Milliseconds since `start` at which the pending head began; `u64::MAX`: none pending.
    head_since_ms: std::sync::atomic::AtomicU64,
}

const NO_HEAD: u64 = u64::MAX;

impl FramingScan {
    /// A new connection: its first head is pending from now.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            expect_head: AtomicBool::new(true),
            ambiguous: AtomicBool::new(false),
            start: std::time::Instant::now(),
            head_since_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    /// How long the pending head has been arriving, if one is.
    pub(crate) fn head_pending_for(&self) -> Option<std::time::Duration> {
        let since = self.head_since_ms.load(Ordering::Relaxed);
        (since != NO_HEAD).then(|| std::time::Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    fn head_begun(&self) {
        if self.head_since_ms.load(Ordering::Relaxed) == NO_HEAD {
            self.head_since_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn head_done(&self) {
        self.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
    }

    /// Called when a request was handed over: the connection's next head starts a new scan.
    pub(crate) fn expect_head(&self) {
        self.expect_head.store(true, Ordering::Relaxed);
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
        let joined;
        let bytes: &[u8] = if self.partial.is_empty() {
            data
        } else {
            self.partial.extend_from_slice(data);
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
                self.shared.head_done();
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_SCANNED_HEAD => {
                self.shared.head_begun();
                self.partial = bytes.to_vec();
            }
            // Malformed or oversized: hyper's own parser answers it.
            _ => {
                self.shared.expect_head.store(false, Ordering::Relaxed);
                self.shared.head_done();
            }
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
