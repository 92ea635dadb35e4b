//! The exchange's building blocks: bounded body reads and the one error-to-problem mapping.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use super::*;

fn later() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// Frames without a declared length (so only counting can stop them); `None` never ends.
struct Chunks(Option<Vec<Bytes>>);

fn chunked(chunks: &[&'static [u8]]) -> Chunks {
    Chunks(Some(chunks.iter().rev().map(|c| Bytes::from_static(c)).collect()))
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match &mut self.0 {
            Some(chunks) => std::task::Poll::Ready(chunks.pop().map(|b| Ok(http_body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test]
async fn bodies_are_read_whole_within_the_limit() {
    let body = read_bounded(chunked(&[b"ab", b"cd", b"e"]), 5, later(), None).await;
    assert_eq!(body.ok(), Some(Bytes::from_static(b"abcde")));
    let stats = BodyStats::default();
    let over = read_bounded(chunked(&[b"ab", b"cd", b"ef"]), 5, later(), Some(&stats)).await;
    assert!(matches!(over, Err(ReadError::TooLarge)));
    assert!(stats.exceeded.load(std::sync::atomic::Ordering::Relaxed));
    let declared = read_bounded(Full::new(Bytes::from_static(b"too long")), 3, later(), None).await;
    assert!(matches!(declared, Err(ReadError::TooLarge)), "refused by its declared length");
}

#[tokio::test]
async fn a_body_that_does_not_end_in_time_is_a_timeout() {
    let pending = Chunks(None);
    let soon = Instant::now() + Duration::from_millis(20);
    assert!(matches!(read_bounded(pending, 10, soon, None).await, Err(ReadError::Timeout)));
}

/// Frames that each come one poll late (the body wakes its reader), then either the end or,
/// with `stall`, nothing ever again.
struct Late {
    chunks: Vec<Bytes>,
    ready: bool,
    stall: bool,
}

impl Body for Late {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.chunks.is_empty() && self.stall {
            return std::task::Poll::Pending;
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.ready = false;
        std::task::Poll::Ready(self.chunks.pop().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn frames_that_come_late_are_read_and_a_body_that_stops_after_some_is_a_timeout() {
    let late = |stall| Late { chunks: vec![Bytes::from_static(b"cd"), Bytes::from_static(b"ab")], ready: false, stall };
    assert_eq!(read_bounded(late(false), 10, later(), None).await.ok(), Some(Bytes::from_static(b"abcd")));
    let one = Late { chunks: vec![Bytes::from_static(b"whole")], ready: false, stall: false };
    assert_eq!(read_bounded(one, 10, later(), None).await.ok(), Some(Bytes::from_static(b"whole")));
    let soon = Instant::now() + Duration::from_millis(20);
    let stats = BodyStats::default();
    assert!(matches!(read_bounded(late(true), 10, soon, Some(&stats)).await, Err(ReadError::Timeout)));
    assert_eq!(stats.bytes.load(std::sync::atomic::Ordering::Relaxed), 4, "both frames were counted");
}

#[test]
fn each_error_has_its_spec_code_and_answers_never_leak_backend_details() {
    let map = MapError { pointer: "/Contact/Id".into(), message: "expected an integer (xs:int)".into() };
    let problem = SoapError::Map(map).into_problem();
    assert_eq!((problem.code, problem.status().as_u16()), (ErrorCode::InvalidRequest, 400));
    assert!(problem.detail.contains("/Contact/Id"), "{}", problem.detail);
    let not_soap = SoapError::NotSoap(ResponseError::NotSoap("<html> from nginx 1.2".into())).into_problem();
    assert_eq!((not_soap.code, not_soap.status().as_u16()), (ErrorCode::UpstreamError, 502));
    assert!(!not_soap.detail.contains("nginx"), "{}", not_soap.detail);
    assert_eq!(SoapError::AnswerTimeout.into_problem().code, ErrorCode::UpstreamTimeout);
    assert_eq!(SoapError::BodyTooLarge.into_problem().status().as_u16(), 413);
    let long = SoapError::Map(MapError { pointer: "/x".into(), message: "y".repeat(10_000) }).into_problem();
    assert!(long.detail.chars().count() <= MAX_DETAIL_CHARS + 1);
}
