//! API keys: generated from the OS CSPRNG with a recognisable prefix, shown once, stored only
//! as `sha256:<hex>`. A presented key is hashed and the digest looked up, so the comparison
//! never touches the key material itself (no timing leak on it).

use std::sync::Arc;

use arc_swap::ArcSwap;
use foldhash::HashMap;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// Every generated key starts with this, so a leaked key is recognisable in a scanner.
pub const KEY_PREFIX: &str = "pcl_";
/// Random characters after [`KEY_PREFIX`]: 43 base62 characters carry over 256 bits.
const RANDOM_CHARS: usize = 43;
/// How much of a key is displayed to identify it (the prefix plus eight characters).
pub const DISPLAYED_CHARS: usize = KEY_PREFIX.len() + 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The SHA-256 of a key: what is stored and what lookups compare.
pub type Digest = [u8; 32];

/// A newly generated key. `key` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    /// The displayed start of the key (`pcl_` and eight characters).
    pub prefix: String,
    pub digest: Digest,
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// Generates a key from the system CSPRNG.
pub fn generate() -> Result<NewKey, RandomError> {
    let rng = SystemRandom::new();
    let mut key = String::with_capacity(KEY_PREFIX.len() + RANDOM_CHARS);
    key.push_str(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while key.len() < KEY_PREFIX.len() + RANDOM_CHARS {
        rng.fill(&mut buf).map_err(|_| RandomError)?;
        // Rejection sampling: 248 = 4 × 62, so bytes below it map to base62 without bias.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if key.len() == KEY_PREFIX.len() + RANDOM_CHARS {
                break;
            }
            key.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    let prefix = key[..DISPLAYED_CHARS].to_owned();
    let digest = digest_of(key.as_bytes());
    Ok(NewKey { key, prefix, digest })
}

/// The SHA-256 digest of a presented key.
pub fn digest_of(key: &[u8]) -> Digest {
    let d = digest::digest(&digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The stored form printed by `portcullis hash-key`: `sha256:<64 lowercase hex digits>`.
pub fn stored_form(digest: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Parses a stored form (`sha256:` and 64 hex digits, either case).
pub fn parse_stored_form(text: &str) -> Option<Digest> {
    let hex = text.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// What the gateway knows about one usable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The database id (`None` for keys declared in the config file).
    pub id: Option<String>,
    pub consumer: Arc<str>,
    /// The consumer's usage plan as the database has it (`None`: no plan, or a key declared
    /// in the config file, whose consumer's plan is in the config).
    pub plan: Option<Arc<str>>,
    /// Seconds since the Unix epoch after which the key is refused; `None`: never.
    pub expires_at: Option<i64>,
}

impl KeyRecord {
    pub fn expired_at(&self, now_unix: i64) -> bool {
        self.expires_at.is_some_and(|t| now_unix >= t)
    }
}

/// The usable keys by digest. Revoked keys are simply absent. Readers load one snapshot per
/// lookup; the sync task replaces it whole.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: ArcSwap<HashMap<Digest, KeyRecord>>,
}

impl KeyIndex {
    pub fn new(keys: HashMap<Digest, KeyRecord>) -> Self {
        Self { keys: ArcSwap::from_pointee(keys) }
    }

    /// The record for a presented key, whether or not it has expired.
    pub fn lookup(&self, presented: &[u8]) -> Option<KeyRecord> {
        self.lookup_digest(&digest_of(presented))
    }

    pub fn lookup_digest(&self, digest: &Digest) -> Option<KeyRecord> {
        self.keys.load().get(digest).cloned()
    }

    pub fn replace(&self, keys: HashMap<Digest, KeyRecord>) {
        self.keys.store(Arc::new(keys));
    }

    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_distinct_and_hash_to_their_stored_form() {
        let a = generate().expect("rng");
        let b = generate().expect("rng");
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with(KEY_PREFIX));
        assert_eq!(a.key.len(), KEY_PREFIX.len() + RANDOM_CHARS);
        assert!(a.key[KEY_PREFIX.len()..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(a.key.starts_with(&a.prefix));
        assert_eq!(a.digest, digest_of(a.key.as_bytes()));
        let stored = stored_form(&a.digest);
        assert_eq!(parse_stored_form(&stored), Some(a.digest));
        assert_eq!(parse_stored_form(&stored.to_uppercase().replace("SHA256", "sha256")), Some(a.digest));
    }

    #[test]
    fn stored_form_matches_sha256_of_the_text() {
        // sha256("test"), the example in SPEC's consumers section starts with 9f86d0.
        assert_eq!(
            stored_form(&digest_of(b"test")),
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        for bad in ["", "sha256:", "sha256:zz", "md5:9f86", &format!("sha256:{}", "g".repeat(64))] {
            assert_eq!(parse_stored_form(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_index_finds_usable_keys_and_reports_expiry() {
        let key = generate().expect("rng");
        let record =
            KeyRecord { id: Some("k1".into()), consumer: Arc::from("acme"), expires_at: Some(100), plan: None };
        let mut map = HashMap::default();
        map.insert(key.digest, record.clone());
        let index = KeyIndex::new(map);
        assert_eq!(index.lookup(key.key.as_bytes()), Some(record.clone()));
        assert_eq!(index.lookup(b"pcl_wrong"), None);
        assert!(!record.expired_at(99));
        assert!(record.expired_at(100));
        index.replace(HashMap::default());
        assert_eq!(index.lookup(key.key.as_bytes()), None, "a revoked key disappears on the next snapshot");
    }
}
