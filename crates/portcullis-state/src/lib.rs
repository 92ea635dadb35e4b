//! The limiter engine: rate limits (GCRA) and quotas (per UTC day or month), kept in this
//! process or shared by every instance through Redis.
//!
//! Data flow: the gateway builds one [`Limiter`] per configured limit (`rate_limits.*` and
//! each plan's rate) and one [`Engine`]. For a request, its rate-limit stage calls
//! [`Engine::check`] with every `(limiter, key)` that applies and answers 429 when the
//! [`MultiDecision`] says no; then [`Engine::try_consume`] counts the request against the
//! consumer's [`Quota`]. Nothing here knows about HTTP or the config file.
//!
//! # The algorithm
//! A limit is an emission interval `T = period / count` and a capacity `burst` (the config's
//! `burst`; when absent, one period's worth: `100/m` → 100, `10/s` → 10). Each key keeps one
//! number, its theoretical arrival time `TAT`. A request at `now` conforms when
//! `max(TAT, now) + T − now ≤ burst·T`, and then sets `TAT = max(TAT, now) + T`. A fresh key
//! therefore takes exactly `burst` requests at once, then one per `T`: a token bucket of
//! capacity `burst` refilled at `rate`, stored in 8 bytes. A key whose `TAT ≤ now` is full, the
//! same as an absent key, so it is forgotten (locally by sweeping, in Redis by its TTL).
//!
//! # Headers (SPEC §3)
//! [`Decision`] carries them for one limit, and [`MultiDecision::decision`] for the tightest:
//! - `RateLimit-Limit` = `limit` (the burst);
//! - `RateLimit-Remaining` = `remaining`: requests that would pass right now, after this one;
//! - `RateLimit-Reset` = `reset_after` rounded up to seconds ([`ceil_seconds`]): until
//!   `remaining` is back to `limit` (`TAT − now`);
//! - `Retry-After` (429 only) = `retry_after` rounded up: until one request would pass
//!   (`TAT + T − burst·T − now`).
//!
//! Several limits on one request are all or nothing: admitted only if every one admits, and a
//! refused request takes no token from any (locally: check all, then commit, see
//! [`check_all`]; in Redis: one script over all the keys).
//!
//! # Redis
//! One `EVALSHA` per decision (sent again as `EVAL` on `NOSCRIPT`, which reloads the script),
//! so there is no read-then-write race between instances. Decisions share round trips: each
//! worker thread has one connection, and the decisions made while a batch is in flight go
//! out together as the next pipeline (one write, one read loop, replies matched in order; see
//! `src/pipe.rs`). The connection speaks RESP2 itself (`src/resp.rs`) over TCP, rustls or a
//! Unix socket; the URL is parsed by the `redis` crate as for [`client`]. Key layout, every
//! key with a TTL:
//! - `{prefix}rl:{len(name)}:{name}:{key}` → TAT in Unix microseconds, `PX` until the TAT
//!   (after which the key means nothing);
//! - `{prefix}q:{period_start}:{key}` → accepted requests in the period starting at Unix
//!   second `period_start`, `EXPIREAT` the period's end plus one hour.
//!
//! The rate script (`src/gcra.lua`) takes `KEYS` = one key per limit and `ARGV` =
//! `[now_us or '', T_1, burst·T_1, T_2, …]` in (fractional) microseconds, and replies
//! `[admitted, now_us, TAT_1 before, …]`; the crate computes the headers from that reply with
//! the same functions as the local store. The quota script (`src/quota.lua`) takes one key and
//! `[limit, expire_at]` and replies `[counted, used]`.
//!
//! Time: the script reads Redis `TIME` by default, so every instance judges against one clock
//! and skew between gateway hosts does not matter. (With the callers' clocks, a host running
//! `d` ahead would see other hosts' TATs as `d` older and admit up to `d / T` extra requests
//! per key.) Quota periods use the gateway's wall clock, where skew only moves the midnight
//! rollover by the skew. Redis Cluster is not supported: one request's keys must live on one
//! node.
//!
//! # Failure modes
//! Every Redis call is bounded ([`RedisConfig::timeout`], 50 ms by default, connecting
//! included). A failure or timeout opens a circuit: Redis is skipped for
//! [`RedisConfig::backoff`] (1 s), then one request probes it and, if it answers, everyone is
//! back on Redis. Meanwhile [`OnRedisError`] decides: `local` uses this instance's counters
//! (so the limit becomes per instance), `allow` admits, `deny` refuses with
//! `Retry-After` = the backoff. Decisions say where they were made ([`Source`],
//! [`MultiDecision::degraded`]) and [`Engine::redis_status`] gives the mode, whether the last
//! decision was degraded, and the failure count. The gateway should answer a `deny` refusal
//! with 503 rather than 429: the client did nothing wrong, and clients that back off on 429
//! would wrongly believe they hit their limit.
//!
//! Local memory is bounded: see [`local`] for the sharding, expiry and the per-limiter cap.

mod clock;
mod engine;
mod error;
mod gcra;
pub mod local;
mod pipe;
mod quota;
mod resp;
/// The Redis reply parser's contract checked on any bytes (fuzzing only; not an API).
#[doc(hidden)]
pub use resp::check_parser as fuzz_check_reply_parser;
mod shared;
mod target;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, RedisStatus};
pub use error::{LimitError, RedisSetupError};
pub use gcra::{Decision, Limit, MultiDecision, Nanos, Rate, Source, ceil_seconds, evaluate, peek};
pub use local::{Limiter, LocalOptions, check_all};
pub use quota::{LocalQuotas, Quota, QuotaDecision, QuotaPeriod, QuotaUsage, civil_from_days, days_from_civil};
pub use shared::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_BACKOFF, DEFAULT_REDIS_TIMEOUT, OnRedisError, RedisConfig, client};
