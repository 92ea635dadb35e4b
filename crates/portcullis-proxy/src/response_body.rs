//! The response side of the proxy's bodies. The upstream's answer is an [`UpstreamBody`],
//! which hands its connection back to the pool once read to its end; it streams back through
//! [`ResponseBody`], which counts bytes out, feeds the cache's capture and writes the access
//! log line when the body ends or the client goes away.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use portcullis_core::cache::Capture;
use portcullis_telemetry::access_log::LogOnEnd;

use crate::cache::ResponseCache;
use crate::upstream::{H1Body, Upgraded};

/// The upstream's response body. An HTTP/1.1 body reads straight from its connection and,
/// read to its end, hands the connection back to the pool for the next request; dropped
/// half-way, it takes the connection down with it. HTTP/2 bodies are hyper's.
#[derive(Debug)]
pub struct UpstreamBody(Inner);

#[derive(Debug)]
enum Inner {
    H1(H1Body),
    H2(Incoming),
}

/// A response body's failure, whichever client read it.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl UpstreamBody {
    pub(crate) fn h1(body: H1Body) -> Self {
        Self(Inner::H1(body))
    }

    pub(crate) fn h2(body: Incoming) -> Self {
        Self(Inner::H2(body))
    }

    /// The upstream connection after a 101 (HTTP/1.1 only), for the tunnel.
    pub(crate) fn take_upgrade(&mut self) -> Option<Upgraded> {
        match &mut self.0 {
            Inner::H1(body) => body.take_upgrade(),
            Inner::H2(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().0 {
            Inner::H1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Inner::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::H1(body) => body.is_end_stream(),
            Inner::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::H1(body) => body.size_hint(),
            Inner::H2(body) => body.size_hint(),
        }
    }
}

/// What happens when the response body ends: the capture is stored, the log line written.
pub(crate) struct OnEnd {
    pub(crate) log: Option<LogOnEnd>,
    /// A copy for the response cache, stored when the body ends cleanly.
    pub(crate) capture: Option<(Box<Capture>, ResponseCache)>,
}

pin_project_lite::pin_project! {
    /// The response body sent downstream.
    pub struct ResponseBody {
        #[pin]
        source: Source,
        bytes_out: u64,
        on_end: OnEnd,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(log) = this.on_end.log.take() {
                log.finish(*this.bytes_out);
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = SourceProj]
    enum Source {
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: UpstreamBody },
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
    pub(crate) fn full(data: Bytes, log: Option<LogOnEnd>) -> Self {
        let data = (!data.is_empty()).then_some(data);
        Self { source: Source::Full { data }, bytes_out: 0, on_end: OnEnd { log, capture: None } }
    }

    pub(crate) fn upstream(body: UpstreamBody, log: Option<LogOnEnd>) -> Self {
        Self { source: Source::Upstream { body }, bytes_out: 0, on_end: OnEnd { log, capture: None } }
    }

    /// Copies the body into the response cache as it streams (an empty body is stored now).
    pub(crate) fn with_capture(mut self, capture: Option<Box<Capture>>, cache: &ResponseCache) -> Self {
        match capture {
            Some(capture) if Body::is_end_stream(&self) => {
                let (key, entry) = capture.finish();
                cache.put(key, entry);
            }
            capture => self.on_end.capture = capture.map(|c| (c, cache.clone())),
        }
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
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
        if let Some((capture, _)) = this.on_end.capture.as_mut() {
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
                if let (true, Some((capture, cache))) = (keep, this.on_end.capture.take()) {
                    let (key, entry) = capture.finish();
                    cache.put(key, entry);
                }
                this.on_end.capture = None;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.source.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Source::Upstream { body } => body.size_hint(),
        }
    }
}
