//! The `h1_request` fuzz target's body (`fuzz/bodies/h1_request.rs`) on stable, in CI: its
//! seeds (`fuzz/seeds/h1_request/`), then bounded proptest cases of random bytes, of streams
//! built from HTTP/1.1's pieces, and of random edits to the seeds. No coverage guidance, so
//! this finds far less than `cargo fuzz run h1_request`; what it does catch is a panic in the
//! codec, or a head or body that parses differently when split across reads.

#[path = "../../../fuzz/bodies/h1_request.rs"]
mod body;

use std::path::PathBuf;

use portcullis_proxy::h1::replay::{BodyOutcome, Event};
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/h1_request");
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "h1_request has seeds");
    seeds.into_iter().map(|(_, b)| b).collect()
}

#[test]
fn the_seeds_run_and_reach_every_outcome() {
    let events: Vec<Event> = seeds().iter().flat_map(|s| body::run(s)).collect();
    let requests = || events.iter().filter_map(|e| if let Event::Request(r) = e { Some(r) } else { None });
    assert!(events.iter().any(|e| matches!(e, Event::Refused(_))), "{events:?}");
    assert!(requests().any(|r| r.flaw.is_some()), "{events:?}");
    assert!(requests().any(|r| matches!(&r.body, BodyOutcome::Complete { trailers: Some(_), .. })), "{events:?}");
    let with_body = requests().filter(|r| matches!(&r.body, BodyOutcome::Complete { data, .. } if !data.is_empty()));
    assert!(with_body.count() >= 2, "{events:?}");
}

/// The pieces HTTP/1.1 streams are made of, hostile ones included.
const PIECES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"POST /a HTTP/1.1\r\n",
    b"GET /a HTTP/1.0\r\n",
    b"Host: t\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: +3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\n",
    b"X: a\r\n b\r\n",
    b"X: a\n",
    b"\r\n",
    b"abc",
    b"3\r\nabc\r\n",
    b"3;x=y\r\nabc\r\n",
    b"0\r\n\r\n",
    b"0\r\nX-T: 1\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"#",
    b"\0",
];

fn pieces() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|parts| parts.concat())
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
    fn random_bytes_never_panic_nor_depend_on_reads(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = body::run(&data);
    }

    #[test]
    fn http_pieces_never_panic_nor_depend_on_reads(data in pieces()) {
        let _ = body::run(&data);
    }

    #[test]
    fn edited_seeds_never_panic_nor_depend_on_reads(data in edited_seed()) {
        let _ = body::run(&data);
    }
}
