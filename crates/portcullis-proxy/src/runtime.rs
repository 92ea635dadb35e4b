//! One loaded config with its live parts: the snapshot, the listeners' TLS acceptors, the
//! upstream pools and the access log. Requests load the current [`Runtime`] once and keep it until they finish, so a reload
//! never changes a request mid-flight.

use std::sync::Arc;

use portcullis_core::Snapshot;

use crate::cache::ResponseCache;
use crate::identity::Identity;
use crate::tls::{self, CertificateInfo, ListenerTls};
use crate::upstream::{UpstreamRuntime, spawn_active_checks};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::limits::RateLimits;
use portcullis_telemetry::access_log::AccessLog;
use portcullis_telemetry::metrics::Metrics;

#[derive(Debug)]
pub struct Runtime {
    pub snapshot: Arc<Snapshot>,
    /// Per listener, in `snapshot.listeners` order: its TLS acceptor, `None` for plain HTTP.
    pub tls: Vec<Option<Arc<ListenerTls>>>,
    pub upstreams: Vec<Arc<UpstreamRuntime>>,
    pub access_log: AccessLog,
    pub rate_limits: RateLimits,
    /// The process's one clock: every request reads its time from it at intake.
    pub clock: Arc<dyn Clock>,
    /// JWT providers with their live key sets, and the run-time API keys.
    pub identity: Identity,
    /// Fresh here; the gateway hands it the previous runtime's entries on a reload.
    pub cache: ResponseCache,
    /// Shared by every runtime of the process once the gateway adopts this one.
    pub metrics: Arc<Metrics>,
    /// The database (`state.database`) and the key index synced from it: opened once by
    /// [`crate::Gateway::bind`] and handed on to every reloaded runtime. `None` until then
    /// (and in offline tools).
    pub database: Option<Arc<portcullis_store::KeySync>>,
}

impl Runtime {
    /// Builds pools (reading upstream certificate files: a bad one fails the whole load) and
    /// starts health checks (needs a Tokio runtime).
    pub fn new(snapshot: Snapshot) -> std::io::Result<Self> {
        let tls = snapshot
            .listeners
            .iter()
            .map(|l| match &l.tls {
                Some(spec) => tls::build(spec, l.http2)
                    .map(|t| Some(Arc::new(t)))
                    .map_err(|e| std::io::Error::new(e.kind(), format!("listener `{}`: {e}", l.name))),
                None => Ok(None),
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let access_log = AccessLog::start(&snapshot.access_log)?;
        let upstreams = snapshot
            .upstreams
            .iter()
            .map(|spec| UpstreamRuntime::new(spec).map(Arc::new))
            .collect::<std::io::Result<Vec<_>>>()?;
        for upstream in &upstreams {
            spawn_active_checks(upstream);
        }
        // One clock origin for the whole process: a reload's limits adopt the old buckets,
        // whose times were read from it.
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::process());
        let rate_limits = RateLimits::new(&snapshot, crate::rate_limit::redis_ca(&snapshot)?, clock.clone())?;
        let identity = Identity::new(&snapshot)?;
        let cache = ResponseCache::for_snapshot(&snapshot)?;
        let runtime = Self {
            identity,
            snapshot: Arc::new(snapshot),
            tls,
            upstreams,
            access_log,
            rate_limits,
            clock,
            cache,
            metrics: Arc::new(Metrics::new()),
            database: None,
        };
        runtime.warn_about_expiry();
        Ok(runtime)
    }

    /// Every certificate the listeners serve.
    pub fn certificates(&self) -> impl Iterator<Item = &CertificateInfo> {
        self.tls.iter().flatten().flat_map(|t| t.certificates.iter())
    }

    fn warn_about_expiry(&self) {
        let now = std::time::SystemTime::now();
        for cert in self.certificates() {
            let left = cert.seconds_left(now);
            if left < tls::EXPIRY_WARNING.as_secs_f64() {
                tracing::warn!(
                    certificate = %cert.name,
                    file = %cert.file.display(),
                    days_left = (left / 86400.0).floor(),
                    "certificate expires soon"
                );
            }
        }
    }
}

impl portcullis_telemetry::metrics::ConfigGauges for Runtime {
    fn target_health(&self) -> Vec<(Arc<str>, Arc<str>, bool)> {
        let targets = self.upstreams.iter().flat_map(|u| {
            u.target_health().into_iter().map(|(target, healthy)| (u.spec.name.clone(), target, healthy))
        });
        targets.collect()
    }

    fn certificate_expiry(&self, now: std::time::SystemTime) -> Vec<(String, f64)> {
        self.certificates().map(|c| (c.name.clone(), c.seconds_left(now))).collect()
    }

    fn state_errors(&self) -> portcullis_telemetry::metrics::StateErrors {
        let limits = self.rate_limits.engine().redis_status().map(|s| s.failures);
        let cache = self.cache.redis_failures();
        portcullis_telemetry::metrics::StateErrors {
            redis: (limits.is_some() || cache.is_some()).then(|| limits.unwrap_or(0) + cache.unwrap_or(0)),
            database: self.database.as_ref().map(|d| d.failures()),
        }
    }
}

/// Reads every certificate and key the snapshot names, as a (re)load would, without serving:
/// one message per listener or upstream that would fail. `validate` checks all `run` checks.
pub fn check_files(snapshot: &Snapshot) -> Vec<String> {
    let listeners = snapshot.listeners.iter().filter_map(|l| {
        let spec = l.tls.as_ref()?;
        tls::build(spec, l.http2).err().map(|e| format!("listener `{}`: {e}", l.name))
    });
    listeners
        .chain(crate::upstream::check_files(snapshot))
        .chain(crate::rate_limit::check_redis(snapshot))
        .chain(portcullis_store::check_tls_files(&snapshot.state.database))
        .collect()
}
