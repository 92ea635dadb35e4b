//! The `redis_reply` fuzz target's body (`fuzz/bodies/redis_reply.rs`) on stable, in CI: its
//! seeds (`fuzz/seeds/redis_reply/`), then bounded proptest cases of random RESP-ish bytes and
//! of random edits to the seeds. No coverage guidance, so this finds far less than
//! `cargo fuzz run redis_reply`; it catches a panic or a broken parser contract near the
//! seeds on every commit.

#[path = "../../../fuzz/bodies/redis_reply.rs"]
mod body;

use std::path::PathBuf;

use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/redis_reply");
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "redis_reply has seeds");
    seeds.into_iter().map(|(_, b)| b).collect()
}

#[test]
fn the_seeds_parse_as_the_replies_they_hold() {
    let seeds = seeds();
    let replies: Vec<usize> = seeds.iter().map(|s| body::run(s)).collect();
    // bad-bulk, gcra-admit, mixed, noscript, quota-big (sorted by file name).
    assert_eq!(replies, vec![0, 1, 5, 1, 1]);
}

/// Bytes that matter to RESP: type markers, signs, digits and line ends.
const INTERESTING: &[u8] = b"+-:$*\r\n0123456789-1OKERR \0\xff";

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_resp_bytes_never_break_the_parser(data in prop::collection::vec(prop::sample::select(INTERESTING), 0..200)) {
        let _ = body::run(&data);
    }

    #[test]
    fn edited_seeds_never_break_the_parser(
        i in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..6),
    ) {
        let seeds = seeds();
        let mut data = seeds[i.index(seeds.len())].clone();
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
        let _ = body::run(&data);
    }
}
