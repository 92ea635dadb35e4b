//! The rate-limit phase's decisions (SPEC §3): the route's limits, keyed by the
//! [`RateLimitKeys`](crate::stage::RateLimitKeys) stage, and the consumer's plan are checked
//! all or nothing by `portcullis-state`'s [`Engine`] — in-process counters, or one Redis
//! script call per request with `state.redis` (the engine connects lazily; `explain` and
//! `test` use [`RateLimits::offline`], whose counters are in memory and fresh, so a run spends
//! no real counter). Limiters and the engine outlive a reload that leaves them unchanged, so a
//! reload never hands out fresh bursts.

use std::sync::Arc;

use crate::clock::Clock;
use crate::context::RequestContext;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{self, PlanSpec, RateLimitSpec, RouteSpec, Snapshot};
use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_state::{
    Decision, Engine, Limit, Limiter, MultiDecision, Quota, QuotaDecision, QuotaPeriod, Rate, RedisConfig, ceil_seconds,
};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The limiters of one config, by `Snapshot::rate_limits` index, and the engine deciding.
pub struct RateLimits {
    engine: Arc<Engine>,
    redis: Option<RedisConfig>,
    limiters: Vec<(RateLimitSpec, Bucket)>,
    /// Per `Snapshot::plans` entry: the plan and the limiter of its rate, if it has one.
    plans: Vec<(PlanSpec, Option<Bucket>)>,
}

/// A limiter and its `RateLimit-Limit` value, made once rather than on every response.
#[derive(Clone)]
struct Bucket {
    limiter: Arc<Limiter>,
    limit_header: HeaderValue,
}

impl Bucket {
    fn new(limiter: Limiter) -> Self {
        let limit_header = number(u64::from(limiter.limit().burst()));
        Self { limiter: Arc::new(limiter), limit_header }
    }
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("limiters", &self.limiters.len()).finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Builds fresh limiters for `snapshot`, deciding through Redis when `state.redis` is set
    /// (the engine connects lazily; `redis_ca` is the PEM of `state.redis_ca`, read by the
    /// caller) and in process otherwise, on `clock` — the process's one clock: a reload's
    /// engine adopts the old one's buckets, whose times were read from it.
    pub fn new(snapshot: &Snapshot, redis_ca: Option<Vec<u8>>, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let redis = snapshot.state.redis.as_deref().map(|url| {
            let mut config = RedisConfig::new(url);
            config.ca_pem = redis_ca;
            config.on_error = match snapshot.state.on_redis_error {
                snapshot::OnRedisError::Local => portcullis_state::OnRedisError::Local,
                snapshot::OnRedisError::Allow => portcullis_state::OnRedisError::Allow,
                snapshot::OnRedisError::Deny => portcullis_state::OnRedisError::Deny,
            };
            config
        });
        let engine = match &redis {
            Some(config) => Engine::with_redis(clock, config.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("state.redis: {e}")))?,
            None => Engine::local(clock),
        };
        Self::with_engine(snapshot, engine, redis)
    }

    /// Limiters with fresh in-memory counters on `clock`, whatever `state.redis` says: what
    /// `explain` and `test` decide with, so a run never spends a real counter.
    pub fn offline(snapshot: &Snapshot, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        Self::with_engine(snapshot, Engine::local(clock), None)
    }

    fn with_engine(snapshot: &Snapshot, engine: Engine, redis: Option<RedisConfig>) -> std::io::Result<Self> {
        let mut limiters = Vec::with_capacity(snapshot.rate_limits.len());
        for spec in &snapshot.rate_limits {
            let limit =
                Limit::new(Rate::Count { count: spec.count, period: spec.period }, spec.burst).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("rate limit `{}`: {e}", spec.name))
                })?;
            limiters.push((spec.clone(), Bucket::new(Limiter::new(&spec.name, limit))));
        }
        let mut plans = Vec::with_capacity(snapshot.plans.len());
        for plan in &snapshot.plans {
            let limiter = match plan.rate {
                Some((count, period)) => {
                    let limit = Limit::new(Rate::Count { count, period }, plan.burst).map_err(|e| {
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("plan `{}`: {e}", plan.name))
                    })?;
                    Some(Bucket::new(Limiter::new(&format!("plan:{}", plan.name), limit)))
                }
                None => None,
            };
            plans.push((plan.clone(), limiter));
        }
        Ok(Self { engine: Arc::new(engine), redis, limiters, plans })
    }

    /// The engine deciding (its local quota counters are what the database persists).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The limits decide in Redis (`state.redis`): each check is a round trip.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// `plan`'s quota, if the plan exists and has one.
    pub fn quota_of(&self, plan: &str) -> Option<Quota> {
        self.plans.iter().find(|(p, _)| &*p.name == plan).and_then(|(p, _)| quota(p))
    }

    /// Keeps the counters of `previous` wherever this config did not change them: the same
    /// Redis settings keep the engine (and its connection and local fallback counters), and
    /// a limiter with the same name, rate, burst and key keeps its buckets.
    pub fn adopt(&mut self, previous: &Self) {
        if self.redis == previous.redis {
            self.engine = previous.engine.clone();
        } else {
            // A new engine: the in-process quota counts carry over.
            self.engine.local_quotas().restore(previous.engine.local_quotas().snapshot());
        }
        for (spec, limiter) in &mut self.limiters {
            if let Some((_, old)) = previous.limiters.iter().find(|(s, _)| s == spec) {
                *limiter = old.clone();
            }
        }
        for (spec, limiter) in &mut self.plans {
            if let Some((_, old)) =
                previous.plans.iter().find(|(s, _)| s.name == spec.name && s.rate == spec.rate && s.burst == spec.burst)
            {
                limiter.clone_from(old);
            }
        }
    }

    /// Checks `route`'s limits and the consumer's plan (its rate, then its quota, which
    /// counts only requests the rates admitted); `None` when nothing applies.
    pub async fn check(&self, route: &RouteSpec, ctx: &RequestContext) -> Option<Checked> {
        let plan = match (ctx.plan.as_deref(), ctx.consumer.as_deref()) {
            (Some(plan), Some(consumer)) => self.plans.iter().find(|(p, _)| &*p.name == plan).map(|p| (p, consumer)),
            _ => None,
        };
        if route.rate_limits.is_empty() && plan.is_none() {
            return None;
        }
        if ctx.rate_keys.len() != route.rate_limits.len() {
            return None;
        }
        let plan_key;
        let mut checks: smallvec::SmallVec<[(&Limiter, &str); 4]> = smallvec::SmallVec::new();
        let mut buckets: smallvec::SmallVec<[&Bucket; 4]> = smallvec::SmallVec::new();
        for (&index, key) in route.rate_limits.iter().zip(&ctx.rate_keys) {
            let (_, bucket) = self.limiters.get(index)?;
            checks.push((&*bucket.limiter, key.as_str()));
            buckets.push(bucket);
        }
        if let Some(((_, Some(bucket)), consumer)) = plan {
            plan_key = format!("c:{consumer}");
            checks.push((&*bucket.limiter, plan_key.as_str()));
            buckets.push(bucket);
        }
        let decision = if checks.is_empty() { None } else { Some(self.engine.check(&checks).await) };
        // The headline decision's limit: its `RateLimit-Limit`, and for a refusal its name
        // (the limiter's, `plan:NAME` for a plan's rate) for the metric.
        let headline = decision.as_ref().and_then(|d| buckets.get(d.index).map(|b| (d.allowed(), *b)));
        let limit_header = headline.map(|(_, b)| b.limit_header.clone());
        let limit = headline.filter(|(allowed, _)| !allowed).map(|(_, b)| Arc::from(b.limiter.name()));
        let mut checked = Checked { decision, limit, limit_header, quota: None };
        if checked.allowed()
            && let Some(((spec, _), consumer)) = plan
            && let Some(q) = quota(spec)
        {
            let d = self.engine.try_consume(consumer, &q).await;
            if !d.allowed {
                checked.limit = Some(Arc::from(format!("quota:{}", spec.name)));
            }
            checked.quota = Some(d);
        }
        Some(checked)
    }
}

fn quota(plan: &PlanSpec) -> Option<Quota> {
    plan.quota.map(|q| Quota { limit: q.limit, period: if q.monthly { QuotaPeriod::Month } else { QuotaPeriod::Day } })
}

/// A decision and, for a refusal, the name of the limit that refused.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The rate limits' decision (`None`: only a quota applies).
    pub decision: Option<MultiDecision>,
    pub limit: Option<Arc<str>>,
    /// `RateLimit-Limit` of the headline decision's limit.
    limit_header: Option<HeaderValue>,
    /// The plan's quota, counted once the rates admitted the request.
    pub quota: Option<QuotaDecision>,
}

impl Checked {
    pub fn allowed(&self) -> bool {
        self.decision.as_ref().is_none_or(MultiDecision::allowed) && self.quota.is_none_or(|q| q.allowed)
    }

    /// The 429 for a refused request at `now` (Unix seconds), with `Retry-After` and the
    /// `RateLimit-*` headers; it names the limit that refused (the decision trace's `by`).
    pub fn refusal(&self, now: i64) -> Problem {
        let problem = self.refusal_of(now);
        match &self.limit {
            Some(limit) => problem.decided(crate::trace::By::Name(limit.clone())),
            None => problem,
        }
    }

    fn refusal_of(&self, now: i64) -> Problem {
        if let Some(q) = self.quota.filter(|q| !q.allowed) {
            let retry = q.retry_after_seconds(now).max(1);
            let problem = if q.degraded {
                Problem::new(
                    ErrorCode::RateLimited,
                    "the shared quota state is unavailable and this gateway is set to refuse meanwhile",
                )
            } else {
                Problem::new(ErrorCode::QuotaExceeded, "the usage plan's quota for this period is used up")
            };
            return problem
                .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry))
                .with_header(RATELIMIT_LIMIT, HeaderValue::from(q.limit))
                .with_header(RATELIMIT_REMAINING, HeaderValue::from(0u64))
                .with_header(RATELIMIT_RESET, HeaderValue::from(retry));
        }
        let Some(decision) = &self.decision else {
            return Problem::new(ErrorCode::RateLimited, "too many requests");
        };
        let d = &decision.decision;
        let retry = d.retry_after.map_or(1, ceil_seconds).max(1);
        let detail = if decision.degraded() {
            "the shared rate-limit state is unavailable and this gateway is set to refuse meanwhile"
        } else {
            "too many requests; retry after the time in Retry-After"
        };
        let mut problem = Problem::new(ErrorCode::RateLimited, detail)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry));
        for (name, value) in header_values(d, self.limit_header.clone()) {
            problem = problem.with_header(name, value);
        }
        problem
    }

    /// Adds the `RateLimit-*` headers of an admitted request to its response.
    pub fn annotate(&self, headers: &mut HeaderMap) {
        if let Some(decision) = &self.decision {
            headers.reserve(3);
            for (name, value) in header_values(&decision.decision, self.limit_header.clone()) {
                headers.insert(name, value);
            }
        }
    }
}

fn header_values(d: &Decision, limit: Option<HeaderValue>) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATELIMIT_LIMIT, limit.unwrap_or_else(|| number(u64::from(d.limit)))),
        (RATELIMIT_REMAINING, number(u64::from(d.remaining))),
        (RATELIMIT_RESET, number(ceil_seconds(d.reset_after))),
    ]
}

/// Numbers below this come from a table of static header values: every admitted response
/// carries three `RateLimit-*` numbers, and a small one is then a copy, not an allocation.
const SMALL_NUMBERS: u64 = 1024;

/// `n` as a header value.
fn number(n: u64) -> HeaderValue {
    static TABLE: std::sync::LazyLock<Box<[HeaderValue]>> = std::sync::LazyLock::new(|| {
        // One string for the whole table, kept for the life of the process, so each value
        // is a static slice of it (cloning one touches no reference count).
        let mut text = String::new();
        let mut ends = Vec::new();
        for i in 0..SMALL_NUMBERS {
            text.push_str(&i.to_string());
            ends.push(text.len());
        }
        let text: &'static str = Box::leak(text.into_boxed_str());
        let mut start = 0;
        ends.into_iter()
            .map(|end| {
                let value = HeaderValue::from_static(&text[start..end]);
                start = end;
                value
            })
            .collect()
    });
    usize::try_from(n).ok().and_then(|i| TABLE.get(i)).cloned().unwrap_or_else(|| HeaderValue::from(n))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::{SMALL_NUMBERS, number};

    #[test]
    fn numbers_from_the_table_and_beyond_it_read_as_written() {
        for n in (0..SMALL_NUMBERS + 5).chain([99_999_999, u64::from(u32::MAX), u64::MAX]) {
            assert_eq!(number(n), HeaderValue::from(n), "{n}");
        }
    }
}
