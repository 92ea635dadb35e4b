//! What the admin dashboard shows of the traffic (SPEC §5 `GET /`): per route, requests,
//! errors and refusals counted and latency kept in a small fixed histogram, and the most
//! recent refusals in a ring of [`RECENT_REFUSALS`]. Fed from the same [`Record`] as the
//! metrics and the access log, so the three cannot disagree.
//!
//! Cheap on the request path: a read lock and a map lookup per request (a write lock only the
//! first time a route is seen), then relaxed atomic adds; the ring's mutex is taken only for
//! refusals, and holds it for one push. Routes are config names (plus one entry for requests
//! that matched none), so the map is as bounded as the metrics' label sets.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use portcullis_core::record::Record;

/// Refusals kept for the dashboard; older ones are dropped as new ones arrive.
pub const RECENT_REFUSALS: usize = 100;

/// Upper bounds of the latency buckets, in microseconds: 0.5 ms doubling to ~33 s, as
/// `portcullis_request_duration_seconds`. One more bucket counts everything slower.
const BUCKET_BOUNDS_US: [u64; 17] = {
    let mut bounds = [0u64; 17];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 500 << i;
        i += 1;
    }
    bounds
};

/// One route's counts since the process started.
#[derive(Debug, Default)]
struct RouteStats {
    requests: AtomicU64,
    /// Answers with a 5xx status, the upstream's or the gateway's own.
    server_errors: AtomicU64,
    /// Requests the gateway refused with a 4xx problem document.
    refused: AtomicU64,
    buckets: [AtomicU64; BUCKET_BOUNDS_US.len() + 1],
}

/// A refusal as the dashboard lists it: never a credential, a body or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub ts_millis: i64,
    /// `None`: the request matched no route.
    pub route: Option<Arc<str>>,
    pub status: u16,
    /// The problem document's `code`.
    pub code: &'static str,
    /// `phase` or `phase:name` of the step that refused (the access log's `decided_by`).
    pub decided_by: Option<String>,
    pub client_ip: IpAddr,
}

/// One route's traffic as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTraffic {
    pub requests: u64,
    pub server_errors: u64,
    pub refused: u64,
    /// p50, p95 and p99 in milliseconds, estimated from the buckets; `None` before any request.
    pub latency_ms: Option<[f64; 3]>,
}

/// The dashboard's counters, shared by every runtime of the process (they live in
/// [`crate::metrics::Metrics`]).
#[derive(Debug, Default)]
pub struct Dashboard {
    routes: RwLock<HashMap<Arc<str>, RouteStats>>,
    /// Requests that matched no route.
    unmatched: RouteStats,
    refusals: Mutex<VecDeque<Refusal>>,
}

impl Dashboard {
    /// Counts one answered request; a problem document the gateway made (a refusal or one of
    /// its own errors) also goes into the ring.
    pub fn observe(&self, record: &Record, elapsed: Duration) {
        match &record.route {
            Some(route) => self.count_route(route, record, elapsed),
            None => count(&self.unmatched, record, elapsed),
        }
        if let Some(code) = record.outcome
            && record.status >= 400
        {
            self.push(Refusal {
                ts_millis: record.ts_millis,
                route: record.route.clone(),
                status: record.status,
                code: code.as_str(),
                decided_by: record.decided_by.clone(),
                client_ip: record.client_ip,
            });
        }
    }

    /// Counts under the read lock; the write lock only adds a route seen for the first time.
    fn count_route(&self, route: &Arc<str>, record: &Record, elapsed: Duration) {
        if let Some(stats) = self.routes.read().unwrap_or_else(PoisonError::into_inner).get(route) {
            return count(stats, record, elapsed);
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        count(routes.entry(route.clone()).or_default(), record, elapsed);
    }

    fn push(&self, refusal: Refusal) {
        let mut ring = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() >= RECENT_REFUSALS {
            ring.pop_front();
        }
        ring.push_back(refusal);
    }

    /// A route's traffic since the process started (zeros for a route never requested).
    pub fn route_traffic(&self, route: &str) -> RouteTraffic {
        match self.routes.read().unwrap_or_else(PoisonError::into_inner).get(route) {
            Some(stats) => stats.traffic(),
            None => RouteStats::default().traffic(),
        }
    }

    /// Requests that matched no route.
    pub fn unmatched_traffic(&self) -> RouteTraffic {
        self.unmatched.traffic()
    }

    /// The recent refusals, newest first.
    pub fn recent_refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().unwrap_or_else(PoisonError::into_inner).iter().rev().cloned().collect()
    }
}

fn count(stats: &RouteStats, record: &Record, elapsed: Duration) {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    if record.status >= 500 {
        stats.server_errors.fetch_add(1, Ordering::Relaxed);
    } else if record.status >= 400 && record.outcome.is_some() {
        stats.refused.fetch_add(1, Ordering::Relaxed);
    }
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let bucket = BUCKET_BOUNDS_US.iter().position(|&bound| us <= bound).unwrap_or(BUCKET_BOUNDS_US.len());
    if let Some(b) = stats.buckets.get(bucket) {
        b.fetch_add(1, Ordering::Relaxed);
    }
}

impl RouteStats {
    fn traffic(&self) -> RouteTraffic {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        RouteTraffic {
            requests: self.requests.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            latency_ms: percentiles(&counts),
        }
    }
}

/// p50, p95 and p99 from bucket counts, each interpolated linearly inside its bucket (as
/// Prometheus' `histogram_quantile`); the open last bucket answers its lower bound.
fn percentiles(counts: &[u64]) -> Option<[f64; 3]> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    Some([0.50, 0.95, 0.99].map(|q| quantile(counts, total, q)))
}

fn quantile(counts: &[u64], total: u64, q: f64) -> f64 {
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0 } else { BUCKET_BOUNDS_US[i - 1] };
            let Some(&upper) = BUCKET_BOUNDS_US.get(i) else { return lower as f64 / 1000.0 };
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return (lower as f64 + within * (upper - lower) as f64) / 1000.0;
        }
        below += n;
    }
    BUCKET_BOUNDS_US[BUCKET_BOUNDS_US.len() - 1] as f64 / 1000.0
}

// Tested through the admin API's dashboard data (`portcullis-admin`'s `dashboard` tests),
// which is what shows these numbers.
