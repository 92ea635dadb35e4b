//! Config reload (SPEC §4): on SIGHUP, an admin request, or a change to the config file or
//! any file it names (certificates, keys, CAs, `${file:}` references). The new config is
//! loaded, compiled, its files read ([`crate::files::prepare`], the step `validate` shares) and
//! built into a complete [`Runtime`] — acceptors and pools made — before one atomic swap. On any error the old config keeps serving, and the error
//! is logged, audited and counted.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Runtime;
use crate::server::GatewayHandle;
use portcullis_telemetry::audit::AuditEntry;

/// How often watched files are looked at. A change is acted on once two looks agree, so a
/// certificate and key written one after the other are read together: seen within ~1 s.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// What asked for a reload (the audit log's `actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChange,
    /// An admin API call: who (the token's name) and from where, as `name@ip`.
    Admin(String),
}

impl Trigger {
    fn actor(&self) -> &str {
        match self {
            Self::Signal => "sighup",
            Self::FileChange => "file-watch",
            Self::Admin(actor) => actor,
        }
    }
}

/// Reloads one config file (with its stage) into a running gateway.
pub struct Reloader {
    path: PathBuf,
    stage: Option<String>,
    handle: GatewayHandle,
    /// One reload at a time: the second waits and then reads the newest files.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("path", &self.path).field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl Reloader {
    pub fn new(path: PathBuf, stage: Option<String>, handle: GatewayHandle) -> Arc<Self> {
        Arc::new(Self { path, stage, handle, busy: tokio::sync::Mutex::new(()) })
    }

    pub fn handle(&self) -> &GatewayHandle {
        &self.handle
    }

    /// Loads, validates and installs the config. `Ok`: the new config's hash. `Err`: every
    /// problem found; the old config is still serving.
    pub async fn reload(&self, trigger: Trigger) -> Result<String, Vec<String>> {
        let _busy = self.busy.lock().await;
        let outcome = self.try_reload().await;
        let metrics = self.handle.metrics();
        metrics.reload(outcome.is_ok());
        let current = self.handle.current();
        let path = self.path.display().to_string();
        match &outcome {
            Ok(hash) => {
                tracing::info!(trigger = trigger.actor(), hash = %hash, "config reloaded");
                let entry = AuditEntry {
                    actor: trigger.actor(),
                    action: "config.reload",
                    target: Some(&path),
                    result: "ok",
                    detail: Some(hash),
                };
                crate::audit::record(&current, &entry).await;
            }
            Err(errors) => {
                for e in errors {
                    tracing::error!(trigger = trigger.actor(), "config reload refused: {e}");
                }
                let detail = errors.join("; ");
                let entry = AuditEntry {
                    actor: trigger.actor(),
                    action: "config.reload",
                    target: Some(&path),
                    result: "error",
                    detail: Some(&detail),
                };
                crate::audit::record(&current, &entry).await;
            }
        }
        outcome
    }

    async fn try_reload(&self) -> Result<String, Vec<String>> {
        let (path, stage) = (self.path.clone(), self.stage.clone());
        // Compile and files in one step, as `run` and `validate` have them: every error of
        // both, and each file read once.
        let prepared = tokio::task::spawn_blocking(move || {
            let loaded = portcullis_config::load_file(&path, stage.as_deref())?;
            crate::files::prepare(&loaded)
        })
        .await
        .map_err(|e| vec![format!("the reload task failed: {e}")])?;
        let (snapshot, files) = prepared.map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        for warning in &snapshot.warnings {
            tracing::warn!("{warning}");
        }
        let hash = snapshot.hash.clone();
        if snapshot.admin.as_ref().map(|a| a.bind) != self.handle.current().snapshot.admin.as_ref().map(|a| a.bind) {
            tracing::warn!("the admin API is bound at start: a changed or removed `admin.bind` applies at restart");
        }
        let opened = self.handle.current().database.as_ref().map(|d| d.store().url().to_owned());
        if opened.is_some_and(|url| url != snapshot.state.database) {
            tracing::warn!("the database is opened at start: a changed `state.database` applies at restart");
        }
        let runtime = Runtime::new(snapshot, files).map_err(|e| vec![e.to_string()])?;
        self.handle.apply(runtime).map_err(|e| vec![e.to_string()])?;
        Ok(hash)
    }

    /// The files whose change triggers a reload: the config and what the current one names.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path.clone()];
        files.extend(self.handle.current().snapshot.watch.iter().cloned());
        files
    }

    /// Watches the files until shutdown; reloads when their content changes and has settled.
    /// The baseline is read before this returns, so a change made once it has been called is
    /// never mistaken for the starting state (the task may be scheduled much later).
    pub fn watch(self: Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut applied = fingerprint_blocking(&self.watched());
        async move {
            let mut stopping = self.handle.stopping();
            let mut last_seen = applied;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(WATCH_INTERVAL) => {}
                    _ = stopping.changed() => return,
                }
                let watched = self.watched();
                let seen = fingerprint(&watched).await;
                if seen != applied && seen == last_seen {
                    let _ = self.reload(Trigger::FileChange).await;
                    // What was seen is what the reload read, or older: a write made while it
                    // ran shows as a change at the next look instead of being taken as
                    // applied. A broken file does not retrigger until it changes again. Only
                    // when the new config names other files are those read afresh.
                    let now_watched = self.watched();
                    applied = if now_watched == watched { seen } else { fingerprint(&now_watched).await };
                    last_seen = applied;
                    continue;
                }
                last_seen = seen;
            }
        }
    }
}

/// A hash of the files' names and contents (a missing file hashes differently from an empty
/// one). Content, not mtime: atomic renames, symlink swaps and same-second edits all count.
async fn fingerprint(files: &[PathBuf]) -> u64 {
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || fingerprint_blocking(&files)).await.unwrap_or_default()
}

fn fingerprint_blocking(files: &[PathBuf]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        match std::fs::read(file) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(e) => e.kind().hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// Reloads on every SIGHUP until shutdown. The handler is installed before this returns:
/// until then a SIGHUP would terminate the process (its default action), so call it before
/// the gateway announces that it is listening.
#[cfg(unix)]
pub fn on_sighup(reloader: Arc<Reloader>) -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let hangups = signal(SignalKind::hangup());
    async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP; reload by file change or the admin API");
            return;
        };
        let mut stopping = reloader.handle.stopping();
        loop {
            tokio::select! {
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    let _ = reloader.reload(Trigger::Signal).await;
                }
                _ = stopping.changed() => return,
            }
        }
    }
}
