//! The pipeline offline, for `portcullis explain` and `portcullis test`: the production phases (`pipeline::handle`,
//! the same code `run` serves with) against an edge that contacts nothing. The upstream is a
//! stand-in that records the request it would have received and answers what the case says;
//! there is no cache; JWT providers trust the public halves of the case file's keys (or a
//! throwaway key of the run) instead of fetching a JWKS; rate limits count in fresh memory, so
//! a run spends no real counter; the clock is the run's own, set to the case's time.

pub mod cases;
pub mod run;
pub mod tokens;

use std::fmt;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use portcullis_auth::jwt::{JwtProvider, RefreshEvents, StaticJwksSource};
use portcullis_core::cache::{CacheKey, Entry};
use portcullis_core::clock::{Clock, ManualClock};
use portcullis_core::limits::RateLimits;
use portcullis_core::pipeline::{
    self, Downstream, Edge, Exchange, ForwardMode, Forwarded, OutBody, Outbound, Payload, Shared,
};
use portcullis_core::snapshot::{ProviderKind, Snapshot, UpstreamKind};
use portcullis_core::stage::AuthSources;
use portcullis_core::{ClientCert, RequestContext, TlsInfo, UpstreamError};

/// The request of one offline run.
#[derive(Debug, Clone)]
pub struct OfflineRequest {
    pub method: Method,
    /// Absolute (`https://api.example.com/v1/orders?x=1`): its scheme says whether the
    /// request came over TLS, its authority is the `Host`.
    pub url: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client_ip: IpAddr,
    /// A verified client certificate's subject (the listener's mTLS).
    pub client_cert_subject: Option<String>,
}

/// What the stand-in upstream answers.
#[derive(Debug, Clone)]
pub struct StandIn {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Default for StandIn {
    fn default() -> Self {
        Self { status: StatusCode::OK, headers: HeaderMap::new(), body: Bytes::new() }
    }
}

/// The request as the upstream would have received it.
#[derive(Debug, Clone)]
pub struct Upstreamed {
    pub upstream: Arc<str>,
    pub target: Arc<str>,
    pub method: Method,
    /// Path and query as sent to the target (its base path included).
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `None`: the gateway answered without contacting an upstream.
    pub upstream: Option<Upstreamed>,
    pub ctx: Box<RequestContext>,
}

impl Outcome {
    /// What expectations look at.
    pub fn observed(&self) -> cases::Observed {
        cases::Observed {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.clone(),
            upstream: self.upstream.clone(),
            route: self.ctx.route.as_ref().map(|r| r.name.to_string()),
            consumer: self.ctx.consumer.clone(),
            decided_by: self.ctx.decisions.decided_by().map(|d| d.to_string()),
        }
    }
}

/// One config, ready to run requests offline.
pub struct Offline<'a> {
    snapshot: &'a Snapshot,
    jwt: Vec<Option<Arc<JwtProvider>>>,
    limits: RateLimits,
    clock: Arc<ManualClock>,
}

#[derive(Debug)]
struct NoEvents;

impl RefreshEvents for NoEvents {
    fn refreshed(&self, _provider: &str, _result: &'static str) {}
}

impl<'a> Offline<'a> {
    /// `keys`: the keys whose public halves the JWT providers trust in this run (a
    /// throwaway key's algorithm joins its provider's allow-list for the run).
    pub fn new(snapshot: &'a Snapshot, keys: &[tokens::SigningKey], unix_seconds: i64) -> Result<Self, Error> {
        let clock = Arc::new(ManualClock::new(0, unix_seconds));
        let jwks = tokens::jwks(keys);
        let mut jwt = Vec::with_capacity(snapshot.providers.len());
        for provider in &snapshot.providers {
            jwt.push(match &provider.kind {
                ProviderKind::Jwt(spec) => {
                    let document = jwks
                        .iter()
                        .find(|(name, _)| **name == *provider.name)
                        .map_or_else(|| Bytes::from_static(b"{\"keys\":[]}"), |(_, d)| d.clone());
                    let mut settings = spec.settings.clone();
                    for key in keys.iter().filter(|k| *k.provider == *provider.name) {
                        if !settings.algorithms.contains(&key.algorithm()) {
                            settings.algorithms.push(key.algorithm());
                        }
                    }
                    let live =
                        JwtProvider::new(settings, Arc::new(StaticJwksSource(document.clone())), Arc::new(NoEvents));
                    // No keys is a valid offline state: every token is then refused.
                    let _ = live.load_jwks(document);
                    Some(live)
                }
                _ => None,
            });
        }
        let limits = RateLimits::offline(snapshot, clock.clone()).map_err(Error::from_display)?;
        Ok(Self { snapshot, jwt, limits, clock })
    }

    /// Runs `request` through every phase; the stand-in upstream answers `stand_in`.
    pub async fn run(&self, request: &OfflineRequest, stand_in: &StandIn) -> Result<Outcome, Error> {
        let https = request.url.scheme_str() == Some("https");
        let mut builder = Request::builder().method(request.method.clone()).version(http::Version::HTTP_11);
        let target = request.url.path_and_query().map_or("/", |pq| pq.as_str());
        builder = builder.uri(target);
        let mut headers = request.headers.clone();
        if let Some(authority) = request.url.authority()
            && !headers.contains_key(http::header::HOST)
        {
            headers.insert(http::header::HOST, HeaderValue::from_str(authority.as_str()).map_err(Error::from_display)?);
        }
        if !request.body.is_empty() && !headers.contains_key(http::header::CONTENT_LENGTH) {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(request.body.len()));
        }
        let mut http_request = builder.body(Full::new(request.body.clone())).map_err(Error::from_display)?;
        *http_request.headers_mut() = headers;
        let tls = (https || request.client_cert_subject.is_some()).then(|| {
            Arc::new(TlsInfo {
                version: "TLSv1.3",
                server_name: request.url.host().map(str::to_owned),
                client_cert: request
                    .client_cert_subject
                    .as_ref()
                    .map(|subject| ClientCert { subject: subject.clone(), sans: Vec::new() }),
            })
        });
        let downstream = Downstream {
            peer: SocketAddr::new(request.client_ip, 40000),
            https: https || request.client_cert_subject.is_some(),
            listener: Arc::from("offline"),
            tls,
        };
        let edge = OfflineEdge { snapshot: self.snapshot, stand_in: stand_in.clone(), seen: Mutex::new(None) };
        let shared = Shared {
            snapshot: self.snapshot,
            sources: AuthSources { jwt: &self.jwt, keys: None },
            limits: &self.limits,
            clock: &*self.clock as &dyn Clock,
            detailed_record: true,
        };
        let Exchange { response, ctx, .. } = pipeline::handle(&edge, &shared, http_request, &downstream).await;
        let (head, payload) = response.into_parts();
        let body = match payload {
            Payload::Full(bytes) => bytes,
            Payload::Upstream(body) => {
                body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default()
            }
        };
        let upstream = edge.seen.lock().map_err(|_| Error::new("the stand-in upstream's record is poisoned"))?.take();
        Ok(Outcome { status: head.status, headers: head.headers, body, upstream, ctx })
    }
}

/// The edge of an offline run: the stand-in upstream, no cache.
struct OfflineEdge<'a> {
    snapshot: &'a Snapshot,
    stand_in: StandIn,
    seen: Mutex<Option<Upstreamed>>,
}

impl Edge for OfflineEdge<'_> {
    type Body = Full<Bytes>;
    type Reply = Full<Bytes>;

    async fn cache_get(&self, _key: &CacheKey) -> Option<Arc<Entry>> {
        None
    }

    fn can_upgrade(&self, _parts: &http::request::Parts) -> bool {
        true
    }

    async fn forward(&self, outbound: Outbound<Full<Bytes>>) -> Result<Forwarded<Full<Bytes>>, UpstreamError> {
        let spec = self.snapshot.upstreams.get(outbound.upstream).ok_or(UpstreamError::Invalid)?;
        let UpstreamKind::Targets(targets) = &spec.kind else { return Err(UpstreamError::Invalid) };
        // The first target stands for them all: balancing is the pool's, not the pipeline's.
        let target =
            targets.targets.first().ok_or(UpstreamError::NoHealthyTarget { retry_after: Default::default() })?;
        let path_and_query = outbound.parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let sent_path = match outbound.mode {
            ForwardMode::SoapEndpoint if !target.base_path.is_empty() => target.base_path.clone(),
            _ => format!("{}{path_and_query}", target.base_path),
        };
        let body = match outbound.body {
            OutBody::Empty => Bytes::new(),
            OutBody::Full(bytes) => bytes,
            OutBody::Stream(body) => {
                let collected = body.collect().await.map_err(|_| UpstreamError::ClientBody)?.to_bytes();
                if collected.len() as u64 > outbound.limits.max_body_bytes {
                    return Err(UpstreamError::BodyTooLarge);
                }
                collected
            }
            OutBody::Prefixed(head, rest) => {
                let rest = rest.collect().await.map_err(|_| UpstreamError::ClientBody)?.to_bytes();
                let collected = Bytes::from([head, rest].concat());
                if collected.len() as u64 > outbound.limits.max_body_bytes {
                    return Err(UpstreamError::BodyTooLarge);
                }
                collected
            }
        };
        let mut headers = outbound.parts.headers;
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(target.authority.as_str()).map_err(|_| UpstreamError::Invalid)?,
        );
        let seen = Upstreamed {
            upstream: spec.name.clone(),
            target: target.name.clone(),
            method: outbound.parts.method,
            path_and_query: sent_path,
            headers,
            body,
        };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        let mut response = Response::new(Full::new(self.stand_in.body.clone()));
        *response.status_mut() = self.stand_in.status;
        *response.headers_mut() = self.stand_in.headers.clone();
        if !response.headers().contains_key(http::header::CONTENT_LENGTH) {
            response.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(self.stand_in.body.len()));
        }
        Ok(Forwarded { response, target: target.name.clone(), upstream_ms: 0.0 })
    }
}

/// Parses `Name: value` as given to `-H`.
pub fn header_arg(text: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let (name, value) = text.split_once(':').ok_or_else(|| Error::new(format!("`{text}` is not `Name: value`")))?;
    Ok((
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(Error::from_display)?,
        HeaderValue::from_str(value.trim()).map_err(Error::from_display)?,
    ))
}

/// Why an offline run could not be made: a bad case, key, URL or header (the message says
/// which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub(crate) fn from_display(e: impl fmt::Display) -> Self {
        Self(e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `return Err(Error::new(format!(...)))`.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::Error::new(format!($($arg)*)))
    };
}
pub(crate) use fail;
