//! Decisions sharing pipelined connections, against a real Redis: the machine's
//! (`REDIS_URL`, default `redis://127.0.0.1:6379`) for counting, and a `redis-server` of our
//! own on a free port for the tests that kill its connections, flush its scripts or stop it.
//! With `CI=true` nothing is skipped: a missing Redis fails.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_state::{
    Engine, Limit, Limiter, OnRedisError, Quota, QuotaPeriod, Rate, RedisConfig, Source, SystemClock,
};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("ptest:{test}:{}:{nanos}:", std::process::id())
}

fn machine_redis_or_skip() -> bool {
    let ok = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but no Redis at {}", redis_url());
        eprintln!("skipped: no Redis at {}", redis_url());
    }
    ok
}

/// `burst` at once, then one a day: nothing refills while a test runs.
fn daily(burst: u32) -> Limit {
    Limit::new(Rate::Count { count: 1, period: Duration::from_secs(86_400) }, Some(burst)).expect("valid limit")
}

fn engine(url: &str, test: &str, mode: OnRedisError, timeout: Duration) -> Arc<Engine> {
    let cfg = RedisConfig {
        key_prefix: prefix(test),
        on_error: mode,
        timeout,
        backoff: Duration::from_millis(100),
        ..RedisConfig::new(url)
    };
    Arc::new(Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine"))
}

/// 1,000 decisions on one key from 40 tasks: exactly `burst` admitted, and the admitted ones
/// saw every `remaining` from `burst − 1` down to 0 once — none lost, none counted twice —
/// just as 1,000 sequential decisions on another key do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_count_exactly_like_sequential_ones() {
    if !machine_redis_or_skip() {
        return;
    }
    let engine = engine(&redis_url(), "concurrent", OnRedisError::Deny, Duration::from_secs(5));
    let limiter = Arc::new(Limiter::new("per_ip", daily(500)));
    let mut sequential = Vec::new();
    for _ in 0..1_000 {
        sequential.push(engine.check(&[(&limiter, "sequential")]).await);
    }
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (engine, limiter) = (engine.clone(), limiter.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..25 {
                seen.push(engine.check(&[(&limiter, "concurrent")]).await);
            }
            seen
        }));
    }
    let mut concurrent = Vec::new();
    for t in tasks {
        concurrent.extend(t.await.expect("task"));
    }
    for decisions in [&sequential, &concurrent] {
        assert!(decisions.iter().all(|d| d.source == Source::Redis), "a call failed");
        let admitted: Vec<u32> = decisions.iter().filter(|d| d.allowed()).map(|d| d.decision.remaining).collect();
        assert_eq!(admitted.len(), 500);
        assert_eq!(admitted.iter().copied().collect::<BTreeSet<_>>(), (0..500).collect::<BTreeSet<_>>());
    }
}

/// Rate limits and quotas of different sizes interleaved from many tasks on shared
/// connections: each caller's answers fit its own key (a reply handed to the wrong caller
/// would not decode, or would count another key's requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_limit_and_quota_calls_in_one_pipeline_answer_their_own_caller() {
    if !machine_redis_or_skip() {
        return;
    }
    let engine = engine(&redis_url(), "mixed", OnRedisError::Deny, Duration::from_secs(5));
    let mut tasks = Vec::new();
    for t in 0..24u32 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let limiter = Limiter::new("per_user", daily(t + 2));
            let quota = Quota { limit: u64::from(t) + 1, period: QuotaPeriod::Day };
            let key = format!("task{t}");
            for i in 0..t + 6 {
                let d = engine.check(&[(&limiter, &key)]).await;
                assert_eq!(d.source, Source::Redis);
                assert_eq!(d.allowed(), i < t + 2, "task {t}, call {i}: {d:?}");
                if d.allowed() {
                    assert_eq!(d.decision.remaining, t + 1 - i, "task {t}, call {i}");
                }
                let q = engine.try_consume(&key, &quota).await;
                assert!(!q.degraded);
                assert_eq!(
                    (q.allowed, q.used),
                    (u64::from(i) <= u64::from(t), (u64::from(i) + 1).min(u64::from(t) + 1))
                );
            }
            let usage = engine.quota_usage(&key, &quota).await;
            assert_eq!(usage.used, u64::from(t) + 1, "task {t}");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(engine.redis_status().map(|s| s.failures), Some(0));
}

/// A `redis-server` of our own, killed when dropped.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let own = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while own.admin().is_err() {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        own
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain connection of the test's own, to act on the server.
    fn admin(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_millis(500))
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decides until Redis answers again (or fails the test after 10 s).
async fn until_redis(engine: &Engine, limiter: &Limiter, key: &str) -> portcullis_state::MultiDecision {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = engine.check(&[(limiter, key)]).await;
        if d.source == Source::Redis {
            return d;
        }
        assert!(Instant::now() < deadline, "decisions never went back to Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `CLIENT KILL` of every connection the gateway holds, then `SCRIPT FLUSH`: the connections
/// come back, the script is loaded again on `NOSCRIPT`, and the counts carry on where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_and_a_flushed_script_cache_recover() {
    let redis = OwnRedis::start();
    let engine = engine(&redis.url(), "kill", OnRedisError::Deny, Duration::from_secs(2));
    let limiter = Limiter::new("per_ip", daily(10));
    for i in 0..3 {
        let d = until_redis(&engine, &limiter, "k").await;
        assert_eq!(d.decision.remaining, 9 - i);
    }
    let mut admin = redis.admin().expect("admin");
    let killed: u32 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .expect("client kill");
    assert!(killed >= 1, "the gateway held no connection");
    let d = until_redis(&engine, &limiter, "k").await;
    assert_eq!(d.decision.remaining, 6, "the count carried on after the reconnect");
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut admin).expect("script flush");
    let failures = engine.redis_status().map(|s| s.failures);
    let d = engine.check(&[(&limiter, "k")]).await;
    assert_eq!((d.source, d.decision.remaining), (Source::Redis, 5), "NOSCRIPT is answered by loading the script");
    assert_eq!(engine.redis_status().map(|s| s.failures), failures, "NOSCRIPT is no failure");
}

/// A Redis that stops answering (SIGSTOP: connections stay open, nothing comes back): every
/// decision, concurrent ones included, is made by `on_redis_error` once the timeout passes,
/// and after SIGCONT decisions are back on Redis.
async fn a_stalled_redis_times_out_into(mode: OnRedisError) {
    let redis = OwnRedis::start();
    let engine = engine(&redis.url(), mode.as_str(), mode, Duration::from_millis(100));
    let limiter = Arc::new(Limiter::new("per_ip", daily(3)));
    until_redis(&engine, &limiter, "warm").await;
    redis.signal("-STOP");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (engine, limiter) = (engine.clone(), limiter.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let d = engine.check(&[(&limiter, &format!("stalled{t}"))]).await;
            // Bounded by the timeout: a hang would be caught here, long before a test runner's.
            assert!(started.elapsed() < Duration::from_secs(5), "a decision hung: {:?}", started.elapsed());
            d
        }));
    }
    for t in tasks {
        let d = t.await.expect("task");
        assert_eq!(d.source, Source::Degraded(mode));
        match mode {
            OnRedisError::Local | OnRedisError::Allow => assert!(d.allowed(), "{d:?}"),
            OnRedisError::Deny => assert!(!d.allowed(), "{d:?}"),
        }
    }
    let status = engine.redis_status().expect("redis configured");
    assert!(status.last_degraded && status.failures >= 1);
    redis.signal("-CONT");
    until_redis(&engine, &limiter, "after").await;
    assert_eq!(engine.redis_status().map(|s| s.last_degraded), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_falls_back_to_local_limits() {
    a_stalled_redis_times_out_into(OnRedisError::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_admits_in_allow_mode() {
    a_stalled_redis_times_out_into(OnRedisError::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_refuses_in_deny_mode() {
    a_stalled_redis_times_out_into(OnRedisError::Deny).await;
}
