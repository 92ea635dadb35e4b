//! No input may panic the loader: bad config is a diagnostic.

use std::path::Path;

use super::{FULL, FakeEnv, load_in};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Bytes that mean something to YAML or to the reference syntax.
const SIGNIFICANT: &[u8] = b":-?[]{},&*!|>'\"%@`#\n\t ${}~<0";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes.truncate(at),
            1 => {
                bytes.remove(at.min(bytes.len().saturating_sub(1)));
            }
            2 => bytes.insert(at, SIGNIFICANT[rng.below(SIGNIFICANT.len())]),
            3 => bytes.insert(at, u8::try_from(rng.below(256)).unwrap_or(0)),
            4 => {
                // Duplicate a slice: repeated keys, deeper nesting, aliases used twice.
                let end = (at + rng.below(64)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = SIGNIFICANT[rng.below(SIGNIFICANT.len())];
                }
            }
        }
        if bytes.is_empty() {
            break;
        }
    }
    bytes
}

#[test]
fn mutated_configs_never_panic() {
    let env = FakeEnv::with(&[("PORTCULLIS_ADMIN_TOKEN", "t")]);
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let stages = [None, Some("dev"), Some("prod")];
    for round in 0..400 {
        let bytes = mutate(&mut rng, FULL.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        let stage = stages[round % stages.len()];
        let outcome = std::panic::catch_unwind(|| {
            let _ = load_in(&text, Path::new("/nonexistent"), stage, &env);
        });
        assert!(outcome.is_ok(), "round {round} panicked on:\n{text}");
    }
}

#[test]
fn hostile_yaml_is_refused_not_crashed_on() {
    let deep = format!("version: 1\nwaf: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let laughs = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    for text in [deep.as_str(), laughs, "version: 1\n? [a, b]\n: c\n", "*x\n", "!!binary aGk=\n"] {
        let result = load_in(text, Path::new("/"), None, &FakeEnv::default());
        assert!(result.is_err(), "{text}");
    }
    // A byte-order mark is not a mistake.
    assert!(load_in("\u{feff}version: 1\n", Path::new("/"), None, &FakeEnv::default()).is_ok());
}
