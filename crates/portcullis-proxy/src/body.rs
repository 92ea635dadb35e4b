//! The request side of the proxy's bodies. The client's body arrives as a [`DownstreamBody`]
//! (read to its end in the background when an HTTP/2 exchange answered without reading it),
//! and streams upstream through [`RequestBody`], which counts bytes, stops at the body limit
//! (chunked bodies included) and gives up on a client that stops sending mid-body. The
//! response side is the `response_body` module.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use portcullis_core::record::BodyStats;

/// How long an HTTP/2 request body the gateway answered without reading is still read.
const UNREAD_BODY_WAIT: Duration = Duration::from_secs(5);

/// The client's request body as the listener delivers it: hyper's (HTTP/2, and HTTP/1.1 on
/// hyper's server) or the HTTP/1.1 driver's ([`crate::h1::conn`]), which reads it from the
/// socket as it is polled. An HTTP/2 body the exchange did not read (an early refusal, a mock,
/// a cache hit) is read to its end in the background, up to the body limit and
/// [`UNREAD_BODY_WAIT`], instead of being reset at once: RFC 9113 §8.1 allows
/// RST_STREAM(NO_ERROR) after a complete answer, but a client still uploading (curl 7.88) takes
/// that reset as a failed transfer and never shows the answer. Past the bounds, h2 resets the
/// stream with NO_ERROR. (An HTTP/1.1 body left unread ends its connection unless its end
/// had already arrived.)
#[derive(Debug)]
pub struct DownstreamBody {
    inner: Inner,
    /// HTTP/2: how much of an unread body is drained on drop.
    drain_limit: Option<u64>,
}

#[derive(Debug)]
enum Inner {
    Hyper(Incoming),
    H1(crate::h1::conn::RequestBody),
    None,
}

/// Why the client's body stopped (hyper's error or the HTTP/1.1 driver's).
pub type DownstreamError = Box<dyn std::error::Error + Send + Sync>;

impl DownstreamBody {
    pub fn new(inner: Incoming, version: http::Version, limit: u64) -> Self {
        Self { inner: Inner::Hyper(inner), drain_limit: (version == http::Version::HTTP_2).then_some(limit) }
    }

    /// A request without a body.
    pub fn empty() -> Self {
        Self { inner: Inner::None, drain_limit: None }
    }

    pub(crate) fn h1(body: crate::h1::conn::RequestBody) -> Self {
        Self { inner: Inner::H1(body), drain_limit: None }
    }
}

impl Body for DownstreamBody {
    type Data = Bytes;
    type Error = DownstreamError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, DownstreamError>>> {
        match &mut self.get_mut().inner {
            Inner::Hyper(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            Inner::H1(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            Inner::None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Hyper(inner) => inner.is_end_stream(),
            Inner::H1(inner) => inner.is_end_stream(),
            Inner::None => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Hyper(inner) => inner.size_hint(),
            Inner::H1(inner) => inner.size_hint(),
            Inner::None => SizeHint::with_exact(0),
        }
    }
}

impl Drop for DownstreamBody {
    fn drop(&mut self) {
        let Some(limit) = self.drain_limit else { return };
        let Inner::Hyper(mut body) = std::mem::replace(&mut self.inner, Inner::None) else { return };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let drain = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                    seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len() as u64));
                    if seen > limit {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(UNREAD_BODY_WAIT, drain).await;
        });
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
        inner: Option<DownstreamBody>,
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
    pub fn limited(inner: DownstreamBody, limit: u64, stall_after: Duration, stats: Arc<BodyStats>) -> Self {
        Self { inner: Some(inner), limit, stats: Some(stats), full: None, stall_after, stall: None, stall_armed: false }
    }

    /// The first bytes of the client's body, read already (by the WAF): sent first, and
    /// counted as part of it.
    #[must_use]
    pub fn with_head(mut self, head: Bytes) -> Self {
        if let Some(stats) = &self.stats {
            stats.bytes.fetch_add(head.len() as u64, Ordering::Relaxed);
            if self.inner.as_ref().is_none_or(Body::is_end_stream) {
                stats.mark_ended();
            }
        }
        self.full = (!head.is_empty()).then_some(head);
        self
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
        // The client's trailers end the body here: they would reach the backend unchecked by
        // every rule the gateway applies to the request's head (its identity fields stripped,
        // `Authorization` read, the WAF's inspection), so none is forwarded, to any upstream.
        let polled = match inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => Poll::Ready(None),
            polled => polled,
        };
        let Some(stats) = this.stats.as_ref() else { return polled };
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
                Poll::Ready(Some(Err(e)))
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
        let full = self.full.as_ref().map_or(0, |d| d.len() as u64);
        let inner = self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(full));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(full));
        }
        hint
    }
}
