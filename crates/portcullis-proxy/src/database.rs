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
