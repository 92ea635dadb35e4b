//! The first bytes of a request body, read for the WAF before anything is forwarded, and the
//! body that carries them on: at most `inspect_body_bytes` (plus the rest of the frame that
//! crossed it) are held; what follows streams on unread.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;

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
pub async fn read_head<B>(body: &mut B, want: usize, limit: u64, idle: Duration) -> Result<Head, Problem>
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.size_hint().lower() > limit {
        return Err(Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed"));
    }
    let mut buf = BytesMut::new();
    let mut complete = body.is_end_stream();
    while !complete && buf.len() < want {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(Problem::new(ErrorCode::RequestTimeout, "the request body stopped arriving")),
            Ok(None) => {
                complete = true;
                break;
            }
            Ok(Some(Err(_))) => return Err(Problem::new(ErrorCode::BadRequest, "the request body could not be read")),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed"));
            }
            buf.extend_from_slice(&data);
        }
        complete = complete || body.is_end_stream();
    }
    Ok(Head { bytes: buf.freeze(), complete })
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
    async fn past_the_body_limit_is_413() {
        let mut body = chunks(&["0123456789", "0123456789"]);
        let e = read_head(&mut body, 1024, 15, IDLE).await.expect_err("over the limit");
        assert_eq!(e.code, ErrorCode::BodyTooLarge);
    }
}
