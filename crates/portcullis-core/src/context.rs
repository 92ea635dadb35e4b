//! What the gateway knows about one request while it moves through the stages.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderValue;

use crate::ids::TraceContext;
use crate::problem::ErrorCode;
use crate::snapshot::RouteSpec;

/// The per-request context. Built once at intake; stages fill it in.
#[derive(Debug)]
pub struct RequestContext {
    pub peer: SocketAddr,
    /// The client address after the trusted-proxy rule.
    pub client_ip: IpAddr,
    pub https: bool,
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
    /// The error code of a gateway-made answer (`None`: ok).
    pub outcome: Option<ErrorCode>,
    pub cache: Option<&'static str>,
}
