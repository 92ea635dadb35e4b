//! One token against one key set: the JWS compact form, the header, the signature, then the
//! claims — each checked by this module over the raw JSON, not by `jsonwebtoken::Validation`,
//! so that a claim of the wrong type is refused rather than read as absent (the
//! jsonwebtoken < 10.3 advisory: a string `exp` skipped the expiry check).
//!
//! A token without `kid` is tried against the keys that fit its `alg`, at most
//! [`MAX_KIDLESS_CANDIDATES`] of them in JWKS order: IdPs with a single key often omit `kid`,
//! and the bound keeps the cost of a forged kid-less token at a few signature checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::keys::{Key, KeySet};
use super::{JwtError, JwtSettings, Verified};

/// The largest token accepted, checked before anything else is looked at.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How many keys a token without `kid` is tried against.
pub(crate) const MAX_KIDLESS_CANDIDATES: usize = 8;

type Claims = Map<String, Value>;

/// Verifies `token` against `keys` at unix time `now`.
pub(crate) fn verify(settings: &JwtSettings, keys: &KeySet, token: &str, now: u64) -> Result<Verified, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = decode_object(header_b64)?;
    let alg = allowed_algorithm(settings, &header)?;
    if header.contains_key("crit") {
        // We implement no JWS extension, so any critical one must make us refuse (RFC 7515 4.1.11).
        return Err(JwtError::UnsupportedCrit);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| JwtError::Malformed)?;
    // The signed input is the token up to the second dot, exactly as received.
    let signed = token.get(..header_b64.len() + 1 + payload_b64.len()).ok_or(JwtError::Malformed)?;
    check_signature(keys, kid, alg, signed.as_bytes(), &signature)?;
    let claims = decode_object(payload_b64)?;
    check_claims(settings, claims, now)
}

fn decode_object(part: &str) -> Result<Claims, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice::<UniqueKeys>(&bytes).map(|o| o.0).map_err(|_| JwtError::Malformed)
}

/// A JSON object whose top-level names are unique (RFC 7515 4, RFC 7519 4): with a duplicate
/// `exp` or `iss`, which one counts depends on the parser, and the backend's may differ.
struct UniqueKeys(Claims);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with unique member names")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Claims::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if map.insert(name, value).is_some() {
                        return Err(serde::de::Error::custom("duplicate member name"));
                    }
                }
                Ok(UniqueKeys(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn allowed_algorithm(settings: &JwtSettings, header: &Claims) -> Result<Algorithm, JwtError> {
    let Some(Value::String(name)) = header.get("alg") else {
        return Err(JwtError::Malformed);
    };
    // `none` and anything unknown fail to parse; HS* is refused whatever the allow-list says,
    // since a JWKS public key must never double as an HMAC secret.
    let alg: Algorithm = name.parse().map_err(|_| JwtError::AlgorithmNotAllowed)?;
    let symmetric = matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
    if symmetric || !settings.algorithms.contains(&alg) {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    Ok(alg)
}

// `&Vec`: jsonwebtoken's verifiers take the signature as `Vec<u8>`.
#[allow(clippy::ptr_arg)]
fn check_signature(
    keys: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
    signed: &[u8],
    sig: &Vec<u8>,
) -> Result<(), JwtError> {
    if keys.is_empty() {
        return Err(JwtError::NoKeys);
    }
    let candidates: Vec<&Key> = match kid {
        Some(kid) => {
            let named: Vec<&Key> = keys.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
            if named.is_empty() {
                return Err(JwtError::UnknownKid);
            }
            let fitting: Vec<&Key> = named.into_iter().filter(|k| k.fits(alg)).collect();
            if fitting.is_empty() {
                return Err(JwtError::KeyAlgorithmMismatch);
            }
            fitting
        }
        None => {
            let fitting: Vec<&Key> = keys.keys.iter().filter(|k| k.fits(alg)).take(MAX_KIDLESS_CANDIDATES).collect();
            if fitting.is_empty() {
                return Err(JwtError::UnknownKid);
            }
            fitting
        }
    };
    if candidates.iter().any(|key| key.verify(alg, signed, sig)) {
        return Ok(());
    }
    Err(JwtError::BadSignature)
}

fn check_claims(settings: &JwtSettings, claims: Claims, now: u64) -> Result<Verified, JwtError> {
    let leeway = settings.leeway.as_secs();
    let exp = match claims.get("exp") {
        None => return Err(JwtError::InvalidClaim("exp")),
        Some(value) => numeric_date(value, false).ok_or(JwtError::InvalidClaim("exp"))?,
    };
    if exp.saturating_add(leeway) <= now {
        return Err(JwtError::Expired);
    }
    if let Some(value) = claims.get("nbf") {
        let nbf = numeric_date(value, true).ok_or(JwtError::InvalidClaim("nbf"))?;
        if nbf > now.saturating_add(leeway) {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(value) = claims.get("iat") {
        numeric_date(value, false).ok_or(JwtError::InvalidClaim("iat"))?;
    }
    match claims.get("iss") {
        None => return Err(JwtError::WrongIssuer),
        Some(Value::String(iss)) if *iss == settings.issuer => {}
        Some(Value::String(_)) => return Err(JwtError::WrongIssuer),
        Some(_) => return Err(JwtError::InvalidClaim("iss")),
    }
    check_audience(settings, claims.get("aud"))?;
    let subject = match claims.get("sub") {
        None => None,
        Some(Value::String(sub)) => Some(sub.clone()),
        Some(_) => return Err(JwtError::InvalidClaim("sub")),
    };
    let scopes = scopes(&claims)?;
    Ok(Verified { claims, subject, expires_at: Some(exp), scopes })
}

/// A JSON number of seconds since the epoch (RFC 7519 NumericDate, fractions allowed), rounded
/// toward the stricter side: `exp` down, `nbf` up. `None` for any other JSON type or a
/// negative or non-finite number.
fn numeric_date(value: &Value, round_up: bool) -> Option<u64> {
    let Value::Number(n) = value else { return None };
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    let secs = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
    let rounded = if round_up { secs.ceil() } else { secs.floor() };
    // Saturating float-to-int conversion: a date past u64::MAX seconds is "never".
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(rounded as u64)
}

fn check_audience(settings: &JwtSettings, aud: Option<&Value>) -> Result<(), JwtError> {
    let listed: Vec<&str> = match aud {
        None => Vec::new(),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => {
            many.iter().map(|v| v.as_str().ok_or(JwtError::InvalidClaim("aud"))).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(JwtError::InvalidClaim("aud")),
    };
    if settings.audiences.is_empty() || listed.iter().any(|a| settings.audiences.iter().any(|want| want == a)) {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}

/// `scope` (space-separated, RFC 8693) and `scp` (a string or an array, as Azure AD and Okta
/// send it), in that order, without duplicates.
fn scopes(claims: &Claims) -> Result<Vec<String>, JwtError> {
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        for scope in s.split_ascii_whitespace() {
            if !scopes.iter().any(|have| have == scope) {
                scopes.push(scope.to_owned());
            }
        }
    };
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => add(s),
        Some(_) => return Err(JwtError::InvalidClaim("scope")),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::String(s)) => add(s),
        Some(Value::Array(items)) => {
            for item in items {
                add(item.as_str().ok_or(JwtError::InvalidClaim("scp"))?);
            }
        }
        Some(_) => return Err(JwtError::InvalidClaim("scp")),
    }
    Ok(scopes)
}
