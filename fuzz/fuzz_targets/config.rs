//! Any text through the config loader and compile: diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = std::path::Path::new("/nonexistent");
    if let Ok(loaded) = portcullis_config::load_str(text, "fuzz.yaml", dir, None) {
        let _ = portcullis_core::compile(&loaded);
    }
    let _ = portcullis_config::load_str(text, "fuzz.yaml", dir, Some("prod"));
});
