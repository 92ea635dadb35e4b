//! The Redis store of the response cache (`state.redis`), shared by every instance.
//!
//! Key: `portcullis:cache:{len(route)}:{route}:{hash}:{path}` → one encoded [`Entry`], always
//! with `PX` = its TTL. `hash` is 32 hex digits of the SHA-256 of the whole [`CacheKey`]
//! (route, cache settings, scheme, host, path, query, consumer), so instances agree on it and an entry
//! of changed cache settings is never read. The route and path stay readable in the name so a
//! purge can find them with `SCAN MATCH` and `DEL` them: purges are rare, and deleting the keys
//! is exact for a path prefix and seen at once by every instance (generation counters would
//! add a read to every lookup and still not cover prefixes).
//!
//! Lookup is one pipelined `GET` + `PTTL` bounded by [`LOOKUP_TIMEOUT`]; `Age` comes from the
//! remaining TTL, Redis's clock, so host clock skew does not matter. A store is spawned and
//! never delays the response. Any failure or timeout is a miss and opens a small circuit:
//! Redis is skipped for [`BACKOFF`], then one call probes it. A store racing a purge may
//! write one entry back; it lives at most its TTL. Redis Cluster is not supported (SCAN reads
//! one node).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use portcullis_core::cache::{CacheKey, Entry, MAX_ENTRY_BYTES};

/// Prefix of every cache key.
pub const KEY_PREFIX: &str = "portcullis:cache:";
/// Bound on a lookup (connecting included): past it the request is a miss.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(100);
/// Bound on a background store.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on a whole purge (every `SCAN` and `DEL`).
pub const PURGE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failure, Redis is skipped this long; then one call probes it.
pub const BACKOFF: Duration = portcullis_state::DEFAULT_REDIS_BACKOFF;
/// Version byte of the encoding: another value is a miss.
const FORMAT: u8 = 1;
const HASH_HEX: usize = 32;
/// Room for the headers of an entry, on top of its body.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Why a purge could not finish.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not finish the purge within {0:?}")]
    Timeout(Duration),
}

pub struct RedisStore {
    pub(super) url: String,
    pub(super) ca_pem: Option<Vec<u8>>,
    conn: ConnectionManager,
    origin: Instant,
    /// Nanoseconds since `origin` until which Redis is skipped; 0 when closed.
    skip_until: AtomicU64,
    /// Calls that failed or timed out, since creation.
    failures: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Prepares the connection without connecting (the gateway starts while Redis is down).
    /// Must be called inside a Tokio runtime.
    pub fn new(url: &str, ca_pem: Option<Vec<u8>>) -> redis::RedisResult<Self> {
        let client = portcullis_state::client(url, ca_pem.as_deref())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(LOOKUP_TIMEOUT))
            .set_response_timeout(Some(STORE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(BACKOFF);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            url: url.to_owned(),
            ca_pem,
            conn,
            origin: Instant::now(),
            skip_until: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Calls that failed or timed out since creation (purges not included).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The live entry under `key`, `None` on a miss, a failure or a timeout.
    pub async fn get(&self, key: &CacheKey) -> Option<Entry> {
        let name = key_name(key);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&name).cmd("PTTL").arg(&name);
        let (value, pttl): (Option<Vec<u8>>, i64) =
            self.call(LOOKUP_TIMEOUT, async |conn| pipe.query_async(conn).await).await?;
        let left = Duration::from_millis(u64::try_from(pttl).ok().filter(|&ms| ms > 0)?);
        decode(Bytes::from(value?), left)
    }

    /// Stores `entry` in the background with its TTL; the caller never waits.
    pub fn put(self: &std::sync::Arc<Self>, key: &CacheKey, entry: &Entry) {
        let Some(value) = encode(entry) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let ttl_ms = u64::try_from(entry.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (store, name) = (self.clone(), key_name(key));
        runtime.spawn(async move {
            let set = redis::cmd("SET").arg(&name).arg(&value[..]).arg("PX").arg(ttl_ms).clone();
            let _: Option<()> = store.call(STORE_TIMEOUT, async |conn| set.query_async(conn).await).await;
        });
    }

    /// Deletes the entries of `route` (every route when `None`) whose path starts with
    /// `path_prefix`, on every instance at once; answers how many went. Not behind the
    /// circuit: an operator asking deserves a real attempt.
    pub async fn purge(&self, route: Option<&str>, path_prefix: Option<&str>) -> Result<u64, PurgeError> {
        let pattern = purge_pattern(route, path_prefix);
        let mut conn = self.conn.clone();
        let work = async {
            let (mut cursor, mut removed) = (0u64, 0u64);
            loop {
                let (next, names): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                let doomed: Vec<Vec<u8>> = names.into_iter().filter(|n| purged(n, route, path_prefix)).collect();
                if !doomed.is_empty() {
                    removed += redis::cmd("DEL").arg(&doomed).query_async::<u64>(&mut conn).await?;
                }
                if next == 0 {
                    return Ok(removed);
                }
                cursor = next;
            }
        };
        tokio::time::timeout(PURGE_TIMEOUT, work).await.map_err(|_| PurgeError::Timeout(PURGE_TIMEOUT))?
    }

    /// One bounded call behind the circuit; `None` when skipped, failed or late.
    async fn call<T>(
        &self,
        timeout: Duration,
        f: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let now = self.mono();
        if !self.circuit_allows(now) {
            return None;
        }
        let mut conn = self.conn.clone();
        let error = match tokio::time::timeout(timeout, f(&mut conn)).await {
            Ok(Ok(value)) => {
                self.skip_until.store(0, Ordering::Release);
                return Some(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        // At most once per backoff: the circuit keeps the others from trying meanwhile.
        tracing::warn!(%error, backoff = ?BACKOFF, "response cache: Redis unavailable, serving misses");
        self.skip_until.store(self.reopen_at(now), Ordering::Release);
        None
    }

    /// Closed: go. Open: skip until the backoff ends, then let exactly one caller probe.
    fn circuit_allows(&self, now: u64) -> bool {
        let until = self.skip_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        self.skip_until.compare_exchange(until, self.reopen_at(now), Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn mono(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn reopen_at(&self, now: u64) -> u64 {
        now.saturating_add(u64::try_from(BACKOFF.as_nanos()).unwrap_or(u64::MAX)).max(1)
    }
}

/// `portcullis:cache:{len(route)}:{route}:{hash}:{path}`.
pub fn key_name(key: &CacheKey) -> String {
    let mut material = Vec::with_capacity(256);
    let ttl_ms = u64::try_from(key.spec.ttl.as_millis()).unwrap_or(u64::MAX);
    material.extend_from_slice(&ttl_ms.to_be_bytes());
    material.push(u8::from(key.spec.shared));
    material.push(u8::from(key.https));
    let fields = [Some(&*key.route), key.host.as_deref(), Some(&key.path), Some(&key.query), key.consumer.as_deref()];
    for field in fields {
        // Length-prefixed, and absent apart from empty: no two keys share the material.
        match field {
            Some(s) => {
                material.push(1);
                material.extend_from_slice(&(s.len() as u64).to_be_bytes());
                material.extend_from_slice(s.as_bytes());
            }
            None => material.push(0),
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &material);
    let hash: String = digest.as_ref().iter().take(HASH_HEX / 2).map(|b| format!("{b:02x}")).collect();
    format!("{KEY_PREFIX}{}:{}:{hash}:{}", key.route.len(), key.route, key.path)
}

/// A `SCAN MATCH` pattern covering at least the keys a purge deletes ([`purged`] decides).
pub fn purge_pattern(route: Option<&str>, path_prefix: Option<&str>) -> String {
    let mut pattern = glob_escape(KEY_PREFIX);
    let Some(route) = route else {
        pattern.push('*');
        return pattern;
    };
    pattern.push_str(&format!("{}:{}:", route.len(), glob_escape(route)));
    pattern.push_str(&"?".repeat(HASH_HEX));
    pattern.push(':');
    pattern.push_str(&glob_escape(path_prefix.unwrap_or("")));
    pattern.push('*');
    pattern
}

/// Whether the key `name` belongs to `route` (any when `None`) under `path_prefix`.
pub fn purged(name: &[u8], route: Option<&str>, path_prefix: Option<&str>) -> bool {
    let Some((key_route, path)) = std::str::from_utf8(name).ok().and_then(split_name) else { return false };
    route.is_none_or(|r| r == key_route) && path_prefix.is_none_or(|p| path.starts_with(p))
}

/// The route and path of a key name made by [`key_name`].
fn split_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(KEY_PREFIX)?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let route = rest.get(..len)?;
    let rest = rest.get(len..)?.strip_prefix(':')?;
    let path = rest.get(HASH_HEX..)?.strip_prefix(':')?;
    Some((route, path))
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `[FORMAT][stored_at unix ms: u64][ttl ms: u64][headers: u16]{[name: u16 len][value: u32 len]}[body]`,
/// big-endian; `None` when too large to store.
pub fn encode(entry: &Entry) -> Option<Bytes> {
    let headers: usize = entry.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 6).sum();
    if entry.body.len() > MAX_ENTRY_BYTES || headers > MAX_HEADER_BYTES {
        return None;
    }
    let stored_at = SystemTime::now().checked_sub(entry.stored.elapsed()).unwrap_or_else(SystemTime::now);
    let stored_ms = stored_at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let mut out = BytesMut::with_capacity(1 + 8 + 8 + 2 + headers + entry.body.len());
    out.put_u8(FORMAT);
    out.put_u64(stored_ms);
    out.put_u64(u64::try_from(entry.ttl.as_millis()).unwrap_or(u64::MAX));
    out.put_u16(u16::try_from(entry.headers.len()).ok()?);
    for (name, value) in &entry.headers {
        out.put_u16(u16::try_from(name.as_str().len()).ok()?);
        out.put_slice(name.as_str().as_bytes());
        out.put_u32(u32::try_from(value.len()).ok()?);
        out.put_slice(value.as_bytes());
    }
    out.put_slice(&entry.body);
    Some(out.freeze())
}

/// The entry in `value`, `left` before Redis expires it; `None` for anything malformed.
pub fn decode(mut value: Bytes, left: Duration) -> Option<Entry> {
    if take(&mut value, 1)?.first() != Some(&FORMAT) {
        return None;
    }
    let _stored_ms = take(&mut value, 8)?.get_u64();
    let ttl = Duration::from_millis(take(&mut value, 8)?.get_u64());
    let count = take(&mut value, 2)?.get_u16();
    let mut headers = HeaderMap::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(take(&mut value, 2)?.get_u16());
        let name = HeaderName::from_bytes(&take(&mut value, len)?).ok()?;
        let len = usize::try_from(take(&mut value, 4)?.get_u32()).ok()?;
        let v = HeaderValue::from_maybe_shared(take(&mut value, len)?).ok()?;
        headers.append(name, v);
    }
    // Age from Redis's own clock: the TTL it was stored with minus what it has left.
    let age = ttl.saturating_sub(left);
    let stored = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    Some(Entry { headers, body: value, stored, ttl })
}

/// The next `n` bytes, or `None` when fewer are left (never panics, unlike `Buf::get_*`).
fn take(buf: &mut Bytes, n: usize) -> Option<Bytes> {
    (buf.remaining() >= n).then(|| buf.split_to(n))
}
