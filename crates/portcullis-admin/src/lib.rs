//! The admin API (SPEC §5), served with axum on its own listener: liveness and readiness,
//! Prometheus metrics, config reload, cache purge, read-only views of routes, upstreams
//! and certificates, and the dashboard (`GET /`, [`dashboard`]): a static page whose script
//! reads everything it shows from a token-guarded JSON endpoint.
//!
//! Every endpoint but `/health`, `/ready`, the dashboard's static files (and `/metrics` with
//! `public_metrics: true`) needs `Authorization: Bearer <token>` when the config sets a token;
//! the token is read from the current config on every request, so a reload rotates it.
//! Without a token (allowed on loopback only) the API is open to local processes; a listener
//! bound off loopback stays closed if a reload drops the token, since the listener itself is
//! only bound at start.
//!
//! Local processes include every web browser on the machine. So, without a token, a request
//! must name the admin API by a loopback literal in `Host` (`127.0.0.1`, `[::1]` or
//! `localhost`, any port: a DNS-rebound name never passes) and come from no other web origin
//! (`Origin`, `Sec-Fetch-Site`). With or without a token, every write (any method but GET,
//! HEAD, OPTIONS) says `Content-Type: application/json`, even with an empty body: a form or
//! a `no-cors` fetch cannot, so no page can make one without a CORS preflight, which this API
//! never answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use portcullis_core::{ErrorCode, Problem};
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod auth;
mod consumers;
mod dashboard;

use auth::{Caller, FailureBudget, require_token, require_token_for_metrics};

use portcullis_proxy::reload::{Reloader, Trigger};
use portcullis_proxy::runtime::Runtime;

#[derive(Clone)]
struct AdminState {
    reloader: Arc<Reloader>,
    /// The listener is on loopback. It is bound once, at start: a reload that drops the token
    /// (or the `admin` section) must not open a listener that is reachable from elsewhere.
    loopback: bool,
    /// Refused authentications audited this minute.
    failures: Arc<FailureBudget>,
}

impl AdminState {
    fn current(&self) -> Arc<Runtime> {
        self.reloader.handle().current()
    }
}

/// The admin listener, bound and ready to serve.
pub struct Admin {
    listener: TcpListener,
    router: Router,
    reloader: Arc<Reloader>,
}

impl Admin {
    /// Binds `addr`; requests are answered from `reloader`'s gateway.
    pub async fn bind(addr: SocketAddr, reloader: Arc<Reloader>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("admin API cannot bind {addr}: {e}")))?;
        let loopback = listener.local_addr()?.ip().is_loopback();
        Ok(Self {
            listener,
            router: router(AdminState { reloader: reloader.clone(), loopback, failures: Arc::default() }),
            reloader,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the gateway begins its shutdown.
    pub async fn run(self) {
        let mut stopping = self.reloader.handle().stopping();
        let stop = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        // The peer's address names the caller in the audit trail.
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(self.listener, service).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    }
}

/// An HTTP method the admin API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any probe: `/health`, `/ready`.
    Open,
    /// The dashboard's page and its assets: static, the same for everyone, no data in them
    /// (the page asks for the token and reads its numbers from a [`Access::Token`] endpoint).
    Page,
    /// The token, unless `public_metrics: true`.
    Metrics,
    /// The token.
    Token,
}

/// One endpoint: the router is built from the list of them ([`endpoints`]), and the test of
/// `/openapi.json` reads the same list, so the document cannot describe another API.
struct Endpoint {
    verb: Verb,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AdminState>,
}

fn ep<H, T>(verb: Verb, path: &'static str, access: Access, handler: H) -> Endpoint
where
    H: Handler<T, AdminState>,
    T: 'static,
{
    Endpoint { verb, path, access, handler: on(verb.filter(), handler) }
}

fn endpoints() -> Vec<Endpoint> {
    use Access::{Metrics, Open, Token};
    use Verb::{Get, Post};
    let mut list = vec![
        ep(Get, "/health", Open, health),
        ep(Get, "/ready", Open, ready),
        ep(Get, "/metrics", Metrics, metrics),
        ep(Get, "/config", Token, config),
        ep(Post, "/config/reload", Token, reload),
        ep(Get, "/routes", Token, routes),
        ep(Get, "/upstreams", Token, upstreams),
        ep(Get, "/certificates", Token, certificates),
        ep(Post, "/cache/purge", Token, purge_cache),
        ep(Get, "/openapi.json", Token, openapi),
    ];
    list.extend(consumers::endpoints());
    list.extend(dashboard::endpoints());
    list
}

/// Every (method, path, access) the admin API serves, paths as OpenAPI writes them.
pub fn served() -> Vec<(Verb, &'static str, Access)> {
    endpoints().into_iter().map(|e| (e.verb, e.path, e.access)).collect()
}

fn router(state: AdminState) -> Router {
    let (mut open, mut metrics, mut guarded) = (Router::new(), Router::new(), Router::new());
    for e in endpoints() {
        match e.access {
            Access::Open | Access::Page => open = open.route(e.path, e.handler),
            Access::Metrics => metrics = metrics.route(e.path, e.handler),
            Access::Token => guarded = guarded.route(e.path, e.handler),
        }
    }
    let guarded = guarded
        .route_layer(middleware::from_fn(json_writes))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics = metrics.route_layer(middleware::from_fn_with_state(state.clone(), require_token_for_metrics));
    // Liveness and readiness stay open to any probe: they change nothing and tell nothing.
    let api = Router::new()
        .merge(metrics)
        .merge(guarded)
        .route_layer(middleware::from_fn_with_state(state.clone(), no_web_pages_without_a_token));
    open.merge(api).fallback(not_found).with_state(state)
}

/// This API's own OpenAPI 3.1 document (kept by hand beside the code; a test checks it
/// against [`served`] and a running gateway).
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI).into_response()
}

/// Without a token, only local tools and the admin API's own pages: a loopback literal in
/// `Host`, and no other web origin.
async fn no_web_pages_without_a_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let tokenless = state.current().snapshot.admin.as_ref().is_none_or(|a| a.tokens.is_empty());
    if tokenless && let Some(detail) = browser_refusal(&request) {
        return consumers::problem(ErrorCode::Forbidden, detail);
    }
    next.run(request).await
}

/// Why a tokenless request is refused, if it is.
fn browser_refusal(request: &Request) -> Option<&'static str> {
    let headers = request.headers();
    let hosts: Vec<&str> = request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .into_iter()
        .chain(headers.get_all(header::HOST).iter().map(|h| h.to_str().unwrap_or("")))
        .collect();
    if hosts.is_empty() || !hosts.iter().all(|h| is_loopback_authority(h)) {
        return Some("without an admin token, the admin API answers only to a loopback address in Host");
    }
    let own_origin = |origin: &str| {
        origin.strip_prefix("http://").is_some_and(|rest| hosts.iter().all(|h| rest.eq_ignore_ascii_case(h)))
    };
    if headers.get_all(header::ORIGIN).iter().any(|o| !o.to_str().is_ok_and(own_origin)) {
        return Some("without an admin token, the admin API answers no other web origin");
    }
    let fetch_site = headers.get_all("sec-fetch-site").iter();
    if fetch_site.map(HeaderValue::as_bytes).any(|site| site != b"same-origin" && site != b"none") {
        return Some("without an admin token, the admin API answers no other web origin");
    }
    None
}

/// `127.0.0.1`, `[::1]` (any loopback address literal) or `localhost`, with any port. A name
/// other than `localhost` may be an attacker's, rebound to 127.0.0.1 after the page loaded;
/// `localhost` itself always resolves on the machine (RFC 6761 §6.3, and browsers hard-code it).
fn is_loopback_authority(value: &str) -> bool {
    let Ok(authority) = value.parse::<http::uri::Authority>() else { return false };
    if authority.as_str().contains('@') {
        return false;
    }
    let host = authority.host();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every write says `Content-Type: application/json` (parameters such as `charset` aside),
/// once: 415 otherwise.
async fn json_writes(request: Request, next: Next) -> Response {
    let write = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut types = request.headers().get_all(header::CONTENT_TYPE).iter();
    let json = match (types.next(), types.next()) {
        (Some(value), None) => value.to_str().is_ok_and(|v| {
            v.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        }),
        _ => false,
    };
    if write && !json {
        let detail = "admin API writes need `Content-Type: application/json`, even with an empty body";
        return consumers::problem(ErrorCode::UnsupportedMediaType, detail);
    }
    next.run(request).await
}

fn problem(problem: Problem) -> Response {
    let id = portcullis_core::ids::new_request_id();
    let (parts, body) = problem.into_response(&id).into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn not_found() -> Response {
    problem(Problem::new(ErrorCode::NoRoute, "no such admin endpoint"))
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready once a config is loaded and serving and the database answers (503 while it does
/// not: a load balancer then sends traffic elsewhere).
async fn ready(State(state): State<AdminState>) -> Response {
    let runtime = state.current();
    let database = match &runtime.database {
        Some(sync) => portcullis_proxy::database::reachable(sync).await,
        None => true,
    };
    let hash = &runtime.snapshot.hash;
    if database {
        axum::Json(json!({"status": "ready", "config_hash": hash, "database": "ok"})).into_response()
    } else {
        let body = json!({"status": "unavailable", "config_hash": hash, "database": "unreachable"});
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let runtime = state.current();
    let text = state.reloader.handle().metrics().render(&runtime);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `GET /config`: the config in force, secrets redacted, with the hash `/ready` reports.
async fn config(State(state): State<AdminState>) -> Response {
    let runtime = state.current();
    let snapshot = &runtime.snapshot;
    axum::Json(json!({
        "hash": snapshot.hash,
        "loaded_at": humantime::format_rfc3339_millis(snapshot.loaded_at).to_string(),
        "stage": snapshot.stage,
        "config": snapshot.shown,
    }))
    .into_response()
}

async fn reload(State(state): State<AdminState>, Extension(caller): Extension<Caller>) -> Response {
    match state.reloader.reload(Trigger::Admin(caller.actor)).await {
        Ok(hash) => axum::Json(json!({"hash": hash})).into_response(),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"errors": errors}))).into_response(),
    }
}

/// `POST /cache/purge` `{route?, path_prefix?}`: both optional, neither purges everything.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    route: Option<String>,
    path_prefix: Option<String>,
}

async fn purge_cache(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let request: PurgeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PurgeRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return problem(Problem::new(ErrorCode::InvalidRequest, format!("purge body: {e}"))),
        }
    };
    let runtime = state.current();
    let purged = runtime.cache.purge(request.route.as_deref(), request.path_prefix.as_deref()).await;
    let target = match (&request.route, &request.path_prefix) {
        (None, None) => "*".to_owned(),
        (route, prefix) => format!("{}{}", route.as_deref().unwrap_or("*"), prefix.as_deref().unwrap_or("")),
    };
    let (result, detail) = match &purged {
        Ok(n) => ("ok", format!("{n} entries")),
        Err(e) => ("error", e.to_string()),
    };
    let entry = portcullis_telemetry::audit::AuditEntry {
        actor: &caller.actor,
        action: "cache.purge",
        target: Some(&target),
        result,
        detail: Some(&detail),
    };
    portcullis_proxy::audit::record(&runtime, &entry).await;
    match purged {
        Ok(purged) => axum::Json(json!({"purged": purged})).into_response(),
        Err(e) => problem(Problem::new(ErrorCode::Internal, format!("cache purge: {e}"))),
    }
}

async fn routes(State(state): State<AdminState>) -> Response {
    let runtime = state.current();
    let snapshot = &runtime.snapshot;
    let routes: Vec<Value> = snapshot
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": &*r.name,
                "host": r.host,
                "path": r.path,
                "methods": r.methods.as_ref().map(|m| m.iter().map(|m| m.as_str().to_owned()).collect::<Vec<_>>()),
                "upstream": snapshot.upstreams.get(r.upstream).map(|u| &*u.name),
                "auth": format!("{:?}", r.auth),
                "policies": r.policies.iter().map(|p| &**p).collect::<Vec<_>>(),
                "websocket": r.websocket,
            })
        })
        .collect();
    axum::Json(Value::Array(routes)).into_response()
}

async fn upstreams(State(state): State<AdminState>) -> Response {
    axum::Json(upstreams_json(&state.current())).into_response()
}

/// `/upstreams` (and the dashboard's): each upstream's targets with their health.
fn upstreams_json(runtime: &Runtime) -> Value {
    let upstreams: Vec<Value> = runtime
        .upstreams
        .iter()
        .map(|u| {
            let targets: Vec<Value> =
                u.target_health().into_iter().map(|(t, healthy)| json!({"target": &*t, "healthy": healthy})).collect();
            json!({"name": &*u.spec.name, "targets": targets})
        })
        .collect();
    Value::Array(upstreams)
}

async fn certificates(State(state): State<AdminState>) -> Response {
    axum::Json(certificates_json(&state.current(), SystemTime::now())).into_response()
}

/// `/certificates` (and the dashboard's): every served certificate, with the days left at `now`.
fn certificates_json(runtime: &Runtime, now: SystemTime) -> Value {
    let certs: Vec<Value> = runtime
        .certificates()
        .map(|c| {
            let left = c.seconds_left(now);
            json!({
                "name": c.name,
                "sans": c.sans,
                "not_after": humantime::format_rfc3339_seconds(c.not_after).to_string(),
                // Whole days, as operators count them (29, not 29.0).
                "days_left": (left / 86400.0).floor() as i64,
                "file": c.file.display().to_string(),
                "serial": c.serial,
                "sha256": c.sha256,
            })
        })
        .collect();
    Value::Array(certs)
}

#[cfg(test)]
mod tests;
