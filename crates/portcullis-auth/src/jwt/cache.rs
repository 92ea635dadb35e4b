//! Tokens already verified, so that a client sending the same token on every request pays for
//! the signature check once.
//!
//! The key is the token's SHA-256: collision resistant, so no copy of the token is kept to
//! compare against, and an entry stores only the verified result. An entry is used only while
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

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use ring::digest;

use super::Verified;

/// How many verified tokens are kept per provider.
pub(crate) const CACHE_CAPACITY: u64 = 10_000;

pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) verified: Arc<Verified>,
    /// Unix seconds after which the entry is dead: `exp` plus leeway.
    pub(crate) valid_until: u64,
    /// The key set generation it was verified against.
    pub(crate) generation: u64,
}

pub(crate) struct VerifiedCache {
    inner: moka::sync::Cache<TokenHash, Entry>,
}

impl VerifiedCache {
    pub(crate) fn new() -> Self {
        let inner = moka::sync::Cache::builder().max_capacity(CACHE_CAPACITY).expire_after(UntilExp).build();
        Self { inner }
    }

    /// The cached result, if it is still good at `now` for key set `generation`.
    pub(crate) fn get(&self, hash: &TokenHash, now: u64, generation: u64) -> Option<Arc<Verified>> {
        let entry = self.inner.get(hash)?;
        if entry.valid_until <= now || entry.generation != generation {
            self.inner.invalidate(hash);
            return None;
        }
        Some(entry.verified)
    }

    pub(crate) fn insert(&self, hash: TokenHash, entry: Entry) {
        self.inner.insert(hash, entry);
    }
}

/// Expires each entry at its token's `exp` plus leeway, by the wall clock.
struct UntilExp;

impl Expiry<TokenHash, Entry> for UntilExp {
    fn expire_after_create(&self, _key: &TokenHash, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Some(Duration::from_secs(entry.valid_until.saturating_sub(now)))
    }
}
