//! One loaded config with its live parts: the snapshot, the upstream pools and the access
//! log. Requests load the current [`Runtime`] once and keep it until they finish, so a reload
//! never changes a request mid-flight.

use std::sync::Arc;

use portcullis_core::Snapshot;

use crate::access_log::AccessLog;
use crate::upstream::{UpstreamRuntime, spawn_active_checks};

#[derive(Debug)]
pub struct Runtime {
    pub snapshot: Arc<Snapshot>,
    pub upstreams: Vec<Arc<UpstreamRuntime>>,
    pub access_log: AccessLog,
}

impl Runtime {
    /// Builds pools (reading upstream certificate files: a bad one fails the whole load) and
    /// starts health checks (needs a Tokio runtime).
    pub fn new(snapshot: Snapshot) -> std::io::Result<Self> {
        let access_log = AccessLog::start(&snapshot.access_log)?;
        let upstreams = snapshot
            .upstreams
            .iter()
            .map(|spec| UpstreamRuntime::new(spec).map(Arc::new))
            .collect::<std::io::Result<Vec<_>>>()?;
        for upstream in &upstreams {
            spawn_active_checks(upstream);
        }
        Ok(Self { snapshot: Arc::new(snapshot), upstreams, access_log })
    }
}
