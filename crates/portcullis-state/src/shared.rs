//! The Redis backend: one `EVALSHA` per decision, sent on the worker thread's pipelined
//! connection (see [`crate::pipe`]), bounded in time, behind a small circuit.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Arc;

use tokio::time::Instant;

use crate::error::RedisSetupError;
use crate::gcra::{self, Limit, MultiDecision, Nanos, Source};
use crate::local::Limiter;
use crate::pipe::{Failed, Pipe};
use crate::quota::{Quota, QuotaDecision};
use crate::resp::{self, Reply};
use crate::target::Target;

/// Default bound on one Redis call, connection included.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Default time Redis is skipped after a failure before one request probes it again.
pub const DEFAULT_REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// Default prefix of every key this crate writes.
pub const DEFAULT_KEY_PREFIX: &str = "portcullis:";
/// Quota keys outlive their period by this long, so a late `/usage` read still sees them.
const QUOTA_KEY_GRACE_SECONDS: i64 = 3_600;
/// At most this many connections per backend, whatever the core count: batches stay large.
const MAX_CONNECTIONS: usize = 16;

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

/// A Lua script: its text, sent once with `EVAL` when the server answers `NOSCRIPT`, and its
/// SHA-1, sent with every `EVALSHA`.
struct Lua {
    body: &'static str,
    sha: String,
}

impl Lua {
    fn new(body: &'static str) -> Self {
        Self { body, sha: redis::Script::new(body).get_hash().to_owned() }
    }
}

/// Hands out the worker threads' slots: a thread keeps its slot for life.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

/// Pipelined connections to Redis (one per core) with the scripts, time bound and circuit.
pub(crate) struct RedisBackend {
    /// Each worker thread sends on one of these (its slot modulo the count), so decisions
    /// made together on a thread share one batch. Never empty.
    pipes: Box<[Pipe]>,
    config: RedisConfig,
    limit_script: Lua,
    quota_script: Lua,
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
    /// Prepares the connections without connecting, so a gateway starts while Redis is down
    /// (the first decision on each connects).
    ///
    /// # Errors
    /// A URL that does not parse, or a CA that is not PEM certificates.
    pub(crate) fn new(config: RedisConfig) -> Result<Self, RedisSetupError> {
        let client = client(&config.url, config.ca_pem.as_deref())?;
        let target = Arc::new(Target::new(&client, config.ca_pem.as_deref()));
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, MAX_CONNECTIONS);
        let pipes = (0..cores).map(|_| Pipe::new(target.clone())).collect();
        Ok(Self {
            pipes,
            config,
            limit_script: Lua::new(LIMIT_SCRIPT),
            quota_script: Lua::new(QUOTA_SCRIPT),
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
        let prefix = self.config.key_prefix.as_bytes();
        let args = |buf: &mut Vec<u8>| {
            for (limiter, key) in checks {
                resp::bulk_parts(buf, &[prefix, limiter.redis().key_head(), key.as_bytes()]);
            }
            match now_us {
                Some(n) => resp::bulk_u64(buf, n),
                None => resp::bulk(buf, b""),
            }
            for (limiter, _) in checks {
                buf.extend_from_slice(limiter.redis().args());
            }
        };
        let (keys, argc) = (checks.len(), checks.len() * 3 + 1);
        let send = async |pipe: &Pipe, deadline| eval(pipe, deadline, &self.limit_script, keys, argc, args).await;
        let reply = self
            .call(mono, send, |reply| match reply {
                Reply::Array(items) => items.iter().map(Reply::as_u64).collect::<Option<Vec<u64>>>(),
                _ => None,
            })
            .await?;
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
        let expire_at = end.saturating_add(QUOTA_KEY_GRACE_SECONDS);
        let args = |buf: &mut Vec<u8>| {
            self.quota_key(buf, key, start);
            resp::bulk_u64(buf, quota.limit);
            resp::bulk(buf, expire_at.to_string().as_bytes());
        };
        let send = async |pipe: &Pipe, deadline| eval(pipe, deadline, &self.quota_script, 1, 3, args).await;
        let (allowed, used) = self
            .call(mono, send, |reply| match reply {
                Reply::Array(items) => match items.as_slice() {
                    [allowed, used] => Some((allowed.as_u64()? == 1, used.as_u64()?)),
                    _ => None,
                },
                _ => None,
            })
            .await?;
        Ok(QuotaDecision::new(allowed, quota, used, end))
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
        let get = |buf: &mut Vec<u8>| {
            resp::array_header(buf, 2);
            resp::bulk(buf, b"GET");
            self.quota_key(buf, key, start);
        };
        let send = async |pipe: &Pipe, deadline| pipe.call(deadline, get).await;
        let used = self
            .call(mono, send, |reply| match reply {
                Reply::Nil => Some(0),
                other => other.as_u64(),
            })
            .await?;
        Ok(QuotaDecision::new(used < quota.limit, quota, used, end))
    }

    pub(crate) fn mark_degraded(&self, degraded: bool) {
        self.last_degraded.store(degraded, Ordering::Relaxed);
    }

    /// One call behind the circuit, bounded by the configured timeout. A reply of the shape
    /// `decode` expects closes the circuit; anything else (no reply in time, a broken
    /// connection, an error reply, a wrong shape) counts as a failure and opens it.
    async fn call<T>(
        &self,
        mono: Nanos,
        send: impl AsyncFnOnce(&Pipe, Instant) -> Result<Reply, Failed>,
        decode: impl FnOnce(Reply) -> Option<T>,
    ) -> Result<T, Unavailable> {
        if !self.circuit_allows(mono) {
            return Err(Unavailable::Backoff);
        }
        let slot = SLOT.with(|slot| *slot);
        let pipe = &self.pipes[slot % self.pipes.len()];
        let value = match send(pipe, Instant::now() + self.config.timeout).await {
            Ok(Reply::Error(_)) | Err(Failed) => None,
            Ok(reply) => decode(reply),
        };
        match value {
            Some(value) => {
                self.skip_until.store(0, Ordering::Release);
                Ok(value)
            }
            None => {
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

    /// Writes `{prefix}q:{period_start}:{key}` as one argument.
    fn quota_key(&self, buf: &mut Vec<u8>, key: &str, period_start: i64) {
        let start = period_start.to_string();
        resp::bulk_parts(buf, &[self.config.key_prefix.as_bytes(), b"q:", start.as_bytes(), b":", key.as_bytes()]);
    }
}

/// `EVALSHA` of `script` with `keys` keys among the `argc` arguments `args` writes; on
/// `NOSCRIPT` (Redis restarted or flushed its scripts) the same call as `EVAL`, which also
/// loads the script again for the next `EVALSHA`.
async fn eval(
    pipe: &Pipe,
    deadline: Instant,
    script: &Lua,
    keys: usize,
    argc: usize,
    args: impl Fn(&mut Vec<u8>),
) -> Result<Reply, Failed> {
    let command = |buf: &mut Vec<u8>, verb: &[u8], script: &[u8]| {
        resp::array_header(buf, 3 + argc);
        resp::bulk(buf, verb);
        resp::bulk(buf, script);
        resp::bulk_u64(buf, keys as u64);
        args(buf);
    };
    let reply = pipe.call(deadline, |buf| command(buf, b"EVALSHA", script.sha.as_bytes())).await?;
    if !reply.is_noscript() {
        return Ok(reply);
    }
    pipe.call(deadline, |buf| command(buf, b"EVAL", script.body.as_bytes())).await
}

/// What the rate script is sent for one limiter, encoded once when the limiter is made.
#[derive(Debug)]
pub(crate) struct LimiterArgs {
    /// `rl:{len(name)}:{name}:`, the key without the prefix before and the request's key after.
    key_head: Box<[u8]>,
    /// `T` and `burst·T` in microseconds, as two RESP bulk strings.
    args: Box<[u8]>,
}

impl LimiterArgs {
    pub(crate) fn new(name: &str, limit: &Limit) -> Self {
        let mut args = Vec::new();
        resp::bulk(&mut args, micros(limit.interval_nanos()).as_bytes());
        resp::bulk(&mut args, micros(limit.tolerance_nanos()).as_bytes());
        Self { key_head: format!("rl:{}:{name}:", name.len()).into_bytes().into(), args: args.into() }
    }

    fn key_head(&self) -> &[u8] {
        &self.key_head
    }

    fn args(&self) -> &[u8] {
        &self.args
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
