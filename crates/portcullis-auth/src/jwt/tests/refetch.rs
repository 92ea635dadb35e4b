//! Getting keys: the unknown-kid refetch and its 30 s limit, shared fetches, rotation, and the
//! keys surviving failed fetches.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::*;
use crate::jwt::{JwtError, REFETCH_INTERVAL};

fn counting(delay: Duration) -> (Arc<CountingSource>, Arc<Recorder>) {
    (CountingSource::new(standard_jwks(), delay), Arc::new(Recorder::default()))
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_not_again_within_30_s() {
    let (source, events) = counting(Duration::ZERO);
    let provider = JwtProvider::for_test(settings(), source.clone(), events.clone(), REFETCH_INTERVAL);
    let token = rs256(&claims());
    assert_eq!(provider.verify_now(&token), Err(JwtError::NoKeys));
    assert!(provider.may_refetch(), "never fetched");
    provider.clone().refetch_for_unknown_kid().await;
    assert_eq!(source.count(), 1);
    assert!(provider.verify_now(&token).is_ok());

    let unknown = token_with_kid("rs-new");
    assert_eq!(provider.verify_now(&unknown), Err(JwtError::UnknownKid));
    assert!(!provider.may_refetch(), "fetched less than 30 s ago");
    provider.clone().refetch_for_unknown_kid().await;
    assert_eq!(source.count(), 1, "no second fetch within 30 s");
    assert_eq!(events.results(), ["ok"]);
}

fn token_with_kid(kid: &str) -> String {
    token(Algorithm::RS256, &rsa2(), kid, &claims())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refetches_makes_one_fetch() {
    let (source, events) = counting(Duration::from_millis(200));
    let provider = JwtProvider::for_test(settings(), source.clone(), events, REFETCH_INTERVAL);
    let calls: Vec<_> = (0..100).map(|_| tokio::spawn(provider.clone().refetch_for_unknown_kid())).collect();
    for call in calls {
        call.await.expect("no panic");
    }
    assert_eq!(source.count(), 1);
    assert_eq!(provider.key_count(), 2, "every caller returned after the shared fetch finished");
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
    let (source, _) = counting(Duration::from_millis(100));
    let provider = JwtProvider::for_test(settings(), source.clone(), Arc::new(Recorder::default()), REFETCH_INTERVAL);
    let gave_up = tokio::time::timeout(Duration::from_millis(10), provider.clone().refetch_for_unknown_kid()).await;
    assert!(gave_up.is_err());
    assert!(provider.may_refetch(), "joinable while in flight");
    provider.clone().refetch_for_unknown_kid().await;
    assert_eq!(source.count(), 1, "joined the first fetch");
    assert_eq!(provider.key_count(), 2);
}

#[tokio::test]
async fn rotated_keys_verify_after_a_refetch_without_a_new_provider() {
    let (source, events) = counting(Duration::ZERO);
    let provider = JwtProvider::for_test(settings(), source.clone(), events, Duration::from_millis(50));
    provider.clone().refetch_for_unknown_kid().await;
    let old = rs256(&claims());
    assert!(provider.verify_now(&old).is_ok());

    source.serve(Ok(jwks(&[jwk(&rsa2(), Algorithm::RS256, "rs2")])));
    let new = token(Algorithm::RS256, &rsa2(), "rs2", &claims());
    assert_eq!(provider.verify_now(&new), Err(JwtError::UnknownKid));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(provider.may_refetch());
    provider.clone().refetch_for_unknown_kid().await;
    assert!(provider.verify_now(&new).is_ok());
    assert_eq!(provider.verify_now(&old), Err(JwtError::UnknownKid), "the withdrawn key no longer verifies");
}

#[tokio::test]
async fn failed_and_broken_fetches_keep_the_known_keys() {
    let (source, events) = counting(Duration::ZERO);
    let provider = JwtProvider::for_test(settings(), source.clone(), events.clone(), Duration::ZERO);
    provider.clone().refetch_for_unknown_kid().await;
    assert!(provider.verify_now(&rs256(&claims())).is_ok());

    source.serve(Err(()));
    provider.clone().refetch_for_unknown_kid().await;
    source.serve(Ok(bytes::Bytes::from_static(b"{\"keys\": [")));
    provider.clone().refetch_for_unknown_kid().await;
    source.serve(Ok(jwks(&[serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})])));
    provider.clone().refetch_for_unknown_kid().await;

    assert_eq!(source.count(), 4);
    assert_eq!(events.results(), ["ok", "error", "error", "error"]);
    assert_eq!(provider.key_count(), 2);
    // A token not seen before, so the cache cannot be what answers.
    assert!(provider.verify_now(&token(Algorithm::ES256, &ec1(), "ec1", &claims())).is_ok());
}

#[tokio::test]
async fn background_refresh_fetches_at_once_and_stops_with_the_provider() {
    let (source, events) = counting(Duration::ZERO);
    let provider = JwtProvider::for_test(settings(), source.clone(), events.clone(), REFETCH_INTERVAL);
    provider.spawn_refresh();
    for _ in 0..100 {
        if provider.key_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(provider.key_count(), 2);
    let weak = Arc::downgrade(&provider);
    drop(provider);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(weak.upgrade().is_none(), "the refresh task holds no strong reference");
    assert_eq!(source.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn background_refresh_retries_with_backoff_then_follows_max_age() {
    let (source, events) = counting(Duration::ZERO);
    source.serve(Err(()));
    let provider = JwtProvider::for_test(settings(), source.clone(), events.clone(), REFETCH_INTERVAL);
    provider.spawn_refresh();
    // Attempts at 0, 1, 3, 7 s (backoff 1, 2, 4 s).
    tokio::time::sleep(Duration::from_millis(7_500)).await;
    assert_eq!(source.count(), 4);
    source.serve(Ok(standard_jwks()));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(source.count(), 5, "the next retry after 8 s");
    assert_eq!(provider.key_count(), 2);
    // No max-age: the next refresh in an hour.
    tokio::time::sleep(Duration::from_secs(59 * 60)).await;
    assert_eq!(source.count(), 5);
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    assert_eq!(source.count(), 6);
    assert_eq!(events.results(), ["error", "error", "error", "error", "ok", "ok"]);
}
