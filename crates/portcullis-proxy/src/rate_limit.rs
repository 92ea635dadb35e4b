//! Rate-limit decisions (SPEC §3): the route's limits, keyed by the core's `RateLimitKeys`
//! stage, are checked all or nothing by `portcullis-state` — in-process counters, or one
//! Redis script call per request with `state.redis`. Limiters and the Redis engine outlive a
//! reload that leaves them unchanged, so a reload never hands out fresh bursts.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_core::snapshot::{self, RateLimitSpec, RouteSpec, Snapshot};
use portcullis_core::{ErrorCode, Problem, RequestContext};
use portcullis_state::{Decision, Engine, Limit, Limiter, MultiDecision, Rate, RedisConfig, SystemClock, ceil_seconds};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The limiters of one config, by `Snapshot::rate_limits` index, and the engine deciding.
pub struct RateLimits {
    engine: Arc<Engine>,
    redis: Option<RedisConfig>,
    limiters: Vec<(RateLimitSpec, Arc<Limiter>)>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("limiters", &self.limiters.len()).finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Builds fresh limiters (and the Redis engine, which connects lazily) for `snapshot`.
    pub fn new(snapshot: &Snapshot) -> std::io::Result<Self> {
        let redis = snapshot.state.redis.as_deref().map(|url| {
            let mut config = RedisConfig::new(url);
            config.on_error = match snapshot.state.on_redis_error {
                snapshot::OnRedisError::Local => portcullis_state::OnRedisError::Local,
                snapshot::OnRedisError::Allow => portcullis_state::OnRedisError::Allow,
                snapshot::OnRedisError::Deny => portcullis_state::OnRedisError::Deny,
            };
            config
        });
        let clock = Arc::new(SystemClock::new());
        let engine = match &redis {
            Some(config) => Engine::with_redis(clock, config.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("state.redis: {e}")))?,
            None => Engine::local(clock),
        };
        let mut limiters = Vec::with_capacity(snapshot.rate_limits.len());
        for spec in &snapshot.rate_limits {
            let limit =
                Limit::new(Rate::Count { count: spec.count, period: spec.period }, spec.burst).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("rate limit `{}`: {e}", spec.name))
                })?;
            limiters.push((spec.clone(), Arc::new(Limiter::new(&spec.name, limit))));
        }
        Ok(Self { engine: Arc::new(engine), redis, limiters })
    }

    /// Keeps the counters of `previous` wherever this config did not change them: the same
    /// Redis settings keep the engine (and its connection and local fallback counters), and
    /// a limiter with the same name, rate, burst and key keeps its buckets.
    pub fn adopt(&mut self, previous: &Self) {
        if self.redis == previous.redis {
            self.engine = previous.engine.clone();
        }
        for (spec, limiter) in &mut self.limiters {
            if let Some((_, old)) = previous.limiters.iter().find(|(s, _)| s == spec) {
                *limiter = old.clone();
            }
        }
    }

    /// Checks `route`'s limits for the request; `None` when the route has none.
    pub async fn check(&self, route: &RouteSpec, ctx: &RequestContext) -> Option<Checked> {
        if route.rate_limits.is_empty() || ctx.rate_keys.len() != route.rate_limits.len() {
            return None;
        }
        let mut checks = Vec::with_capacity(route.rate_limits.len());
        for (&index, key) in route.rate_limits.iter().zip(&ctx.rate_keys) {
            let (_, limiter) = self.limiters.get(index)?;
            checks.push((&**limiter, key.as_str()));
        }
        let decision = self.engine.check(&checks).await;
        let limit =
            route.rate_limits.get(decision.index).and_then(|&i| self.limiters.get(i)).map(|(s, _)| s.name.clone());
        Some(Checked { decision, limit })
    }
}

/// A decision and the name of the limit it is about (the tightest, or the one that refused).
#[derive(Debug, Clone)]
pub struct Checked {
    pub decision: MultiDecision,
    pub limit: Option<Arc<str>>,
}

impl Checked {
    /// The 429 for a refused request, with `Retry-After` and the `RateLimit-*` headers.
    pub fn refusal(&self) -> Problem {
        let d = &self.decision.decision;
        let retry = d.retry_after.map_or(1, ceil_seconds).max(1);
        let detail = if self.decision.degraded() {
            "the shared rate-limit state is unavailable and this gateway is set to refuse meanwhile"
        } else {
            "too many requests; retry after the time in Retry-After"
        };
        let mut problem = Problem::new(ErrorCode::RateLimited, detail)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry));
        for (name, value) in header_values(d) {
            problem = problem.with_header(name, value);
        }
        problem
    }

    /// Adds the `RateLimit-*` headers of an admitted request to its response.
    pub fn annotate(&self, headers: &mut HeaderMap) {
        for (name, value) in header_values(&self.decision.decision) {
            headers.insert(name, value);
        }
    }
}

fn header_values(d: &Decision) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATELIMIT_LIMIT, HeaderValue::from(d.limit)),
        (RATELIMIT_REMAINING, HeaderValue::from(d.remaining)),
        (RATELIMIT_RESET, HeaderValue::from(ceil_seconds(d.reset_after))),
    ]
}
