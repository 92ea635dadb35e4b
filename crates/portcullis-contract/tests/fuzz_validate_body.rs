//! The `validate_body` fuzz target's body (`fuzz/bodies/validate_body.rs`) on stable, in CI:
//! its seeds (`fuzz/seeds/validate_body/`), then bounded proptest cases of JSON-ish bytes and of
//! random edits to the seeds. No coverage guidance, so this finds far less than
//! `cargo fuzz run validate_body`; what it does catch is a panic in the body scan or the schema
//! walk, or a broken invariant (bounds, serde_json's verdict), on inputs near the seeds.

#[path = "../../../fuzz/bodies/validate_body.rs"]
mod body;

use std::path::PathBuf;

use proptest::prelude::*;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/validate_body");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "validate_body has seeds");
    seeds
}

#[test]
fn the_seeds_run_with_the_verdicts_they_were_written_for() {
    for (name, data) in seeds() {
        let outcome = body::run(&data);
        assert_eq!(outcome.schema, usize::from(data[0]) % 3, "{name}");
        let expected = match name.as_str() {
            "order" | "array" | "nested" => 0,
            "escapes" | "repeated" | "truncated" => 1,
            // The clash, and `Role` is not a property the schema allows.
            "case-clash" => 2,
            _ => continue,
        };
        assert_eq!(outcome.violations, expected, "{name}: {outcome:?}");
        assert_eq!(outcome.json, name != "truncated", "{name}: {outcome:?}");
    }
}

/// Bytes that matter to a JSON scanner: structure, escapes, digits, signs, exponents, UTF-8.
const JSONISH: &[u8] =
    b"{}[]:,\"\\/ \t\r\nu0123456789abcdefABCDEF-+.eEtrufalsnRrSK\xc3\xa9\xe2\x84\xaa\xc5\xbf\xff\x00";

proptest! {
    // Bounded: a debug build runs these in seconds.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = body::run(&data);
    }

    #[test]
    fn json_ish_bytes_keep_the_invariants(data in prop::collection::vec(prop::sample::select(JSONISH), 0..400)) {
        let _ = body::run(&data);
    }

    #[test]
    fn edited_seeds_keep_the_invariants(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(JSONISH)), 0..6),
    ) {
        let seeds = seeds();
        let mut data = seeds[pick.index(seeds.len())].1.clone();
        for (at, kind, byte) in edits {
            // The first byte picks the schema: edits go after it.
            let at = 1 + at.index(data.len());
            match kind {
                0 if at < data.len() => data[at] = byte,
                1 if at < data.len() => {
                    data.remove(at);
                }
                _ => data.insert(at.min(data.len()), byte),
            }
        }
        let _ = body::run(&data);
    }
}
