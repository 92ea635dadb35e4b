//! Quotas: accepted requests per key per UTC calendar day or month.
//!
//! Period boundaries use civil-from-days arithmetic (proleptic Gregorian, so month lengths and
//! leap years come out right) on Unix seconds; no date crate is needed for that.
//! The local counters live in shards of `Mutex<HashMap<key, Usage>>`; one quota applies per
//! key (a consumer has one plan), and a counter from an earlier period restarts at zero.
//! Keys are consumers, which the database bounds, so there is no cap here; counters of ended
//! periods are dropped by [`LocalQuotas::sweep`].

use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

const SECONDS_PER_DAY: i64 = 86_400;
const QUOTA_SHARDS: usize = 16;

/// The calendar period a quota counts over, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaPeriod {
    /// From 00:00:00 UTC to the next midnight.
    Day,
    /// From the 1st 00:00:00 UTC to the 1st of the next month.
    Month,
}

impl QuotaPeriod {
    /// The `[start, end)` of the period holding `unix_seconds`, in Unix seconds.
    #[must_use]
    pub fn bounds(self, unix_seconds: i64) -> (i64, i64) {
        let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
        match self {
            QuotaPeriod::Day => {
                let start = days * SECONDS_PER_DAY;
                (start, start + SECONDS_PER_DAY)
            }
            QuotaPeriod::Month => {
                let (y, m, _) = civil_from_days(days);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days_from_civil(y, m, 1) * SECONDS_PER_DAY, days_from_civil(ny, nm, 1) * SECONDS_PER_DAY)
            }
        }
    }

    /// The name used in `/consumers/{name}/usage`: `day` or `month`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        }
    }
}

/// `(year, month 1–12, day 1–31)` of a day count since 1970-01-01 (H. Hinnant's algorithm).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in small ranges stated above.
    (year, month as u32, day as u32)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A quota: at most `limit` accepted requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests allowed per period.
    pub limit: u64,
    /// The period.
    pub period: QuotaPeriod,
}

/// A quota's answer: what `quota_exceeded` and `/consumers/{name}/usage` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDecision {
    /// Whether the request fits the quota (and was counted, for `try_consume`).
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u64,
    /// Requests counted in this period, this one included when allowed.
    pub used: u64,
    /// `limit - used`, at least 0.
    pub remaining: u64,
    /// Unix seconds when the period ends and `used` restarts at 0; for a degraded refusal,
    /// when the shared state is tried again.
    pub resets_at: i64,
    /// Refused because the shared state (Redis) is unreachable under `on_redis_error: deny`,
    /// not because the quota is used up.
    pub degraded: bool,
}

impl QuotaDecision {
    pub(crate) fn new(allowed: bool, quota: &Quota, used: u64, resets_at: i64) -> Self {
        Self {
            allowed,
            limit: quota.limit,
            used,
            remaining: quota.limit.saturating_sub(used),
            resets_at,
            degraded: false,
        }
    }

    /// Seconds from `now` to the reset (`Retry-After` of a `quota_exceeded`).
    #[must_use]
    pub fn retry_after_seconds(&self, now_unix: i64) -> u64 {
        u64::try_from(self.resets_at.saturating_sub(now_unix)).unwrap_or(0)
    }
}

/// One key's counter, as the gateway persists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The quota key (the consumer).
    pub key: String,
    /// Unix seconds at which the counted period started.
    pub period_start: i64,
    /// Requests counted in that period.
    pub used: u64,
}

type UsageShard = Mutex<HashMap<Box<str>, Usage, RandomState>>;

#[derive(Debug, Clone, Copy)]
struct Usage {
    period_start: i64,
    used: u64,
}

/// In-process quota counters.
pub struct LocalQuotas {
    shards: Box<[UsageShard]>,
    hasher: RandomState,
}

impl std::fmt::Debug for LocalQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQuotas").finish_non_exhaustive()
    }
}

impl Default for LocalQuotas {
    fn default() -> Self {
        Self { shards: (0..QUOTA_SHARDS).map(|_| Mutex::default()).collect(), hasher: RandomState::default() }
    }
}

impl LocalQuotas {
    /// Empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request for `key` if the quota has room; a refused request is not counted.
    pub fn try_consume(&self, key: &str, quota: &Quota, now_unix: i64) -> QuotaDecision {
        let (start, end) = quota.period.bounds(now_unix);
        let mut shard = self.shard(key).lock();
        let used = current(shard.get(key), start);
        if used >= quota.limit {
            return QuotaDecision::new(false, quota, used, end);
        }
        let used = used + 1;
        let usage = Usage { period_start: start, used };
        match shard.get_mut(key) {
            Some(slot) => *slot = usage,
            None => {
                shard.insert(key.into(), usage);
            }
        }
        QuotaDecision::new(true, quota, used, end)
    }

    /// The quota's state for `key`, counting nothing (`allowed`: whether one more would fit).
    pub fn peek(&self, key: &str, quota: &Quota, now_unix: i64) -> QuotaDecision {
        let (start, end) = quota.period.bounds(now_unix);
        let used = current(self.shard(key).lock().get(key), start);
        QuotaDecision::new(used < quota.limit, quota, used, end)
    }

    /// Every counter, for the gateway to write to its database.
    #[must_use]
    pub fn snapshot(&self) -> Vec<QuotaUsage> {
        let mut out = Vec::new();
        for shard in &*self.shards {
            out.extend(shard.lock().iter().map(|(key, u)| QuotaUsage {
                key: key.to_string(),
                period_start: u.period_start,
                used: u.used,
            }));
        }
        out
    }

    /// Loads persisted counters. For a key already counted, the later period wins, and within
    /// one period the larger count (so restoring twice, or after traffic began, never lowers
    /// a count).
    pub fn restore(&self, usage: impl IntoIterator<Item = QuotaUsage>) {
        for u in usage {
            let mut shard = self.shard(&u.key).lock();
            let restored = Usage { period_start: u.period_start, used: u.used };
            let slot = shard.entry(u.key.into_boxed_str()).or_insert(restored);
            if (restored.period_start, restored.used) > (slot.period_start, slot.used) {
                *slot = restored;
            }
        }
    }

    /// Drops counters of periods that started before the current UTC month: no day or month
    /// quota can still be counting them. (Yesterday's day counters stay until then; they are
    /// one per consumer, and restart at zero when touched.)
    pub fn sweep(&self, now_unix: i64) {
        let (month_start, _) = QuotaPeriod::Month.bounds(now_unix);
        for shard in &*self.shards {
            shard.lock().retain(|_, u| u.period_start >= month_start);
        }
    }

    fn shard(&self, key: &str) -> &UsageShard {
        let mask = self.shards.len() - 1;
        // The mask keeps the low bits only, which fit any usize.
        let index = (self.hasher.hash_one(key) >> 32) as usize & mask;
        &self.shards[index]
    }
}

fn current(usage: Option<&Usage>, period_start: i64) -> u64 {
    match usage {
        Some(u) if u.period_start == period_start => u.used,
        _ => 0,
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
