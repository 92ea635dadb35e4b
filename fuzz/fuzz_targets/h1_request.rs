//! See `bodies/h1_request.rs`: the body lives there so that a stable test replays it too.
#![no_main]

#[path = "../bodies/h1_request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
