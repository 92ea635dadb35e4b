//! Against a real Redis: the machine's (`REDIS_URL`, default `redis://127.0.0.1:6379`) for
//! the shared-counter tests, and a `redis-server` of our own on a free port for the failure
//! tests, which kill and restart it. With `CI=true` nothing is skipped: a missing Redis fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_state::{
    Engine, Limit, Limiter, ManualClock, OnRedisError, Quota, QuotaPeriod, Rate, RedisConfig, Source, SystemClock,
    check_all,
};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A prefix no other test or run shares.
fn prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("ptest:{test}:{}:{nanos}:", std::process::id())
}

/// Whether the machine's Redis answers; without it the test is skipped, except in CI.
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

fn limit(count: u32, period: Duration, burst: u32) -> Limit {
    Limit::new(Rate::Count { count, period }, Some(burst)).expect("valid limit")
}

fn config(url: &str, test: &str, mode: OnRedisError) -> RedisConfig {
    RedisConfig { key_prefix: prefix(test), on_error: mode, ..RedisConfig::new(url) }
}

#[tokio::test]
async fn script_decisions_match_the_local_gcra() {
    if !machine_redis_or_skip() {
        return;
    }
    let clock = Arc::new(ManualClock::new(0, 0));
    let mut cfg = config(&redis_url(), "match", OnRedisError::Deny);
    cfg.timeout = Duration::from_secs(2);
    let engine = Engine::with_redis(clock, cfg).expect("engine");
    let lim = limit(5, Duration::from_secs(1), 8);
    let (remote, local) = (Limiter::new("per_ip", lim), Limiter::new("per_ip", lim));
    let mut now_us: u64 = 1_700_000_000_000_000;
    // Bursts, steady trickles and pauses, with gaps that do not divide T evenly.
    let gaps = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50_000, 199_999, 200_001, 0, 0, 1_000_000, 3_000, 0];
    for round in 0..6 {
        for gap in gaps {
            now_us += gap + round;
            let r = engine.check_at(&[(&remote, "k")], now_us).await;
            let l = check_all(&[(&local, "k")], now_us * 1000);
            assert_eq!(r.source, Source::Redis);
            assert_eq!(r.decision, l.decision, "at {now_us}");
        }
    }
}

#[tokio::test]
async fn the_script_is_all_or_nothing_over_several_limits() {
    if !machine_redis_or_skip() {
        return;
    }
    let mut cfg = config(&redis_url(), "multi", OnRedisError::Deny);
    cfg.timeout = Duration::from_secs(2);
    let engine = Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine");
    let user = Limiter::new("per_user", limit(1, Duration::from_secs(60), 5));
    let plan = Limiter::new("plan:bronze", limit(1, Duration::from_secs(60), 2));
    let checks = [(&user, "alice"), (&plan, "acme")];
    let admitted = {
        let mut n = 0;
        for _ in 0..10 {
            let d = engine.check(&checks).await;
            assert_eq!(d.source, Source::Redis);
            n += usize::from(d.allowed());
        }
        n
    };
    assert_eq!(admitted, 2);
    // per_user was charged only for the admitted requests: 3 of its 5 are left.
    let alone = engine.check(&[(&user, "alice")]).await;
    assert!(alone.allowed());
    assert_eq!(alone.decision.remaining, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_limit_of_100_per_minute() {
    if !machine_redis_or_skip() {
        return;
    }
    let prefix = prefix("three");
    let lim = limit(100, Duration::from_secs(60), 100);
    let mut tasks = Vec::new();
    for _instance in 0..3 {
        let cfg = RedisConfig {
            key_prefix: prefix.clone(),
            on_error: OnRedisError::Deny,
            timeout: Duration::from_secs(2),
            ..RedisConfig::new(&redis_url())
        };
        let engine = Arc::new(Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine"));
        let limiter = Arc::new(Limiter::new("per_route", lim));
        for _client in 0..4 {
            let (engine, limiter) = (engine.clone(), limiter.clone());
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u32;
                for _ in 0..100 {
                    let d = engine.check(&[(&limiter, "route:orders")]).await;
                    assert_eq!(d.source, Source::Redis, "a call failed");
                    admitted += u32::from(d.allowed());
                }
                admitted
            }));
        }
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    eprintln!("three instances, 12 clients, 1200 requests: {total} admitted");
    assert!((95..=105).contains(&total), "admitted {total} of 1200");
}

#[tokio::test]
async fn quotas_count_in_redis_and_stop_at_the_limit() {
    if !machine_redis_or_skip() {
        return;
    }
    let mut cfg = config(&redis_url(), "quota", OnRedisError::Deny);
    cfg.timeout = Duration::from_secs(2);
    let engine = Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine");
    let quota = Quota { limit: 3, period: QuotaPeriod::Day };
    let decisions: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(engine.try_consume("acme", &quota).await);
        }
        v
    };
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 3);
    assert_eq!(decisions[4].used, 3);
    let usage = engine.quota_usage("acme", &quota).await;
    assert_eq!((usage.used, usage.remaining), (3, 0));
    assert_eq!(engine.redis_status().map(|s| s.last_degraded), Some(false));
}

#[tokio::test]
async fn measure_the_redis_round_trip() {
    if !machine_redis_or_skip() {
        return;
    }
    let mut cfg = config(&redis_url(), "rtt", OnRedisError::Deny);
    cfg.timeout = Duration::from_secs(2);
    let engine = Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine");
    let one = Limiter::new("per_ip", limit(1_000_000, Duration::from_secs(1), 1_000_000));
    engine.check(&[(&one, "warm")]).await;
    let n = 2_000u32;
    let started = Instant::now();
    for i in 0..n {
        let key = format!("k{}", i % 64);
        assert_eq!(engine.check(&[(&one, &key)]).await.source, Source::Redis);
    }
    let per = started.elapsed() / n;
    eprintln!("redis decision round trip (one limit, sequential): {per:?}");
}

/// A `redis-server` of our own, killed when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed to test on_redis_error");
        let own = Self { port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !own.answers() {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        own
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Traffic through a Redis that dies and comes back: every call bounded, decisions degraded
/// as configured while it is down, and back on Redis once it returns.
async fn redis_dies_and_returns(mode: OnRedisError) {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let cfg = RedisConfig {
        key_prefix: prefix(mode.as_str()),
        on_error: mode,
        timeout: Duration::from_millis(100),
        backoff: Duration::from_millis(200),
        ..RedisConfig::new(&redis.url())
    };
    let engine = Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine");
    let lim = Limiter::new("per_ip", limit(1, Duration::from_secs(60), 5));
    let quota = Quota { limit: 1_000, period: QuotaPeriod::Day };
    let bounded = async |key: &str| {
        let started = Instant::now();
        let d = engine.check(&[(&lim, key)]).await;
        let q = engine.try_consume(key, &quota).await;
        assert!(started.elapsed() < Duration::from_millis(800), "a call hung: {:?}", started.elapsed());
        (d, q)
    };

    let (d, q) = bounded("before").await;
    assert_eq!(d.source, Source::Redis);
    assert!(d.allowed() && q.allowed);

    redis.kill();
    let mut degraded = Vec::new();
    for i in 0..40 {
        let (d, q) = bounded(&format!("down{}", i % 2)).await;
        assert!(d.degraded(), "{d:?}");
        assert_eq!(d.source, Source::Degraded(mode));
        if mode == OnRedisError::Deny {
            // Refused until Redis is tried again, not for the rest of the day.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
            let retry = q.retry_after_seconds(i64::try_from(now).expect("now"));
            assert!(q.degraded && (1..=2).contains(&retry), "{q:?}: retry after {retry} s");
        } else {
            assert!(!q.degraded, "{q:?}");
        }
        degraded.push((d.allowed(), q.allowed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let admitted = degraded.iter().filter(|(a, _)| *a).count();
    match mode {
        // Two keys at burst 5 on this instance's own counters.
        OnRedisError::Local => {
            assert_eq!(admitted, 10);
            assert!(degraded.iter().all(|(_, q)| *q), "local quotas still count");
        }
        OnRedisError::Allow => assert!(degraded.iter().all(|(a, q)| *a && *q)),
        OnRedisError::Deny => assert!(degraded.iter().all(|(a, q)| !*a && !*q)),
    }
    let status = engine.redis_status().expect("redis configured");
    assert!(status.last_degraded && status.failures >= 1 && status.mode == mode);

    let _redis = OwnRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (d, _) = bounded("after").await;
        if d.source == Source::Redis {
            break;
        }
        assert!(Instant::now() < deadline, "decisions never went back to Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.redis_status().map(|s| s.last_degraded), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_local_limits_and_recovers() {
    redis_dies_and_returns(OnRedisError::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_admits_everything_in_allow_mode_and_recovers() {
    redis_dies_and_returns(OnRedisError::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_everything_in_deny_mode_and_recovers() {
    redis_dies_and_returns(OnRedisError::Deny).await;
}
