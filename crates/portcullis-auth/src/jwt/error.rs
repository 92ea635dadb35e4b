//! Why a token was refused, and why a JWKS fetch failed.
//!
//! Token errors are the client's doing and are answered with 401; their `description` goes into
//! `WWW-Authenticate: Bearer error_description="…"`, so it is a fixed string that never quotes
//! the token. Fetch errors are the IdP's (or the network's) and are logged and counted, never
//! shown to a client.

/// Why [`JwtProvider::verify`](super::JwtProvider::verify) refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token larger than 16 KiB")]
    TooLarge,
    #[error("token is not a well-formed JWS compact serialization")]
    Malformed,
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("the key for the token's kid does not fit the token's algorithm")]
    KeyAlgorithmMismatch,
    #[error("no key with the token's kid")]
    UnknownKid,
    #[error("no keys fetched yet")]
    NoKeys,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("claim `{0}` has the wrong type or value")]
    InvalidClaim(&'static str),
    #[error("token has a `crit` header")]
    UnsupportedCrit,
}

/// What a refused token means, classified once here (one exhaustive match): whether a JWKS
/// refetch may help, and which problem it is. `portcullis-core` maps each fault to its problem
/// code in one place; nothing compares error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// `exp` has passed (beyond the leeway): `token_expired`.
    Expired,
    /// The provider has no key for the token (yet): one JWKS refetch may help; if it does not,
    /// `invalid_token`.
    UnknownKey,
    /// Anything else wrong with the token (an `nbf` still in the future included):
    /// `invalid_token`.
    Invalid,
}

impl JwtError {
    /// This error's [`TokenFault`].
    pub fn fault(&self) -> TokenFault {
        match self {
            Self::Expired => TokenFault::Expired,
            Self::UnknownKid | Self::NoKeys => TokenFault::UnknownKey,
            Self::TooLarge
            | Self::Malformed
            | Self::AlgorithmNotAllowed
            | Self::KeyAlgorithmMismatch
            | Self::BadSignature
            | Self::NotYetValid
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::InvalidClaim(_)
            | Self::UnsupportedCrit => TokenFault::Invalid,
        }
    }

    /// A short fixed text for `error_description`; never token content.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLarge => "token too large",
            Self::Malformed => "malformed token",
            Self::AlgorithmNotAllowed => "algorithm not allowed",
            Self::KeyAlgorithmMismatch => "algorithm does not match the key",
            Self::UnknownKid => "unknown signing key",
            Self::NoKeys => "signing keys unavailable",
            Self::BadSignature => "invalid signature",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::WrongIssuer => "wrong issuer",
            Self::WrongAudience => "wrong audience",
            Self::InvalidClaim("exp") => "invalid exp claim",
            Self::InvalidClaim("nbf") => "invalid nbf claim",
            Self::InvalidClaim("iat") => "invalid iat claim",
            Self::InvalidClaim("iss") => "invalid iss claim",
            Self::InvalidClaim("aud") => "invalid aud claim",
            Self::InvalidClaim("sub") => "invalid sub claim",
            Self::InvalidClaim(_) => "invalid claim",
            Self::UnsupportedCrit => "unsupported critical header",
        }
    }
}

/// Why a JWKS (or discovery) fetch failed. The previous keys stay in use.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("URL `{0}` is not usable (https, or http on loopback only)")]
    BadUrl(String),
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS handshake with {0}: {1}")]
    Tls(String, std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP status {0} (200 required, redirects are not followed)")]
    Status(u16),
    #[error("response body larger than 1 MiB")]
    BodyTooLarge,
    #[error("timed out")]
    Timeout,
    #[error("discovery document: {0}")]
    Discovery(String),
    #[error("JWKS: {0}")]
    Jwks(String),
}
