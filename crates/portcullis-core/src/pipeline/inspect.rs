//! The first bytes of a request body, read for the WAF before anything is forwarded, and the
//! body that carries them on: at most `inspect_body_bytes` (plus the rest of the frame that
//! crossed it) are held; what follows streams on unread.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::time::error::Elapsed;

use crate::problem::{ErrorCode, Problem};

/// The body's first bytes.
#[derive(Debug, Default)]
pub struct Head {
    pub bytes: Bytes,
    /// The body ended within them.
    pub complete: bool,
}

/// Reads until `want` bytes are in or the body ends. A body over `limit` is 413, a client that
/// pauses longer than `idle` is 408, a broken body 400 — as when it streams upstream.
///
/// The common body arrives in one frame (all of it, or at least `want` bytes): that frame's
/// bytes are kept as they are, not copied, and a frame already there is taken without arming
/// the idle timer. Only a second data frame starts a buffer joining them.
pub async fn read_head<B>(body: &mut B, want: usize, limit: u64, idle: Duration) -> Result<Head, Problem>
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.size_hint().lower() > limit {
        return Err(Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed"));
    }
    // The data so far: the first frame's bytes, or (after a second frame) `joined`.
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    let mut complete = body.is_end_stream();
    while !complete && len < want {
        let frame = match next_frame(body, idle).await {
            Err(_) => return Err(Problem::new(ErrorCode::RequestTimeout, "the request body stopped arriving")),
            Ok(None) => {
                complete = true;
                break;
            }
            Ok(Some(Err(_))) => return Err(Problem::new(ErrorCode::BadRequest, "the request body could not be read")),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if (len as u64).saturating_add(data.len() as u64) > limit {
                return Err(Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed"));
            }
            len += data.len();
            match &mut joined {
                Some(buf) => buf.extend_from_slice(&data),
                None if first.is_empty() => first = data,
                None => {
                    let mut buf = BytesMut::with_capacity(len);
                    buf.extend_from_slice(&first);
                    buf.extend_from_slice(&data);
                    joined = Some(buf);
                }
            }
        }
        complete = complete || body.is_end_stream();
    }
    let bytes = joined.map_or(first, BytesMut::freeze);
    Ok(Head { bytes, complete })
}

/// The body's next frame, within `idle`; one that is there already without a timer.
async fn next_frame<B>(body: &mut B, idle: Duration) -> Result<Option<Result<Frame<Bytes>, B::Error>>, Elapsed>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut frame = body.frame();
    let ready = std::future::poll_fn(|cx| match Pin::new(&mut frame).poll(cx) {
        Poll::Ready(frame) => Poll::Ready(Some(frame)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    match ready {
        Some(frame) => Ok(frame),
        None => tokio::time::timeout(idle, frame).await,
    }
}

/// A body whose first bytes were read already: those, then the rest.
#[derive(Debug)]
pub struct Prefixed<B> {
    head: Option<Bytes>,
    rest: B,
}

impl<B> Prefixed<B> {
    pub fn new(head: Bytes, rest: B) -> Self {
        Self { head: (!head.is_empty()).then_some(head), rest }
    }

    /// The bytes read already (if any), and the rest of the body.
    pub fn into_parts(self) -> (Option<Bytes>, B) {
        (self.head, self.rest)
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(head));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(head));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use super::*;

    /// A body delivered in the given chunks (as chunked transfer encoding would).
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(parts.iter().map(|p| Bytes::from_static(p.as_bytes())).collect())
    }

    const IDLE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn chunks_are_joined_and_the_rest_follows_the_head() {
        let mut body = chunks(&["<scr", "ipt>", "alert(1)", "</script>", "tail"]);
        let head = read_head(&mut body, 10, 1 << 20, IDLE).await.expect("read");
        assert_eq!(&head.bytes[..], b"<script>alert(1)");
        assert!(!head.complete);
        let all = Prefixed::new(head.bytes, body).collect().await.expect("collect").to_bytes();
        assert_eq!(&all[..], b"<script>alert(1)</script>tail");
    }

    #[tokio::test]
    async fn a_short_body_is_read_whole() {
        let mut body = chunks(&["a=1", "&b=2"]);
        let head = read_head(&mut body, 1024, 1 << 20, IDLE).await.expect("read");
        assert!(head.complete);
        assert_eq!(&head.bytes[..], b"a=1&b=2");
    }

    #[tokio::test]
    async fn a_body_in_one_frame_is_kept_as_received() {
        let whole = Bytes::from_static(b"{\"a\": 1}");
        let mut body = Chunks(VecDeque::from([whole.clone()]));
        let head = read_head(&mut body, 1024, 1 << 20, IDLE).await.expect("read");
        assert!(head.complete);
        assert_eq!(head.bytes, whole);
        assert_eq!(head.bytes.as_ptr(), whole.as_ptr(), "not copied");
        // An empty first frame, then the data.
        let mut body = chunks(&["", "abc"]);
        let head = read_head(&mut body, 1024, 1 << 20, IDLE).await.expect("read");
        assert_eq!(&head.bytes[..], b"abc");
        assert!(head.complete);
    }

    /// Chunks, each arriving only on the second poll (the first is `Pending`, waking at once).
    struct Slow {
        chunks: Chunks,
        ready: bool,
    }

    impl Body for Slow {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            let this = self.get_mut();
            this.ready = !this.ready;
            if this.ready {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Pin::new(&mut this.chunks).poll_frame(cx)
        }

        fn is_end_stream(&self) -> bool {
            self.chunks.is_end_stream()
        }
    }

    #[tokio::test]
    async fn frames_not_there_yet_are_awaited() {
        let mut body = Slow { chunks: chunks(&["a=1", "&b=", "2"]), ready: false };
        let head = read_head(&mut body, 1024, 1 << 20, IDLE).await.expect("read");
        assert!(head.complete);
        assert_eq!(&head.bytes[..], b"a=1&b=2");
    }

    /// A body that never sends anything.
    struct Stalled;

    impl Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_is_408() {
        let e = read_head(&mut Stalled, 1024, 1 << 20, Duration::from_millis(20)).await.expect_err("stalled");
        assert_eq!(e.code, ErrorCode::RequestTimeout);
    }

    #[tokio::test]
    async fn past_the_body_limit_is_413() {
        let mut body = chunks(&["0123456789", "0123456789"]);
        let e = read_head(&mut body, 1024, 15, IDLE).await.expect_err("over the limit");
        assert_eq!(e.code, ErrorCode::BodyTooLarge);
    }
}
