//! Bodies on both sides of the proxy. Requests stream upstream through [`RequestBody`], which
//! counts bytes and stops at the body limit (chunked bodies included). Responses stream back
//! through [`ResponseBody`], which counts bytes out and writes the access log line when the
//! body ends or the client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log::PendingLog;
use crate::cache::Capture;
use crate::upstream::Lease;

/// Shared between a streaming request body and the handler that reports on it.
#[derive(Debug, Default)]
pub struct BodyStats {
    pub bytes: AtomicU64,
    pub exceeded: AtomicBool,
}

/// The limit was passed while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit")]
pub struct BodyLimitExceeded;

pin_project_lite::pin_project! {
    /// The downstream request body as sent upstream (or a body the gateway made, such as a
    /// SOAP envelope).
    pub struct RequestBody {
        #[pin]
        inner: Option<Incoming>,
        limit: u64,
        stats: Option<Arc<BodyStats>>,
        // A body in memory, sent as one frame.
        full: Option<Bytes>,
    }
}

impl RequestBody {
    pub fn empty() -> Self {
        Self { inner: None, limit: 0, stats: None, full: None }
    }

    pub fn limited(inner: Incoming, limit: u64, stats: Arc<BodyStats>) -> Self {
        Self { inner: Some(inner), limit, stats: Some(stats), full: None }
    }

    /// A body already in memory.
    pub fn full(data: Bytes) -> Self {
        Self { inner: None, limit: 0, stats: None, full: (!data.is_empty()).then_some(data) }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Some(data) = this.full.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(inner) = this.inner.as_pin_mut() else { return Poll::Ready(None) };
        match inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(stats)) = (frame.data_ref(), this.stats.as_ref()) {
                    let total = stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
                    if total > *this.limit {
                        stats.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_none() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.full, &self.inner) {
            (Some(data), _) => SizeHint::with_exact(data.len() as u64),
            (None, inner) => inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body sent downstream.
    pub struct ResponseBody {
        #[pin]
        source: Source,
        log: Option<Box<PendingLog>>,
        bytes_out: u64,
        // The upstream connection, handed back when the body has ended (dropped otherwise).
        lease: Option<Lease>,
        // The upstream body reported its end (chunked bodies never say so by length).
        ended: bool,
        // A copy for the response cache, stored when the body ends cleanly.
        capture: Option<Box<Capture>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A body read to its end frees its connection for the next request; one
            // abandoned half-way takes the connection down with it.
            let ended = *this.ended
                || match &*this.source {
                    Source::Upstream { body } => body.is_end_stream(),
                    Source::Full { .. } => true,
                };
            if let (true, Some(lease)) = (ended, this.lease.as_mut()) {
                lease.release();
            }
            if let Some(log) = this.log.take() {
                log.finish(*this.bytes_out);
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = SourceProj]
    enum Source {
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: Incoming },
    }
}

impl Source {
    fn is_end(&self) -> bool {
        match self {
            Self::Full { data } => data.is_none(),
            Self::Upstream { body } => body.is_end_stream(),
        }
    }
}

impl ResponseBody {
    pub fn full(data: Bytes, log: Option<Box<PendingLog>>) -> Self {
        let data = (!data.is_empty()).then_some(data);
        Self { source: Source::Full { data }, log, bytes_out: 0, lease: None, ended: true, capture: None }
    }

    pub(crate) fn upstream(body: Incoming, log: Option<Box<PendingLog>>, lease: Option<Lease>) -> Self {
        let mut this =
            Self { source: Source::Upstream { body }, log, bytes_out: 0, lease, ended: false, capture: None };
        if Body::is_end_stream(&this)
            && let Some(lease) = this.lease.as_mut()
        {
            lease.release();
        }
        this
    }

    /// Copies the body into the response cache as it streams (an empty body is stored now).
    pub(crate) fn with_capture(mut self, capture: Option<Box<Capture>>) -> Self {
        match capture {
            Some(capture) if Body::is_end_stream(&self) => capture.finish(),
            capture => self.capture = capture,
        }
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = match this.source.as_mut().project() {
            SourceProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            SourceProj::Upstream { body } => body.poll_frame(cx),
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            *this.bytes_out += data.len() as u64;
        }
        if let Some(capture) = this.capture.as_mut() {
            let keep = match &polled {
                Poll::Pending => true,
                // Trailers are not stored: an answer with them is not cached.
                Poll::Ready(Some(Ok(frame))) => frame.data_ref().is_some_and(|d| capture.push(d)),
                Poll::Ready(Some(Err(_))) => false,
                Poll::Ready(None) => true,
            };
            // hyper stops polling once the body says it has ended.
            let ended = matches!(&polled, Poll::Ready(None)) || (this.source.is_end() && polled.is_ready());
            if !keep || ended {
                if let (true, Some(capture)) = (keep, this.capture.take()) {
                    capture.finish();
                }
                *this.capture = None;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Full { data } => data.is_none(),
            Source::Upstream { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Source::Upstream { body } => body.size_hint(),
        }
    }
}
