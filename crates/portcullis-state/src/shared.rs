//! The Redis backend: one `EVALSHA` per decision, bounded in time, behind a small circuit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::RedisSetupError;
use crate::gcra::{self, Limit, MultiDecision, Nanos, Source};
use crate::local::Limiter;
use crate::quota::{Quota, QuotaDecision};

/// Default bound on one Redis call, connection included.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Default time Redis is skipped after a failure before one request probes it again.
pub const DEFAULT_REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// Default prefix of every key this crate writes.
pub const DEFAULT_KEY_PREFIX: &str = "portcullis:";
/// Quota keys outlive their period by this long, so a late `/usage` read still sees them.
const QUOTA_KEY_GRACE_SECONDS: i64 = 3_600;

/// GCRA over `#KEYS` limits, all or nothing. See the crate docs for the contract.
const LIMIT_SCRIPT: &str = include_str!("gcra.lua");
/// Conditional INCR with EXPIREAT. See the crate docs for the contract.
const QUOTA_SCRIPT: &str = include_str!("quota.lua");

/// What a decision does when Redis cannot answer (`state.on_redis_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnRedisError {
    /// Decide with this instance's own counters (the limit becomes per instance).
    #[default]
    Local,
    /// Admit every request.
    Allow,
    /// Refuse every request.
    Deny,
}

impl OnRedisError {
    /// The config spelling: `local`, `allow` or `deny`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OnRedisError::Local => "local",
            OnRedisError::Allow => "allow",
            OnRedisError::Deny => "deny",
        }
    }
}

/// How the Redis backend is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key, so several gateways (or tests) can share one Redis.
    pub key_prefix: String,
    /// What to do when Redis fails or times out.
    pub on_error: OnRedisError,
    /// Bound on one call, connecting included.
    pub timeout: Duration,
    /// After a failure, Redis is skipped this long; then one request probes it.
    pub backoff: Duration,
    /// PEM CA certificates trusted for `rediss://` instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl RedisConfig {
    /// Defaults for `url`: prefix `portcullis:`, `local`, 50 ms, 1 s.
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            on_error: OnRedisError::default(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            backoff: DEFAULT_REDIS_BACKOFF,
            ca_pem: None,
        }
    }
}

/// A client for `url` (`redis://`, `rediss://` or `unix://`). With `ca_pem`, a `rediss://`
/// server must present a certificate chained to one of those CAs; without, to the system's
/// roots. The server's name is checked against the URL's host either way.
///
/// # Errors
/// A URL that does not parse, or a CA that is not PEM certificates.
pub fn client(url: &str, ca_pem: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    match ca_pem {
        Some(pem) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) },
        ),
        None => redis::Client::open(url),
    }
}

/// Why a Redis call gave no answer (only counted and logged by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// Skipped: a recent failure opened the circuit.
    Backoff,
    /// The call failed or timed out.
    Failed,
}

/// A connection to Redis with its scripts, time bound and circuit.
pub(crate) struct RedisBackend {
    conn: ConnectionManager,
    config: RedisConfig,
    limit_script: Script,
    quota_script: Script,
    /// Monotonic time until which Redis is skipped; 0 when closed.
    skip_until: AtomicU64,
    last_degraded: AtomicBool,
    failures: AtomicU64,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show only the mode.
        f.debug_struct("RedisBackend").field("on_error", &self.config.on_error).finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Prepares the connection without connecting, so a gateway starts while Redis is down.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// A URL that does not parse.
    pub(crate) fn new(config: RedisConfig) -> Result<Self, RedisSetupError> {
        let client = client(&config.url, config.ca_pem.as_deref())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(config.backoff);
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        Ok(Self {
            conn,
            config,
            limit_script: Script::new(LIMIT_SCRIPT),
            quota_script: Script::new(QUOTA_SCRIPT),
            skip_until: AtomicU64::new(0),
            last_degraded: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        })
    }

    /// The configured failure mode.
    #[must_use]
    pub(crate) fn mode(&self) -> OnRedisError {
        self.config.on_error
    }

    /// Whether the most recent decision was made without Redis.
    #[must_use]
    pub(crate) fn last_degraded(&self) -> bool {
        self.last_degraded.load(Ordering::Relaxed)
    }

    /// Redis calls that failed or timed out, since creation.
    #[must_use]
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The backoff after a failure.
    #[must_use]
    pub(crate) fn backoff(&self) -> Duration {
        self.config.backoff
    }

    /// Runs the GCRA script for `checks`. `now_us`: `None` uses Redis `TIME` (the default,
    /// one clock for every instance); `Some` passes the caller's Unix microseconds.
    pub(crate) async fn check(
        &self,
        checks: &[(&Limiter, &str)],
        now_us: Option<u64>,
        mono: Nanos,
    ) -> Result<MultiDecision, Unavailable> {
        let mut invocation = self.limit_script.prepare_invoke();
        invocation.arg(now_us.map_or_else(String::new, |n| n.to_string()));
        for (limiter, key) in checks {
            invocation.key(self.limit_key(limiter.name(), key));
            let limit = limiter.limit();
            invocation.arg(micros(limit.interval_nanos()));
            invocation.arg(micros(limit.tolerance_nanos()));
        }
        let reply: Vec<u64> = self.call(mono, async |conn| invocation.invoke_async(conn).await).await?;
        Ok(decode_limits(checks, &reply))
    }

    /// Runs the quota script: counts one request if `quota` has room.
    pub(crate) async fn try_consume(
        &self,
        key: &str,
        quota: &Quota,
        now_unix: i64,
        mono: Nanos,
    ) -> Result<QuotaDecision, Unavailable> {
        let (start, end) = quota.period.bounds(now_unix);
        let mut invocation = self.quota_script.prepare_invoke();
        invocation.key(self.quota_key(key, start)).arg(quota.limit).arg(end.saturating_add(QUOTA_KEY_GRACE_SECONDS));
        let (allowed, used): (u8, u64) = self.call(mono, async |conn| invocation.invoke_async(conn).await).await?;
        Ok(QuotaDecision::new(allowed == 1, quota, used, end))
    }

    /// Reads a quota counter without counting (for `/consumers/{name}/usage`).
    pub(crate) async fn peek_quota(
        &self,
        key: &str,
        quota: &Quota,
        now_unix: i64,
        mono: Nanos,
    ) -> Result<QuotaDecision, Unavailable> {
        let (start, end) = quota.period.bounds(now_unix);
        let redis_key = self.quota_key(key, start);
        let used: Option<u64> =
            self.call(mono, async |conn| redis::cmd("GET").arg(&redis_key).query_async(conn).await).await?;
        let used = used.unwrap_or(0);
        Ok(QuotaDecision::new(used < quota.limit, quota, used, end))
    }

    pub(crate) fn mark_degraded(&self, degraded: bool) {
        self.last_degraded.store(degraded, Ordering::Relaxed);
    }

    /// One bounded call behind the circuit.
    async fn call<T>(
        &self,
        mono: Nanos,
        f: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, Unavailable> {
        if !self.circuit_allows(mono) {
            return Err(Unavailable::Backoff);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.config.timeout, f(&mut conn)).await {
            Ok(Ok(value)) => {
                self.skip_until.store(0, Ordering::Release);
                Ok(value)
            }
            Ok(Err(_)) | Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.skip_until.store(self.reopen_at(mono).max(1), Ordering::Release);
                Err(Unavailable::Failed)
            }
        }
    }

    /// Closed: go. Open: skip until the backoff ends, then let exactly one caller probe
    /// (it moves the deadline forward so the others keep skipping while it tries).
    fn circuit_allows(&self, mono: Nanos) -> bool {
        let until = self.skip_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if mono < until {
            return false;
        }
        self.skip_until.compare_exchange(until, self.reopen_at(mono), Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn reopen_at(&self, mono: Nanos) -> Nanos {
        let backoff = u64::try_from(self.config.backoff.as_nanos()).unwrap_or(u64::MAX);
        mono.saturating_add(backoff).max(1)
    }

    /// `{prefix}rl:{len(name)}:{name}:{key}`: the length makes names with `:` unambiguous.
    fn limit_key(&self, name: &str, key: &str) -> String {
        format!("{}rl:{}:{name}:{key}", self.config.key_prefix, name.len())
    }

    /// `{prefix}q:{period_start}:{key}`.
    fn quota_key(&self, key: &str, period_start: i64) -> String {
        format!("{}q:{period_start}:{key}", self.config.key_prefix)
    }
}

/// Nanoseconds as the script's microseconds (fractional: `T` of `3/s` is 333333.333 µs).
fn micros(nanos: Nanos) -> String {
    // f64 keeps 15–16 significant digits: exact to the nanosecond up to ~100 days.
    format!("{}", nanos as f64 / 1000.0)
}

/// Reply: `[admitted 0|1, now_us, tat_us of each key before this request]`.
fn decode_limits(checks: &[(&Limiter, &str)], reply: &[u64]) -> MultiDecision {
    let admitted = reply.first().copied() == Some(1);
    let now = reply.get(1).copied().unwrap_or(0).saturating_mul(1000);
    let tat = |i: usize| reply.get(2 + i).copied().unwrap_or(0).saturating_mul(1000);
    let limits = checks.iter().map(|(l, _)| *l.limit());
    let decisions = limits.enumerate().map(|(i, limit): (usize, Limit)| {
        let (d, new_tat) = gcra::evaluate(tat(i), now, &limit);
        if admitted && !d.allowed {
            // The script is the judge; µs rounding may only differ at the very edge.
            return gcra::state_decision(new_tat, now, &limit, true);
        }
        d
    });
    let mut out = gcra::headline(decisions, Source::Redis);
    if !admitted && out.decision.allowed {
        let interval = checks.get(out.index).map_or(0, |(l, _)| l.limit().interval_nanos());
        out.decision.allowed = false;
        out.decision.remaining = 0;
        out.decision.retry_after = Some(Duration::from_nanos(interval));
    }
    out
}
