//! JWT verification: RS256 and ES256 with the verified-token cache missed (a fresh provider
//! per iteration, built outside the timing) and RS256 answered from the cache, which is what
//! a client repeating its token costs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::jwt::{JwtProvider, JwtSettings, RefreshEvents, StaticJwksSource};

struct NoEvents;

impl RefreshEvents for NoEvents {
    fn refreshed(&self, _provider: &str, _result: &'static str) {}
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("../tests/fixtures/rsa1.pkcs1.der"))
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../tests/fixtures/ec1.pkcs8.der"))
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> serde_json::Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("JWK serializes")
}

fn token(key: &EncodingKey, alg: Algorithm, kid: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let claims = serde_json::json!({
        "iss": "https://login.example.com/tenant/v2.0", "aud": "api://orders", "sub": "alice",
        "exp": now + 3600, "iat": now, "scope": "orders:read orders:write", "email": "alice@example.com",
    });
    let header = Header { kid: Some(kid.to_owned()), ..Header::new(alg) };
    jsonwebtoken::encode(&header, &claims, key).expect("signs")
}

fn provider(rt: &tokio::runtime::Runtime, jwks: &Bytes) -> Arc<JwtProvider> {
    let settings = JwtSettings {
        provider: Arc::from("corp"),
        issuer: "https://login.example.com/tenant/v2.0".to_owned(),
        jwks_uri: None,
        ca: None,
        audiences: vec!["api://orders".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        leeway: Duration::from_secs(60),
    };
    let provider = JwtProvider::new(settings, Arc::new(StaticJwksSource(jwks.clone())), Arc::new(NoEvents));
    rt.block_on(provider.clone().refetch_for_unknown_kid());
    provider
}

fn verify(c: &mut Criterion) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let jwks = Bytes::from(
        serde_json::json!({ "keys": [jwk(&rsa(), Algorithm::RS256, "rs1"), jwk(&ec(), Algorithm::ES256, "ec1")] })
            .to_string(),
    );
    let rs256 = token(&rsa(), Algorithm::RS256, "rs1");
    let es256 = token(&ec(), Algorithm::ES256, "ec1");

    for (name, token) in [("verify/rs256_cold", &rs256), ("verify/es256_cold", &es256)] {
        c.bench_function(name, |b| {
            b.iter_batched_ref(
                || provider(&rt, &jwks),
                |provider| black_box(provider.verify(black_box(token), now).expect("valid")),
                BatchSize::SmallInput,
            );
        });
    }
    let warm = provider(&rt, &jwks);
    warm.verify(&rs256, now).expect("valid");
    c.bench_function("verify/rs256_cached", |b| {
        b.iter(|| black_box(warm.verify(black_box(&rs256), now).expect("valid")))
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
