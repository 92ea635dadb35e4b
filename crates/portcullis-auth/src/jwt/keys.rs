//! The usable keys of one JWKS document, and the signature check with them.
//!
//! Entries we cannot use are skipped, not fatal: an IdP that publishes an encryption key or a
//! key type we do not implement beside its signing keys must keep working. What is skipped:
//! `use` other than `sig`, `key_ops` without `verify`, symmetric (`oct`) keys (a JWKS never
//! holds a shared secret we would accept), unknown `kty`/`crv`, RSA moduli under 2048 bits or
//! over 8192, EC coordinates of the wrong length, and entries that do not parse. A document
//! with no usable key is an error, so that the caller keeps its previous keys.
//!
//! `jsonwebtoken` parses the JWK entries; the signature itself is checked with ring, which the
//! gateway already links for TLS: about 4× faster than the RustCrypto backend for RS256 and
//! 8× for ES256 (benches/jwt.rs), which bounds what a flood of forged tokens costs, and it
//! keeps the `rsa` crate (RUSTSEC-2023-0071, about private-key use) out of the production build.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};

/// The smallest RSA modulus accepted, in bytes (2048 bits; ring's floor too).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// The largest (8192 bits; ring's ceiling).
const MAX_RSA_MODULUS_BYTES: usize = 1024;

/// The public key material, ready for ring.
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed SEC1 point (`04 ‖ x ‖ y`).
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    public: PublicKey,
    /// The JWK's `alg`, when it names one: then only that algorithm verifies with the key.
    alg: Option<Algorithm>,
}

impl Key {
    /// Whether a token signed with `alg` may be checked against this key: the key type must fit
    /// the algorithm (an RS256 token never meets an EC key) and so must the JWK's own `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        ring_algorithm(&self.public, alg).is_some() && self.alg.is_none_or(|own| own == alg)
    }

    /// Checks `signature` over `signed`; false for a key that does not fit `alg`.
    pub(crate) fn verify(&self, alg: Algorithm, signed: &[u8], signature: &[u8]) -> bool {
        let Some(ring_alg) = ring_algorithm(&self.public, alg) else { return false };
        match (&self.public, ring_alg) {
            (PublicKey::Rsa { n, e }, RingAlgorithm::Rsa(params)) => {
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, signed, signature).is_ok()
            }
            (
                PublicKey::P256(point) | PublicKey::P384(point) | PublicKey::Ed25519(point),
                RingAlgorithm::Other(alg),
            ) => UnparsedPublicKey::new(alg, point).verify(signed, signature).is_ok(),
            _ => false,
        }
    }
}

enum RingAlgorithm {
    Rsa(&'static signature::RsaParameters),
    Other(&'static dyn VerificationAlgorithm),
}

fn ring_algorithm(public: &PublicKey, alg: Algorithm) -> Option<RingAlgorithm> {
    use RingAlgorithm::{Other, Rsa};
    Some(match (public, alg) {
        (PublicKey::Rsa { .. }, Algorithm::RS256) => Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        (PublicKey::Rsa { .. }, Algorithm::RS384) => Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        (PublicKey::Rsa { .. }, Algorithm::RS512) => Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        (PublicKey::Rsa { .. }, Algorithm::PS256) => Rsa(&signature::RSA_PSS_2048_8192_SHA256),
        (PublicKey::Rsa { .. }, Algorithm::PS384) => Rsa(&signature::RSA_PSS_2048_8192_SHA384),
        (PublicKey::Rsa { .. }, Algorithm::PS512) => Rsa(&signature::RSA_PSS_2048_8192_SHA512),
        (PublicKey::P256(_), Algorithm::ES256) => Other(&signature::ECDSA_P256_SHA256_FIXED),
        (PublicKey::P384(_), Algorithm::ES384) => Other(&signature::ECDSA_P384_SHA384_FIXED),
        (PublicKey::Ed25519(_), Algorithm::EdDSA) => Other(&signature::ED25519),
        _ => return None,
    })
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.public {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::P256(_) => "P-256",
            PublicKey::P384(_) => "P-384",
            PublicKey::Ed25519(_) => "Ed25519",
        };
        f.debug_struct("Key").field("kid", &self.kid).field("kind", &kind).field("alg", &self.alg).finish()
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
        // Entry by entry, so that one entry `Jwk` cannot represent does not sink the others.
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
    let public = public_key(&jwk.algorithm)?;
    let alg = match common.key_algorithm {
        None => None,
        // A named algorithm we do not verify (an encryption one, HS*, …) or one that does not fit
        // the key type: the key is not for us.
        Some(named) => Some(signing_algorithm(named).filter(|alg| ring_algorithm(&public, *alg).is_some())?),
    };
    Some(Key { kid: common.key_id.clone(), public, alg })
}

fn public_key(params: &AlgorithmParameters) -> Option<PublicKey> {
    match params {
        AlgorithmParameters::RSA(rsa) => {
            let n = strip_leading_zeros(decode(&rsa.n)?);
            let e = strip_leading_zeros(decode(&rsa.e)?);
            let sized = (MIN_RSA_MODULUS_BYTES..=MAX_RSA_MODULUS_BYTES).contains(&n.len());
            (sized && !e.is_empty()).then_some(PublicKey::Rsa { n, e })
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (x, y) = (decode(&ec.x)?, decode(&ec.y)?);
            let size = match ec.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                _ => return None,
            };
            if x.len() != size || y.len() != size {
                return None;
            }
            let point = [&[0x04][..], &x, &y].concat();
            Some(if size == 32 { PublicKey::P256(point) } else { PublicKey::P384(point) })
        }
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => Some(decode(&okp.x).filter(|x| x.len() == 32).map(PublicKey::Ed25519)?),
            _ => None,
        },
        // `oct` (a shared secret), unknown `kty`.
        _ => None,
    }
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

fn decode(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value).ok()
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}
