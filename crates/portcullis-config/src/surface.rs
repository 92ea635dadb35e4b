//! The serde surface model of the config file (SPEC §2): exactly what a user writes.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently ignored
//! key. The same types derive the JSON Schema printed by `portcullis schema` and used to
//! validate a document before it is deserialized, so editors, CI and `run` agree on one shape.
//! Semantic checks (references between sections, ranges) live in `portcullis-core`'s compile
//! step, which turns this surface into the runtime snapshot.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{ByteSize, DurationValue, QuotaValue, RateValue};

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Format version; only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    pub admin: Option<Admin>,
    #[serde(default)]
    pub limits: Limits,
    /// Peers whose `X-Forwarded-For` is believed (CIDR or single addresses).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How paths match, to follow what the backends do.
    #[serde(default)]
    pub routing: Routing,
    /// Headers that only a trusted proxy may send, removed from the requests of every other
    /// peer; added to the built-in list (`X-Forwarded-Scheme`, `X-Real-IP`, `Forwarded`, …).
    #[serde(default)]
    pub trusted_proxy_headers: Vec<String>,
    /// How long in-flight requests get to finish on SIGTERM.
    pub shutdown_grace: Option<DurationValue>,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub logging: Logging,
    pub tracing: Option<Tracing>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Upstream>,
    #[serde(default)]
    pub auth: BTreeMap<String, AuthProvider>,
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    #[serde(default)]
    pub plans: BTreeMap<String, Plan>,
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimit>,
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    pub waf: Option<Waf>,
    #[serde(default)]
    pub cors: BTreeMap<String, Cors>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub openapi: Vec<OpenApiSource>,
    /// Overlays applied by `--stage NAME`: maps merge deeply, lists are replaced whole,
    /// `routes` merge by `name`. The merged document is validated as a whole.
    #[serde(default)]
    pub stages: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// `IP:PORT`.
    pub bind: String,
    pub tls: Option<ListenerTls>,
    /// Offer HTTP/2 (ALPN `h2` on TLS, prior knowledge on plain HTTP) besides HTTP/1.1.
    #[serde(default = "default_true")]
    pub http2: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Chosen by SNI against each certificate's SANs; the first is the default.
    pub certificates: Vec<CertificatePair>,
    pub min_version: Option<TlsVersion>,
    /// CA bundle that signs client certificates; enables mTLS.
    pub client_ca: Option<String>,
    pub client_cert: Option<ClientCertMode>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificatePair {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientCertMode {
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub bind: String,
    /// Bearer token (audited as actor `admin`); a token is required when `bind` is not
    /// loopback.
    pub token: Option<String>,
    /// Several named tokens, beside or instead of `token`: the name is the audit `actor`.
    #[serde(default)]
    pub tokens: Vec<NamedToken>,
    #[serde(default)]
    pub public_metrics: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedToken {
    pub name: String,
    pub token: String,
}

/// Global request limits; a route may only lower them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_header_bytes: Option<ByteSize>,
    pub max_uri_bytes: Option<ByteSize>,
    pub max_body_bytes: Option<ByteSize>,
    pub header_read_timeout: Option<DurationValue>,
    pub idle_timeout: Option<DurationValue>,
    pub max_connections: Option<u32>,
}

/// `routing:` — how request paths meet route patterns. The defaults match byte for byte;
/// a backend that ignores case or a trailing slash (Express, ASP.NET) needs the gateway to
/// match the way it does, or a variant of a protected path reaches a weaker route.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// `true`: `/API/Admin` matches `/api/admin`.
    #[serde(default)]
    pub case_insensitive: bool,
    #[serde(default)]
    pub trailing_slash: TrailingSlash,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrailingSlash {
    /// `/users/7/` and `/users/7` are different paths.
    #[default]
    Strict,
    /// `/users/7/` matches `/users/7` (and the other way round).
    Ignore,
}

/// The limits a route may set: only lower than the global ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteLimits {
    pub max_body_bytes: Option<ByteSize>,
    pub max_header_bytes: Option<ByteSize>,
    pub max_uri_bytes: Option<ByteSize>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// `sqlite://FILE` (default `sqlite://portcullis.db`) or `postgres://…`.
    pub database: Option<String>,
    /// Shared counters and cache for all instances: `redis://…`, `rediss://…` (TLS) or
    /// `unix://…`.
    pub redis: Option<String>,
    /// PEM CA certificates trusted for a `rediss://` Redis instead of the system's roots.
    pub redis_ca: Option<String>,
    pub on_redis_error: Option<OnRedisError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    Local,
    Allow,
    Deny,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub access: Option<LogSink>,
    pub audit: Option<LogSink>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSink {
    /// `stdout`, `stderr`, `off` or a file path.
    pub path: LogPath,
    pub format: Option<LogFormat>,
}

/// A log destination. The boolean `false` is accepted as `off` too (a YAML 1.1 reader turned a
/// bare `off` into `false`; this loader reads YAML 1.2, where it stays the word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LogPath(pub String);

/// Reads a string where YAML 1.1's `false` (a bare `off`) stands for `"off"`.
fn off_or_text<'de, D: serde::Deserializer<'de>>(deserializer: D, expected: &str) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Flag(bool),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Text(text) => Ok(text),
        Raw::Flag(false) => Ok("off".to_owned()),
        Raw::Flag(true) => Err(serde::de::Error::custom(format!("expected {expected}"))),
    }
}

impl<'de> Deserialize<'de> for LogPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        off_or_text(deserializer, "stdout, stderr, off or a file path").map(Self)
    }
}

impl JsonSchema for LogPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LogPath".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "stdout, stderr, off or a file path",
            "anyOf": [{ "type": "string", "minLength": 1 }, { "const": false }]
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// OTLP/HTTP endpoint, e.g. `http://127.0.0.1:4318`.
    pub otlp_endpoint: Option<String>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `http://host:port[/base]` or `https://…` (TLS; also every target when `tls` is set).
    #[serde(default)]
    pub targets: Vec<String>,
    /// `round_robin` | `least_requests` | `hash:client_ip` | `hash:header:NAME`.
    #[schemars(regex(
        pattern = r"^(round_robin|least_requests|hash:client_ip|hash:header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$"
    ))]
    pub balance: Option<String>,
    pub protocol: Option<UpstreamProtocol>,
    pub timeouts: Option<UpstreamTimeouts>,
    pub retries: Option<Retries>,
    pub health: Option<Health>,
    /// TLS to the targets (verification is always on); when set, every target is reached
    /// over TLS, whatever its scheme.
    pub tls: Option<UpstreamTls>,
    pub soap: Option<UpstreamSoap>,
    /// A built-in backend that answers every request itself (demos, tests, stubs of a real API).
    pub mock: Option<Mock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    Http1,
    H2,
    Auto,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTimeouts {
    pub connect: Option<DurationValue>,
    pub response: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first try; idempotent methods only.
    #[schemars(range(max = 10))]
    pub attempts: u32,
    #[serde(default)]
    pub on: Vec<RetryOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RetryOn {
    Status(#[schemars(range(min = 500, max = 599))] u16),
    Condition(RetryCondition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryCondition {
    ConnectError,
    Timeout,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub active: Option<ActiveHealth>,
    pub passive: Option<PassiveHealth>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealth {
    pub path: String,
    pub interval: Option<DurationValue>,
    pub timeout: Option<DurationValue>,
    #[schemars(range(min = 1))]
    pub unhealthy_after: Option<u32>,
    #[schemars(range(min = 1))]
    pub healthy_after: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    #[schemars(range(min = 1))]
    pub unhealthy_after: Option<u32>,
    pub cooldown: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of the CAs trusted for the targets' certificates; absent: the system roots.
    /// Certificates are always verified.
    pub ca: Option<String>,
    /// PEM certificate chain the gateway presents to the targets (with `client_key`).
    pub client_cert: Option<String>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<String>,
    /// The name sent as SNI and verified in the targets' certificates; absent: each
    /// target's host.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSoap {
    pub wsdl: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mock {
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthProvider {
    Jwt(JwtProvider),
    ApiKey(ApiKeyProvider),
    Mtls(MtlsProvider),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtProvider {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub ca: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub algorithms: Vec<String>,
    pub leeway: Option<DurationValue>,
    #[serde(default)]
    pub token_from: Vec<String>,
    pub login_url: Option<String>,
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyProvider {
    #[serde(default = "default_api_key_header")]
    pub header: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MtlsProvider {}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub plan: Option<String>,
    /// Stored forms from `portcullis hash-key` (`sha256:…`).
    #[serde(default)]
    pub keys: Vec<String>,
    pub mtls_subject: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub rate: Option<RateValue>,
    pub burst: Option<u32>,
    pub quota: Option<QuotaValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: RateValue,
    pub burst: Option<u32>,
    /// `client_ip` | `consumer` | `claim:NAME` | `header:NAME` | `route`.
    #[schemars(regex(pattern = r"^(client_ip|consumer|route|claim:.+|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$"))]
    pub key: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Every scope must be granted (`scope`, space separated, or `scp`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Each claim must hold one of the values (arrays: contain one).
    #[serde(default)]
    pub claims: BTreeMap<String, OneOrMany<serde_json::Value>>,
    /// A CEL expression over `request`, `claims`, `consumer`, `route`.
    pub expr: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// `block` when the section is present and says nothing.
    pub mode: Option<WafMode>,
    pub rules: Option<Vec<WafRuleSet>>,
    /// The built-in rules' anomaly threshold: a request whose score reaches it is refused.
    pub threshold: Option<u32>,
    /// OWASP Core Rule Set (SecLang) files, evaluated in-process.
    pub crs: Option<WafCrs>,
    /// Rules that must not count on some routes or for some parts of a request.
    #[serde(default)]
    pub exclusions: Vec<WafExclusion>,
    pub inspect_body_bytes: Option<ByteSize>,
    /// What lies past `inspect_body_bytes`: `pass` (forwarded uninspected) or `block`.
    pub oversize: Option<WafOversize>,
    #[serde(default)]
    pub allow_ips: Vec<String>,
    #[serde(default)]
    pub deny_ips: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WafCrs {
    pub path: String,
    pub paranoia_level: Option<u8>,
    pub inbound_threshold: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WafExclusion {
    /// Rule ids, as numbers or strings (`942100` or `"942100"`).
    pub rules: Vec<WafRuleId>,
    /// Route names; empty: every route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// `path`, `args[:NAME]`, `args_names[:NAME]`, `cookies[:NAME]`, `headers[:NAME]`,
    /// `json[:/POINTER]`, `xml`, `body`; empty: everywhere.
    #[serde(default)]
    pub targets: Vec<String>,
}

/// A WAF rule id written as a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum WafRuleId {
    Number(u64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WafOversize {
    Pass,
    Block,
}

/// WAF mode. The boolean `false` is accepted as `off` too (see [`LogPath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    Block,
    Detect,
    Off,
}

impl<'de> Deserialize<'de> for WafMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "block, detect or off";
        match off_or_text(deserializer, EXPECTED)?.as_str() {
            "block" => Ok(Self::Block),
            "detect" => Ok(Self::Detect),
            "off" => Ok(Self::Off),
            _ => Err(serde::de::Error::custom(format!("expected {EXPECTED}"))),
        }
    }
}

impl JsonSchema for WafMode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WafMode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "block | detect | off",
            "anyOf": [{ "enum": ["block", "detect", "off"] }, { "const": false }]
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WafRuleSet {
    Sqli,
    Xss,
    PathTraversal,
    CommandInjection,
    Protocol,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    pub origins: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    pub max_age: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    pub upstream: String,
    pub rewrite: Option<Rewrite>,
    /// Required: `none` (public, stated), `{any: [...]}` or `{all: [...]}`.
    pub auth: RouteAuth,
    pub policy: Option<OneOrMany<String>>,
    #[serde(default)]
    pub rate_limits: Vec<String>,
    pub cors: Option<String>,
    pub cache: Option<RouteCache>,
    pub validate: Option<RouteValidate>,
    pub waf: Option<WafMode>,
    pub limits: Option<RouteLimits>,
    pub headers: Option<RouteHeaders>,
    pub timeout: Option<DurationValue>,
    pub soap: Option<RouteSoap>,
    /// Pass WebSocket upgrades through: an HTTP/1.1 `GET` with `Connection: upgrade` and
    /// `Upgrade: websocket` is forwarded with those headers to the (`http1`) upstream, and
    /// once it answers 101 the two connections are spliced. Off: upgrade headers are
    /// stripped like every hop-by-hop header and the request is an ordinary one.
    #[serde(default)]
    pub websocket: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Exact (`api.example.com`) or wildcard (`*.example.com`); absent: any host.
    pub host: Option<String>,
    /// `/v1/orders`, `/v1/orders/{id}` or `/static/{*rest}`.
    pub path: String,
    /// Absent: every method.
    pub methods: Option<Vec<String>>,
    /// Accept `;` parameters in path segments (`/a;v=1/b`), which Tomcat and Spring strip
    /// before routing. Off: such a path is refused (400).
    #[serde(default)]
    pub matrix_params: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// May use the route's parameters: `/orders/{id}`.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteAuth {
    Keyword(AuthKeyword),
    Any(AnyOf),
    All(AllOf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKeyword {
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnyOf {
    pub any: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllOf {
    pub all: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice, whichever way they were written.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCache {
    pub ttl: DurationValue,
    #[serde(default)]
    pub shared: bool,
}

/// Requests are checked before they are forwarded; a violation is 400 `invalid_request`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteValidate {
    Operation(ValidateOperation),
    Schema(ValidateSchema),
}

/// Parameters (path, query, header, cookie), content type and body of an OpenAPI operation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateOperation {
    /// An OpenAPI 3.0 or 3.1 document (YAML or JSON).
    pub openapi: String,
    /// The operation's `operationId`.
    pub operation: String,
}

/// A JSON Schema (draft 2020-12; OpenAPI 3.0's `nullable` understood) the JSON body must
/// match; a body is required.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateSchema {
    pub schema: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteHeaders {
    #[serde(default)]
    pub request: RequestHeaderRules,
    #[serde(default)]
    pub response: HeaderRules,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderRules {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Edits of the request sent upstream.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestHeaderRules {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// Client headers whose name holds `_` that are forwarded on this route (all others
    /// are dropped: backends that read `_` as `-` would take `Content_Length` for
    /// `Content-Length`).
    #[serde(default)]
    pub allow_underscore: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSoap {
    pub operation: String,
    pub request: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApiSource {
    /// An OpenAPI 3.0 or 3.1 document (YAML or JSON): a route per operation.
    pub file: String,
    /// The upstream of operations without `x-portcullis-upstream`.
    pub upstream: Option<String>,
    /// The host the routes match (operations may say `x-portcullis-host`); absent: any.
    pub host: Option<String>,
    /// Check each request against its operation (parameters, content type, body).
    #[serde(default = "default_true")]
    pub validate: bool,
}

fn default_true() -> bool {
    true
}

fn default_status() -> u16 {
    200
}

fn default_api_key_header() -> String {
    "X-Api-Key".to_owned()
}
