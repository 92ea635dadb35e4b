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
mod h2_watch;
mod hpack;

use framing::Scan;
pub(crate) use framing::{FramingScan, MAX_HEADERS};
use h2_watch::H2Watch;

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
        h2: Option<H2Watch>,
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
        Self { prefix, inner, activity, scan, h2: None }
    }

    /// Follows an HTTP/2 connection's header blocks (see [`h2_watch`]).
    pub(crate) fn watch_h2(mut self) -> Self {
        self.h2 = Some(H2Watch::new());
        self
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
            if let Some(h2) = this.h2.as_mut() {
                h2.read(&this.prefix[..n]);
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
            if let Some(h2) = this.h2.as_mut() {
                h2.read(&buf.filled()[before..]);
            }
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for ConnIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        // Only after a header block failed to decode: the GOAWAY h2 writes is rewritten.
        let patched = this.h2.as_ref().filter(|h2| h2.rewriting()).map(|h2| {
            let mut copy = data.to_vec();
            h2.patch(&mut copy);
            copy
        });
        let out = patched.as_deref().unwrap_or(data);
        let polled = this.inner.poll_write(cx, out);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            this.activity.touch();
            if let Some(h2) = this.h2.as_mut() {
                h2.wrote(&out[..n.min(out.len())]);
            }
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.h2.as_ref().is_some_and(H2Watch::rewriting) {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            this.activity.touch();
            if let Some(h2) = this.h2.as_mut() {
                let mut left = n;
                for buf in bufs {
                    let take = left.min(buf.len());
                    h2.wrote(&buf[..take]);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
            }
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
