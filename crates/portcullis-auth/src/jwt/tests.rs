//! Shared helpers for the JWT tests: fixture keys, JWKS documents, hand-made tokens (so that
//! headers and claims can be wrong in every way), providers on a frozen clock, and a tiny
//! JWKS server on 127.0.0.1.

mod fetch;
mod refetch;
mod verify;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::{FetchError, FetchFuture, Fetched, JwksSource, JwtProvider, JwtSettings, REFETCH_INTERVAL, RefreshEvents};

pub(super) const ISSUER: &str = "https://idp.test/tenant";
pub(super) const AUDIENCE: &str = "api://orders";

pub(super) fn rsa1() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../../tests/fixtures/rsa1.pkcs1.der"))
}

pub(super) fn rsa2() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../../tests/fixtures/rsa2.pkcs1.der"))
}

pub(super) fn ec1() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../../tests/fixtures/ec1.pkcs8.der"))
}

/// The public JWK of `key`, with `kid`, `use: sig` and `alg` set.
pub(super) fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("public JWK from a fixture key");
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(jwk).expect("JWK serializes")
}

pub(super) fn jwks(keys: &[Value]) -> Bytes {
    Bytes::from(json!({ "keys": keys }).to_string())
}

/// rsa1 as `rs1`, ec1 as `ec1`.
pub(super) fn standard_jwks() -> Bytes {
    jwks(&[jwk(&rsa1(), Algorithm::RS256, "rs1"), jwk(&ec1(), Algorithm::ES256, "ec1")])
}

pub(super) fn settings() -> JwtSettings {
    JwtSettings {
        provider: Arc::from("corp"),
        issuer: ISSUER.to_owned(),
        jwks_uri: None,
        ca: None,
        audiences: vec![AUDIENCE.to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        leeway: Duration::from_secs(60),
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// Claims that pass with [`settings`].
pub(super) fn claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600, "iat": now(), "scope": "orders:read orders:write" })
}

pub(super) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A compact JWS with exactly this header and these claims, signed with `key` as `alg`.
pub(super) fn raw_token(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let signed = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), key, alg).expect("signing works");
    format!("{signed}.{signature}")
}

pub(super) fn token(alg: Algorithm, key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let alg_name = serde_json::to_value(alg).expect("alg serializes");
    raw_token(&json!({ "alg": alg_name, "typ": "JWT", "kid": kid }), claims, key, alg)
}

pub(super) fn rs256(claims: &Value) -> String {
    token(Algorithm::RS256, &rsa1(), "rs1", claims)
}

#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<&'static str>>);

impl Recorder {
    pub(super) fn results(&self) -> Vec<&'static str> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl RefreshEvents for Recorder {
    fn refreshed(&self, provider: &str, result: &'static str) {
        assert_eq!(provider, "corp");
        self.0.lock().expect("not poisoned").push(result);
    }
}

/// A source that serves whatever document it is given, counts fetches and takes `delay`.
#[derive(Debug)]
pub(super) struct CountingSource {
    pub(super) jwks: Mutex<Result<Bytes, ()>>,
    pub(super) fetches: AtomicUsize,
    pub(super) delay: Duration,
}

impl CountingSource {
    pub(super) fn new(jwks: Bytes, delay: Duration) -> Arc<Self> {
        Arc::new(Self { jwks: Mutex::new(Ok(jwks)), fetches: AtomicUsize::new(0), delay })
    }

    pub(super) fn serve(&self, jwks: Result<Bytes, ()>) {
        *self.jwks.lock().expect("not poisoned") = jwks;
    }

    pub(super) fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksSource for CountingSource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let jwks = self.jwks.lock().expect("not poisoned").clone();
            jwks.map(|jwks| Fetched { jwks, max_age: None }).map_err(|()| FetchError::Timeout)
        })
    }
}

thread_local! {
    /// The tests' clock: the real now when a provider is made, moved by `set_now`.
    static TEST_NOW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl JwtProvider {
    /// A provider on a clock frozen at the real now, with the given refetch interval.
    pub(super) fn for_test(
        settings: JwtSettings,
        source: Arc<dyn JwksSource>,
        events: Arc<dyn RefreshEvents>,
        interval: Duration,
    ) -> Arc<Self> {
        TEST_NOW.with(|at| at.set(now()));
        Self::build(settings, source, events, interval)
    }

    /// Freezes the test clock of this thread at `secs`.
    pub(super) fn set_now(&self, secs: u64) {
        TEST_NOW.with(|at| at.set(secs));
    }

    /// [`JwtProvider::verify`] on this thread's test clock.
    pub(super) fn verify_now(&self, token: &str) -> Result<Arc<super::Verified>, super::JwtError> {
        self.verify(token, TEST_NOW.with(std::cell::Cell::get))
    }

    pub(super) fn load(&self, jwks: Bytes) {
        self.load_jwks(jwks).expect("usable test JWKS");
    }
}

/// A provider with [`standard_jwks`] installed and no working source.
pub(super) fn loaded_provider(settings: JwtSettings) -> Arc<JwtProvider> {
    let source = CountingSource::new(Bytes::new(), Duration::ZERO);
    let provider = JwtProvider::for_test(settings, source, Arc::new(Recorder::default()), REFETCH_INTERVAL);
    provider.load(standard_jwks());
    provider
}
