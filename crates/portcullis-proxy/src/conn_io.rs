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

mod framing;

use framing::Scan;
pub(crate) use framing::{FramingScan, MAX_HEADERS};

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
    /// `max_head`: hyper's read buffer limit, the largest head it accepts.
    pub(crate) fn new(
        inner: T,
        prefix: Bytes,
        activity: Arc<Activity>,
        framing: Option<Arc<FramingScan>>,
        max_head: usize,
    ) -> Self {
        let scan = framing.map(|shared| Scan::new(shared, max_head));
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
