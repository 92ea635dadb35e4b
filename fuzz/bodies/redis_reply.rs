//! The body of the `redis_reply` fuzz target, shared with the stable test that replays it
//! (`crates/portcullis-state/tests/fuzz_redis_reply.rs`), so CI runs it without nightly.
//!
//! Any bytes as what a Redis server (or anything answering on its port) sends the limiter's
//! pipelined connection: replies are parsed one after another as its read loop does. Never a
//! panic or an unbounded allocation; each reply uses at least one byte and no more than it
//! was given; every prefix of a complete reply is "need more", so a reply split across reads
//! is neither misread nor taken for a broken connection.

/// Replies read before the first error or the end.
pub(crate) fn run(data: &[u8]) -> usize {
    portcullis_state::fuzz_check_reply_parser(data)
}
