use std::time::{Duration, Instant};

use http::{Response, StatusCode};

use super::{blame, passive_ok, wait_on_until};
use portcullis_core::UpstreamError as ProxyError;
use portcullis_core::record::BodyStats;

const TIMEOUT: Duration = Duration::from_secs(30);

fn answer(status: StatusCode) -> Result<Response<()>, ProxyError> {
    let mut r = Response::new(());
    *r.status_mut() = status;
    Ok(r)
}

#[test]
fn the_response_timeout_counts_from_the_end_of_the_clients_body() {
    // An hour ahead, so instants before it never underflow the clock.
    let now = Instant::now() + Duration::from_secs(3600);
    let arriving = BodyStats::seen(true, None, false);
    assert_eq!(wait_on_until(&arriving, TIMEOUT, now), Some(now + TIMEOUT), "a body still arriving");
    let just_ended = now - Duration::from_secs(5);
    let ended = BodyStats::seen(false, Some(just_ended), false);
    assert_eq!(wait_on_until(&ended, TIMEOUT, now), Some(just_ended + TIMEOUT), "the upstream gets its full time");
    let long_ago = BodyStats::seen(false, Some(now - TIMEOUT), false);
    assert_eq!(wait_on_until(&long_ago, TIMEOUT, now), None);
    let not_taken = BodyStats::seen(false, None, false);
    assert_eq!(wait_on_until(&not_taken, TIMEOUT, now), None, "an upstream that stopped taking the body");
}

#[test]
fn failures_while_the_body_arrives_never_count_against_the_target_but_a_failed_connect_does() {
    let arriving = BodyStats::seen(true, None, false);
    let done = BodyStats::seen(false, Some(Instant::now()), false);
    for failure in [ProxyError::Timeout, ProxyError::Invalid] {
        assert_eq!(passive_ok::<()>(&Err(failure), Some(&arriving)), None);
    }
    assert_eq!(passive_ok(&answer(StatusCode::GATEWAY_TIMEOUT), Some(&arriving)), None);
    assert_eq!(passive_ok::<()>(&Err(ProxyError::Connect), Some(&arriving)), Some(false));
    assert_eq!(passive_ok::<()>(&Err(ProxyError::Timeout), Some(&done)), Some(false));
    assert_eq!(passive_ok::<()>(&Err(ProxyError::Timeout), None), Some(false));
    assert_eq!(passive_ok(&answer(StatusCode::OK), Some(&arriving)), Some(true));
    for client in [ProxyError::ClientTimeout, ProxyError::ClientBody, ProxyError::BodyTooLarge] {
        assert_eq!(passive_ok::<()>(&Err(client), Some(&done)), None);
    }
}

#[test]
fn whatever_the_exchange_reports_after_the_body_stalled_is_the_clients_timeout() {
    let stalled = BodyStats::seen(false, None, true);
    assert!(matches!(blame(ProxyError::Invalid, Some(&stalled)), ProxyError::ClientTimeout));
    assert!(matches!(blame(ProxyError::Timeout, Some(&stalled)), ProxyError::ClientTimeout));
    let fine = BodyStats::seen(false, Some(Instant::now()), false);
    assert!(matches!(blame(ProxyError::Invalid, Some(&fine)), ProxyError::Invalid));
}
