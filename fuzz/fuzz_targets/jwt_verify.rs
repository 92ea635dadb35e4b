//! See `bodies/jwt_verify.rs`: the body lives there so that a stable test replays it too.
#![no_main]

#[path = "../bodies/jwt_verify.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
