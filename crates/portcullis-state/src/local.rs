//! The in-process store: per limiter, N shards of `Mutex<HashMap<key, TAT>>`.
//!
//! Why shards of a mutex rather than a lock-free map: a decision is a read-modify-write of one
//! `u64` that takes tens of nanoseconds under the lock, so with 64 shards two cores almost
//! never meet on one lock, and a `parking_lot` mutex uncontended is one CAS to take and one to
//! release. A lock-free map would still need a CAS loop per key plus epoch-based reclamation
//! for expiry, for no gain at this size. Lookups borrow the key (`&str`), so a decision on a
//! known key allocates nothing; only a new key allocates its `Box<str>`.
//!
//! Memory is bounded two ways. A key whose TAT is in the past is at full burst, exactly like
//! an absent key, so it is dropped: a shard sweeps itself when a new key arrives and its
//! earliest possible expiry has passed, and [`Limiter::sweep`] sweeps all shards (the gateway
//! may call it every few seconds). And each limiter has a hard cap on keys: when a shard is
//! full of live keys, the new key evicts the sampled live key whose TAT is nearest (the one
//! that would have expired first, so forgetting it gives away the fewest tokens). Under a flood
//! of distinct keys this fails *open* for the evicted keys — each may get one burst again —
//! rather than denying new clients; [`Limiter::evictions`] counts it so it can be alerted on.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::gcra::{self, Decision, Limit, MultiDecision, Nanos, Source};
use crate::shared::LimiterArgs;

/// Default hard cap on keys per limiter (about 6–10 MiB at short keys).
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Default shard count: a power of two comfortably above the core count.
pub const DEFAULT_SHARDS: usize = 64;
/// A shard sweeps on insert at most this often (nanoseconds), whatever its expiries.
const MIN_SWEEP_INTERVAL: Nanos = 1_000_000_000;
/// How many entries a full shard looks at to choose the one to evict.
const EVICTION_SAMPLE: usize = 8;

/// Sizing of one limiter's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// Hard cap on keys held at once.
    pub max_keys: usize,
    /// Number of shards (rounded up to a power of two, at least 1).
    pub shards: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { max_keys: DEFAULT_MAX_KEYS, shards: DEFAULT_SHARDS }
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Nanos, RandomState>,
    /// No entry can have expired before this time, so a sweep before it frees nothing.
    next_sweep: Nanos,
    /// When this shard last swept, to keep sweeps of a shard full of live keys rare.
    last_sweep: Nanos,
}

/// One named rate limit (`per_ip`, `plan:gold`, …) and its in-process table.
///
/// The name is part of the Redis key, so two limiters with the same name share counters
/// across instances; give each config entry its own name.
pub struct Limiter {
    name: Box<str>,
    limit: Limit,
    redis: LimiterArgs,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    shard_cap: usize,
    evictions: AtomicU64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter with the default sizing.
    #[must_use]
    pub fn new(name: &str, limit: Limit) -> Self {
        Self::with_options(name, limit, LocalOptions::default())
    }

    /// A limiter with explicit sizing.
    #[must_use]
    pub fn with_options(name: &str, limit: Limit, options: LocalOptions) -> Self {
        let shards = options.shards.max(1).next_power_of_two();
        let shard_cap = options.max_keys.div_ceil(shards).max(1);
        Self {
            name: name.into(),
            limit,
            redis: LimiterArgs::new(name, &limit),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::default(),
            shard_cap,
            evictions: AtomicU64::new(0),
        }
    }

    /// The name given at creation.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limit enforced.
    #[must_use]
    pub fn limit(&self) -> &Limit {
        &self.limit
    }

    /// Its key and arguments for the Redis script, encoded once.
    pub(crate) fn redis(&self) -> &LimiterArgs {
        &self.redis
    }

    /// Checks and, when admitted, consumes one token for `key`.
    pub fn check(&self, key: &str, now: Nanos) -> Decision {
        let mut shard = self.shard(key).lock();
        // A known key is one map lookup; only a new key goes through `store`.
        if let Some(tat) = shard.map.get_mut(key) {
            let (decision, new_tat) = gcra::evaluate(*tat, now, &self.limit);
            if decision.allowed {
                *tat = new_tat;
            }
            return decision;
        }
        let (decision, new_tat) = gcra::evaluate(0, now, &self.limit);
        if decision.allowed {
            self.store(&mut shard, key, new_tat, now);
        }
        decision
    }

    /// The decision `key` would get now, without consuming anything.
    pub fn peek(&self, key: &str, now: Nanos) -> Decision {
        let tat = self.tat(key);
        gcra::peek(tat, now, &self.limit)
    }

    /// Keys held (live or not yet swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live keys evicted because the table was full, since creation.
    #[must_use]
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Drops every key whose TAT is not after `now`, in every shard, and gives memory back.
    pub fn sweep(&self, now: Nanos) {
        for shard in &*self.shards {
            let mut shard = shard.lock();
            sweep_shard(&mut shard, now);
            if shard.map.capacity() > 4 * shard.map.len().max(16) {
                shard.map.shrink_to_fit();
            }
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // The shard index takes bits the map's own table does not favour (it uses the low
        // bits for buckets and the top seven for tags).
        let hash = self.hasher.hash_one(key);
        let mask = self.shards.len() - 1;
        // `mask < shards.len()`, which is a usize, so the cast keeps every bit we need.
        let index = (hash >> 32) as usize & mask;
        &self.shards[index]
    }

    pub(crate) fn tat(&self, key: &str) -> Nanos {
        self.shard(key).lock().map.get(key).copied().unwrap_or(0)
    }

    /// Commits a request if it still conforms (another request may have raced in since the
    /// caller's read). Returns the decision after the commit, or `None` if it no longer fits.
    pub(crate) fn commit(&self, key: &str, now: Nanos) -> Option<Decision> {
        let mut shard = self.shard(key).lock();
        let tat = shard.map.get(key).copied().unwrap_or(0);
        let (decision, new_tat) = gcra::evaluate(tat, now, &self.limit);
        if decision.allowed {
            self.store(&mut shard, key, new_tat, now);
        }
        decision.allowed.then_some(decision)
    }

    /// Gives back one token taken by [`Limiter::commit`].
    pub(crate) fn rollback(&self, key: &str, now: Nanos) {
        let mut shard = self.shard(key).lock();
        if let Some(tat) = shard.map.get_mut(key) {
            *tat = tat.saturating_sub(self.limit.interval_nanos()).max(now);
        }
    }

    fn store(&self, shard: &mut Shard, key: &str, tat: Nanos, now: Nanos) {
        if let Some(slot) = shard.map.get_mut(key) {
            *slot = tat;
            return;
        }
        let sweep_due = now.saturating_sub(shard.last_sweep) >= MIN_SWEEP_INTERVAL;
        if now >= shard.next_sweep && sweep_due {
            sweep_shard(shard, now);
        }
        if shard.map.len() >= self.shard_cap {
            self.evict_one(shard, now);
        }
        shard.map.insert(key.into(), tat);
        shard.next_sweep = shard.next_sweep.min(tat);
    }

    fn evict_one(&self, shard: &mut Shard, now: Nanos) {
        let victim =
            shard.map.iter().take(EVICTION_SAMPLE).min_by_key(|(_, tat)| **tat).map(|(k, tat)| (k.clone(), *tat));
        if let Some((victim, tat)) = victim {
            shard.map.remove(&victim);
            if tat > now {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn sweep_shard(shard: &mut Shard, now: Nanos) {
    let mut earliest = Nanos::MAX;
    shard.map.retain(|_, tat| {
        let live = *tat > now;
        if live {
            earliest = earliest.min(*tat);
        }
        live
    });
    shard.next_sweep = earliest;
    shard.last_sweep = now;
}

/// Checks one request against several limits: it is admitted only if every limit admits it,
/// and a denied request consumes nothing from any of them.
///
/// Check all, then commit: every limit is first evaluated read-only; if all admit, each is
/// committed in turn, re-checked under its shard lock. If a concurrent request took the last
/// token of a later limit in between, the tokens already taken are given back and the request
/// is denied. Locks are never held across limiters, so there is no lock ordering to get wrong;
/// the price is that, during that rare race, another request may briefly see one token fewer
/// (an error on the safe side).
pub fn check_all(checks: &[(&Limiter, &str)], now: Nanos) -> MultiDecision {
    // One limit (the common route): one decision under one lock, nothing to roll back.
    if let [(limiter, key)] = checks {
        return gcra::headline(std::iter::once(limiter.check(key, now)), Source::Local);
    }
    let all_admit = checks.iter().all(|(limiter, key)| limiter.peek(key, now).remaining > 0);
    if all_admit {
        // At most 8 limits are reported from the stack; past that, the headline is still
        // computed over all of them from a second read.
        let mut after = [None; 8];
        for (done, (limiter, key)) in checks.iter().enumerate() {
            let Some(decision) = limiter.commit(key, now) else {
                for (l, k) in &checks[..done] {
                    l.rollback(k, now);
                }
                return denied(checks, now);
            };
            if let Some(slot) = after.get_mut(done) {
                *slot = Some(decision);
            }
        }
        if checks.len() <= after.len() {
            return gcra::headline(after.into_iter().map_while(|d| d), Source::Local);
        }
        let reread = checks.iter().map(|(l, k)| gcra::state_decision(l.tat(k).max(now), now, l.limit(), true));
        return gcra::headline(reread, Source::Local);
    }
    denied(checks, now)
}

fn denied(checks: &[(&Limiter, &str)], now: Nanos) -> MultiDecision {
    let decisions = checks.iter().map(|(limiter, key)| {
        let (d, _) = gcra::evaluate(limiter.tat(key), now, limiter.limit());
        d
    });
    let mut out = gcra::headline(decisions, Source::Local);
    if out.decision.allowed {
        // Only after a lost race: every limit admits again on its own, but this request was
        // refused, so tell the client to come back after one emission interval.
        let interval = checks.get(out.index).map_or(0, |(l, _)| l.limit().interval_nanos());
        out.decision.allowed = false;
        out.decision.remaining = 0;
        out.decision.retry_after = Some(std::time::Duration::from_nanos(interval));
    }
    out
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
