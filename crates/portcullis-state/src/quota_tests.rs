use super::*;

fn unix(y: i64, m: u32, d: u32, hh: i64, mm: i64, ss: i64) -> i64 {
    days_from_civil(y, m, d) * SECONDS_PER_DAY + hh * 3600 + mm * 60 + ss
}

#[test]
fn civil_dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
    assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1);
    for days in (-800_000..800_000).step_by(997) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
}

#[test]
fn month_ends_at_midnight_utc_of_the_first() {
    let (start, end) = QuotaPeriod::Month.bounds(unix(2025, 1, 31, 23, 59, 59));
    assert_eq!(start, unix(2025, 1, 1, 0, 0, 0));
    assert_eq!(end, unix(2025, 2, 1, 0, 0, 0));
    let (start, _) = QuotaPeriod::Month.bounds(unix(2025, 2, 1, 0, 0, 0));
    assert_eq!(start, unix(2025, 2, 1, 0, 0, 0));
    let (_, end) = QuotaPeriod::Month.bounds(unix(2025, 4, 15, 12, 0, 0));
    assert_eq!(end - unix(2025, 4, 1, 0, 0, 0), 30 * SECONDS_PER_DAY);
}

#[test]
fn february_29_belongs_to_february_in_leap_years() {
    let leap_day = unix(2024, 2, 29, 18, 0, 0);
    assert_eq!(civil_from_days(leap_day.div_euclid(SECONDS_PER_DAY)), (2024, 2, 29));
    let (start, end) = QuotaPeriod::Month.bounds(leap_day);
    assert_eq!((end - start) / SECONDS_PER_DAY, 29);
    assert_eq!(end, unix(2024, 3, 1, 0, 0, 0));
    let (s, e) = QuotaPeriod::Month.bounds(unix(2023, 2, 10, 0, 0, 0));
    assert_eq!((e - s) / SECONDS_PER_DAY, 28);
    let (s, e) = QuotaPeriod::Day.bounds(leap_day);
    assert_eq!((s, e), (unix(2024, 2, 29, 0, 0, 0), unix(2024, 3, 1, 0, 0, 0)));
}

#[test]
fn december_31_rolls_into_the_next_year() {
    let t = unix(2024, 12, 31, 23, 59, 59);
    assert_eq!(QuotaPeriod::Month.bounds(t), (unix(2024, 12, 1, 0, 0, 0), unix(2025, 1, 1, 0, 0, 0)));
    assert_eq!(QuotaPeriod::Day.bounds(t), (unix(2024, 12, 31, 0, 0, 0), unix(2025, 1, 1, 0, 0, 0)));
}

#[test]
fn times_before_1970_and_far_ones_do_not_panic() {
    for t in [i64::MIN / 2, -1, 0, i64::MAX / 2] {
        let (s, e) = QuotaPeriod::Month.bounds(t);
        assert!(s <= t && t < e);
        let (s, e) = QuotaPeriod::Day.bounds(t);
        assert!(s <= t && t < e);
    }
}

#[test]
fn quota_counts_only_what_it_admits_and_resets_with_the_period() {
    let q = LocalQuotas::new();
    let quota = Quota { limit: 3, period: QuotaPeriod::Day };
    let t = unix(2025, 6, 1, 23, 59, 0);
    let used: Vec<_> = (0..5).map(|_| q.try_consume("acme", &quota, t)).collect();
    assert_eq!(used.iter().filter(|d| d.allowed).count(), 3);
    assert_eq!(used[4].used, 3);
    assert_eq!(used[4].remaining, 0);
    assert_eq!(used[4].resets_at, unix(2025, 6, 2, 0, 0, 0));
    assert_eq!(used[4].retry_after_seconds(t), 60);
    assert!(!q.peek("acme", &quota, t).allowed);
    assert!(q.peek("other", &quota, t).allowed);
    let next_day = q.try_consume("acme", &quota, unix(2025, 6, 2, 0, 0, 1));
    assert!(next_day.allowed);
    assert_eq!(next_day.used, 1);
}

#[test]
fn snapshot_and_restore_keep_usage_across_a_restart() {
    let quota = Quota { limit: 100, period: QuotaPeriod::Month };
    let t = unix(2025, 6, 10, 0, 0, 0);
    let before = LocalQuotas::new();
    for _ in 0..7 {
        before.try_consume("acme", &quota, t);
    }
    let saved = before.snapshot();
    assert_eq!(saved, vec![QuotaUsage { key: "acme".into(), period_start: unix(2025, 6, 1, 0, 0, 0), used: 7 }]);
    let after = LocalQuotas::new();
    after.restore(saved.clone());
    after.restore(saved);
    assert_eq!(after.try_consume("acme", &quota, t).used, 8);
    after.sweep(unix(2025, 7, 1, 0, 0, 0));
    assert!(after.snapshot().is_empty());
}
