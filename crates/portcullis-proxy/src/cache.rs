//! The response cache's store: in memory (moka, bounded by bytes) per instance, or with
//! `state.redis` in Redis only, shared by every instance ([`redis_store`]; no memory layer in
//! front, so a purge on one instance is seen by all at once). The rules — what is looked up
//! under which key, what is kept and for how long — are the pipeline's
//! (`portcullis_core::cache`); this is where entries live. Redis failing is a miss, never an
//! error.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use portcullis_core::cache::{CacheKey, Entry, MAX_ENTRY_BYTES};
use portcullis_core::snapshot::Snapshot;

pub use self::redis_store::PurgeError;
use self::redis_store::RedisStore;

pub mod redis_store;

/// Memory the cache may use: bodies, headers and keys of all entries.
pub const MAX_CACHE_BYTES: u64 = 64 * 1024 * 1024;

struct EntryTtl;

impl moka::Expiry<CacheKey, Arc<Entry>> for EntryTtl {
    fn expire_after_create(&self, _: &CacheKey, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        value: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The store, shared by the runtimes of successive configs.
#[derive(Clone)]
pub struct ResponseCache {
    store: Store,
}

type MemoryStore = moka::sync::Cache<CacheKey, Arc<Entry>>;

#[derive(Clone)]
enum Store {
    Memory(MemoryStore),
    Redis(Arc<RedisStore>),
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store {
            Store::Memory(m) => f.debug_struct("ResponseCache").field("entries", &m.entry_count()).finish(),
            Store::Redis(r) => f.debug_struct("ResponseCache").field("redis", r).finish(),
        }
    }
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self::new(MAX_CACHE_BYTES)
    }
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> Self {
        // The sync cache: entries are inserted from a body's `poll_frame`, where nothing awaits.
        let store = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &CacheKey, v: &Arc<Entry>| v.weight(k))
            .expire_after(EntryTtl)
            .build();
        Self { store: Store::Memory(store) }
    }

    /// In Redis with `state.redis` (connecting lazily: Redis may be down at start), trusting
    /// `redis_ca` (the PEM of `state.redis_ca`), else in memory. Must be called inside a
    /// Tokio runtime.
    ///
    /// # Errors
    /// A Redis URL that does not parse.
    pub fn for_snapshot(snapshot: &Snapshot, redis_ca: Option<&[u8]>) -> std::io::Result<Self> {
        let Some(url) = snapshot.state.redis.as_deref() else { return Ok(Self::default()) };
        let store = RedisStore::new(url, redis_ca.map(<[u8]>::to_vec))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("state.redis: {e}")))?;
        Ok(Self { store: Store::Redis(Arc::new(store)) })
    }

    /// Takes over `previous`'s memory entries, dropping those of routes this config no longer
    /// has with the same cache settings; or its Redis connection when the URL is the same
    /// (Redis entries of changed settings are never read again: the settings are in the key,
    /// and their TTL removes them).
    pub fn adopt(&mut self, previous: &Self, snapshot: &Snapshot) {
        match (&mut self.store, &previous.store) {
            (Store::Memory(mine), Store::Memory(old)) => {
                *mine = old.clone();
                remove_if(mine, |k| !snapshot.routes.iter().any(|r| r.name == k.route && r.cache == Some(k.spec)));
            }
            (Store::Redis(mine), Store::Redis(old)) if mine.url == old.url && mine.ca_pem == old.ca_pem => {
                *mine = old.clone();
            }
            _ => {}
        }
    }

    /// Redis calls of the shared store that failed since it connected; `None` in memory.
    pub fn redis_failures(&self) -> Option<u64> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.failures()),
        }
    }

    /// The entry stored under `key`, fresh or not (the pipeline judges freshness).
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        match &self.store {
            Store::Memory(m) => m.get(key),
            Store::Redis(r) => r.get(key).await.map(Arc::new),
        }
    }

    /// Stores an entry (in Redis: in the background, never delaying the response).
    pub fn put(&self, key: CacheKey, entry: Entry) {
        match &self.store {
            Store::Memory(m) => m.insert(key, Arc::new(entry)),
            Store::Redis(r) => r.put(&key, &entry),
        }
    }

    /// Drops the entries of `route` (all routes when `None`) whose path starts with
    /// `path_prefix` (in Redis: for every instance); answers how many live entries went.
    ///
    /// # Errors
    /// Redis failed or did not finish in time (entries may remain).
    pub async fn purge(&self, route: Option<&str>, path_prefix: Option<&str>) -> Result<u64, PurgeError> {
        match &self.store {
            Store::Memory(m) => Ok(remove_if(m, |k| {
                route.is_none_or(|r| &*k.route == r) && path_prefix.is_none_or(|p| k.path.starts_with(p))
            })),
            Store::Redis(r) => r.purge(route, path_prefix).await,
        }
    }
}

fn remove_if(store: &MemoryStore, doomed: impl Fn(&CacheKey) -> bool) -> u64 {
    let mut removed = 0;
    for (key, entry) in store.iter() {
        if doomed(&key) {
            store.invalidate(&*key);
            removed += u64::from(entry.fresh());
        }
    }
    removed
}

#[cfg(test)]
mod tests;
