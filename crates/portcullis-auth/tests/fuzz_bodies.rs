//! The `jwt_verify` and `policy` fuzz target bodies (`fuzz/bodies/`) on stable, in CI: their
//! seeds (`fuzz/seeds/<target>/`), then a few thousand deterministic mutations of it.
//! No coverage guidance, so this finds far less than `cargo fuzz run`; what it does catch is a
//! body (or the code under it) that panics on its own seeds or near them, on every commit.

#[path = "../../../fuzz/bodies/jwt_verify.rs"]
mod jwt_verify;
#[path = "../../../fuzz/bodies/policy.rs"]
mod policy;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Mutated inputs per target: well under a second each in a debug build.
const MUTATIONS: usize = 3000;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().expect("a file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "{target} has seeds");
    seeds
}

/// xorshift64: deterministic, so a failure here fails the same way on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).expect("below n, which is a usize")
    }
}

/// Bytes that tend to matter to JWS, JSON and CEL parsers.
const INTERESTING: &[u8] = b"\0.{}[]\"\\:,()=!&|?+-*/%<>' 0123456789eE_~\xff\xc3";

/// One to four byte-level edits of `seed`, or of a splice of it with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(32)).min(data.len());
                let chunk = data[at..end].to_vec();
                data.splice(at..at, chunk);
            }
            _ => {
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

/// Runs `body` on every seed and on [`MUTATIONS`] mutants; a panic fails the test with the input.
fn replay(target: &str, body: fn(&[u8])) {
    let seeds = seeds(target);
    let run = |name: &str, data: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| body(data))).is_err() {
            panic!("fuzz body `{target}` panicked on {name}: {:?}", String::from_utf8_lossy(data));
        }
    };
    for (name, data) in &seeds {
        run(name, data);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..MUTATIONS {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        run(&format!("mutation {i} of {name}"), &mutate(&mut rng, seed, other));
    }
}

#[test]
fn jwt_verify_body_never_panics_on_its_seeds_and_mutations() {
    replay("jwt_verify", jwt_verify::run);
}

#[test]
fn policy_body_never_panics_on_its_seeds_and_mutations() {
    replay("policy", policy::run);
}

/// Without this the target could be fuzzing nothing but the malformed-token path.
#[test]
fn jwt_verify_seeds_reach_a_verified_token() {
    let seeds = seeds("jwt_verify");
    let seed = |name: &str| {
        let (_, data) = seeds.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("seed {name}"));
        String::from_utf8(data.clone()).expect("a token seed is text")
    };
    for name in ["rs256-valid", "es256-valid", "rs256-no-kid"] {
        let verified =
            jwt_verify::FIXED.verify(&seed(name), jwt_verify::now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.subject.as_deref(), Some("alice"));
    }
    for name in ["rs256-bad-signature", "alg-none", "hs256"] {
        assert!(jwt_verify::FIXED.verify(&seed(name), jwt_verify::now()).is_err(), "{name} is refused");
    }
}

/// Likewise: the policy seeds compile and reach evaluation.
#[test]
fn policy_seeds_compile() {
    for (name, data) in seeds("policy") {
        let expr = String::from_utf8(data).expect("an expression seed is text");
        let compiled = portcullis_auth::policy::Policy::compile("seed", Vec::new(), Vec::new(), Some(&expr));
        assert!(compiled.is_ok(), "{name}: {:?}", compiled.err());
    }
}
