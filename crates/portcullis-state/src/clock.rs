//! Clocks come in through a trait so tests, `portcullis explain` and `portcullis test` can
//! run the limiter on simulated time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::gcra::Nanos;

/// The two clocks the engine reads.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Monotonic nanoseconds from an arbitrary origin: local rate limits and the Redis backoff.
    fn monotonic(&self) -> Nanos;
    /// Wall-clock seconds since the Unix epoch (UTC): quota periods.
    fn unix_seconds(&self) -> i64;
    /// Wall-clock milliseconds since the Unix epoch (UTC): timestamps.
    fn unix_millis(&self) -> i64 {
        self.unix_seconds().saturating_mul(1000)
    }
}

/// The real clocks: `Instant` since creation, and `SystemTime`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    #[must_use]
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }

    /// The process's clock: every call reads from one origin, taken at the first call. An
    /// engine built at a reload must read the same time as the one it replaces, because the
    /// buckets it adopts hold times of the old engine's clock; a clock starting again at zero
    /// would put every adopted bucket about the process's uptime in the future.
    #[must_use]
    pub fn process() -> Self {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        Self { origin: *ORIGIN.get_or_init(Instant::now) }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Nanos {
        // u64 nanoseconds last 584 years of uptime.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_seconds(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }

    fn unix_millis(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock that moves only when told: for tests and offline runs.
#[derive(Debug, Default)]
pub struct ManualClock {
    monotonic: AtomicU64,
    unix: AtomicI64,
}

impl ManualClock {
    /// Starts at the given monotonic nanoseconds and Unix seconds.
    #[must_use]
    pub fn new(monotonic: Nanos, unix_seconds: i64) -> Self {
        Self { monotonic: AtomicU64::new(monotonic), unix: AtomicI64::new(unix_seconds) }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: std::time::Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.monotonic.fetch_add(nanos, Ordering::Relaxed);
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.unix.fetch_add(secs, Ordering::Relaxed);
    }

    /// Sets the wall clock.
    pub fn set_unix_seconds(&self, secs: i64) {
        self.unix.store(secs, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Nanos {
        self.monotonic.load(Ordering::Relaxed)
    }

    fn unix_seconds(&self) -> i64 {
        self.unix.load(Ordering::Relaxed)
    }
}
