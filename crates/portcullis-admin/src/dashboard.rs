//! The dashboard (SPEC §5 `GET /`): one HTML page, its script and its style sheet, embedded in
//! the binary (`dashboard/` beside `src/`) and served as they are. They are static and hold no
//! data, so they need no token; everything the page shows comes from `GET /dashboard/data`,
//! behind the admin token like every other view, which the script calls with the token the
//! operator typed (kept in the tab's `sessionStorage` only).
//!
//! The page, its script and its style sheet go out with a strict Content-Security-Policy:
//! nothing but this origin's own script, style and `fetch`, no inline code, no frames, no
//! forms posted anywhere, no referrer. The script writes every value with `textContent`, so a
//! route or consumer named `<script>` shows as text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{ErrorCode, Problem, Snapshot};
use portcullis_proxy::runtime::Runtime;
use portcullis_telemetry::dashboard::{Dashboard, Refusal, RouteTraffic};
use serde_json::{Value, json};

use super::{Access, AdminState, Endpoint, Verb, ep};

/// The most consumers the dashboard lists (config and database together); `consumers_left_out`
/// says how many more there are. Each costs a quota look-up (a Redis round trip with
/// `state.redis`), so the page's poll stays cheap.
pub(crate) const MAX_CONSUMERS: usize = 100;

/// Only this origin's own script, style and requests; nothing inline, nothing framed.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page and its assets, from `dashboard/` (embedded in debug builds too, so the tests
/// serve what a release serves).
#[derive(rust_embed::RustEmbed)]
#[folder = "dashboard/"]
struct Assets;

/// Each embedded file, where it is served and as what.
const FILES: [(&str, &str, &str); 3] = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/dashboard/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/dashboard/app.css", "app.css", "text/css; charset=utf-8"),
];

pub(super) fn endpoints() -> Vec<Endpoint> {
    use Access::{Page, Token};
    use Verb::Get;
    let [(page, _, _), (script, _, _), (style, _, _)] = FILES;
    vec![
        ep(Get, page, Page, || async { file(0) }),
        ep(Get, script, Page, || async { file(1) }),
        ep(Get, style, Page, || async { file(2) }),
        ep(Get, "/dashboard/data", Token, data),
    ]
}

/// The headers of the page and its assets: the CSP, and nothing cached, sniffed, framed or
/// referred.
fn harden(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
}

fn file(index: usize) -> Response {
    let Some(&(_, name, content_type)) = FILES.get(index) else { return missing() };
    let Some(embedded) = Assets::get(name) else { return missing() };
    let mut response =
        ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], axum::body::Body::from(embedded.data))
            .into_response();
    harden(response.headers_mut());
    response
}

/// A build without the dashboard's files (never shipped: a test serves each one).
fn missing() -> Response {
    super::problem(Problem::new(ErrorCode::Internal, "the dashboard's files are not in this build"))
}

/// `GET /dashboard/data`: everything the page shows, read-only.
async fn data(State(state): State<AdminState>) -> Response {
    let runtime = state.current();
    let body = data_json(&runtime, state.reloader.handle().metrics().dashboard(), SystemTime::now()).await;
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) async fn data_json(runtime: &Runtime, dashboard: &Dashboard, now: SystemTime) -> Value {
    let (consumers, left_out, database) = consumers_json(runtime).await;
    json!({
        "generated_at": humantime::format_rfc3339_seconds(now).to_string(),
        "config_hash": runtime.snapshot.hash,
        "routes": routes_json(&runtime.snapshot, dashboard),
        "unmatched": traffic_json(&dashboard.unmatched_traffic()),
        "upstreams": super::upstreams_json(runtime),
        "certificates": super::certificates_json(runtime, now),
        "refusals": dashboard.recent_refusals().iter().map(refusal_json).collect::<Vec<_>>(),
        "consumers": consumers,
        "consumers_left_out": left_out,
        "database": database,
    })
}

/// The current config's routes, each with its traffic since the process started.
fn routes_json(snapshot: &Snapshot, dashboard: &Dashboard) -> Value {
    let routes = snapshot.routes.iter().map(|r| {
        let mut entry = traffic_json(&dashboard.route_traffic(&r.name));
        if let Some(fields) = entry.as_object_mut() {
            fields.insert("name".into(), json!(&*r.name));
            fields.insert("host".into(), json!(r.host));
            fields.insert("path".into(), json!(r.path));
            fields.insert("upstream".into(), json!(snapshot.upstreams.get(r.upstream).map(|u| &*u.name)));
        }
        entry
    });
    Value::Array(routes.collect())
}

fn traffic_json(t: &RouteTraffic) -> Value {
    // Microseconds are the buckets' precision at best.
    let ms = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "requests": t.requests,
        "server_errors": t.server_errors,
        "refused": t.refused,
        "latency_ms": t.latency_ms.map(|[p50, p95, p99]| json!({"p50": ms(p50), "p95": ms(p95), "p99": ms(p99)})),
    })
}

fn refusal_json(r: &Refusal) -> Value {
    let ts = UNIX_EPOCH + Duration::from_millis(u64::try_from(r.ts_millis).unwrap_or(0));
    json!({
        "ts": humantime::format_rfc3339_millis(ts).to_string(),
        "route": r.route.as_deref(),
        "status": r.status,
        "code": r.code,
        "decided_by": r.decided_by,
        "client_ip": r.client_ip.to_string(),
    })
}

/// Config-declared consumers, then the database's, with their plan and quota use: at most
/// [`MAX_CONSUMERS`], how many were left out, and the database's state (`ok`, `unreachable`,
/// or `null` without one).
async fn consumers_json(runtime: &Runtime) -> (Vec<Value>, usize, Value) {
    let mut named: Vec<(String, Option<String>, &'static str)> = runtime
        .snapshot
        .consumers
        .iter()
        .map(|c| (c.name.to_string(), c.plan.as_deref().map(str::to_owned), "config"))
        .collect();
    let database = match &runtime.database {
        None => Value::Null,
        Some(sync) => match sync.store().list_consumers().await {
            Ok(stored) => {
                named.extend(stored.into_iter().map(|c| (c.name, c.plan, "database")));
                json!("ok")
            }
            Err(e) => {
                tracing::warn!(error = %e, "dashboard: cannot list the database's consumers");
                json!("unreachable")
            }
        },
    };
    let left_out = named.len().saturating_sub(MAX_CONSUMERS);
    let mut out = Vec::with_capacity(named.len().min(MAX_CONSUMERS));
    for (name, plan, source) in named.into_iter().take(MAX_CONSUMERS) {
        let quota = super::consumers::quota_json(runtime, &name, plan.as_deref()).await;
        out.push(json!({"name": name, "plan": plan, "source": source, "quota": quota}));
    }
    (out, left_out, database)
}

#[cfg(test)]
mod tests;
