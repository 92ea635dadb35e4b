use std::time::Duration;

use super::*;

const SEC: Nanos = 1_000_000_000;

fn limit(count: u32, period_secs: u64, burst: Option<u32>) -> Limit {
    let rate = Rate::Count { count, period: Duration::from_secs(period_secs) };
    Limit::new(rate, burst).expect("valid limit")
}

#[test]
fn fresh_key_shows_full_headers_then_counts_down() {
    let l = limit(10, 1, Some(20));
    let start = 1000 * SEC;
    let (d, tat) = evaluate(0, start, &l);
    assert!(d.allowed);
    assert_eq!((d.limit, d.remaining), (20, 19));
    assert_eq!(d.reset_after, Duration::from_millis(100));
    assert_eq!(d.retry_after, None);
    let (d, _) = evaluate(tat, start, &l);
    assert_eq!(d.remaining, 18);
    assert_eq!(d.reset_after, Duration::from_millis(200));
}

#[test]
fn denial_says_when_one_request_would_pass() {
    let l = limit(1, 1, Some(2));
    let now = 50 * SEC;
    let (_, tat) = evaluate(0, now, &l);
    let (_, tat) = evaluate(tat, now, &l);
    let (d, _) = evaluate(tat, now + SEC / 4, &l);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after, Some(Duration::from_millis(750)));
    assert_eq!(d.reset_after, Duration::from_millis(1750));
    assert_eq!(ceil_seconds(d.reset_after), 2);
}

#[test]
fn default_burst_is_one_period_of_requests() {
    assert_eq!(limit(100, 60, None).burst(), 100);
    let half = Limit::new(Rate::PerSecond(0.5), None).expect("valid");
    assert_eq!(half.burst(), 1);
    assert_eq!(half.interval_nanos(), 2 * SEC);
    let ten = Limit::new(Rate::PerSecond(10.0), None).expect("valid");
    assert_eq!(ten.burst(), 10);
}

#[test]
fn nonsense_limits_are_errors_not_panics() {
    let bad = [
        Limit::new(Rate::PerSecond(0.0), None),
        Limit::new(Rate::PerSecond(-1.0), None),
        Limit::new(Rate::PerSecond(f64::NAN), None),
        Limit::new(Rate::PerSecond(f64::INFINITY), None),
        Limit::new(Rate::PerSecond(1e12), None),
        Limit::new(Rate::PerSecond(1e-300), None),
        Limit::new(Rate::Count { count: 0, period: Duration::from_secs(1) }, None),
        Limit::new(Rate::Count { count: 5, period: Duration::ZERO }, None),
        Limit::new(Rate::Count { count: 1, period: Duration::from_secs(1) }, Some(0)),
        Limit::new(Rate::Count { count: 1, period: Duration::from_secs(86_400 * 365) }, Some(u32::MAX)),
    ];
    for result in bad {
        assert!(result.is_err(), "{result:?}");
    }
}

#[test]
fn extreme_times_do_not_overflow() {
    let l = limit(1, 1, Some(3));
    for (tat, now) in [(u64::MAX, 0), (u64::MAX, u64::MAX), (0, u64::MAX), (u64::MAX - 1, 5)] {
        let _ = evaluate(tat, now, &l);
        let _ = peek(tat, now, &l);
    }
}

#[test]
fn headline_prefers_the_denial_with_the_longest_wait() {
    let short = Decision {
        allowed: false,
        limit: 5,
        remaining: 0,
        reset_after: Duration::from_secs(1),
        retry_after: Some(Duration::from_secs(1)),
    };
    let long = Decision { retry_after: Some(Duration::from_secs(9)), ..short };
    let ok = Decision::unenforced(&limit(1, 1, None));
    let h = headline([ok, short, long].into_iter(), Source::Local);
    assert_eq!(h.index, 2);
    assert!(!h.allowed());
}
