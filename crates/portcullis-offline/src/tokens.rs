//! Tokens for offline runs. A case file names a private key per JWT provider; its public half
//! stands in for that provider's JWKS, and a case's `token: { provider, claims }` is signed
//! with it. `explain --token-claims` signs with a throwaway ES256 key made for the run, which
//! only that run's provider trusts. Either way the token then goes through the provider's real
//! checks (signature, `iss`, `aud`, `exp`, `nbf`, the claims' types).

use std::path::Path;

use bytes::Bytes;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::jwt::JwtSettings;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use crate::{Error, fail};

/// How long a made token is valid from the run's now (when its claims give no `exp`).
const LIFETIME_SECONDS: i64 = 3600;

/// Reads one kind of PEM private key.
type ParsePem = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;

/// A key that signs a provider's tokens in an offline run.
pub struct SigningKey {
    pub provider: String,
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A PEM private key (RSA, EC P-256/P-384 or Ed25519) for `provider`; the algorithm is the
    /// first of the provider's `algorithms` that the key can sign with.
    pub fn from_pem(provider: &str, settings: &JwtSettings, path: &Path, kid: &str) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        let candidates: [(ParsePem, &[Algorithm]); 3] = [
            (
                EncodingKey::from_rsa_pem,
                &[
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ],
            ),
            (EncodingKey::from_ec_pem, &[Algorithm::ES256, Algorithm::ES384]),
            (EncodingKey::from_ed_pem, &[Algorithm::EdDSA]),
        ];
        for (parse, algorithms) in candidates {
            let Ok(key) = parse(&pem) else { continue };
            for algorithm in settings.algorithms.iter().filter(|a| algorithms.contains(a)) {
                if let Ok(jwk) = public_jwk(&key, *algorithm, kid) {
                    return Ok(Self {
                        provider: provider.to_owned(),
                        kid: kid.to_owned(),
                        algorithm: *algorithm,
                        key,
                        jwk,
                    });
                }
            }
            fail!(
                "{}: the key signs none of provider `{provider}`'s algorithms ({:?})",
                path.display(),
                settings.algorithms
            );
        }
        fail!("{}: not a PEM private key (RSA, EC P-256/P-384 or Ed25519)", path.display())
    }

    /// A throwaway ES256 key, made for one run.
    pub fn throwaway(provider: &str) -> Result<Self, Error> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| Error::new("no key could be made"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let kid = "explain";
        let jwk = public_jwk(&key, Algorithm::ES256, kid)?;
        Ok(Self { provider: provider.to_owned(), kid: kid.to_owned(), algorithm: Algorithm::ES256, key, jwk })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A token with `claims`, completed where they are silent so that only what the case
    /// states can make it fail: `iss` the provider's issuer, `aud` its first audience, `iat`
    /// now and `exp` an hour on.
    pub fn sign(
        &self,
        settings: &JwtSettings,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<String, Error> {
        let mut claims = claims.clone();
        claims.entry("iss").or_insert_with(|| settings.issuer.clone().into());
        if let Some(audience) = settings.audiences.first() {
            claims.entry("aud").or_insert_with(|| audience.clone().into());
        }
        claims.entry("iat").or_insert_with(|| now.into());
        claims.entry("exp").or_insert_with(|| (now + LIFETIME_SECONDS).into());
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(self.algorithm) };
        jsonwebtoken::encode(&header, &serde_json::Value::Object(claims), &self.key).map_err(Error::from_display)
    }
}

fn public_jwk(key: &EncodingKey, algorithm: Algorithm, kid: &str) -> Result<Jwk, Error> {
    let mut jwk = Jwk::from_encoding_key(key, algorithm).map_err(Error::from_display)?;
    jwk.common.key_id = Some(kid.to_owned());
    Ok(jwk)
}

/// The JWKS each provider trusts in a run: the public halves of its keys.
pub fn jwks(keys: &[SigningKey]) -> Vec<(String, Bytes)> {
    let mut out: Vec<(String, Vec<&Jwk>)> = Vec::new();
    for key in keys {
        match out.iter_mut().find(|(p, _)| *p == key.provider) {
            Some((_, list)) => list.push(&key.jwk),
            None => out.push((key.provider.clone(), vec![&key.jwk])),
        }
    }
    out.into_iter()
        .map(|(provider, list)| (provider, Bytes::from(serde_json::json!({ "keys": list }).to_string())))
        .collect()
}
