//! The errors of forwarding a request, classified once: who caused them (the client, the
//! upstream, the gateway), whether a retry on another connection may help, and their one
//! mapping to a SPEC §3 problem document. The proxy's pools and the SOAP exchange return
//! them; passive health, retries, the log's `outcome` and the client's answer all read the
//! classification from here, so they cannot disagree.

use std::time::Duration;

use http::HeaderValue;
use http::header::RETRY_AFTER;

use portcullis_auth::jwt::TokenFault;

use crate::problem::{ErrorCode, Problem};

/// A refused token's problem code: the one place a JWT error becomes a code (SPEC §3).
impl From<TokenFault> for ErrorCode {
    fn from(fault: TokenFault) -> Self {
        match fault {
            TokenFault::Expired => Self::TokenExpired,
            TokenFault::UnknownKey | TokenFault::Invalid => Self::InvalidToken,
        }
    }
}

/// Why forwarding a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No TCP connection to the target (refused, unreachable, connect timeout).
    #[error("could not connect to the upstream")]
    Connect,
    /// The upstream did not send a response head within the response timeout.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// Reset, closed early or sent something that is not HTTP.
    #[error("the upstream sent no valid response")]
    Invalid,
    /// Every target is marked unhealthy.
    #[error("no healthy target")]
    NoHealthyTarget { retry_after: Duration },
    /// The client's body grew past the limit while it streamed.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client's body broke off or was malformed.
    #[error("the request body could not be read")]
    ClientBody,
    /// The client stopped sending its body mid-way.
    #[error("the request body stopped arriving")]
    ClientTimeout,
}

/// Who a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The client's request or body: never counted against the upstream's health.
    Client,
    /// The upstream target: counted by passive health.
    Upstream,
    /// The gateway's own state (every target already ejected).
    Gateway,
}

impl UpstreamError {
    pub fn cause(&self) -> Cause {
        match self {
            Self::Connect | Self::Timeout | Self::Invalid => Cause::Upstream,
            Self::NoHealthyTarget { .. } => Cause::Gateway,
            Self::BodyTooLarge | Self::ClientBody | Self::ClientTimeout => Cause::Client,
        }
    }

    /// Whether another attempt (on another connection, maybe another target) may succeed; the
    /// retry policy decides whether it is made.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Connect | Self::Timeout)
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Connect | Self::Invalid => ErrorCode::UpstreamError,
            Self::Timeout => ErrorCode::UpstreamTimeout,
            Self::NoHealthyTarget { .. } => ErrorCode::NoHealthyUpstream,
            Self::BodyTooLarge => ErrorCode::BodyTooLarge,
            Self::ClientBody => ErrorCode::BadRequest,
            Self::ClientTimeout => ErrorCode::RequestTimeout,
        }
    }

    pub fn into_problem(self) -> Problem {
        let detail = match &self {
            Self::Connect => "the upstream refused the connection",
            Self::Timeout => "the upstream did not answer in time",
            Self::Invalid => "the upstream sent no valid response",
            Self::NoHealthyTarget { .. } => "no healthy upstream target",
            Self::BodyTooLarge => "the request body is larger than allowed",
            Self::ClientBody => "the request body could not be read",
            Self::ClientTimeout => "the request body stopped arriving",
        };
        let problem = Problem::new(self.code(), detail);
        match self {
            Self::NoHealthyTarget { retry_after } => {
                problem.with_header(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)))
            }
            _ => problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_auth::jwt::JwtError;

    use super::*;

    #[test]
    fn every_jwt_error_has_one_problem_code() {
        let invalid = [
            JwtError::TooLarge,
            JwtError::Malformed,
            JwtError::AlgorithmNotAllowed,
            JwtError::KeyAlgorithmMismatch,
            JwtError::UnknownKid,
            JwtError::NoKeys,
            JwtError::BadSignature,
            JwtError::NotYetValid,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::InvalidClaim("sub"),
            JwtError::UnsupportedCrit,
        ];
        for e in invalid {
            assert_eq!(ErrorCode::from(e.fault()), ErrorCode::InvalidToken, "{e:?}");
        }
        assert_eq!(ErrorCode::from(JwtError::Expired.fault()), ErrorCode::TokenExpired);
        // Only a missing key is worth a JWKS refetch.
        assert_eq!(JwtError::UnknownKid.fault(), TokenFault::UnknownKey);
        assert_eq!(JwtError::NoKeys.fault(), TokenFault::UnknownKey);
        assert_eq!(JwtError::BadSignature.fault(), TokenFault::Invalid);
    }

    #[test]
    fn client_failures_are_never_the_upstreams() {
        for e in [UpstreamError::BodyTooLarge, UpstreamError::ClientBody, UpstreamError::ClientTimeout] {
            assert_eq!(e.cause(), Cause::Client, "{e}");
            assert!(!e.retryable());
        }
        assert_eq!(UpstreamError::Timeout.into_problem().code, ErrorCode::UpstreamTimeout);
        let p = UpstreamError::NoHealthyTarget { retry_after: Duration::from_millis(10) }.into_problem();
        assert_eq!(p.headers[0].1, "1", "Retry-After is at least a second");
    }
}
