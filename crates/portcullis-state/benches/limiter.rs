//! Limiter decisions: local (existing key, one and three limits) and, when the machine's Redis
//! answers (`REDIS_URL`, default `redis://127.0.0.1:6379`), the Redis round trip.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_state::{Engine, Limit, Limiter, OnRedisError, Rate, RedisConfig, SystemClock, check_all};

fn limit(per_sec: u32) -> Limit {
    let rate = Rate::Count { count: per_sec, period: Duration::from_secs(1) };
    Limit::new(rate, Some(per_sec * 2)).expect("valid limit")
}

fn local(c: &mut Criterion) {
    let per_ip = Limiter::new("per_ip", limit(1_000_000_000));
    let per_user = Limiter::new("per_user", limit(1_000_000_000));
    let plan = Limiter::new("plan:gold", limit(1_000_000_000));
    // Many live keys, as on a busy gateway; the benched key exists already.
    for i in 0..10_000 {
        per_ip.check(&format!("10.0.{}.{}", i / 256, i % 256), 1);
    }
    let mut now = 1_000u64;
    c.bench_function("local/one_limit", |b| {
        b.iter(|| {
            now += 1;
            black_box(per_ip.check(black_box("10.0.3.7"), now))
        });
    });
    c.bench_function("local/three_limits", |b| {
        b.iter(|| {
            now += 1;
            let checks = [(&per_ip, "10.0.3.7"), (&per_user, "alice"), (&plan, "acme")];
            black_box(check_all(black_box(&checks), now))
        });
    });
}

fn redis(c: &mut Criterion) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return;
    };
    let cfg = RedisConfig {
        key_prefix: format!("pbench:{}:", std::process::id()),
        on_error: OnRedisError::Deny,
        timeout: Duration::from_secs(1),
        ..RedisConfig::new(&url)
    };
    let Ok(engine) = rt.block_on(async { Engine::with_redis(Arc::new(SystemClock::new()), cfg) }) else {
        return;
    };
    let per_ip = Limiter::new("per_ip", limit(1_000_000_000));
    let per_user = Limiter::new("per_user", limit(1_000_000_000));
    if rt.block_on(engine.check(&[(&per_ip, "probe")])).degraded() {
        eprintln!("no Redis at {url}: Redis benches skipped");
        return;
    }
    c.bench_function("redis/one_limit", |b| {
        b.iter(|| rt.block_on(engine.check(&[(&per_ip, "10.0.3.7")])));
    });
    c.bench_function("redis/two_limits", |b| {
        b.iter(|| rt.block_on(engine.check(&[(&per_ip, "10.0.3.7"), (&per_user, "alice")])));
    });
}

criterion_group!(benches, local, redis);
criterion_main!(benches);
