//! What the gateway knows about one request while it moves through the stages.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderValue;

use crate::clock::Now;
use crate::ids::TraceContext;
use crate::problem::ErrorCode;
use crate::snapshot::RouteSpec;
use crate::trace::Trace;

/// The per-request context. Built once at intake; stages fill it in.
#[derive(Debug)]
pub struct RequestContext {
    /// When the request arrived, on the gateway's one clock: every phase reads this.
    pub now: Now,
    /// What each phase decided (the access log's `decided_by`, `explain`).
    pub decisions: Trace,
    pub peer: SocketAddr,
    /// The client address after the trusted-proxy rule.
    pub client_ip: IpAddr,
    pub https: bool,
    /// The connection's TLS session (SNI, version, verified client certificate).
    pub tls: Option<Arc<TlsInfo>>,
    pub listener: Arc<str>,
    pub request_id: HeaderValue,
    pub trace: TraceContext,
    /// Lowercase, without port; from the URI authority or `Host`.
    pub host: Option<String>,
    /// The host as the client sent it (for `X-Forwarded-Host`).
    pub original_host: Option<HeaderValue>,
    pub route: Option<Arc<RouteSpec>>,
    pub params: Vec<(Arc<str>, String)>,
    /// The consumer and auth provider, once authenticated.
    pub consumer: Option<String>,
    pub auth: Option<Arc<str>>,
    /// The consumer's usage plan, when it has one.
    pub plan: Option<Arc<str>>,
    /// The verified JWT, when a JWT provider authenticated the request.
    pub token: Option<Arc<portcullis_auth::jwt::Verified>>,
    /// Where the tokens the gateway verified were read (and so may go upstream as checked).
    pub verified: VerifiedCredentials,
    /// The provider whose check refused the request (for `auth_failures_total`).
    pub auth_failed: Option<Arc<str>>,
    /// An unknown `kid` already caused one JWKS refetch for this request.
    pub jwks_refetched: bool,
    /// The error code of a gateway-made answer (`None`: ok).
    pub outcome: Option<ErrorCode>,
    pub cache: Option<&'static str>,
    /// One bucket key per entry of the route's `rate_limits` (same order); inline up to two,
    /// so a rate-limited request allocates only its key text.
    pub rate_keys: smallvec::SmallVec<[String; 2]>,
    /// What the WAF found, when a rule matched (the access log's `waf`, the WAF metric).
    pub waf: Option<WafFinding>,
    /// What the CORS phase found: the response phases add the policy's headers from it.
    pub cors: crate::cors::CorsOutcome,
    /// The request's child spans, when it is sampled and traces are exported.
    pub spans: crate::spans::Spans,
}

/// What the WAF phase saw in one request: its anomaly score, the rules that matched, and what
/// was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafFinding {
    /// The built-in rules' anomaly score.
    pub score: u32,
    /// CRS's inbound anomaly score; `None` when `waf.crs` is not configured.
    pub crs_score: Option<u32>,
    /// The matched rules: the built-in ones, then CRS's (an id in both, once).
    pub rules: smallvec::SmallVec<[portcullis_waf::RuleId; 4]>,
    pub action: WafAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafAction {
    /// Refused with 403 `waf_blocked`.
    Block,
    /// `detect` mode: forwarded, recorded.
    Detect,
    /// `block` mode, below the threshold: forwarded, recorded.
    Pass,
}

impl WafAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Detect => "detect",
            Self::Pass => "pass",
        }
    }
}

/// The places of a request holding a credential the gateway verified, and whose owner the
/// identity headers name: the response cache keys on such credentials, while any other
/// `Authorization` or `Cookie` going upstream makes a request uncacheable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedCredentials {
    /// The bearer token in `Authorization` passed a JWT provider and has a `sub`.
    pub authorization: bool,
    /// Cookies whose token passed a JWT provider and has a `sub` (empty: no allocation).
    pub cookies: Vec<String>,
}

/// The negotiated TLS session of a connection.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3` (logged as the access log's `tls`).
    pub version: &'static str,
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The verified client certificate (mTLS), if one was presented.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate that passed verification against the listener's `client_ca`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// RFC 4514 distinguished name, e.g. `CN=acme-billing,O=Acme`.
    pub subject: String,
    /// DNS, URI, email and IP subject alternative names, as text.
    pub sans: Vec<String>,
}
