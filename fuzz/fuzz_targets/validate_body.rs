//! See `bodies/validate_body.rs`: the body lives there so that a stable test replays it too.
#![no_main]

#[path = "../bodies/validate_body.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
