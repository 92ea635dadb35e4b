//! Tokens against a loaded key set: what passes, and every way of failing.

use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use super::*;
use crate::jwt::keys::KeySet;
use crate::jwt::{JwtError, TokenFault};

fn verify(token: &str) -> Result<Arc<crate::jwt::Verified>, JwtError> {
    loaded_provider(settings()).verify_now(token)
}

fn with_claim(name: &str, value: serde_json::Value) -> serde_json::Value {
    let mut claims = claims();
    claims[name] = value;
    claims
}

#[test]
fn rs256_token_verifies_with_subject_expiry_and_scopes() {
    let mut claims = claims();
    claims["scp"] = json!(["admin", "orders:read"]);
    let verified = verify(&rs256(&claims)).expect("valid RS256 token");
    assert_eq!(verified.subject.as_deref(), Some("alice"));
    assert_eq!(verified.expires_at, claims["exp"].as_u64());
    assert_eq!(verified.scopes, ["orders:read", "orders:write", "admin"]);
    assert_eq!(verified.claims["iss"], ISSUER);
}

#[test]
fn es256_token_verifies() {
    let verified = verify(&token(Algorithm::ES256, &ec1(), "ec1", &claims())).expect("valid ES256 token");
    assert_eq!(verified.subject.as_deref(), Some("alice"));
}

#[test]
fn every_supported_algorithm_verifies_with_its_own_key_only() {
    let ec384 = EncodingKey::from_ec_der(include_bytes!("../../../tests/fixtures/ec384.pkcs8.der"));
    let ed = EncodingKey::from_ed_der(include_bytes!("../../../tests/fixtures/ed25519.pkcs8.der"));
    let cases = [
        (Algorithm::RS384, rsa1(), "rs"),
        (Algorithm::RS512, rsa1(), "rs"),
        (Algorithm::PS256, rsa1(), "rs"),
        (Algorithm::PS384, rsa1(), "rs"),
        (Algorithm::PS512, rsa1(), "rs"),
        (Algorithm::ES384, ec384, "ec384"),
        (Algorithm::EdDSA, ed, "ed"),
    ];
    for (alg, key, kid) in cases {
        let mut all = settings();
        all.algorithms = vec![alg];
        let provider = loaded_provider(all);
        let mut public = jwk(&key, alg, kid);
        public.as_object_mut().expect("object").remove("alg");
        provider.load(jwks(&[public, jwk(&rsa2(), Algorithm::RS256, "other")]));
        assert!(provider.verify_now(&token(alg, &key, kid, &claims())).is_ok(), "{alg:?}");
        assert_eq!(
            provider
                .verify_now(&token(alg, &key, "other", &claims()))
                .map(|_| ())
                .err()
                .map(|e| e == JwtError::BadSignature || e == JwtError::KeyAlgorithmMismatch),
            Some(true),
            "{alg:?} against another key"
        );
    }
}

#[test]
fn audience_may_be_an_array_and_is_optional_when_none_configured() {
    assert!(verify(&rs256(&with_claim("aud", json!(["other", AUDIENCE])))).is_ok());
    let mut open = settings();
    open.audiences.clear();
    let mut claims = claims();
    claims.as_object_mut().expect("object").remove("aud");
    assert!(loaded_provider(open).verify_now(&rs256(&claims)).is_ok());
}

#[test]
fn expired_token_is_token_expired_after_leeway() {
    let err = verify(&rs256(&with_claim("exp", json!(now() - 61)))).expect_err("expired");
    assert_eq!(err, JwtError::Expired);
    assert_eq!(err.fault(), TokenFault::Expired);
    // Within the 60 s leeway it still passes.
    assert!(verify(&rs256(&with_claim("exp", json!(now() - 30)))).is_ok());
}

#[test]
fn token_not_yet_valid_is_invalid_token() {
    let err = verify(&rs256(&with_claim("nbf", json!(now() + 120)))).expect_err("nbf in the future");
    assert_eq!(err, JwtError::NotYetValid);
    assert_eq!(err.fault(), TokenFault::Invalid);
    assert!(verify(&rs256(&with_claim("nbf", json!(now() + 30)))).is_ok(), "within leeway");
}

#[test]
fn wrong_issuer_and_wrong_audience_are_refused() {
    assert_eq!(verify(&rs256(&with_claim("iss", json!("https://evil.test")))), Err(JwtError::WrongIssuer));
    assert_eq!(verify(&rs256(&with_claim("aud", json!("api://billing")))), Err(JwtError::WrongAudience));
    assert_eq!(verify(&rs256(&with_claim("aud", json!(["a", "b"])))), Err(JwtError::WrongAudience));
    let mut claims = claims();
    claims.as_object_mut().expect("object").remove("aud");
    assert_eq!(verify(&rs256(&claims)), Err(JwtError::WrongAudience), "aud required when audiences are set");
}

#[test]
fn string_exp_is_refused_not_treated_as_absent() {
    let exp = (now() - 3600).to_string();
    assert_eq!(verify(&rs256(&with_claim("exp", json!(exp)))), Err(JwtError::InvalidClaim("exp")));
    assert_eq!(
        verify(&rs256(&with_claim("exp", json!((now() + 600).to_string())))),
        Err(JwtError::InvalidClaim("exp"))
    );
    let mut claims = claims();
    claims.as_object_mut().expect("object").remove("exp");
    assert_eq!(verify(&rs256(&claims)), Err(JwtError::InvalidClaim("exp")), "exp is required");
}

#[test]
fn claims_of_the_wrong_type_are_refused() {
    let cases = [
        ("nbf", json!("0"), "nbf"),
        ("iat", json!(true), "iat"),
        ("iss", json!([ISSUER]), "iss"),
        ("aud", json!([AUDIENCE, 7]), "aud"),
        ("aud", json!(7), "aud"),
        ("sub", json!(42), "sub"),
        ("scope", json!(["a"]), "scope"),
        ("scp", json!([1]), "scp"),
        ("exp", json!(-5), "exp"),
        ("exp", json!(null), "exp"),
    ];
    for (name, value, claim) in cases {
        assert_eq!(
            verify(&rs256(&with_claim(name, value.clone()))),
            Err(JwtError::InvalidClaim(claim)),
            "{name}: {value}"
        );
    }
}

#[test]
fn far_future_dates_neither_panic_nor_overflow() {
    let provider = loaded_provider(settings());
    for exp in [json!(u64::MAX), json!(1e300), json!(18_446_744_073_709_551_615.0_f64)] {
        let token = rs256(&with_claim("exp", exp.clone()));
        assert!(provider.verify_now(&token).is_ok(), "{exp}");
        assert!(provider.verify_now(&token).is_ok(), "{exp} cached");
    }
    assert_eq!(verify(&rs256(&with_claim("nbf", json!(1e300)))), Err(JwtError::NotYetValid));
}

#[test]
fn load_jwks_refuses_a_document_without_usable_keys_and_keeps_the_old_ones() {
    let provider = loaded_provider(settings());
    assert!(provider.load_jwks(bytes::Bytes::from_static(b"{\"keys\": []}")).is_err());
    assert_eq!(provider.key_count(), 2);
    assert!(provider.verify_now(&rs256(&claims())).is_ok());
}

#[test]
fn fractional_dates_are_accepted() {
    assert!(verify(&rs256(&with_claim("exp", json!(now() as f64 + 600.5)))).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "rs1"})), b64(&claims()));
    assert_eq!(verify(&unsigned), Err(JwtError::AlgorithmNotAllowed));
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "None"})), b64(&claims()));
    assert_eq!(verify(&unsigned), Err(JwtError::AlgorithmNotAllowed));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused_even_if_listed() {
    let public = jwk(&rsa1(), Algorithm::RS256, "rs1");
    // The confusion attack: the public key material (what an attacker has) as HMAC secret.
    for secret in [public["n"].as_str().expect("n").as_bytes(), public.to_string().as_bytes()] {
        let forged = raw_token(
            &json!({"alg": "HS256", "kid": "rs1"}),
            &claims(),
            &EncodingKey::from_secret(secret).expect("secret"),
            Algorithm::HS256,
        );
        assert_eq!(verify(&forged), Err(JwtError::AlgorithmNotAllowed));
        let mut careless = settings();
        careless.algorithms.push(Algorithm::HS256);
        assert_eq!(loaded_provider(careless).verify_now(&forged), Err(JwtError::AlgorithmNotAllowed));
    }
}

#[test]
fn algorithm_outside_the_allow_list_is_refused() {
    let mut rs_only = settings();
    rs_only.algorithms = vec![Algorithm::RS256];
    let es = token(Algorithm::ES256, &ec1(), "ec1", &claims());
    assert_eq!(loaded_provider(rs_only).verify_now(&es), Err(JwtError::AlgorithmNotAllowed));
}

#[test]
fn algorithm_must_fit_the_key_type_and_the_jwk_alg() {
    // An RS256 token naming the EC key.
    assert_eq!(verify(&token(Algorithm::RS256, &rsa1(), "ec1", &claims())), Err(JwtError::KeyAlgorithmMismatch));
    // An ES256 token naming the RSA key.
    assert_eq!(verify(&token(Algorithm::ES256, &ec1(), "rs1", &claims())), Err(JwtError::KeyAlgorithmMismatch));
    // The JWK says RS384: an RS256 token may not use it.
    let mut both = settings();
    both.algorithms = vec![Algorithm::RS256, Algorithm::RS384];
    let provider = loaded_provider(both);
    provider.load(jwks(&[jwk(&rsa1(), Algorithm::RS384, "rs1")]));
    assert_eq!(provider.verify_now(&rs256(&claims())), Err(JwtError::KeyAlgorithmMismatch));
    assert!(provider.verify_now(&token(Algorithm::RS384, &rsa1(), "rs1", &claims())).is_ok());
}

#[test]
fn unknown_kid_and_foreign_signature_are_told_apart() {
    assert_eq!(verify(&token(Algorithm::RS256, &rsa1(), "nope", &claims())), Err(JwtError::UnknownKid));
    assert_eq!(verify(&token(Algorithm::RS256, &rsa2(), "rs1", &claims())), Err(JwtError::BadSignature));
}

#[test]
fn token_without_kid_is_tried_against_keys_of_its_type() {
    let kidless = raw_token(&json!({"alg": "RS256"}), &claims(), &rsa1(), Algorithm::RS256);
    let provider = loaded_provider(settings());
    provider.load(jwks(&[jwk(&rsa2(), Algorithm::RS256, "a"), jwk(&rsa1(), Algorithm::RS256, "b")]));
    assert!(provider.verify_now(&kidless).is_ok());
    let foreign = raw_token(&json!({"alg": "RS256"}), &claims(), &rsa2(), Algorithm::RS256);
    provider.load(jwks(&[jwk(&rsa1(), Algorithm::RS256, "b")]));
    assert_eq!(provider.verify_now(&foreign), Err(JwtError::BadSignature));
}

#[test]
fn crit_header_is_refused() {
    for crit in [json!(["exp"]), json!([]), json!("b64")] {
        let header = json!({"alg": "RS256", "kid": "rs1", "crit": crit});
        assert_eq!(verify(&raw_token(&header, &claims(), &rsa1(), Algorithm::RS256)), Err(JwtError::UnsupportedCrit));
    }
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let mut claims = claims();
    claims["pad"] = json!("x".repeat(crate::jwt::MAX_TOKEN_BYTES));
    assert_eq!(verify(&rs256(&claims)), Err(JwtError::TooLarge));
    assert_eq!(verify(&"a".repeat(crate::jwt::MAX_TOKEN_BYTES + 1)), Err(JwtError::TooLarge));
}

#[test]
fn no_keys_yet_is_its_own_error() {
    let source = CountingSource::new(bytes::Bytes::new(), std::time::Duration::ZERO);
    let provider = JwtProvider::new(settings(), source, Arc::new(Recorder::default()));
    assert_eq!(provider.verify_now(&rs256(&claims())), Err(JwtError::NoKeys));
}

#[test]
fn garbage_is_refused_without_panic() {
    let header = b64(&json!({"alg": "RS256", "kid": "rs1"}));
    let junk = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "a.b.c.d",
        "Bearer x",
        "\u{0}\u{ff}",
        "é.é.é",
        "====.====.====",
        &format!("{header}.."),
        &format!("{header}.e30."),
        &format!("{header}.e30.AAAA"),
        &format!("{}.e30.AAAA", b64(&json!("not an object"))),
        &format!("{}.e30.AAAA", b64(&json!({"alg": 256}))),
        &format!("{}.e30.AAAA", b64(&json!({"alg": "RS256", "kid": 5}))),
        &format!("{}.bm90IGpzb24.AAAA", header),
        &format!("{header}.{}.AAAA", b64(&claims())),
        "eyJhbGciOiJSUzI1NiJ9.eyJ9.e30=",
    ];
    for token in junk {
        assert!(verify(token).is_err(), "{token:?}");
    }
}

#[test]
fn duplicate_claim_or_header_names_are_refused() {
    let header = b64(&json!({"alg": "RS256", "kid": "rs1"}));
    let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"exp":1}}"#, now() + 600);
    let signed = format!("{header}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload));
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &rsa1(), Algorithm::RS256).expect("signs");
    assert_eq!(verify(&format!("{signed}.{sig}")), Err(JwtError::Malformed));
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"HS256","kid":"rs1"}"#);
    let signed = format!("{header}.{}", b64(&claims()));
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &rsa1(), Algorithm::RS256).expect("signs");
    assert_eq!(verify(&format!("{signed}.{sig}")), Err(JwtError::Malformed));
}

#[test]
fn any_single_character_change_is_refused() {
    let provider = loaded_provider(settings());
    let good = token(Algorithm::ES256, &ec1(), "ec1", &claims());
    assert!(provider.verify_now(&good).is_ok());
    for (i, original) in good.char_indices() {
        for replacement in ['A', '.', '-', '_', '='] {
            if replacement == original {
                continue;
            }
            let mut bad = good.clone();
            bad.replace_range(i..=i, &replacement.to_string());
            assert!(provider.verify_now(&bad).is_err(), "changed at {i} to {replacement}");
        }
    }
}

#[test]
fn descriptions_never_echo_the_token() {
    let token = rs256(&with_claim("iss", json!("<script>")));
    let err = verify(&token).expect_err("wrong issuer");
    assert!(!err.description().contains("script") && !err.to_string().contains("script"));
}

#[test]
fn cached_result_is_the_same_and_expiry_is_checked_again() {
    let provider = loaded_provider(settings());
    let exp = now() + 300;
    let token = rs256(&with_claim("exp", json!(exp)));
    let first = provider.verify_now(&token).expect("valid");
    let second = provider.verify_now(&token).expect("cached");
    assert!(Arc::ptr_eq(&first, &second), "second verification came from the cache");
    provider.set_now(exp + 61);
    assert_eq!(provider.verify_now(&token), Err(JwtError::Expired));
}

#[test]
fn a_cache_key_collision_is_a_miss_not_another_tokens_claims() {
    let provider = loaded_provider(settings());
    let alice = rs256(&claims());
    let mallory = rs256(&with_claim("sub", json!("mallory")));
    let verified = provider.verify_now(&mallory).expect("valid");
    // Pretend alice's token hashes to where mallory's entry sits.
    let entry = crate::jwt::cache::Entry {
        token: Arc::from(mallory.as_str()),
        verified,
        valid_until: now() + 600,
        generation: provider.current.load().generation,
    };
    provider.cache.insert(provider.cache.key(&alice), entry);
    assert_eq!(provider.verify_now(&alice).expect("valid").subject.as_deref(), Some("alice"));
}

#[test]
fn a_key_set_change_drops_cached_tokens() {
    let provider = loaded_provider(settings());
    let token = rs256(&claims());
    assert!(provider.verify_now(&token).is_ok());
    provider.load(jwks(&[jwk(&ec1(), Algorithm::ES256, "ec1")]));
    assert_eq!(provider.verify_now(&token), Err(JwtError::UnknownKid), "rs1 was withdrawn");
}

#[test]
fn unusable_jwks_entries_are_skipped() {
    let mut enc = jwk(&rsa2(), Algorithm::RS256, "enc");
    enc["use"] = json!("enc");
    let doc = jwks(&[
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "OKP", "crv": "X25519", "x": "AAAA", "kid": "x"}),
        json!({"kty": "EC", "crv": "P-521", "x": "AAAA", "y": "AAAA", "kid": "p521"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"}),
        json!({"kty": "RSA", "alg": "RSA-OAEP-512", "kid": "weird"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "off-curve"}),
        json!("not even an object"),
        enc,
        jwk(&rsa1(), Algorithm::RS256, "rs1"),
    ]);
    let keys = KeySet::parse(&doc).expect("one usable key");
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].kid.as_deref(), Some("rs1"));
    assert!(KeySet::parse(&jwks(&[json!({"kty": "oct", "k": "c2VjcmV0"})])).is_err(), "no usable key");
    assert!(KeySet::parse(b"{\"keys\": 5}").is_err());
    assert!(KeySet::parse(b"<html>").is_err());
}

#[test]
fn provider_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<JwtProvider>();
    shareable::<crate::jwt::HttpJwksSource>();
}
