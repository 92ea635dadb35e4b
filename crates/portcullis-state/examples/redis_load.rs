//! Load on the Redis backend: `N` rate-limit decisions from `C` concurrent tasks against the
//! machine's Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`), reporting this process's
//! CPU per decision (user + system, from `/proc/self/stat`, all threads) and each decision's
//! latency. Nothing else should run in this process, so its CPU is the client's.
//!
//! ```text
//! N=200000 C=64 THREADS=1 cargo run --release -p portcullis-state --example redis_load
//! ```
//! `THREADS=1` (default) runs a current-thread runtime, as a proxy alone on one core would;
//! `THREADS>1` a multi-thread runtime with that many workers. `MIX=1` makes every other
//! decision a quota (`try_consume`) instead of a rate limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_state::{Engine, Limit, Limiter, OnRedisError, Quota, QuotaPeriod, Rate, RedisConfig, SystemClock};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU of this whole process, in microseconds (clock ticks of 1/100 s).
fn process_cpu_micros() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // `after` starts at field 3 (state), so field 14 is index 11.
    (ticks(11) + ticks(12)) * 10_000
}

fn main() {
    let n = env_or("N", 200_000);
    let c = env_or("C", 64).max(1);
    let threads = env_or("THREADS", 1).max(1);
    let mix = env_or("MIX", 0) == 1;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .expect("runtime");
    rt.block_on(async move {
        let cfg = RedisConfig {
            key_prefix: format!("pload:{}:", std::process::id()),
            on_error: OnRedisError::Deny,
            timeout: Duration::from_secs(2),
            ..RedisConfig::new(&url)
        };
        let engine = Arc::new(Engine::with_redis(Arc::new(SystemClock::new()), cfg).expect("engine"));
        let rate = Rate::Count { count: 1_000_000_000, period: Duration::from_secs(1) };
        let limiter = Arc::new(Limiter::new("per_ip", Limit::new(rate, Some(1_000_000_000)).expect("limit")));
        let quota = Quota { limit: u64::MAX, period: QuotaPeriod::Day };
        for i in 0..2_000 {
            let d = engine.check(&[(&limiter, &format!("warm{}", i % 16))]).await;
            assert!(!d.degraded(), "no Redis at {url}");
        }
        let per_task = n / c;
        let cpu0 = process_cpu_micros();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(c);
        for t in 0..c {
            let (engine, limiter) = (engine.clone(), limiter.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                let mut failed = 0u32;
                for i in 0..per_task {
                    let key = format!("10.0.{}.{}", t % 256, i % 64);
                    let began = Instant::now();
                    let ok = if mix && i % 2 == 1 {
                        !engine.try_consume(&key, &quota).await.degraded
                    } else {
                        !engine.check(&[(&limiter, &key)]).await.degraded()
                    };
                    lat.push(u32::try_from(began.elapsed().as_nanos()).unwrap_or(u32::MAX));
                    failed += u32::from(!ok);
                }
                (lat, failed)
            }));
        }
        let mut lat = Vec::with_capacity(n);
        let mut failed = 0;
        for t in tasks {
            let (l, f) = t.await.expect("task");
            lat.extend(l);
            failed += f;
        }
        let wall = started.elapsed();
        let cpu = process_cpu_micros() - cpu0;
        let done = lat.len();
        lat.sort_unstable();
        let pct = |p: f64| f64::from(lat[((done as f64 * p) as usize).min(done - 1)]) / 1000.0;
        let mean = lat.iter().map(|&l| u64::from(l)).sum::<u64>() as f64 / done as f64 / 1000.0;
        println!(
            "decisions={done} concurrency={c} threads={threads} mix={mix} failed={failed} wall={:.3}s \
             rate={:.0}/s cpu_per_decision={:.2}us latency_mean={mean:.1}us p50={:.1}us p99={:.1}us",
            wall.as_secs_f64(),
            done as f64 / wall.as_secs_f64(),
            cpu as f64 / done as f64,
            pct(0.50),
            pct(0.99),
        );
    });
}
