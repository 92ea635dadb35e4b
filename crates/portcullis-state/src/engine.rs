//! The engine the gateway holds: a clock, local quota counters and, optionally, Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::RedisSetupError;
use crate::gcra::{self, Decision, MultiDecision, Source};
use crate::local::{self, Limiter};
use crate::quota::{LocalQuotas, Quota, QuotaDecision};
use crate::shared::{OnRedisError, RedisBackend, RedisConfig};

/// Rate-limit and quota decisions, in process or through Redis.
///
/// Cheap to share (`Arc<Engine>`); keep it across config reloads so local counters survive,
/// and keep a [`Limiter`] across a reload when its name and [`crate::Limit`] are unchanged.
pub struct Engine {
    clock: Arc<dyn Clock>,
    quotas: LocalQuotas,
    redis: Option<RedisBackend>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("redis", &self.redis).finish_non_exhaustive()
    }
}

/// The Redis side's health, for metrics and `/ready`-style reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisStatus {
    /// The configured `on_redis_error`.
    pub mode: OnRedisError,
    /// Whether the most recent decision was made without Redis.
    pub last_degraded: bool,
    /// Failed or timed-out calls since start.
    pub failures: u64,
}

impl Engine {
    /// In-process only (no `state.redis`).
    #[must_use]
    pub fn local(clock: Arc<dyn Clock>) -> Self {
        Self { clock, quotas: LocalQuotas::new(), redis: None }
    }

    /// Shared through Redis. Does not connect yet (the first decision does), so this succeeds
    /// while Redis is down. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// A Redis URL that does not parse.
    pub fn with_redis(clock: Arc<dyn Clock>, config: RedisConfig) -> Result<Self, RedisSetupError> {
        Ok(Self { clock, quotas: LocalQuotas::new(), redis: Some(RedisBackend::new(config)?) })
    }

    /// The clock decisions read.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The local quota counters: snapshot them to the database every few seconds and at
    /// shutdown, restore them at start. (With Redis, Redis holds the shared counts and these
    /// only count while Redis is unreachable in `local` mode.)
    #[must_use]
    pub fn local_quotas(&self) -> &LocalQuotas {
        &self.quotas
    }

    /// `None` without Redis.
    #[must_use]
    pub fn redis_status(&self) -> Option<RedisStatus> {
        self.redis.as_ref().map(|r| RedisStatus {
            mode: r.mode(),
            last_degraded: r.last_degraded(),
            failures: r.failures(),
        })
    }

    /// Checks one request against all of its limits (see [`local::check_all`] for the
    /// all-or-nothing rule). Without Redis this never awaits; with Redis it takes at most the
    /// configured timeout.
    pub async fn check(&self, checks: &[(&Limiter, &str)]) -> MultiDecision {
        let mono = self.clock.monotonic();
        let Some(redis) = &self.redis else {
            return local::check_all(checks, mono);
        };
        if let Ok(decision) = redis.check(checks, None, mono).await {
            redis.mark_degraded(false);
            return decision;
        }
        redis.mark_degraded(true);
        self.degraded_check(redis, checks, mono)
    }

    /// The synchronous local path, for callers that know there is no Redis (or want none).
    pub fn check_local(&self, checks: &[(&Limiter, &str)]) -> MultiDecision {
        local::check_all(checks, self.clock.monotonic())
    }

    /// Like [`Engine::check`] but the Redis script uses `now_unix_micros` instead of Redis
    /// `TIME`: for tests that compare the script with the local algorithm.
    pub async fn check_at(&self, checks: &[(&Limiter, &str)], now_unix_micros: u64) -> MultiDecision {
        let mono = self.clock.monotonic();
        match &self.redis {
            None => local::check_all(checks, now_unix_micros.saturating_mul(1000)),
            Some(redis) => match redis.check(checks, Some(now_unix_micros), mono).await {
                Ok(d) => {
                    redis.mark_degraded(false);
                    d
                }
                Err(_) => {
                    redis.mark_degraded(true);
                    self.degraded_check(redis, checks, mono)
                }
            },
        }
    }

    /// Counts one accepted request against `quota` if it has room. Call it after the rate
    /// limits admitted the request, so a request they refuse is not counted.
    pub async fn try_consume(&self, key: &str, quota: &Quota) -> QuotaDecision {
        let now = self.clock.unix_seconds();
        let Some(redis) = &self.redis else {
            return self.quotas.try_consume(key, quota, now);
        };
        let mono = self.clock.monotonic();
        if let Ok(d) = redis.try_consume(key, quota, now, mono).await {
            redis.mark_degraded(false);
            return d;
        }
        redis.mark_degraded(true);
        match redis.mode() {
            OnRedisError::Local => self.quotas.try_consume(key, quota, now),
            OnRedisError::Allow => {
                let (_, end) = quota.period.bounds(now);
                QuotaDecision::new(true, quota, 0, end)
            }
            // Refused until Redis is tried again, not until the period ends: Retry-After is
            // the backoff, not the rest of the day or month.
            OnRedisError::Deny => {
                let retry = i64::try_from(redis.backoff().as_secs().max(1)).unwrap_or(1);
                let mut refused = QuotaDecision::new(false, quota, quota.limit, now.saturating_add(retry));
                refused.degraded = true;
                refused
            }
        }
    }

    /// The quota's state without counting (for `/consumers/{name}/usage`). When Redis is
    /// unreachable this shows the local counters, whatever the mode.
    pub async fn quota_usage(&self, key: &str, quota: &Quota) -> QuotaDecision {
        let now = self.clock.unix_seconds();
        if let Some(redis) = &self.redis
            && let Ok(d) = redis.peek_quota(key, quota, now, self.clock.monotonic()).await
        {
            return d;
        }
        self.quotas.peek(key, quota, now)
    }

    fn degraded_check(&self, redis: &RedisBackend, checks: &[(&Limiter, &str)], mono: u64) -> MultiDecision {
        let mode = redis.mode();
        let source = Source::Degraded(mode);
        let mut out = match mode {
            OnRedisError::Local => local::check_all(checks, mono),
            OnRedisError::Allow => gcra::headline(checks.iter().map(|(l, _)| Decision::unenforced(l.limit())), source),
            OnRedisError::Deny => {
                let refuse = |l: &Limiter| Decision {
                    allowed: false,
                    limit: l.limit().burst(),
                    remaining: 0,
                    reset_after: redis.backoff(),
                    retry_after: Some(redis.backoff().max(Duration::from_secs(1))),
                };
                gcra::headline(checks.iter().map(|(l, _)| refuse(l)), source)
            }
        };
        out.source = source;
        out
    }
}
