//! Getting keys: one fetch at a time per provider, shared by everyone who wants one while it
//! runs; the unknown-`kid` refetch limited to one per [`REFETCH_INTERVAL`]; and the background
//! refresh on the IdP's `Cache-Control`.
//!
//! A fetch runs as its own task, so a request that gave up waiting (client gone) does not
//! cancel it for the others. Every unknown-`kid` refetch, failed or not, counts for the
//! interval: an IdP that is down is not hammered by a flood of tokens with made-up `kid`s.
//! The background refresh does not count, so a key rotated in just after a refresh is
//! picked up by its first token rather than 30 s later.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::keys::KeySet;
use super::{FETCH_TIMEOUT, FetchError, JwtProvider};

/// At most one unknown-`kid` refetch per provider in this time (SPEC §3).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Background refresh when the JWKS response has no `max-age`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60 * 60);
/// The floor for `max-age` (and what `no-cache`/`no-store` get).
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
/// The ceiling for `max-age`.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Told of every fetch attempt: `portcullis_jwks_refresh_total{provider,result}`.
pub trait RefreshEvents: Send + Sync {
    /// `result` is `"ok"` or `"error"`.
    fn refreshed(&self, provider: &str, result: &'static str);
}

/// The result of one fetch: the refresh delay the IdP asked for, or failure.
type Outcome = Result<Option<Duration>, ()>;

pub(crate) struct RefetchState {
    interval: Duration,
    inner: Mutex<Inner>,
    /// Closed when the provider is dropped, which ends the background task.
    alive: watch::Sender<()>,
}

struct Inner {
    /// When the last unknown-`kid` refetch started.
    last_kid_refetch: Option<Instant>,
    in_flight: Option<watch::Receiver<Option<Outcome>>>,
}

impl RefetchState {
    pub(crate) fn new(interval: Duration) -> Self {
        let inner = Inner { last_kid_refetch: None, in_flight: None };
        Self { interval, inner: Mutex::new(inner), alive: watch::Sender::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends an attempt however its task ends (even by panic), so that `in_flight` never sticks:
/// the state is updated before the waiters are woken, so they see the attempt as over.
struct Attempt {
    provider: Arc<JwtProvider>,
    done: watch::Sender<Option<Outcome>>,
    outcome: Outcome,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        {
            let mut inner = self.provider.refetch.lock();
            inner.in_flight = None;
        }
        self.done.send_replace(Some(self.outcome));
    }
}

impl JwtProvider {
    /// Whether [`refetch_for_unknown_kid`](Self::refetch_for_unknown_kid) would fetch (or join
    /// a fetch) now: one is in flight, or no unknown-`kid` refetch started in the last 30 s.
    pub fn may_refetch(&self) -> bool {
        let inner = self.refetch.lock();
        inner.in_flight.is_some() || inner.last_kid_refetch.is_none_or(|at| at.elapsed() >= self.refetch.interval)
    }

    /// Fetches the JWKS now unless a refetch started less than 30 s ago; joins a fetch already
    /// running instead of starting another. Returns when that attempt is over (within
    /// [`FETCH_TIMEOUT`]); then [`verify`](Self::verify) again.
    pub async fn refetch_for_unknown_kid(self: Arc<Self>) {
        if let Some(done) = self.start_fetch(true) {
            // Logged and counted by the attempt; the caller simply verifies again.
            let _ = wait(done).await;
        }
    }

    /// Starts the background refresh: a fetch now, then again after the response's `max-age`
    /// clamped to [[`MIN_REFRESH`], [`MAX_REFRESH`]] ([`DEFAULT_REFRESH`] without one); after a
    /// failure, retries from 1 s doubling to 60 s. The task keeps only a `Weak` and ends when
    /// the provider is dropped. Outside a Tokio runtime it logs and does nothing.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(provider = %self.settings.provider, "JWKS refresh not started: no Tokio runtime");
            return;
        };
        runtime.spawn(refresh_loop(Arc::downgrade(self), self.refetch.alive.subscribe()));
    }

    /// Starts a fetch, or returns the one running; `None` for an unknown-`kid` refetch
    /// (`for_kid`) within the interval of the last one.
    fn start_fetch(self: &Arc<Self>, for_kid: bool) -> Option<watch::Receiver<Option<Outcome>>> {
        let mut inner = self.refetch.lock();
        if let Some(running) = &inner.in_flight {
            return Some(running.clone());
        }
        if for_kid {
            if inner.last_kid_refetch.is_some_and(|at| at.elapsed() < self.refetch.interval) {
                return None;
            }
            inner.last_kid_refetch = Some(Instant::now());
        }
        let (done, watcher) = watch::channel(None);
        inner.in_flight = Some(watcher.clone());
        drop(inner);
        let mut attempt = Attempt { provider: Arc::clone(self), done, outcome: Err(()) };
        let task = async move {
            attempt.outcome = attempt.provider.fetch_once().await;
            drop(attempt);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task)),
            // Not reachable from async Tokio code; without a runtime there is nothing to run on.
            Err(_) => drop(task),
        }
        Some(watcher)
    }

    /// One fetch, bounded by [`FETCH_TIMEOUT`], installed if it brought usable keys.
    async fn fetch_once(&self) -> Outcome {
        let provider = &*self.settings.provider;
        let fetched =
            tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch()).await.unwrap_or(Err(FetchError::Timeout));
        let parsed = fetched.and_then(|f| KeySet::parse(&f.jwks).map(|keys| (f, keys)).map_err(FetchError::Jwks));
        match parsed {
            Ok((fetched, keys)) => {
                tracing::debug!(provider, keys = keys.keys.len(), "JWKS fetched");
                self.install(fetched.jwks, keys);
                self.events.refreshed(provider, "ok");
                Ok(fetched.max_age)
            }
            Err(error) => {
                tracing::warn!(provider, %error, keys_kept = self.key_count(), "JWKS fetch failed; the previous keys stay in use");
                self.events.refreshed(provider, "error");
                Err(())
            }
        }
    }
}

/// The outcome of an attempt, once it is over (`Err` if its task was dropped unfinished).
async fn wait(mut done: watch::Receiver<Option<Outcome>>) -> Outcome {
    match done.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.unwrap_or(Err(())),
        Err(_) => Err(()),
    }
}

async fn refresh_loop(provider: Weak<JwtProvider>, mut alive: watch::Receiver<()>) {
    let mut retry = FIRST_RETRY;
    loop {
        let Some(strong) = provider.upgrade() else { return };
        let attempt = strong.start_fetch(false);
        drop(strong);
        let outcome = match attempt {
            Some(done) => wait(done).await,
            None => Err(()),
        };
        let delay = match outcome {
            Ok(max_age) => {
                retry = FIRST_RETRY;
                max_age.map_or(DEFAULT_REFRESH, |age| age.clamp(MIN_REFRESH, MAX_REFRESH))
            }
            Err(()) => {
                let delay = retry;
                retry = (retry * 2).min(MAX_RETRY);
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            // The provider (and with it the sender) is gone.
            _ = alive.changed() => return,
        }
    }
}
