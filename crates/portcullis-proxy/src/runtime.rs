//! One loaded config with its live parts: the snapshot, the listeners' TLS acceptors, the
//! upstream pools and the access log. Requests load the current [`Runtime`] once and keep it until they finish, so a reload
//! never changes a request mid-flight.

use std::sync::Arc;

use portcullis_config::KeyPath;
use portcullis_core::Snapshot;

use crate::cache::ResponseCache;
use crate::files::LoadedFiles;
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
    /// This config's trace export (`tracing.otlp_endpoint`): started by [`Runtime::start_traces`]
    /// once the gateway adopts the runtime; `None` without an endpoint and in offline tools.
    pub traces: Option<portcullis_otel::Exporter>,
}

impl Runtime {
    /// Builds the listeners' acceptors and the pools from `files` (read and checked for this
    /// config by [`crate::files::load_files`]: nothing is read from disk again here) and starts
    /// health checks (needs a Tokio runtime).
    pub fn new(snapshot: Snapshot, files: LoadedFiles) -> std::io::Result<Self> {
        let tls = listener_tls(&snapshot, &files)?;
        let access_log = AccessLog::start(&snapshot.access_log)?;
        let upstreams = snapshot
            .upstreams
            .iter()
            .map(|spec| UpstreamRuntime::new(spec, &files).map(Arc::new))
            .collect::<std::io::Result<Vec<_>>>()?;
        for upstream in &upstreams {
            spawn_active_checks(upstream);
        }
        // One clock origin for the whole process: a reload's limits adopt the old buckets,
        // whose times were read from it.
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::process());
        let redis_ca = files.redis_ca();
        let rate_limits = RateLimits::new(&snapshot, redis_ca.map(<[u8]>::to_vec), clock.clone())?;
        let identity = Identity::new(&snapshot, &files)?;
        let cache = ResponseCache::for_snapshot(&snapshot, redis_ca)?;
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
            traces: None,
        };
        runtime.warn_about_expiry();
        Ok(runtime)
    }

    /// Starts exporting this config's traces, counting dropped spans in the process's metrics
    /// (call after `metrics` is the gateway's). A collector that cannot be reached is a
    /// warning, not a failure.
    pub fn start_traces(&mut self) {
        let Some(url) = &self.snapshot.otlp_traces_url else { return };
        match portcullis_otel::Exporter::start(url, self.metrics.spans_dropped()) {
            Ok(exporter) => self.traces = Some(exporter),
            Err(e) => tracing::warn!(error = %e, "traces are not exported"),
        }
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

/// Per listener, in `snapshot.listeners` order: its TLS acceptor, `None` for plain HTTP.
fn listener_tls(snapshot: &Snapshot, files: &LoadedFiles) -> std::io::Result<Vec<Option<Arc<ListenerTls>>>> {
    let build = |l: &portcullis_core::snapshot::ListenerSpec| {
        let Some(spec) = &l.tls else { return Ok(None) };
        let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("listener `{}`: {e}", l.name));
        let files =
            files.listener(&l.name).ok_or_else(|| named(std::io::Error::other("its TLS files were not loaded")))?;
        tls::build(spec, files, l.http2).map(|t| Some(Arc::new(t))).map_err(named)
    };
    snapshot.listeners.iter().map(build).collect()
}

/// What [`Runtime::new`] would refuse beyond the files themselves (a target host that is no
/// TLS server name, a Redis URL the client refuses), each with the key path it belongs to.
/// Builds acceptors and pools from `files` (complete: [`crate::files::FileReport`] without
/// errors) without starting anything: `validate` checks all `run` checks.
pub fn check_build(snapshot: &Snapshot, files: &LoadedFiles) -> Vec<(KeyPath, String)> {
    let mut problems = Vec::new();
    for (i, l) in snapshot.listeners.iter().enumerate() {
        if let (Some(spec), Some(material)) = (&l.tls, files.listener(&l.name))
            && let Err(e) = tls::build(spec, material, l.http2)
        {
            problems.push((KeyPath::root().key("listeners").index(i).key("tls"), e.to_string()));
        }
    }
    for spec in &snapshot.upstreams {
        if let Err(e) = UpstreamRuntime::new(spec, files) {
            problems.push((KeyPath::root().key("upstreams").key(&spec.name), e.to_string()));
        }
    }
    if let Some(e) = crate::rate_limit::check_redis(snapshot, files) {
        let e = e.strip_prefix("state.redis: ").map_or_else(|| e.clone(), str::to_owned);
        problems.push((KeyPath::root().key("state").key("redis"), e));
    }
    problems
}

/// The database's TLS files (`sslrootcert`, `sslcert`, `sslkey` of a `postgres://` URL), read
/// as a connection would, at `state.database`. Not part of [`LoadedFiles`]: the driver reads
/// them at each new connection, so a rotated file needs no reload.
pub fn check_database_files(snapshot: &Snapshot) -> Vec<(KeyPath, String)> {
    let at = KeyPath::root().key("state").key("database");
    let problems = portcullis_store::check_tls_files(&snapshot.state.database).into_iter();
    problems
        .map(|e| (at.clone(), e.strip_prefix("state.database: ").map_or_else(|| e.clone(), str::to_owned)))
        .collect()
}
