use std::time::Duration;

use super::*;
use crate::gcra::Rate;

const SEC: Nanos = 1_000_000_000;

fn limiter(name: &str, per_sec: u32, burst: u32) -> Limiter {
    let rate = Rate::Count { count: per_sec, period: Duration::from_secs(1) };
    Limiter::new(name, Limit::new(rate, Some(burst)).expect("valid limit"))
}

#[test]
fn exactly_burst_pass_at_once_then_about_rate_per_second() {
    let l = limiter("per_ip", 10, 20);
    let start = 100 * SEC;
    let at_once = (0..100).filter(|_| l.check("1.2.3.4", start).allowed).count();
    assert_eq!(at_once, 20);
    // Then 10 s of a client hammering every millisecond: about 10 per second get through.
    let mut passed = 0;
    for ms in 1..=10_000u64 {
        if l.check("1.2.3.4", start + ms * 1_000_000).allowed {
            passed += 1;
        }
    }
    assert!((99..=101).contains(&passed), "{passed}");
}

#[test]
fn keys_are_isolated() {
    let l = limiter("per_ip", 1, 3);
    let now = 5 * SEC;
    for _ in 0..10 {
        l.check("noisy", now);
    }
    assert!(!l.check("noisy", now).allowed);
    let quiet = l.check("quiet", now);
    assert!(quiet.allowed);
    assert_eq!(quiet.remaining, 2);
}

#[test]
fn a_request_refused_by_one_limit_takes_nothing_from_the_others() {
    let user = limiter("per_user", 1, 5);
    let plan = limiter("plan", 1, 2);
    let now = 10 * SEC;
    let checks = [(&user, "alice"), (&plan, "acme")];
    assert!(check_all(&checks, now).allowed());
    let second = check_all(&checks, now);
    assert!(second.allowed());
    assert_eq!(second.index, 1, "the plan is the tightest");
    assert_eq!(second.decision.remaining, 0);
    for _ in 0..10 {
        let refused = check_all(&checks, now);
        assert!(!refused.allowed());
        assert_eq!(refused.index, 1);
        assert_eq!(refused.decision.retry_after, Some(Duration::from_secs(1)));
    }
    // per_user was charged only for the two admitted requests.
    assert_eq!(user.peek("alice", now).remaining, 3);
}

#[test]
fn one_limit_through_check_all_decides_as_the_limiter_does() {
    let alone = limiter("per_ip", 2, 3);
    let reference = limiter("per_ip", 2, 3);
    let now = 7 * SEC;
    for step in 0..12u64 {
        let at = now + step * SEC / 4;
        let multi = check_all(&[(&alone, "k")], at);
        let single = reference.check("k", at);
        assert_eq!(multi.index, 0);
        assert_eq!(multi.decision, single, "step {step}");
    }
    // A refusal took nothing: both sit at the same TAT.
    assert_eq!(alone.tat("k"), reference.tat("k"));
}

#[test]
fn idle_keys_are_swept_and_the_cap_holds() {
    let rate = Rate::Count { count: 1, period: Duration::from_secs(1) };
    let opts = LocalOptions { max_keys: 64, shards: 4 };
    let l = Limiter::with_options("per_ip", Limit::new(rate, Some(1)).expect("valid"), opts);
    let now = 10 * SEC;
    for i in 0..1_000 {
        l.check(&format!("10.0.{}.{}", i / 256, i % 256), now);
    }
    assert!(l.len() <= 64, "{}", l.len());
    assert!(l.evictions() > 0);
    // One second later every TAT has passed: a sweep frees everything.
    l.sweep(now + SEC);
    assert!(l.is_empty());
}

#[test]
fn new_keys_sweep_expired_ones_without_a_background_task() {
    let rate = Rate::Count { count: 1, period: Duration::from_secs(1) };
    let opts = LocalOptions { max_keys: 1_000, shards: 1 };
    let l = Limiter::with_options("per_ip", Limit::new(rate, Some(1)).expect("valid"), opts);
    for i in 0..500 {
        l.check(&format!("a{i}"), 10 * SEC);
    }
    assert_eq!(l.len(), 500);
    l.check("late", 20 * SEC);
    assert_eq!(l.len(), 1);
    assert_eq!(l.evictions(), 0);
}

#[test]
fn peek_consumes_nothing() {
    let l = limiter("x", 1, 2);
    for _ in 0..5 {
        assert_eq!(l.peek("k", SEC).remaining, 2);
    }
}

#[test]
fn many_limits_on_one_request_report_the_tightest() {
    let limiters: Vec<_> = (1..=10).map(|i| limiter(&format!("l{i}"), 1, i + 1)).collect();
    let checks: Vec<_> = limiters.iter().map(|l| (l, "k")).collect();
    let d = check_all(&checks, SEC);
    assert!(d.allowed());
    assert_eq!((d.index, d.decision.remaining), (0, 1));
    assert!(check_all(&checks, SEC).allowed());
    let refused = check_all(&checks, SEC);
    assert!(!refused.allowed());
    assert_eq!(refused.index, 0);
    assert_eq!(limiters[9].peek("k", SEC).remaining, 9);
}

#[test]
fn concurrent_requests_never_over_admit() {
    let l = std::sync::Arc::new(limiter("shared", 1, 50));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let l = l.clone();
            std::thread::spawn(move || (0..1_000).filter(|_| check_all(&[(&l, "k")], SEC).allowed()).count())
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    assert_eq!(total, 50);
}
