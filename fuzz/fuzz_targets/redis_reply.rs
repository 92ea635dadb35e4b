//! See `bodies/redis_reply.rs`: the body lives there so that a stable test replays it too.
#![no_main]

#[path = "../bodies/redis_reply.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
