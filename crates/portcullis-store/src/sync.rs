//! Keeps an instance's key index and consumer map in step with the database: one cheap
//! query (the revision row) every [`SYNC_INTERVAL`], a full reload only when it moved. A
//! revocation on any instance is therefore seen everywhere within the interval plus one
//! reload. When the database fails, the last index keeps serving and the poll retries.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use portcullis_auth::api_key::KeyIndex;

use crate::records::arc;
use crate::{Store, StoreError};

/// How often the revision is polled: four times a second keeps revocation under 1 s.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);

/// Database consumers by name, with their plan.
pub type ConsumerPlans = foldhash::HashMap<Arc<str>, Option<Arc<str>>>;

/// The in-memory view of the database that requests read, and the task that refreshes it.
#[derive(Debug)]
pub struct KeySync {
    store: Arc<Store>,
    keys: Arc<KeyIndex>,
    consumers: ArcSwap<ConsumerPlans>,
    /// The revision the index was built from.
    revision: AtomicI64,
    /// The last poll failed (so the recovery is logged once, not every tick).
    failing: AtomicBool,
    /// Polls that failed, since start (`portcullis_state_errors_total{store="database"}`).
    failures: AtomicU64,
}

impl KeySync {
    /// Loads the index once (an error here fails the start: nothing stale to serve yet).
    pub async fn start(store: Arc<Store>) -> Result<Arc<Self>, StoreError> {
        let sync = Arc::new(Self {
            store,
            keys: Arc::new(KeyIndex::default()),
            consumers: ArcSwap::from_pointee(ConsumerPlans::default()),
            revision: AtomicI64::new(i64::MIN),
            failing: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        });
        sync.refresh().await?;
        Ok(sync)
    }

    /// Polls of the database that failed since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The usable database keys by digest.
    pub fn keys(&self) -> &Arc<KeyIndex> {
        &self.keys
    }

    /// The database consumers and their plans, as of the last reload.
    pub fn consumers(&self) -> Arc<ConsumerPlans> {
        self.consumers.load_full()
    }

    /// Polls once: reloads when the revision moved. `Ok(true)`: the index was rebuilt.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let polled = self.poll().await;
        if polled.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }

    async fn poll(&self) -> Result<bool, StoreError> {
        // The revision is read before the rows: a write in between makes the next poll
        // reload again, never miss it.
        let revision = self.store.revision().await?;
        if revision == self.revision.load(Ordering::Acquire) {
            return Ok(false);
        }
        let keys = self.store.usable_keys().await?;
        let consumers = self.store.list_consumers().await?;
        self.keys.replace(keys.into_iter().collect());
        self.consumers.store(Arc::new(consumers.iter().map(|c| (arc(&c.name), c.plan.as_deref().map(arc))).collect()));
        self.revision.store(revision, Ordering::Release);
        Ok(true)
    }

    /// Polls every [`SYNC_INTERVAL`] until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let mut stop = pin!(stop);
        let mut ticker = tokio::time::interval(SYNC_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticker.tick() => {}
            }
            match self.refresh().await {
                Ok(_) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(database = %self.store.describe(), "database reachable again; key index in sync");
                    }
                }
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            database = %self.store.describe(),
                            error = %e,
                            "cannot read the key index from the database; serving the last one and retrying"
                        );
                    }
                }
            }
        }
    }
}
