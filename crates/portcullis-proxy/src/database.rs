//! The gateway's database (`state.database`): opened once at start, its key index kept in
//! sync in the background until shutdown. Reloads hand the same [`KeySync`] on, so a
//! changed `state.database` applies at restart.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::snapshot::StateSpec;
use portcullis_store::{KeySync, Store};
use tokio::sync::watch;

/// How long `/ready` waits for the database to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects, migrates and loads the key index. The URL is already absolute (compile
/// resolved it); the message names the database without its password.
pub async fn open(state: &StateSpec) -> std::io::Result<Arc<KeySync>> {
    let fail = |e: portcullis_store::StoreError| {
        std::io::Error::other(format!("state.database ({}): {e}", portcullis_store::redact_url(&state.database)))
    };
    let store = Store::connect(&state.database, std::path::Path::new(".")).await.map_err(fail)?;
    tracing::info!(database = %store.describe(), "database open");
    KeySync::start(Arc::new(store)).await.map_err(fail)
}

/// Runs the key sync until `stop` turns true.
pub fn spawn_sync(sync: Arc<KeySync>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(sync.run(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    }));
}

/// The database answers within [`READY_TIMEOUT`].
pub async fn reachable(sync: &KeySync) -> bool {
    matches!(tokio::time::timeout(READY_TIMEOUT, sync.store().ping()).await, Ok(Ok(())))
}

/// How often the in-process quota counters are written to the database (SPEC: at least
/// every 5 s, and at shutdown).
pub const USAGE_PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// Quota counters as database rows: `(consumer, period start in Unix seconds, used)`.
fn usage_rows(engine: &portcullis_state::Engine) -> Vec<(String, String, i64)> {
    engine
        .local_quotas()
        .snapshot()
        .into_iter()
        .map(|u| (u.key, u.period_start.to_string(), i64::try_from(u.used).unwrap_or(i64::MAX)))
        .collect()
}

/// Loads the persisted quota counters into `engine`'s in-process counters (a restart does
/// not reset quotas). Rows of ended periods are ignored by the counters themselves.
pub async fn restore_usage(sync: &KeySync, engine: &portcullis_state::Engine) {
    match sync.store().load_usage().await {
        Ok(rows) => {
            let usage = rows.into_iter().filter_map(|(key, period, used)| {
                Some(portcullis_state::QuotaUsage {
                    key,
                    period_start: period.parse().ok()?,
                    used: u64::try_from(used).ok()?,
                })
            });
            engine.local_quotas().restore(usage);
        }
        Err(e) => tracing::warn!(error = %e, "cannot load quota usage; quotas start from zero"),
    }
}

/// Writes the quota counters (the database keeps the larger of its and our count).
pub async fn persist_usage(sync: &KeySync, engine: &portcullis_state::Engine) {
    let rows = usage_rows(engine);
    if rows.is_empty() {
        return;
    }
    let borrowed: Vec<(&str, &str, i64)> = rows.iter().map(|(k, p, u)| (k.as_str(), p.as_str(), *u)).collect();
    if let Err(e) = sync.store().save_usage(&borrowed).await {
        tracing::warn!(error = %e, "cannot save quota usage; retrying at the next interval");
    }
}

/// Every [`USAGE_PERSIST_INTERVAL`], writes the current runtime's quota counters when they
/// changed, until `stop` (the shutdown path writes them a last time).
pub fn spawn_usage_persist(current: Arc<arc_swap::ArcSwap<crate::runtime::Runtime>>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut last = Vec::new();
        let mut tick = tokio::time::interval(USAGE_PERSIST_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let runtime = current.load_full();
            let Some(sync) = &runtime.database else { continue };
            let mut rows = usage_rows(runtime.rate_limits.engine());
            rows.sort();
            if rows != last {
                persist_usage(sync, runtime.rate_limits.engine()).await;
                last = rows;
            }
        }
    });
}
