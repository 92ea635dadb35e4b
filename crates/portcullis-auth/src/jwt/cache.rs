//! Tokens already verified, so that a client sending the same token on every request pays for
//! the signature check once.
//!
//! The map key is a 64-bit foldhash of the token under a per-cache random seed, and each entry
//! keeps the token to compare in full: a hit is only ever the very same token (a hash collision
//! is a miss, never someone else's claims). SHA-256 would avoid keeping tokens but took about
//! 0.85 µs of a 1.3 µs hit when this cache used it (benches/jwt.rs); the tokens kept are ones the IdP signed, for
//! their remaining lifetime, in memory bounded by [`CACHE_WEIGHT`]. An entry is used only while
//!
//! - the token has not expired (`exp` plus leeway is checked again on every hit, and moka drops
//!   the entry at that instant anyway), and
//! - the key set it was verified against is still the current one: a JWKS refresh that changes
//!   the keys bumps a generation number and every older entry becomes a miss. A key the IdP
//!   withdraws therefore stops accepting cached tokens at the next refresh, not at their `exp`.
//!   The price is one fresh signature check per live token after each key change.
//!
//! Claims checked against the clock other than `exp` (`nbf`) only become more true with time,
//! and the settings cannot change under a provider (a reload with new settings makes a new one).
//! Only successes are cached: a refused token is checked again each time.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;

use super::Verified;

/// The cache's bound, in bytes of tokens plus [`ENTRY_OVERHEAD`] each: about 10,000 typical
/// (1 KiB) tokens, 16 MiB at most, whatever their size.
pub(crate) const CACHE_WEIGHT: u64 = 16 * 1024 * 1024;
/// What an entry costs beside its token (claims map, `Arc`, moka's bookkeeping), roughly.
const ENTRY_OVERHEAD: u32 = 512;

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) token: Arc<str>,
    pub(crate) verified: Arc<Verified>,
    /// Unix seconds after which the entry is dead: `exp` plus leeway.
    pub(crate) valid_until: u64,
    /// The key set generation it was verified against.
    pub(crate) generation: u64,
}

pub(crate) struct VerifiedCache {
    inner: moka::sync::Cache<u64, Entry>,
    seed: foldhash::quality::RandomState,
}

impl VerifiedCache {
    pub(crate) fn new() -> Self {
        let inner = moka::sync::Cache::builder()
            .max_capacity(CACHE_WEIGHT)
            .weigher(|_, entry: &Entry| {
                u32::try_from(entry.token.len()).unwrap_or(u32::MAX).saturating_add(ENTRY_OVERHEAD)
            })
            .expire_after(UntilExp)
            .build();
        Self { inner, seed: foldhash::quality::RandomState::default() }
    }

    pub(crate) fn key(&self, token: &str) -> u64 {
        self.seed.hash_one(token)
    }

    /// The cached result for `token`, if it is still good at `now` for key set `generation`.
    pub(crate) fn get(&self, key: u64, token: &str, now: u64, generation: u64) -> Option<Arc<Verified>> {
        let entry = self.inner.get(&key)?;
        if *entry.token != *token {
            return None;
        }
        if entry.valid_until <= now || entry.generation != generation {
            self.inner.invalidate(&key);
            return None;
        }
        Some(entry.verified)
    }

    pub(crate) fn insert(&self, key: u64, entry: Entry) {
        self.inner.insert(key, entry);
    }
}

/// Expires each entry at its token's `exp` plus leeway, by the wall clock.
struct UntilExp;

impl Expiry<u64, Entry> for UntilExp {
    fn expire_after_create(&self, _key: &u64, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Some(Duration::from_secs(entry.valid_until.saturating_sub(now)))
    }
}
