//! Errors of this crate: all are configuration mistakes or Redis being unusable.

/// A limit or quota the config asked for cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Zero, negative or non-finite rate.
    #[error("the rate must be a positive, finite number of requests per period")]
    InvalidRate,
    /// Faster than one request per nanosecond.
    #[error("the rate is over 10^9 requests per second")]
    RateTooHigh,
    /// A burst of zero would deny everything.
    #[error("the burst must be at least 1")]
    ZeroBurst,
    /// `burst × interval` does not fit 64-bit nanoseconds.
    #[error("burst × (period / count) is longer than 584 years")]
    WindowTooLong,
}

/// Building the Redis backend failed (the URL is bad); Redis being down is not an error here.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisSetupError(#[from] pub(crate) redis::RedisError);
