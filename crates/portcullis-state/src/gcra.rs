//! The generic cell rate algorithm as pure functions of `(tat, now, limit)`.
//!
//! Times are nanoseconds on one clock chosen by the caller (monotonic for the local store,
//! Redis `TIME` for the shared one); nothing here reads a clock, so tests drive it exactly.

use std::time::Duration;

use crate::error::LimitError;

/// Nanoseconds on the caller's clock.
pub type Nanos = u64;

/// How fast tokens come back: a steady rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Requests per second; fractional rates (`0.5` = one every two seconds) are allowed.
    PerSecond(f64),
    /// `count` requests per `period` (`100/m` is `Count { count: 100, period: 60 s }`).
    Count {
        /// Requests per period.
        count: u32,
        /// The period.
        period: Duration,
    },
}

impl Rate {
    /// The emission interval `T`: the time one request's token takes to come back.
    fn interval(self) -> Result<Nanos, LimitError> {
        let nanos = match self {
            Rate::PerSecond(rate) => {
                if !rate.is_finite() || rate <= 0.0 {
                    return Err(LimitError::InvalidRate);
                }
                let nanos = 1e9 / rate;
                if nanos >= u64::MAX as f64 {
                    return Err(LimitError::InvalidRate);
                }
                // `as` saturates and the range was checked above.
                nanos.round() as u64
            }
            Rate::Count { count, period } => {
                if count == 0 {
                    return Err(LimitError::InvalidRate);
                }
                let nanos = period.as_nanos() / u128::from(count);
                u64::try_from(nanos).map_err(|_| LimitError::InvalidRate)?
            }
        };
        if nanos == 0 {
            return Err(LimitError::RateTooHigh);
        }
        Ok(nanos)
    }

    /// The burst used when the config gives none: one period's worth of requests
    /// (`Count`), or one second's worth rounded up (`PerSecond`), at least 1.
    fn default_burst(self) -> u32 {
        match self {
            Rate::PerSecond(rate) => {
                // `as` saturates; a NaN or negative rate is refused by `interval` first.
                (rate.ceil() as u32).max(1)
            }
            Rate::Count { count, .. } => count.max(1),
        }
    }
}

/// A validated limit: emission interval `T` and capacity `burst`.
///
/// A request at `now` conforms when `max(tat, now) + T - now <= burst * T`; it then moves the
/// key's theoretical arrival time to `max(tat, now) + T`. So `burst` requests pass at once on a
/// fresh key, and after that one every `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    interval: Nanos,
    burst: u32,
    tolerance: Nanos,
}

impl Limit {
    /// Builds a limit; `burst: None` means one period's worth (see [`Rate`]).
    ///
    /// # Errors
    /// A zero, negative or non-finite rate, a rate over 10⁹/s, a zero burst, or a
    /// `burst × T` past `u64` nanoseconds (about 584 years).
    pub fn new(rate: Rate, burst: Option<u32>) -> Result<Self, LimitError> {
        let interval = rate.interval()?;
        let burst = burst.unwrap_or_else(|| rate.default_burst());
        if burst == 0 {
            return Err(LimitError::ZeroBurst);
        }
        let tolerance = interval.checked_mul(u64::from(burst)).ok_or(LimitError::WindowTooLong)?;
        Ok(Self { interval, burst, tolerance })
    }

    /// The capacity (`RateLimit-Limit`).
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The emission interval `T` in nanoseconds.
    #[must_use]
    pub fn interval_nanos(&self) -> Nanos {
        self.interval
    }

    /// `burst × T` in nanoseconds: how far ahead of `now` a TAT may run.
    #[must_use]
    pub fn tolerance_nanos(&self) -> Nanos {
        self.tolerance
    }
}

/// One limit's answer for one request: everything the `RateLimit-*` and `Retry-After`
/// headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether this limit admits the request.
    pub allowed: bool,
    /// The burst (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests that would pass right now, after this one if it was admitted
    /// (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Time until `remaining` is back to `limit` (`RateLimit-Reset`, round up to seconds).
    pub reset_after: Duration,
    /// When denied: time until one request would pass (`Retry-After`, round up to seconds).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// The decision a limit gives when it is not enforced (`on_redis_error: allow`).
    #[must_use]
    pub fn unenforced(limit: &Limit) -> Self {
        Self {
            allowed: true,
            limit: limit.burst,
            remaining: limit.burst,
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }
}

/// Rounds a duration up to whole seconds, as the `RateLimit-Reset` and `Retry-After` headers want.
#[must_use]
pub fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Evaluates a request against a key whose TAT is `tat` (0 or any past time for a fresh key).
/// Returns the decision and the TAT to store if the request is committed.
#[must_use]
pub fn evaluate(tat: Nanos, now: Nanos, limit: &Limit) -> (Decision, Nanos) {
    let base = tat.max(now);
    let new_tat = base.saturating_add(limit.interval);
    let allowed = new_tat - now <= limit.tolerance;
    let after = if allowed { new_tat } else { base };
    let decision = state_decision(after, now, limit, allowed);
    (decision, new_tat)
}

/// The decision a key shows at `now` with TAT `tat`, without a request (a peek).
#[must_use]
pub fn peek(tat: Nanos, now: Nanos, limit: &Limit) -> Decision {
    let (decision, _) = evaluate(tat, now, limit);
    if decision.allowed { state_decision(tat.max(now), now, limit, true) } else { decision }
}

/// The decision shown by a key whose TAT is `tat` (after any commit).
pub(crate) fn state_decision(tat: Nanos, now: Nanos, limit: &Limit, allowed: bool) -> Decision {
    // `ahead` is how much of the tolerance is used up: 0 on a full bucket.
    let ahead = tat.saturating_sub(now);
    let free = limit.tolerance.saturating_sub(ahead);
    let remaining = u32::try_from(free / limit.interval).unwrap_or(u32::MAX);
    let retry_after = (!allowed).then(|| {
        // The next request passes once `tat + T - t <= tolerance`.
        let at = tat.saturating_add(limit.interval).saturating_sub(limit.tolerance);
        Duration::from_nanos(at.saturating_sub(now))
    });
    Decision {
        allowed,
        limit: limit.burst,
        remaining: remaining.min(limit.burst),
        reset_after: Duration::from_nanos(ahead),
        retry_after,
    }
}

/// The answer for a request checked against several limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiDecision {
    /// The headline decision: when admitted, the tightest limit (least remaining, then
    /// longest reset); when denied, the denying limit with the longest `retry_after`.
    pub decision: Decision,
    /// Index (in the checked slice) of the limit the headline comes from; for a denial,
    /// the limit to name in `portcullis_rate_limited_total{limit}`.
    pub index: usize,
    /// Where the decision was made.
    pub source: Source,
}

/// Where a decision was made, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// In this process (no Redis configured).
    Local,
    /// By the shared Redis script.
    Redis,
    /// Redis failed or is in backoff; the configured `on_redis_error` answered.
    Degraded(crate::OnRedisError),
}

impl MultiDecision {
    /// Whether the request is admitted by every limit.
    #[must_use]
    pub fn allowed(&self) -> bool {
        self.decision.allowed
    }

    /// Whether `on_redis_error` answered instead of Redis.
    #[must_use]
    pub fn degraded(&self) -> bool {
        matches!(self.source, Source::Degraded(_))
    }
}

/// Folds per-limit decisions into the headline one (see [`MultiDecision::decision`]).
/// An empty iterator admits with an unlimited-looking decision at index 0.
pub(crate) fn headline(decisions: impl Iterator<Item = Decision>, source: Source) -> MultiDecision {
    let mut best: Option<(usize, Decision)> = None;
    for (i, d) in decisions.enumerate() {
        let better = match best {
            None => true,
            Some((_, b)) => tighter(&d, &b),
        };
        if better {
            best = Some((i, d));
        }
    }
    let (index, decision) = best.unwrap_or((
        0,
        Decision {
            allowed: true,
            limit: u32::MAX,
            remaining: u32::MAX,
            reset_after: Duration::ZERO,
            retry_after: None,
        },
    ));
    MultiDecision { decision, index, source }
}

fn tighter(a: &Decision, b: &Decision) -> bool {
    match (a.allowed, b.allowed) {
        (false, true) => true,
        (true, false) => false,
        (false, false) => a.retry_after > b.retry_after,
        (true, true) => {
            (a.remaining, std::cmp::Reverse(a.reset_after)) < (b.remaining, std::cmp::Reverse(b.reset_after))
        }
    }
}

#[cfg(test)]
#[path = "gcra_tests.rs"]
mod tests;
