//! The body of the `jwt_verify` fuzz target, shared with the stable test that replays it
//! (`crates/portcullis-auth/tests/fuzz_bodies.rs`), so CI runs it without nightly.
//!
//! Input without a NUL byte is a token, verified by one provider built once with a fixed JWKS
//! (the RSA and P-256 fixture keys). Input with a NUL byte is split there: the bytes before it
//! are a JWKS document loaded into a fresh provider, the bytes after it a token verified by that
//! provider. JSON and compact JWS never contain a raw NUL, so the byte is a free separator.
//! Either way: an error, never a panic.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use portcullis_auth::jwt::{Algorithm, JwtProvider, JwtSettings, RefreshEvents, StaticJwksSource};

/// The issuer and audience the seed tokens carry (`fuzz/seeds/jwt_verify/`).
pub(crate) const ISSUER: &str = "https://idp.fuzz/tenant";
pub(crate) const AUDIENCE: &str = "api://orders";

/// The public JWKs of `rsa1.pkcs1.der` (`kid: rs1`, RS256) and `ec1.pkcs8.der` (`kid: ec1`,
/// ES256) from `crates/portcullis-auth/tests/fixtures/`, generated once with jsonwebtoken.
pub(crate) const JWKS: &str = include_str!("fixed-jwks.json");

struct NoEvents;

impl RefreshEvents for NoEvents {
    fn refreshed(&self, _provider: &str, _result: &'static str) {}
}

fn provider(algorithms: Vec<Algorithm>) -> Arc<JwtProvider> {
    let settings = JwtSettings {
        provider: Arc::from("fuzz"),
        issuer: ISSUER.to_owned(),
        jwks_uri: None,
        ca: None,
        audiences: vec![AUDIENCE.to_owned()],
        algorithms,
        leeway: Duration::from_secs(60),
    };
    // The source is never fetched from: keys come in through `load_jwks`.
    JwtProvider::new(settings, Arc::new(StaticJwksSource(bytes::Bytes::new())), Arc::new(NoEvents))
}

/// The provider every token-only input meets: RS256 and ES256, the fixed JWKS.
pub(crate) static FIXED: LazyLock<Arc<JwtProvider>> = LazyLock::new(|| {
    let fixed = provider(vec![Algorithm::RS256, Algorithm::ES256]);
    // Invariant of the harness, not of the input: the embedded JWKS holds two usable keys.
    let loaded = fixed.load_jwks(bytes::Bytes::from_static(JWKS.as_bytes())).expect("the fixed JWKS loads");
    assert_eq!(loaded, 2, "the fixed JWKS has two usable keys");
    fixed
});

pub(crate) fn run(data: &[u8]) {
    match data.iter().position(|&b| b == 0) {
        None => check(&FIXED, &String::from_utf8_lossy(data)),
        Some(at) => {
            // An algorithm for each kind of key the gateway verifies (RSA PKCS#1 and PSS,
            // P-256, P-384, Ed25519), so fuzzed keys reach each signature check, and HS256,
            // which it must refuse even when listed.
            let fresh = provider(vec![
                Algorithm::RS256,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
                Algorithm::HS256,
            ]);
            let (jwks, token) = (&data[..at], &data[at + 1..]);
            if fresh.load_jwks(bytes::Bytes::copy_from_slice(jwks)).is_ok() {
                check(&fresh, &String::from_utf8_lossy(token));
            }
        }
    }
}

/// Verifies twice (the second answer may come from the cache) and checks what an accepted
/// token must be: from our issuer, and the same answer both times.
fn check(provider: &JwtProvider, token: &str) {
    let first = provider.verify(token, now());
    let again = provider.verify(token, now());
    if let Ok(verified) = &first {
        assert_eq!(verified.claims.get("iss").and_then(|v| v.as_str()), Some(ISSUER), "accepted a foreign iss");
        assert!(verified.expires_at.is_some(), "accepted a token without exp");
    }
    assert_eq!(first.is_ok(), again.is_ok(), "the cache changed the answer for {token:?}");
}

/// The wall clock in Unix seconds: the fuzzer's seeds carry real expiry times.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
