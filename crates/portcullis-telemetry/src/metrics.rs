//! Prometheus metrics (SPEC §7). One [`Metrics`] lives as long as the process: counters keep
//! counting across reloads. Per-request work is two map lookups under a read lock plus
//! atomic adds; gauges that describe the current config (target health, certificate expiry)
//! are refreshed from the current runtime when `/metrics` is scraped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use portcullis_core::ErrorCode;
use portcullis_core::record::Record;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::dashboard::Dashboard;

/// What the config-describing gauges are refilled from at each scrape: the current runtime
/// (implemented by `portcullis_proxy::Runtime`).
pub trait ConfigGauges {
    /// Every upstream target: (upstream, target, takes traffic).
    fn target_health(&self) -> Vec<(Arc<str>, Arc<str>, bool)>;
    /// Every served certificate: (its first DNS name, seconds left at `now`).
    fn certificate_expiry(&self, now: SystemTime) -> Vec<(String, f64)>;
    /// Failed calls to the shared state since its client was made (`None`: not configured).
    fn state_errors(&self) -> StateErrors;
}

/// Failed calls to Redis (rate limits, quotas, the shared cache) and to the database (the key
/// index's polls). A reload that makes a new Redis client starts its count anew, which
/// Prometheus reads as a counter reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateErrors {
    pub redis: Option<u64>,
    pub database: Option<u64>,
}

impl<T: ConfigGauges + ?Sized> ConfigGauges for Arc<T> {
    fn target_health(&self) -> Vec<(Arc<str>, Arc<str>, bool)> {
        (**self).target_health()
    }

    fn certificate_expiry(&self, now: SystemTime) -> Vec<(String, f64)> {
        (**self).certificate_expiry(now)
    }

    fn state_errors(&self) -> StateErrors {
        (**self).state_errors()
    }
}

/// Seconds: 0.5 ms to ~33 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 17))
}

type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditedLabel {
    audited: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLimitLabels {
    route: Arc<str>,
    limit: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteResultLabels {
    route: Arc<str>,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderCodeLabels {
    provider: Arc<str>,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderResultLabels {
    provider: Arc<str>,
    result: &'static str,
}

/// A WAF rule id and what was done: bounded by the rules a config can load (built-in and
/// CRS), times three actions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleActionLabels {
    rule: u32,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    upstream: Arc<str>,
    target: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabel {
    plan: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: Arc<str>,
}

/// The route label of requests that matched no route.
const NO_ROUTE: &str = "";

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: LatencyFamily<RouteLabel>,
    upstream_duration: LatencyFamily<UpstreamLabel>,
    target_healthy: Family<TargetLabels, Gauge>,
    certificate_expiry: Family<NameLabel, Gauge<f64, AtomicU64>>,
    reloads: Family<ResultLabel, Counter>,
    connections: Family<ListenerLabel, Gauge>,
    rate_limited: Family<RouteLimitLabels, Counter>,
    cache: Family<RouteResultLabels, Counter>,
    auth_failures: Family<ProviderCodeLabels, Counter>,
    jwks_refresh: Family<ProviderResultLabels, Counter>,
    admin_auth_failures: Family<AuditedLabel, Counter>,
    state_errors: Family<StoreLabel, Counter>,
    plan_requests: Family<PlanLabel, Counter>,
    waf_matches: Family<RuleActionLabels, Counter>,
    spans_dropped: Counter,
    /// The admin dashboard's per-route traffic and recent refusals, fed from the same records.
    dashboard: Dashboard,
    no_route: Arc<str>,
    /// One render at a time: each clears and refills the config-describing gauges, so two
    /// concurrent scrapes (an HA pair of Prometheus servers) would otherwise each miss
    /// series the other had just cleared.
    rendering: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered, by route, method and status", requests.clone());
        let request_duration: LatencyFamily<RouteLabel> = Family::new_with_constructor(latency_buckets);
        registry.register(
            "request_duration_seconds",
            "Time from the request head to the response head, by route",
            request_duration.clone(),
        );
        let upstream_duration: LatencyFamily<UpstreamLabel> = Family::new_with_constructor(latency_buckets);
        registry.register(
            "upstream_duration_seconds",
            "Time the upstream took to answer with a response head",
            upstream_duration.clone(),
        );
        let target_healthy = Family::<TargetLabels, Gauge>::default();
        registry.register("upstream_target_healthy", "1 when the target takes traffic", target_healthy.clone());
        let certificate_expiry = Family::<NameLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "tls_certificate_expiry_seconds",
            "Seconds until a served certificate expires, by its first DNS name",
            certificate_expiry.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("config_reloads", "Config reloads, by result (ok or error)", reloads.clone());
        let admin_auth_failures = Family::<AuditedLabel, Counter>::default();
        registry.register(
            "admin_auth_failures",
            "Refused admin API authentications, by whether the audit trail recorded them (audited: true) or \
             a flood had them suppressed (false)",
            admin_auth_failures.clone(),
        );
        let connections = Family::<ListenerLabel, Gauge>::default();
        registry.register("connections_active", "Open downstream connections, by listener", connections.clone());
        let rate_limited = Family::<RouteLimitLabels, Counter>::default();
        registry.register("rate_limited", "Requests refused by a rate limit, by route and limit", rate_limited.clone());
        let cache = Family::<RouteResultLabels, Counter>::default();
        registry.register("cache_requests", "Cache lookups, by route and result (hit, miss, bypass)", cache.clone());
        let auth_failures = Family::<ProviderCodeLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused by authentication, by provider and error code",
            auth_failures.clone(),
        );
        let jwks_refresh = Family::<ProviderResultLabels, Counter>::default();
        registry.register("jwks_refresh", "JWKS fetches, by provider and result (ok or error)", jwks_refresh.clone());
        let state_errors = Family::<StoreLabel, Counter>::default();
        registry.register(
            "state_errors",
            "Failed calls to the shared state, by store (redis: limits, quotas and the shared cache; database: the key index)",
            state_errors.clone(),
        );
        let plan_requests = Family::<PlanLabel, Counter>::default();
        registry.register(
            "plan_requests",
            "Requests admitted and counted against a usage plan's quota, by plan",
            plan_requests.clone(),
        );
        let waf_matches = Family::<RuleActionLabels, Counter>::default();
        registry.register(
            "waf_matches",
            "WAF rule matches, by rule id and action (block, detect, pass)",
            waf_matches.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans not exported: the export queue was full or the collector failed",
            spans_dropped.clone(),
        );
        Self {
            spans_dropped,
            state_errors,
            plan_requests,
            registry,
            auth_failures,
            jwks_refresh,
            admin_auth_failures,
            waf_matches,
            rate_limited,
            cache,
            requests,
            request_duration,
            upstream_duration,
            target_healthy,
            certificate_expiry,
            reloads,
            connections,
            dashboard: Dashboard::default(),
            no_route: Arc::from(NO_ROUTE),
            rendering: std::sync::Mutex::new(()),
        }
    }

    /// What the admin dashboard shows of the traffic.
    pub fn dashboard(&self) -> &Dashboard {
        &self.dashboard
    }

    /// The counter of trace spans dropped, for the trace exporter of each loaded config.
    pub fn spans_dropped(&self) -> Counter {
        self.spans_dropped.clone()
    }

    /// Everything one request's record counts: the request and its latency (to the response
    /// head), the upstream's latency, a rate-limit refusal, the cache's result and an
    /// authentication refusal, and the dashboard's view of them. The same record becomes the
    /// access-log line.
    pub fn observe(&self, record: &Record, elapsed: Duration) {
        self.dashboard.observe(record, elapsed);
        let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.request(record.route.as_ref(), &record.method, status, elapsed);
        if let (Some(upstream), Some(ms)) = (&record.upstream, record.upstream_ms) {
            self.upstream(upstream, ms);
        }
        if let Some(route) = &record.route {
            if let Some(limit) = &record.rate_limited {
                self.rate_limited(route, limit);
            }
            if let Some(result) = record.cache {
                self.cache(route, result);
            }
        }
        if let Some(plan) = &record.plan {
            self.plan_requests.get_or_create(&PlanLabel { plan: plan.clone() }).inc();
        }
        if let Some(provider) = &record.auth_failed {
            self.auth_failure(provider, record.outcome.map_or("missing_credentials", ErrorCode::as_str));
        }
        if let Some(waf) = &record.waf {
            for rule in &waf.rules {
                self.waf_match(rule.0, waf.action.as_str());
            }
        }
    }

    /// A WAF rule that matched a request, and what was done (`block`, `detect`, `pass`).
    pub fn waf_match(&self, rule: u32, action: &'static str) {
        self.waf_matches.get_or_create(&RuleActionLabels { rule, action }).inc();
    }

    /// One answered request (gateway-made answers included).
    pub fn request(&self, route: Option<&Arc<str>>, method: &Method, status: StatusCode, elapsed: Duration) {
        let route = route.unwrap_or(&self.no_route).clone();
        self.request_duration.get_or_create(&RouteLabel { route: route.clone() }).observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { route, method: method_label(method), status: status.as_u16() })
            .inc();
    }

    pub fn upstream(&self, upstream: &Arc<str>, elapsed_ms: f64) {
        self.upstream_duration
            .get_or_create(&UpstreamLabel { upstream: upstream.clone() })
            .observe(elapsed_ms / 1000.0);
    }

    pub fn rate_limited(&self, route: &Arc<str>, limit: &Arc<str>) {
        self.rate_limited.get_or_create(&RouteLimitLabels { route: route.clone(), limit: limit.clone() }).inc();
    }

    /// One request of a cached route: `hit`, `miss` or `bypass`.
    pub fn cache(&self, route: &Arc<str>, result: &'static str) {
        self.cache.get_or_create(&RouteResultLabels { route: route.clone(), result }).inc();
    }

    /// A request refused by authentication; `provider` is the provider that refused it.
    pub fn auth_failure(&self, provider: &Arc<str>, code: &'static str) {
        self.auth_failures.get_or_create(&ProviderCodeLabels { provider: provider.clone(), code }).inc();
    }

    /// One JWKS fetch of a provider: `ok` or `error`.
    pub fn jwks_refresh(&self, provider: &str, result: &'static str) {
        self.jwks_refresh.get_or_create(&ProviderResultLabels { provider: Arc::from(provider), result }).inc();
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "error" } }).inc();
    }

    /// One refused admin API authentication; `audited`: it reached the audit trail.
    pub fn admin_auth_failure(&self, audited: bool) {
        self.admin_auth_failures.get_or_create(&AuditedLabel { audited: if audited { "true" } else { "false" } }).inc();
    }

    /// The gauge of a listener's open connections (kept by its accept loop).
    pub fn connections(&self, listener: &Arc<str>) -> Gauge {
        self.connections.get_or_create_owned(&ListenerLabel { listener: listener.clone() })
    }

    /// The text exposition, with config-describing gauges taken from `runtime`.
    pub fn render(&self, runtime: &dyn ConfigGauges) -> String {
        let _rendering = self.rendering.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.target_healthy.clear();
        for (upstream, target, healthy) in runtime.target_health() {
            let labels = TargetLabels { upstream, target };
            self.target_healthy.get_or_create(&labels).set(i64::from(healthy));
        }
        self.certificate_expiry.clear();
        for (name, left) in runtime.certificate_expiry(SystemTime::now()) {
            self.certificate_expiry.get_or_create(&NameLabel { name }).set(left);
        }
        let errors = runtime.state_errors();
        for (store, count) in [("redis", errors.redis), ("database", errors.database)] {
            if let Some(count) = count {
                self.state_errors.get_or_create(&StoreLabel { store }).inner().store(count, Ordering::Relaxed);
            }
        }
        let mut out = String::with_capacity(8192);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        // Extension methods are unbounded: one label keeps the series count bounded.
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = Metrics::new();
        let route: Arc<str> = Arc::from("orders");
        m.request(Some(&route), &Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.request(Some(&route), &Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.request(None, &Method::from_bytes(b"BREW").unwrap_or(Method::GET), StatusCode::NOT_FOUND, Duration::ZERO);
        m.reload(false);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap_or_default();
        assert!(out.contains(r#"portcullis_requests_total{route="orders",method="GET",status="200"} 2"#), "{out}");
        assert!(out.contains(r#"portcullis_requests_total{route="",method="OTHER",status="404"} 1"#), "{out}");
        assert!(out.contains(r#"portcullis_config_reloads_total{result="error"} 1"#), "{out}");
        assert!(out.contains("portcullis_request_duration_seconds_bucket"), "{out}");
    }
}
