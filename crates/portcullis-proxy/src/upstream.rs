//! Live upstreams: a pooled keep-alive client per upstream, its targets with health state,
//! and forwarding with balancing, timeouts and retries. TLS targets ([`tls`]) go through the
//! same pools; only the connect step differs.

mod attempt;
mod balance;
mod h1client;
mod h1head;
mod h1io;
mod h1pool;
mod health;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use portcullis_core::snapshot::{Protocol, TargetSpec, TargetsSpec, UpstreamKind, UpstreamSpec};

use portcullis_core::UpstreamError as ProxyError;
use portcullis_core::pipeline::ForwardMode;
use portcullis_core::record::BodyStats;

use crate::body::RequestBody;
use crate::files::LoadedFiles;
use crate::response_body::UpstreamBody;

pub(crate) use h1client::H1Body;
pub(crate) use h1io::Upgraded;
pub use health::spawn_active_checks;

/// Idle pooled connections kept per target.
const POOL_MAX_IDLE_PER_HOST: usize = 1024;
/// How long an idle pooled connection is kept.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The first try plus the most retries the config allows.
const MAX_TRIES: usize = 11;

/// The multiplexing client (`protocol: h2`, and active health checks); typed by whether
/// the upstream speaks TLS, so plain connections keep hyper-util's own connector.
#[derive(Debug)]
pub(crate) enum HttpClient {
    Plain(Client<HttpConnector, RequestBody>),
    Tls(Client<tls::TlsConnect, RequestBody>),
}

impl HttpClient {
    pub(crate) fn request(&self, request: Request<RequestBody>) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            Self::Plain(client) => client.request(request),
            Self::Tls(client) => client.request(request),
        }
    }
}

/// One upstream at run time.
#[derive(Debug)]
pub struct UpstreamRuntime {
    pub spec: UpstreamSpec,
    pub(crate) pool: Option<Pool>,
}

/// The networked part of an upstream with targets.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) spec: TargetsSpec,
    pub(crate) client: HttpClient,
    pub(crate) targets: Vec<Target>,
    cursor: AtomicUsize,
}

/// One target and its health.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) spec: TargetSpec,
    /// `Host` sent upstream: the target's authority, built once.
    host_header: HeaderValue,
    /// HTTP/1.1 keep-alive connections, driven in the request's task (the `h2` protocol
    /// uses the multiplexing client).
    h1: Arc<h1pool::H1Pool>,
    /// Cleared by active checks after `unhealthy_after` failures.
    pub(crate) active_ok: AtomicBool,
    passive_failures: AtomicU32,
    /// Milliseconds since [`epoch`] until which passive health keeps the target out.
    ejected_until_ms: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Target {
    pub(crate) fn is_healthy(&self) -> bool {
        // The clock is read only for a target that was ejected at some point.
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        self.active_ok.load(Ordering::Relaxed) && (until == 0 || now_ms() >= until)
    }

    fn record(&self, ok: bool, spec: &TargetsSpec) {
        if ok {
            self.passive_failures.store(0, Ordering::Relaxed);
            return;
        }
        let failures = self.passive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= spec.passive_health.unhealthy_after {
            self.passive_failures.store(0, Ordering::Relaxed);
            let until =
                now_ms().saturating_add(u64::try_from(spec.passive_health.cooldown.as_millis()).unwrap_or(u64::MAX));
            self.ejected_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(target = %self.spec.name, "target ejected after consecutive failures");
        }
    }
}

impl UpstreamRuntime {
    /// Builds the pools (connecting nothing); TLS targets use the material `files` holds for
    /// this upstream ([`crate::files::load_files`]).
    pub fn new(spec: &UpstreamSpec, files: &LoadedFiles) -> std::io::Result<Self> {
        let pool = match &spec.kind {
            UpstreamKind::Mock(_) => None,
            UpstreamKind::Targets(t) => Some(Pool::new(&spec.name, t, files)?),
        };
        Ok(Self { spec: spec.clone(), pool })
    }

    /// Target names and whether each is healthy.
    pub fn target_health(&self) -> Vec<(Arc<str>, bool)> {
        self.pool
            .as_ref()
            .map_or_else(Vec::new, |p| p.targets.iter().map(|t| (t.spec.name.clone(), t.is_healthy())).collect())
    }
}

/// What the balancer hashes on.
pub(crate) struct BalanceKey {
    pub(crate) client_ip: IpAddr,
    /// The value of the `hash:header:NAME` header, when that is the balance.
    pub(crate) header: Option<HeaderValue>,
}

/// A forwarded request's result.
pub(crate) struct Forwarded {
    /// An HTTP/1.1 body gives its connection back to the pool when read to its end.
    pub(crate) response: Response<UpstreamBody>,
    pub(crate) target: Arc<str>,
    pub(crate) upstream_ms: f64,
}

impl Pool {
    /// The header value a `hash:header:NAME` balance needs, read before the request moves.
    pub(crate) fn hash_header(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        match &self.spec.balance {
            portcullis_core::snapshot::Balance::HashHeader(name) => headers.get(name).cloned(),
            _ => None,
        }
    }

    fn new(name: &str, spec: &TargetsSpec, files: &LoadedFiles) -> std::io::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(spec.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        // Compile made the targets all TLS or all plain.
        let tls = if spec.targets.iter().any(|t| t.https) {
            let files = files
                .upstream(name)
                .ok_or_else(|| std::io::Error::other(format!("upstream `{name}`: its TLS files were not loaded")))?;
            Some(tls::UpstreamTls::new(name, &spec.tls, spec.protocol, files)?)
        } else {
            None
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .set_host(false)
            .http2_only(spec.protocol == Protocol::H2);
        let mut targets = Vec::with_capacity(spec.targets.len());
        for t in &spec.targets {
            let target_tls = match (&tls, t.https) {
                (Some(tls), true) => {
                    Some(h1pool::TargetTls { name: tls.server_name_for(&t.authority)?, tls: tls.clone() })
                }
                _ => None,
            };
            let address = t.authority.as_str().to_owned();
            targets.push(Target {
                spec: t.clone(),
                host_header: HeaderValue::from_str(t.authority.as_str())
                    .unwrap_or_else(|_| HeaderValue::from_static("")),
                h1: h1pool::H1Pool::new(address, spec.connect_timeout, POOL_MAX_IDLE_PER_HOST, target_tls),
                active_ok: AtomicBool::new(true),
                passive_failures: AtomicU32::new(0),
                ejected_until_ms: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
            });
        }
        let client = match tls {
            None => HttpClient::Plain(builder.build(connector)),
            Some(tls) => {
                // The connector sees `https` URIs; the handshake is ours.
                connector.enforce_http(false);
                HttpClient::Tls(builder.build(tls::TlsConnect::new(connector, tls, spec.connect_timeout)))
            }
        };
        Ok(Self { spec: spec.clone(), client, targets, cursor: AtomicUsize::new(0) })
    }

    /// Sends the request, retrying per policy when it is safe (idempotent method, no body).
    pub(crate) async fn forward(
        &self,
        mut parts: http::request::Parts,
        body: RequestBody,
        body_empty: bool,
        key: BalanceKey,
        timeout: Duration,
        mode: ForwardMode,
    ) -> Result<Forwarded, ProxyError> {
        let upgrade = mode == ForwardMode::WebSocketUpgrade;
        let retryable = body_empty && is_idempotent(&parts.method);
        let mut attempts_left = if retryable { self.spec.retries.attempts } else { 0 };
        let deadline = tokio::time::Instant::now() + timeout;
        // A body streaming from the client: how far it got decides who a failure belongs to.
        let client_body = body.stats();
        let mut body = Some(body);
        // A sampled request's recorder: each attempt below is a client span of its own.
        let spans = parts.extensions.remove::<portcullis_core::spans::Spans>();
        // At most 1 + 10 attempts (the schema caps retries), so no heap for the tried list.
        let mut tried = [usize::MAX; MAX_TRIES];
        let mut tries = 0;
        loop {
            let index = balance::pick(self, &key, &tried[..tries]).ok_or_else(|| self.no_healthy())?;
            if let Some(slot) = tried.get_mut(tries) {
                *slot = index;
                tries += 1;
            }
            let target = &self.targets[index];
            // Only a request that may be retried keeps a copy of its headers.
            let mut headers =
                if attempts_left > 0 { parts.headers.clone() } else { std::mem::take(&mut parts.headers) };
            let attempt = attempt::Attempt::start(spans.as_ref(), &mut headers);
            let request = self.build(&parts, headers, target, body.take().unwrap_or_else(RequestBody::empty), mode)?;
            let started = Instant::now();
            target.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = match client_body.as_deref() {
                // One deadline for the whole exchange, retries included (only bodiless
                // requests are retried).
                None => tokio::time::timeout_at(deadline, self.send(target, request))
                    .await
                    .unwrap_or(Err(ProxyError::Timeout)),
                Some(stats) => await_head(self.send(target, request), timeout, stats).await,
            };
            target.in_flight.fetch_sub(1, Ordering::Relaxed);
            let outcome = match result {
                Err(e) => Err(blame(e, client_body.as_deref())),
                Ok(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS && !upgrade => {
                    Err(ProxyError::Invalid)
                }
                Ok(response) => Ok(response),
            };
            if let Some(attempt) = attempt {
                attempt.end(&parts.method, &target.spec, tries.saturating_sub(1), &outcome);
            }
            let retry = attempts_left > 0 && self.should_retry(&outcome);
            if let Some(ok) = passive_ok(&outcome, client_body.as_deref()) {
                target.record(ok, &self.spec);
            }
            if retry {
                attempts_left -= 1;
                continue;
            }
            let response = outcome?;
            let upstream_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(Forwarded { response, target: target.spec.name.clone(), upstream_ms });
        }
    }

    async fn send(&self, target: &Target, request: Request<RequestBody>) -> Result<Response<UpstreamBody>, ProxyError> {
        if self.spec.protocol == Protocol::H2 {
            return match self.client.request(request).await {
                Ok(response) => Ok(response.map(UpstreamBody::h2)),
                Err(e) if e.is_connect() => Err(ProxyError::Connect),
                Err(e) => Err(classify(&e)),
            };
        }
        match target.h1.send(request).await {
            Ok(response) => Ok(response.map(UpstreamBody::h1)),
            Err(h1pool::SendFailure::Connect) => Err(ProxyError::Connect),
            Err(h1pool::SendFailure::Client(e)) => Err(e),
            Err(h1pool::SendFailure::Invalid) => Err(ProxyError::Invalid),
        }
    }

    fn should_retry<B>(&self, outcome: &Result<Response<B>, ProxyError>) -> bool {
        let policy = &self.spec.retries;
        match outcome {
            Ok(r) => policy.on_status.contains(&r.status()),
            Err(ProxyError::Connect) => policy.on_connect_error,
            Err(ProxyError::Timeout) => policy.on_timeout,
            Err(_) => false,
        }
    }

    fn no_healthy(&self) -> ProxyError {
        let retry_after = self
            .spec
            .active_health
            .as_ref()
            .map_or(self.spec.passive_health.cooldown, |a| a.interval)
            .min(self.spec.passive_health.cooldown);
        ProxyError::NoHealthyTarget { retry_after }
    }

    fn build(
        &self,
        parts: &http::request::Parts,
        mut headers: HeaderMap,
        target: &Target,
        body: RequestBody,
        mode: ForwardMode,
    ) -> Result<Request<RequestBody>, ProxyError> {
        let base_path = &target.spec.base_path;
        let path_and_query = match (base_path.is_empty(), parts.uri.path_and_query()) {
            (false, _) if mode == ForwardMode::SoapEndpoint => {
                PathAndQuery::try_from(base_path.as_str()).map_err(|_| ProxyError::Invalid)?
            }
            (true, Some(pq)) => pq.clone(),
            (_, pq) => {
                let pq = pq.map_or("/", |pq| pq.as_str());
                PathAndQuery::try_from(format!("{base_path}{pq}")).map_err(|_| ProxyError::Invalid)?
            }
        };
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = if self.spec.protocol == Protocol::H2 {
            // The multiplexing client routes by the absolute URI.
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(if target.spec.https { Scheme::HTTPS } else { Scheme::HTTP });
            uri.authority = Some(target.spec.authority.clone());
            uri.path_and_query = Some(path_and_query);
            Uri::from_parts(uri).map_err(|_| ProxyError::Invalid)?
        } else {
            // HTTP/1.1 connections are already to the target: origin form.
            Uri::from(path_and_query)
        };
        if self.spec.protocol == Protocol::H2 {
            *request.version_mut() = Version::HTTP_2;
            headers.remove(HOST);
        } else {
            *request.version_mut() = Version::HTTP_11;
            headers.insert(HOST, target.host_header.clone());
        }
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// Waits for the response head of a request whose body streams from the client. The response
/// timeout counts from the moment the client's body has arrived in full: while the body is
/// still arriving, its own stall timer bounds the wait, for a slow client is not a slow
/// upstream. An upstream that stops taking the body for the whole timeout is a timeout.
async fn await_head<T>(
    send: impl Future<Output = Result<T, ProxyError>>,
    timeout: Duration,
    body: &BodyStats,
) -> Result<T, ProxyError> {
    let mut send = std::pin::pin!(send);
    let mut deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(result) = tokio::time::timeout_at(deadline, send.as_mut()).await {
            return result;
        }
        let now = Instant::now();
        let Some(next) = wait_on_until(body, timeout, now) else { return Err(ProxyError::Timeout) };
        deadline = tokio::time::Instant::from_std(next);
    }
}

/// When the response timeout has passed at `now`: how long to wait on (`None`: it is over).
/// The timeout counts from the body's end; while the client is still sending, wait another
/// period (the body's stall timer ends a client that stops).
fn wait_on_until(body: &BodyStats, timeout: Duration, now: Instant) -> Option<Instant> {
    let next = match body.ended_at() {
        Some(ended) => ended + timeout,
        None if body.waiting_for_client() => now + timeout,
        None => return None,
    };
    (next > now).then_some(next)
}

/// A failure after the client's body stalled or broke off is the client's, whatever the
/// exchange made of it (the HTTP/1.1 and HTTP/2 clients report a failed body differently).
fn blame(error: ProxyError, client_body: Option<&BodyStats>) -> ProxyError {
    match client_body {
        Some(body) if body.stalled() => ProxyError::ClientTimeout,
        Some(body) if body.broken() => ProxyError::ClientBody,
        _ => error,
    }
}

/// Whether the exchange speaks for the target's health: `None` when the client caused the
/// failure (a body over the limit, broken off or stalled), or when it came while the
/// client's body was still arriving (an upstream giving up on a slow body is no sign of
/// trouble), so no client can get a target ejected. A failed connect always counts: nothing
/// of the body had been sent.
fn passive_ok<B>(outcome: &Result<Response<B>, ProxyError>, client_body: Option<&BodyStats>) -> Option<bool> {
    let failed = match outcome {
        Ok(r) => matches!(r.status().as_u16(), 502..=504),
        Err(ProxyError::BodyTooLarge | ProxyError::ClientBody | ProxyError::ClientTimeout) => return None,
        Err(ProxyError::Connect) => return Some(false),
        Err(ProxyError::Timeout | ProxyError::Invalid | ProxyError::NoHealthyTarget { .. }) => true,
    };
    let still_arriving = client_body.is_some_and(|b| b.ended_at().is_none());
    match (failed, still_arriving) {
        (true, true) => None,
        (failed, _) => Some(!failed),
    }
}

fn classify(e: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<crate::body::BodyLimitExceeded>() {
            return ProxyError::BodyTooLarge;
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_user() || h.is_body_write_aborted())
        {
            return ProxyError::ClientBody;
        }
        source = err.source();
    }
    ProxyError::Invalid
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

#[cfg(test)]
mod h1bench;
#[cfg(test)]
mod h1diff;
#[cfg(test)]
mod tests;
