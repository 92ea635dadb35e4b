//! The validated, immutable runtime config that requests read. Built only by
//! [`crate::compile`]; swapped whole on reload, never mutated.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use ipnet::IpNet;
use portcullis_config::Diagnostic;

use crate::route::RouteTable;

mod dn;

pub use dn::DistinguishedName;

pub const DEFAULT_MAX_HEADER_BYTES: u64 = 16 * 1024;
pub const DEFAULT_MAX_URI_BYTES: u64 = 8 * 1024;
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(29);
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
pub const DEFAULT_HEALTHY_AFTER: u32 = 2;
pub const DEFAULT_PASSIVE_UNHEALTHY_AFTER: u32 = 5;
pub const DEFAULT_PASSIVE_COOLDOWN: Duration = Duration::from_secs(30);

/// One compiled config.
#[derive(Debug)]
pub struct Snapshot {
    /// Content hash (FNV-1a 64, hex) of the merged document and of every file it names
    /// ([`Snapshot::watch`]): tells reloads apart, a certificate-only one included.
    pub hash: String,
    /// The merged document with every secret redacted, for `GET /config`.
    pub shown: serde_json::Value,
    pub loaded_at: SystemTime,
    pub stage: Option<String>,
    pub listeners: Vec<ListenerSpec>,
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    /// `trusted_proxy_headers`: removed from requests of other peers, beside
    /// [`crate::headers::TRUSTED_PROXY_HEADERS`].
    pub trusted_proxy_headers: Vec<HeaderName>,
    /// `waf.allow_ips` / `waf.deny_ips`, applied to the client IP.
    pub ip_rules: IpRules,
    /// The WAF's rules, compiled once per load (routes carry their own mode).
    pub waf: Arc<portcullis_waf::Waf>,
    /// `waf.crs`: the OWASP Core Rule Set of this load, evaluated beside the built-in rules.
    pub crs: Option<Arc<CrsSpec>>,
    pub shutdown_grace: Duration,
    pub upstreams: Vec<UpstreamSpec>,
    pub routes: Vec<Arc<RouteSpec>>,
    pub table: RouteTable,
    /// Stripped from every client request before any stage runs.
    pub identity_headers: Vec<HeaderName>,
    pub access_log: LogSink,
    /// `logging.audit`: admin actions and reloads, one JSON object per line.
    pub audit_log: LogSink,
    pub sample_ratio: f64,
    /// `tracing.otlp_endpoint` with `/v1/traces` appended: where spans are exported.
    pub otlp_traces_url: Option<String>,
    /// Sections that parse and cross-check but whose enforcement this build lacks, and risks
    /// the config takes (a weaker route receiving variants of a stronger route's paths).
    pub warnings: Vec<Diagnostic>,
    /// The merged document, for `GET /config`.
    pub document: serde_json::Value,
    pub admin: Option<AdminSpec>,
    /// `rate_limits`, by name order; routes refer to them by index.
    pub rate_limits: Vec<RateLimitSpec>,
    pub state: StateSpec,
    /// `auth`, by name order; routes name them (see [`Snapshot::provider`]).
    pub providers: Vec<ProviderSpec>,
    /// `consumers` declared in the file, by name order.
    pub consumers: Vec<ConsumerSpec>,
    /// The keys of config-declared consumers (`consumers.*.keys`), by digest.
    pub config_keys: portcullis_auth::api_key::KeyIndex,
    /// `plans`, by name order; consumers name them.
    pub plans: Vec<PlanSpec>,
    /// `policies`, by name order; routes name them.
    pub policies: Vec<PolicySpec>,
    /// Every `api_key` provider's header: removed from every request before it is forwarded.
    pub key_headers: Vec<HeaderName>,
    /// Every JWT provider's token cookie and token query parameter (`token_from`), once
    /// each: on an authenticated route, removed unless the accepting provider read it.
    pub token_places: Vec<TokenSource>,
    /// Files this config was read from or names (the config itself, `${file:}` references,
    /// certificates and keys): a change to any of them triggers a reload.
    pub watch: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: Arc<str>,
    pub bind: SocketAddr,
    pub http2: bool,
    pub tls: Option<ListenerTlsSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTlsSpec {
    /// `(cert, key)` PEM files, absolute; the first pair is the default certificate.
    pub certificates: Vec<(PathBuf, PathBuf)>,
    /// Accept TLS 1.2 as well as 1.3 (`min_version: "1.2"`, the default).
    pub allow_tls12: bool,
    /// CA bundle for client certificates (mTLS); `None`: no certificate is asked for.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse the handshake without a valid client certificate.
    pub client_cert_required: bool,
}

/// One entry of `rate_limits`: GCRA with a steady `count` per `period` and `burst` capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSpec {
    pub name: Arc<str>,
    pub count: u32,
    pub period: Duration,
    /// `None`: one period's count.
    pub burst: Option<u32>,
    pub key: LimitKey,
}

/// What a rate limit counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    ClientIp,
    /// The authenticated consumer; requests without one count by client IP.
    Consumer,
    /// A claim of the verified token; requests without it count by client IP.
    Claim(String),
    /// A request header; requests without it share one bucket.
    Header(HeaderName),
    /// The route: one bucket for all its clients.
    Route,
}

/// `state.database` when the config says nothing: a SQLite file beside the config.
pub const DEFAULT_DATABASE: &str = "sqlite://portcullis.db";

/// `state:` — where consumers, keys and usage are kept, and where shared counters live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateSpec {
    /// `sqlite://FILE` (the path made absolute against the config folder) or `postgres://…`.
    /// Opened once at start: a change applies at restart.
    pub database: String,
    pub redis: Option<String>,
    /// PEM CA file trusted for `rediss://` (else the system's roots); read at (re)load.
    pub redis_ca: Option<PathBuf>,
    pub on_redis_error: OnRedisError,
}

/// What a rate-limit decision does when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRedisError {
    /// Per-instance limits until Redis is back.
    #[default]
    Local,
    Allow,
    Deny,
}

/// One entry of `auth`.
#[derive(Debug)]
pub struct ProviderSpec {
    pub name: Arc<str>,
    pub kind: ProviderKind,
}

#[derive(Debug)]
pub enum ProviderKind {
    Jwt(JwtSpec),
    /// A key in `header`, looked up by digest among config and database keys.
    ApiKey {
        header: HeaderName,
        /// `ApiKey realm="portcullis", header="X-Api-Key"`: the header as the config spells
        /// it (`HeaderName` is lowercase), built once.
        challenge: HeaderValue,
    },
    /// The verified client certificate's subject, matched against `consumers.*.mtls_subject`.
    Mtls,
}

/// A JWT provider's request-side settings; the verification settings travel to the live
/// provider (which outlives reloads with the same settings).
#[derive(Debug)]
pub struct JwtSpec {
    pub settings: portcullis_auth::jwt::JwtSettings,
    /// Where a token is looked for, in order; the first one found is the token.
    pub token_from: Vec<TokenSource>,
    /// Browsers without a valid token are redirected here (GET, `Accept` preferring HTML).
    pub login_url: Option<String>,
    /// `(claim, header)`: set on the upstream request from the verified token.
    pub forward_claims: Vec<(String, HeaderName)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    Cookie(String),
    Query(String),
}

/// A consumer declared in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub name: Arc<str>,
    pub plan: Option<Arc<str>>,
    /// RFC 4514 subject of the client certificate that identifies this consumer.
    pub mtls_subject: Option<String>,
    /// `mtls_subject` parsed, as certificate subjects are compared with it.
    pub mtls_dn: Option<DistinguishedName>,
}

/// A usage plan: a steady rate with a burst, a quota, or both, per consumer. It applies on
/// top of the route's own limits on every route its consumers call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSpec {
    pub name: Arc<str>,
    /// `(count, period)`.
    pub rate: Option<(u32, Duration)>,
    pub burst: Option<u32>,
    pub quota: Option<QuotaSpec>,
}

/// Accepted requests per UTC calendar day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSpec {
    pub limit: u64,
    pub monthly: bool,
}

/// One compiled policy.
#[derive(Debug)]
pub struct PolicySpec {
    pub name: Arc<str>,
    pub policy: portcullis_auth::policy::Policy,
}

/// The admin listener (`admin:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSpec {
    pub bind: SocketAddr,
    /// Bearer tokens with their names (`token` is named `admin`); empty only on loopback
    /// (then the API is open to local processes).
    pub tokens: Vec<AdminToken>,
    /// `/metrics` answers without the token.
    pub public_metrics: bool,
}

/// One admin bearer token and the name the audit trail gives its holder.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub name: String,
    pub token: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Client IP allow and deny lists: a non-empty `allow` admits only its addresses; `deny` wins.
#[derive(Debug, Clone, Default)]
pub struct IpRules {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl Snapshot {
    /// The provider named `name` (routes refer to providers by name; there are few).
    pub fn provider(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| &*p.name == name)
    }

    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| &*p.name == name)
    }

    pub fn plan(&self, name: &str) -> Option<&PlanSpec> {
        self.plans.iter().find(|p| &*p.name == name)
    }

    pub fn policy(&self, name: &str) -> Option<&PolicySpec> {
        self.policies.iter().find(|p| &*p.name == name)
    }

    /// The config-declared consumer whose `mtls_subject` is the distinguished name `subject`.
    pub fn consumer_by_subject(&self, subject: &str) -> Option<&ConsumerSpec> {
        let subject = DistinguishedName::parse(subject)?;
        self.consumers.iter().find(|c| c.mtls_dn.as_ref() == Some(&subject))
    }

    pub fn consumer(&self, name: &str) -> Option<&ConsumerSpec> {
        self.consumers.iter().find(|c| &*c.name == name)
    }
}

impl IpRules {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` may pass.
    pub fn admits(&self, ip: std::net::IpAddr) -> bool {
        let ip = crate::headers::canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// Request limits (global, or a route's lowered copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: u64,
    pub max_uri_bytes: u64,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    Off,
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    pub name: Arc<str>,
    pub kind: UpstreamKind,
    /// `soap: { wsdl }`: a SOAP service, its WSDL read and parsed at compile time.
    pub soap: Option<SoapUpstreamSpec>,
}

/// A SOAP upstream's WSDL (SPEC §6).
#[derive(Debug, Clone)]
pub struct SoapUpstreamSpec {
    /// The WSDL file, absolute; watched, so editing it reloads the config.
    pub wsdl_file: PathBuf,
    pub wsdl: Arc<portcullis_soap::Wsdl>,
}

#[derive(Debug, Clone)]
pub enum UpstreamKind {
    Targets(TargetsSpec),
    Mock(MockSpec),
}

#[derive(Debug, Clone)]
pub struct TargetsSpec {
    pub targets: Vec<TargetSpec>,
    pub balance: Balance,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub retries: RetryPolicy,
    pub active_health: Option<ActiveHealthSpec>,
    pub passive_health: PassiveHealthSpec,
    /// How TLS targets are verified and what the gateway presents to them.
    pub tls: UpstreamTlsSpec,
}

/// Upstream TLS settings, paths resolved against the config file's folder. The files are
/// read when the proxy builds its runtime, so a bad file fails the (re)load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTlsSpec {
    /// Trusted CAs (PEM bundle); `None`: the system roots.
    pub ca: Option<PathBuf>,
    /// Certificate chain and key presented to the targets.
    pub client_cert: Option<ClientCertSpec>,
    /// SNI and the name verified; `None`: each target's host.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertSpec {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One backend address: scheme, authority and an optional base path prepended upstream.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// As written, for logs and metrics.
    pub name: Arc<str>,
    /// Connected with TLS: an `https://` target, or any target of an upstream with `tls`.
    pub https: bool,
    pub authority: http::uri::Authority,
    /// Without the trailing slash; empty for none.
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastRequests,
    HashClientIp,
    HashHeader(HeaderName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    H2,
    Auto,
}

#[derive(Debug, Clone, Default)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub on_connect_error: bool,
    pub on_timeout: bool,
    pub on_status: Vec<StatusCode>,
}

#[derive(Debug, Clone)]
pub struct ActiveHealthSpec {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct PassiveHealthSpec {
    pub unhealthy_after: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct MockSpec {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One compiled route.
#[derive(Debug)]
pub struct RouteSpec {
    pub name: Arc<str>,
    pub host: Option<String>,
    pub path: String,
    /// `None`: every method.
    pub methods: Option<Vec<Method>>,
    pub upstream: usize,
    pub rewrite: Option<Rewrite>,
    pub auth: AuthRule,
    /// Policy names; all must pass.
    pub policies: Vec<Arc<str>>,
    pub limits: Limits,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    /// Overrides the upstream's response timeout.
    pub timeout: Option<Duration>,
    /// Whether the route pattern has parameters the rewrite needs.
    pub captures_params: bool,
    /// Indexes into [`Snapshot::rate_limits`]: all must admit the request.
    pub rate_limits: Vec<usize>,
    /// `websocket: true`: a WebSocket upgrade request keeps its `Connection: upgrade` and
    /// `Upgrade` headers and the connection is spliced after the upstream's 101.
    pub websocket: bool,
    /// The upstream speaks HTTP/2: a client's `TE: trailers` is forwarded (gRPC needs it),
    /// though `TE` is otherwise hop-by-hop.
    pub te_trailers: bool,
    /// `soap: { operation, request? }`: the request becomes a SOAP envelope, the answer JSON.
    pub soap: Option<SoapRouteSpec>,
    /// `cache: { ttl, shared }`: GET/HEAD 200 responses are kept and served again.
    pub cache: Option<CacheSpec>,
    /// `match.matrix_params`: `;` parameters in path segments are accepted (and forwarded).
    pub matrix_params: bool,
    /// `headers.request.allow_underscore`: client headers with `_` in their name that are
    /// forwarded on this route (lowercase); every other such header is dropped.
    pub allow_underscore: Vec<HeaderName>,
    /// The WAF's mode on this route: the route's `waf`, else `waf.mode`.
    pub waf: WafMode,
    /// `cors`: the route's CORS policy (shared by every route naming it).
    pub cors: Option<Arc<crate::cors::CorsPolicy>>,
    /// `validate` (or an imported OpenAPI operation): what a request must look like.
    pub contract: Option<Arc<portcullis_contract::Contract>>,
}

/// `waf.crs`, compiled: the rules loaded from `path` and `waf.exclusions` in CRS terms.
pub struct CrsSpec {
    pub rules: portcullis_crs::CrsRules,
    /// `waf.crs.path`, resolved.
    pub path: PathBuf,
    /// `waf.crs.inbound_threshold`.
    pub threshold: u32,
    /// The exclusions of a route not named below: those naming no route.
    pub everywhere: Vec<portcullis_crs::Exclusion>,
    /// By route name: those naming no route, then the route's own.
    pub by_route: std::collections::HashMap<String, Vec<portcullis_crs::Exclusion>>,
}

impl CrsSpec {
    /// The exclusions that apply on `route`.
    pub fn exclusions(&self, route: &str) -> &[portcullis_crs::Exclusion] {
        self.by_route.get(route).unwrap_or(&self.everywhere)
    }
}

impl std::fmt::Debug for CrsSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrsSpec")
            .field("path", &self.path)
            .field("rules", &self.rules.rule_count())
            .field("paranoia_level", &self.rules.paranoia_level())
            .field("threshold", &self.threshold)
            .field("everywhere", &self.everywhere)
            .field("by_route", &self.by_route)
            .finish()
    }
}

/// What the WAF does on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafMode {
    /// A request whose anomaly score reaches the threshold is refused (403 `waf_blocked`).
    Block,
    /// Inspected, logged and counted, always forwarded.
    Detect,
    Off,
}

/// A route's response cache settings. Entries are keyed by route name and these settings, so
/// a reload that changes them never serves what the old settings stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheSpec {
    /// How long an entry is served (never longer than the upstream's `s-maxage`/`max-age`).
    pub ttl: Duration,
    /// `true`: one entry for every consumer; `false` (default): one per consumer.
    pub shared: bool,
}

/// A route's SOAP operation, resolved against its upstream's WSDL at compile time.
#[derive(Debug)]
pub struct SoapRouteSpec {
    pub operation: Arc<portcullis_soap::Operation>,
    /// `soap.request`, checked against the operation; `None`: the JSON body (POST, PUT,
    /// PATCH) or the query parameters are the input as they are.
    pub template: Option<portcullis_soap::RequestTemplate>,
    /// Where the envelope is posted on a target without a base path: the path (and query)
    /// of the WSDL port's `soap:address`, `/` when it has none. A target's own base path wins.
    pub address_path: http::uri::PathAndQuery,
}

/// How a route authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRule {
    /// `auth: none`, stated: public.
    Public,
    Any(Vec<Arc<str>>),
    All(Vec<Arc<str>>),
}

/// A rewrite template: literal text and `{param}` references.
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub parts: Vec<RewritePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewritePart {
    Literal(String),
    Param(String),
}

impl Rewrite {
    /// The rewritten path; parameters are substituted as they were matched (still encoded).
    pub fn render(&self, params: &[(Arc<str>, String)]) -> String {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                RewritePart::Literal(text) => out.push_str(text),
                RewritePart::Param(name) => {
                    if let Some((_, value)) = params.iter().find(|(n, _)| n.as_ref() == name) {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// Header edits of one direction.
#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}
