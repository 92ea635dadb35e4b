//! See `bodies/waf_inspect.rs`: the body lives there so that a stable test replays it too.
#![no_main]

#[path = "../bodies/waf_inspect.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
