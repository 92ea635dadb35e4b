//! The usable keys of one JWKS document.
//!
//! Entries we cannot use are skipped, not fatal: an IdP that publishes an encryption key or a
//! key type we do not implement beside its signing keys must keep working. What is skipped:
//! `use` other than `sig`, `key_ops` without `verify`, symmetric (`oct`) keys (a JWKS never
//! holds a shared secret we would accept), unknown `kty`/`crv`, RSA moduli under 2048 bits, and
//! anything `jsonwebtoken` refuses to turn into a key. A document with no usable key is an error,
//! so that the caller keeps its previous keys.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Which algorithms a key can verify: the token's `alg` must fit the key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::P256 => alg == Algorithm::ES256,
            Self::P384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it names one: then only that algorithm verifies with the key.
    alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

impl Key {
    /// Whether a token signed with `alg` may be checked against this key.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("kind", &self.kind).field("alg", &self.alg).finish()
    }
}

/// The shape of [`jsonwebtoken::jwk::JwkSet`], with its entries left unparsed.
#[derive(serde::Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The usable keys of one JWKS document, in document order.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS document; `Err` when it is not JSON of the JWKS shape or has no usable key.
    pub(crate) fn parse(jwks: &[u8]) -> Result<Self, String> {
        // Entry by entry, so that one entry `JwkSet` cannot represent does not sink the others.
        let doc: JwksDocument = serde_json::from_slice(jwks).map_err(|e| format!("not a JWKS document: {e}"))?;
        let total = doc.keys.len();
        let keys: Vec<Key> = doc
            .keys
            .into_iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(format!("none of its {total} keys is a usable signing key"));
        }
        Ok(Self { keys })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn usable(jwk: &Jwk) -> Option<Key> {
    let common = &jwk.common;
    if common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    if common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = base64_len(&rsa.n)?;
            (n >= MIN_RSA_MODULUS_BYTES).then_some(KeyKind::Rsa)?
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => KeyKind::Ed25519,
            _ => return None,
        },
        // `oct` (a shared secret), unknown `kty`.
        _ => return None,
    };
    let alg = match common.key_algorithm {
        None => None,
        // A named algorithm we do not verify (an encryption one, HS*, …): the key is not for us.
        Some(named) => Some(signing_algorithm(named).filter(|alg| kind.fits(*alg))?),
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { kid: common.key_id.clone(), kind, alg, decoding })
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The decoded length of a base64url value with leading zero bytes left out; `None` if invalid.
fn base64_len(value: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
    Some(bytes.iter().skip_while(|b| **b == 0).count())
}
