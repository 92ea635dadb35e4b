//! Time as an input. The gateway has one clock for the whole process and `explain`/`test` one
//! per run (a [`ManualClock`] set to the case's time); a request reads it once, at intake,
//! into [`Now`], and every phase after that reads the request's `Now` — token and key expiry,
//! quota periods, cache ages, the log's timestamp — never the wall clock itself.

pub use portcullis_state::{Clock, ManualClock, SystemClock};

/// The moment a request arrived, as every phase sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Wall clock, seconds since the Unix epoch (UTC).
    pub unix_seconds: i64,
    /// Wall clock, milliseconds since the Unix epoch (the access log's `ts`).
    pub unix_millis: i64,
    /// The clock's monotonic nanoseconds (durations and cache ages).
    pub monotonic: u64,
}

impl Now {
    pub fn read(clock: &dyn Clock) -> Self {
        Self { unix_seconds: clock.unix_seconds(), unix_millis: clock.unix_millis(), monotonic: clock.monotonic() }
    }

    /// Unix seconds as the token checks count them (a clock before 1970 reads as 0).
    pub fn unix_u64(&self) -> u64 {
        u64::try_from(self.unix_seconds).unwrap_or(0)
    }
}
