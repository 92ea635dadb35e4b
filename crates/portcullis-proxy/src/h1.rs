//! The HTTP/1.1 engine of the proxy path, on `httparse`: request heads parsed in place
//! ([`head`]), the `chunked` transfer coding ([`chunked`]), a whole connection's byte stream
//! run through both ([`replay`], what the differential test and the fuzz target drive), and
//! the connection driver ([`conn`]) — with the same framing decisions as hyper's server plus
//! the gateway's own refusals (see `RawHeadFlaw`).

pub mod chunked;
pub mod conn;
pub mod head;
pub mod replay;
pub mod trailers;

use bytes::{Buf as _, Bytes, BytesMut};

/// Pieces up to this size are copied out of a read buffer rather than sliced off it.
const COPY_MAX: usize = 8 * 1024;

/// The first `n` bytes of `buf`, taken off it. A small piece is copied so that `buf` stays
/// the sole owner of its memory: the buffer can then go back to its per-thread pool and serve
/// the next read without an allocation (a fresh buffer per request also meant fresh pages,
/// faulted in and zeroed by the kernel each time the allocator had returned them). A large
/// piece is sliced off without a copy.
pub(crate) fn take_bytes(buf: &mut BytesMut, n: usize) -> Bytes {
    if n <= COPY_MAX {
        let piece = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        piece
    } else {
        buf.split_to(n).freeze()
    }
}

/// Empties `buf` and makes its whole capacity usable again without allocating: `false` when
/// it cannot hold `capacity` bytes that way (its memory is still shared with pieces sliced off
/// it, or it is smaller), or when it grew past four times that (a large head or body went
/// through it: a pool keeps no such memory), and then it is not worth pooling.
pub(crate) fn reclaim(buf: &mut BytesMut, capacity: usize) -> bool {
    buf.clear();
    buf.capacity() <= 4 * capacity && buf.try_reclaim(capacity)
}

/// A future ready on its second poll: in between, the task is queued behind every task already
/// ready on its thread (`tokio::task::yield_now` would instead wait for the next poll of the
/// I/O driver: one more `epoll_wait` per batch). See `conn::send`.
pub(crate) fn step_back() -> StepBack {
    StepBack(false)
}

pub(crate) struct StepBack(bool);

impl std::future::Future for StepBack {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod differential;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod trailers_differential;

#[cfg(test)]
mod buffer_tests {
    use bytes::BytesMut;

    use super::{COPY_MAX, reclaim, take_bytes};

    #[test]
    fn a_small_piece_leaves_the_buffer_whole_for_its_pool() {
        let mut buf = BytesMut::with_capacity(8192);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest");
        let head = take_bytes(&mut buf, 27);
        assert_eq!(&head[..], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(&buf[..], b"rest");
        let rest = take_bytes(&mut buf, 4);
        assert_eq!(&rest[..], b"rest");
        // The pieces are still alive, and the buffer is its own again all the same.
        assert!(reclaim(&mut buf, 8192));
        assert!(buf.capacity() >= 8192 && buf.is_empty());
        drop((head, rest));
    }

    #[test]
    fn a_large_piece_is_shared_and_the_buffer_not_pooled_while_it_lives() {
        let n = COPY_MAX + 1;
        let mut buf = BytesMut::with_capacity(2 * n);
        buf.extend_from_slice(&vec![b'x'; n + 3]);
        let piece = take_bytes(&mut buf, n);
        assert_eq!(piece.len(), n);
        assert_eq!(&buf[..], b"xxx");
        assert!(!reclaim(&mut buf, 2 * n));
        drop(piece);
        assert!(reclaim(&mut buf, 2 * n));
    }

    #[test]
    fn a_buffer_that_grew_large_is_not_pooled() {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(b"x");
        assert!(!reclaim(&mut buf, 8 * 1024));
        assert!(reclaim(&mut buf, 16 * 1024));
    }
}
