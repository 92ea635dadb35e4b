//! Upstream-side failures, classified by cause and retryability, and their one mapping to
//! SPEC §3 problem documents.

use std::time::Duration;

use http::HeaderValue;
use http::header::RETRY_AFTER;
use portcullis_core::{ErrorCode, Problem};

/// Why forwarding a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
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

impl ProxyError {
    /// Whether a retry on another connection may succeed (per the retry policy's conditions).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect)
    }

    pub fn into_problem(self) -> Problem {
        match self {
            Self::Connect => Problem::new(ErrorCode::UpstreamError, "the upstream refused the connection"),
            Self::Timeout => Problem::new(ErrorCode::UpstreamTimeout, "the upstream did not answer in time"),
            Self::Invalid => Problem::new(ErrorCode::UpstreamError, "the upstream sent no valid response"),
            Self::NoHealthyTarget { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let value = HeaderValue::from(secs);
                Problem::new(ErrorCode::NoHealthyUpstream, "no healthy upstream target").with_header(RETRY_AFTER, value)
            }
            Self::BodyTooLarge => Problem::new(ErrorCode::BodyTooLarge, "the request body is larger than allowed"),
            Self::ClientBody => Problem::new(ErrorCode::BadRequest, "the request body could not be read"),
            Self::ClientTimeout => Problem::new(ErrorCode::RequestTimeout, "the request body stopped arriving"),
        }
    }
}
