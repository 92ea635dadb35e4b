//! Bodies on both sides of the proxy. Requests stream upstream through [`RequestBody`], which
//! counts bytes, stops at the body limit (chunked bodies included) and gives up on a client
//! that stops sending mid-body. Responses stream back through [`ResponseBody`], which counts
//! bytes out and writes the access log line when the body ends or the client goes away.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log::PendingLog;
use crate::cache::Capture;
use crate::upstream::Lease;

/// Shared between a streaming request body, the exchange that sends it and the handler that
/// reports on it: how far the client's body got, so a failure while it is still arriving is
/// put down to the client and never to the upstream.
#[derive(Debug, Default)]
pub struct BodyStats {
    pub bytes: AtomicU64,
    pub exceeded: AtomicBool,
    /// The client sent nothing for the stall timeout mid-body.
    stalled: AtomicBool,
    /// The client's body broke off (connection closed or reset, malformed chunking).
    broken: AtomicBool,
    /// The body is waiting for the client's next bytes (rather than for the upstream to take
    /// the last ones).
    waiting: AtomicBool,
    /// When the client's last byte was taken.
    ended: OnceLock<Instant>,
}

impl BodyStats {
    /// When the whole body had arrived from the client; `None` while it is still arriving.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended.get().copied()
    }

    /// The body is incomplete and waits for the client (not for the upstream to read it).
    pub fn waiting_for_client(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// A body that got as far as described (for tests of who is to blame).
    #[cfg(test)]
    pub(crate) fn seen(waiting: bool, ended: Option<Instant>, stalled: bool) -> Self {
        let stats = Self::default();
        stats.waiting.store(waiting, Ordering::Relaxed);
        stats.stalled.store(stalled, Ordering::Relaxed);
        if let Some(at) = ended {
            let _ = stats.ended.set(at);
        }
        stats
    }

    fn mark_ended(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        let _ = self.ended.set(Instant::now());
    }
}

/// The limit was passed while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit")]
pub struct BodyLimitExceeded;

/// The client stopped sending its body (nothing arrived for the stall timeout).
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving")]
pub struct BodyStalled;

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
        // How long the client may pause mid-body; the timer is made on its first pause and
        // armed again at each later one.
        stall_after: Duration,
        stall: Option<Pin<Box<tokio::time::Sleep>>>,
        stall_armed: bool,
    }
}

impl RequestBody {
    pub fn empty() -> Self {
        Self {
            inner: None,
            limit: 0,
            stats: None,
            full: None,
            stall_after: Duration::ZERO,
            stall: None,
            stall_armed: false,
        }
    }

    /// The client's body, cut at `limit` bytes, given up when the client pauses longer than
    /// `stall_after` between two pieces of it.
    pub fn limited(inner: Incoming, limit: u64, stall_after: Duration, stats: Arc<BodyStats>) -> Self {
        Self { inner: Some(inner), limit, stats: Some(stats), full: None, stall_after, stall: None, stall_armed: false }
    }

    /// A body already in memory.
    pub fn full(data: Bytes) -> Self {
        Self { full: (!data.is_empty()).then_some(data), ..Self::empty() }
    }

    /// The progress record of a body streamed from the client (`None` for the gateway's own).
    pub(crate) fn stats(&self) -> Option<Arc<BodyStats>> {
        self.stats.clone()
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
        let Some(mut inner) = this.inner.as_pin_mut() else { return Poll::Ready(None) };
        let polled = inner.as_mut().poll_frame(cx);
        let Some(stats) = this.stats.as_ref() else { return polled.map_err(|e| Box::new(e) as Self::Error) };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                *this.stall_armed = false;
                stats.waiting.store(false, Ordering::Relaxed);
                if let Some(data) = frame.data_ref() {
                    let total = stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
                    if total > *this.limit {
                        stats.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded))));
                    }
                }
                if inner.is_end_stream() {
                    stats.mark_ended();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                stats.waiting.store(false, Ordering::Relaxed);
                stats.broken.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                stats.mark_ended();
                Poll::Ready(None)
            }
            Poll::Pending => {
                stats.waiting.store(true, Ordering::Relaxed);
                if !*this.stall_armed && !this.stall_after.is_zero() {
                    // The clock is read once per pause, not per poll.
                    let deadline = tokio::time::Instant::now() + *this.stall_after;
                    match this.stall.as_mut() {
                        Some(stall) => stall.as_mut().reset(deadline),
                        None => *this.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    *this.stall_armed = true;
                }
                if let Some(stall) = this.stall.as_mut()
                    && stall.as_mut().poll(cx).is_ready()
                {
                    stats.stalled.store(true, Ordering::Relaxed);
                    stats.waiting.store(false, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled))));
                }
                Poll::Pending
            }
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
