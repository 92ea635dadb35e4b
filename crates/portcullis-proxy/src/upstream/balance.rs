//! Choosing a target: round robin, least requests (power of two choices), or a rendezvous
//! hash of the client IP or a header (stable when targets come and go). Unhealthy and
//! already-tried targets are skipped while others remain.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::Ordering;

use portcullis_core::snapshot::Balance;

use super::{BalanceKey, Pool};

/// Hashing must agree across instances and restarts, so the keys are fixed.
const HASH_KEYS: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

pub(super) fn pick(pool: &Pool, key: &BalanceKey, tried: &[usize]) -> Option<usize> {
    let n = pool.targets.len();
    let usable = |i: usize| pool.targets[i].is_healthy() && !tried.contains(&i);
    // After every healthy target was tried, a retry may reuse one.
    let candidate = |i: usize| usable(i) || (tried.len() >= n && pool.targets[i].is_healthy());
    match &pool.spec.balance {
        Balance::RoundRobin => {
            let start = pool.cursor.fetch_add(1, Ordering::Relaxed);
            (0..n).map(|k| (start + k) % n).find(|&i| candidate(i))
        }
        Balance::LeastRequests => {
            let start = pool.cursor.fetch_add(1, Ordering::Relaxed);
            (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| candidate(i))
                .min_by_key(|&i| pool.targets[i].in_flight.load(Ordering::Relaxed))
        }
        Balance::HashClientIp => rendezvous(pool, &key.client_ip, candidate),
        Balance::HashHeader(_) => {
            let value = key.header.as_ref().map_or(&[][..], |v| v.as_bytes());
            rendezvous(pool, &value, candidate)
        }
    }
}

fn rendezvous<K: Hash>(pool: &Pool, key: &K, candidate: impl Fn(usize) -> bool) -> Option<usize> {
    (0..pool.targets.len())
        .filter(|&i| candidate(i))
        .max_by_key(|&i| HASH_KEYS.hash_one((key, pool.targets[i].spec.name.as_ref())))
}
