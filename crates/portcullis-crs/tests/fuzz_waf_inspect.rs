//! The `waf_inspect` fuzz target's body (`fuzz/bodies/waf_inspect.rs`) on stable, in CI: its
//! seeds (`fuzz/seeds/waf_inspect/`), then bounded proptest cases of random bytes and of
//! random edits to the seeds. No coverage guidance, so this finds far less than
//! `cargo fuzz run waf_inspect`; what it does catch is a panic in the decodings, either
//! engine's inspection or their invariants on inputs near the seeds, on every commit.

#[path = "../../../fuzz/bodies/waf_inspect.rs"]
mod body;

use std::path::PathBuf;

use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/waf_inspect");
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "waf_inspect has seeds");
    seeds.into_iter().map(|(_, b)| b).collect()
}

#[test]
fn the_seeds_run_and_reach_both_engines() {
    let scores: Vec<body::Scores> = seeds().iter().map(|s| body::run(s).expect("a seed is a request")).collect();
    // The seeds are attacks: each engine refuses some, so the invariants are checked on
    // matches, not only on clean requests.
    assert!(scores.iter().filter(|s| s.builtin >= 5).count() >= 3, "{scores:?}");
    assert!(scores.iter().filter(|s| s.crs >= 5).count() >= 3, "{scores:?}");
}

/// Bytes that matter to the decodings and parsers: escapes, quotes, brackets, separators.
const INTERESTING: &[u8] = b"\0%+&=;:/\\.<>\"'`{}[]()#-*!|$\r\n u0123456789abcdefABCDEFxX\xc3\xa9\xef\xbc\x8e\xff";

fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(INTERESTING), 0..400)
}

/// One seed with up to eight edits (a byte set, inserted or removed at some position).
fn edited_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let n = seeds.len();
    (0..n, prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..8)).prop_map(
        move |(i, edits)| {
            let mut data = seeds[i].clone();
            for (at, kind, byte) in edits {
                let at = at.index(data.len() + 1);
                match kind {
                    0 if at < data.len() => data[at] = byte,
                    1 if at < data.len() => {
                        data.remove(at);
                    }
                    _ => data.insert(at, byte),
                }
            }
            data
        },
    )
}

proptest! {
    // Bounded: a debug build runs these in seconds.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = body::run(&data);
    }

    #[test]
    fn escapes_and_separators_never_panic(data in interesting_bytes()) {
        let _ = body::run(&data);
    }

    #[test]
    fn edited_seeds_never_panic(data in edited_seed()) {
        let _ = body::run(&data);
    }
}
