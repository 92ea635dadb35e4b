//! Consumers and API keys in the database (SPEC §5), and the audit trail:
//! `POST/GET /consumers`, `GET/DELETE /consumers/{name}`, `POST/GET /consumers/{name}/keys`,
//! `DELETE /keys/{id}`, `GET /audit`. All behind the admin token (the caller's route layer).
//!
//! Every write is audited twice, to the audit log file and the database's audit table, and
//! never with the key itself. After a write this instance's key index is refreshed at once;
//! other instances pick it up at their next sync poll.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::{KeySync, StoreError, parse_rfc3339, rfc3339};
use serde_json::{Value, json};

use portcullis_core::{ErrorCode, Problem};

use super::{Access, AdminState, Caller, Endpoint, Verb, ep};
use portcullis_proxy::runtime::Runtime;

/// `GET /audit` without `limit`.
const DEFAULT_AUDIT_LIMIT: u32 = 100;

pub(super) fn endpoints() -> Vec<Endpoint> {
    use Access::Token;
    use Verb::{Delete, Get, Post};
    vec![
        ep(Post, "/consumers", Token, create),
        ep(Get, "/consumers", Token, list),
        ep(Get, "/consumers/{name}", Token, show),
        ep(Delete, "/consumers/{name}", Token, remove),
        ep(Post, "/consumers/{name}/keys", Token, create_key),
        ep(Get, "/consumers/{name}/keys", Token, list_keys),
        ep(Get, "/consumers/{name}/usage", Token, usage),
        ep(Delete, "/keys/{id}", Token, revoke_key),
        ep(Get, "/audit", Token, audit_entries),
    ]
}

/// An admin API problem document: core's [`Problem`], so the admin API's errors have the
/// gateway's shape (`type`, `title`, `status`, `code`, `detail`, `request_id`).
pub(super) fn problem(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Response {
    super::problem(Problem::new(code, detail))
}

/// `invalid_request` for a body that parses but asks for something impossible: 422 here.
fn invalid(detail: impl Into<Cow<'static, str>>) -> Response {
    super::problem(unprocessable(detail))
}

fn unprocessable(detail: impl Into<Cow<'static, str>>) -> Problem {
    let mut problem = Problem::new(ErrorCode::InvalidRequest, detail);
    problem.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
    problem
}

fn store_problem(error: &StoreError) -> Response {
    super::problem(classify(error))
}

/// The one map from a store error to its problem (a database failure is logged here too).
fn classify(error: &StoreError) -> Problem {
    match error {
        StoreError::Invalid(_) => unprocessable(error.to_string()),
        StoreError::NotFound { .. } => Problem::new(ErrorCode::NotFound, error.to_string()),
        StoreError::Conflict { .. } => Problem::new(ErrorCode::Conflict, error.to_string()),
        StoreError::Database(_) | StoreError::Migrate(_) => {
            tracing::warn!(error = %error, "admin API: the database failed");
            Problem::new(ErrorCode::DatabaseUnavailable, "the database is not reachable")
        }
        StoreError::InvalidUrl(_) | StoreError::Random(_) => {
            tracing::error!(error = %error, "admin API: internal error");
            Problem::new(ErrorCode::Internal, "internal error")
        }
    }
}

fn no_database() -> Response {
    problem(ErrorCode::DatabaseUnavailable, "this gateway has no database open")
}

/// The current runtime and its database (`None`: answer [`no_database`]).
fn open(state: &AdminState) -> Option<(Arc<Runtime>, Arc<KeySync>)> {
    let runtime = state.current();
    let sync = runtime.database.clone()?;
    Some((runtime, sync))
}

/// Records a write in the audit log file and the database (a failure there is logged).
async fn audit(runtime: &Runtime, caller: &Caller, action: &str, target: &str, outcome: Result<&str, &StoreError>) {
    let (result, detail) = match outcome {
        Ok(detail) => ("ok", (!detail.is_empty()).then(|| detail.to_owned())),
        Err(e) => ("error", Some(e.to_string())),
    };
    let entry = portcullis_telemetry::audit::AuditEntry {
        actor: &caller.actor,
        action,
        target: Some(target),
        result,
        detail: detail.as_deref(),
    };
    portcullis_proxy::audit::record(runtime, &entry).await;
}

/// After a write: this instance sees it at once (others at their next poll).
async fn resync(sync: &KeySync) {
    if let Err(e) = sync.refresh().await {
        tracing::warn!(error = %e, "cannot refresh the key index after a write; the sync task retries");
    }
}

/// A JSON body; an empty one counts as `{}`.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
}

fn bad_body(e: &serde_json::Error) -> Response {
    problem(ErrorCode::BadRequest, format!("body: {e}"))
}

/// The config's declared consumers and plans (from the merged document).
fn config_section<'a>(runtime: &'a Runtime, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
    runtime.snapshot.document.get(key).and_then(Value::as_object)
}

fn config_consumer(runtime: &Runtime, name: &str) -> Option<Value> {
    let consumer = config_section(runtime, "consumers")?.get(name)?;
    Some(json!({"name": name, "plan": consumer.get("plan").cloned().unwrap_or(Value::Null), "source": "config"}))
}

fn consumer_json(c: &portcullis_store::Consumer) -> Value {
    json!({"name": c.name, "plan": c.plan, "created_at": rfc3339(c.created_at), "source": "database"})
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConsumer {
    name: String,
    plan: Option<String>,
}

async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let request: NewConsumer = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return bad_body(&e),
    };
    if let Some(plan) = &request.plan
        && !config_section(&runtime, "plans").is_some_and(|plans| plans.contains_key(plan))
    {
        let detail = format!("`{plan}` is not a plan of the current config");
        return problem(ErrorCode::UnknownPlan, detail);
    }
    if config_consumer(&runtime, &request.name).is_some() {
        let detail = format!("consumer `{}` is declared in the config file", request.name);
        return problem(ErrorCode::Conflict, detail);
    }
    let created = sync.store().create_consumer(&request.name, request.plan.as_deref()).await;
    let detail = request.plan.as_deref().map(|p| format!("plan {p}")).unwrap_or_default();
    audit(&runtime, &caller, "consumer.create", &request.name, created.as_ref().map(|_| detail.as_str())).await;
    match created {
        Ok(consumer) => {
            resync(&sync).await;
            (StatusCode::CREATED, axum::Json(consumer_json(&consumer))).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

async fn list(State(state): State<AdminState>) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let stored = match sync.store().list_consumers().await {
        Ok(list) => list,
        Err(e) => return store_problem(&e),
    };
    let mut out: Vec<Value> = stored.iter().map(consumer_json).collect();
    if let Some(declared) = config_section(&runtime, "consumers") {
        out.extend(declared.keys().filter_map(|name| config_consumer(&runtime, name)));
    }
    axum::Json(Value::Array(out)).into_response()
}

async fn show(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    match sync.store().get_consumer(&name).await {
        Ok(Some(consumer)) => axum::Json(consumer_json(&consumer)).into_response(),
        Ok(None) => match config_consumer(&runtime, &name) {
            Some(declared) => axum::Json(declared).into_response(),
            None => problem(ErrorCode::NotFound, format!("consumer `{name}` does not exist")),
        },
        Err(e) => store_problem(&e),
    }
}

/// `GET /consumers/{name}/usage`: the consumer's plan and its quota in the current period.
async fn usage(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let runtime = state.current();
    let plan: Option<String> = match runtime.snapshot.consumer(&name) {
        Some(declared) => declared.plan.as_deref().map(str::to_owned),
        None => {
            let Some(sync) = runtime.database.clone() else { return no_database() };
            match sync.store().get_consumer(&name).await {
                Ok(Some(consumer)) => consumer.plan,
                Ok(None) => {
                    return problem(ErrorCode::NotFound, format!("consumer `{name}` does not exist"));
                }
                Err(e) => return store_problem(&e),
            }
        }
    };
    let quota = quota_json(&runtime, &name, plan.as_deref()).await;
    axum::Json(json!({ "consumer": name, "plan": plan, "quota": quota })).into_response()
}

/// A consumer's quota in the current period under `plan` (`null`: the plan has no quota).
pub(super) async fn quota_json(runtime: &Runtime, consumer: &str, plan: Option<&str>) -> Value {
    let Some(quota) = plan.and_then(|p| runtime.rate_limits.quota_of(p)) else { return Value::Null };
    let d = runtime.rate_limits.engine().quota_usage(consumer, &quota).await;
    let resets_at = time::OffsetDateTime::from_unix_timestamp(d.resets_at).map(rfc3339).unwrap_or_default();
    json!({
        "period": quota.period.as_str(),
        "limit": d.limit,
        "used": d.used,
        "remaining": d.remaining,
        "resets_at": resets_at,
    })
}

async fn remove(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let deleted = sync.store().delete_consumer(&name).await;
    if matches!(deleted, Err(StoreError::NotFound { .. })) && config_consumer(&runtime, &name).is_some() {
        let detail = format!("consumer `{name}` is declared in the config file: remove it there");
        return problem(ErrorCode::Conflict, detail);
    }
    let detail = deleted.as_ref().map(|n| format!("{n} key(s) revoked")).unwrap_or_default();
    audit(&runtime, &caller, "consumer.delete", &name, deleted.as_ref().map(|_| detail.as_str())).await;
    match deleted {
        Ok(_) => {
            resync(&sync).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => store_problem(&e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// RFC 3339.
    expires_at: Option<String>,
}

async fn create_key(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let request: NewKey = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return bad_body(&e),
    };
    let expires_at = match request.expires_at.as_deref().map(|t| parse_rfc3339(t).ok_or(t)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            return invalid("expires_at must be an RFC 3339 time");
        }
    };
    let created = sync.store().create_key(&name, expires_at).await;
    // The key id and prefix identify it in the audit trail; the key itself never appears.
    let detail = created.as_ref().map(|k| format!("{} ({})", k.id, k.prefix)).unwrap_or_default();
    audit(&runtime, &caller, "key.create", &name, created.as_ref().map(|_| detail.as_str())).await;
    match created {
        Ok(key) => {
            resync(&sync).await;
            let body = json!({
                "id": key.id,
                "key": key.key,
                "prefix": key.prefix,
                "created_at": rfc3339(key.created_at),
                "expires_at": key.expires_at.map(rfc3339),
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

async fn list_keys(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let (_, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    match sync.store().list_keys(Some(&name)).await {
        Ok(keys) => {
            let keys: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "prefix": k.prefix,
                        "created_at": rfc3339(k.created_at),
                        "expires_at": k.expires_at.map(rfc3339),
                        "revoked": k.revoked,
                    })
                })
                .collect();
            axum::Json(Value::Array(keys)).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

async fn revoke_key(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let (runtime, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let revoked = sync.store().revoke_key(&id).await;
    let detail = revoked.as_ref().map(|k| format!("consumer {}", k.consumer)).unwrap_or_default();
    audit(&runtime, &caller, "key.revoke", &id, revoked.as_ref().map(|_| detail.as_str())).await;
    match revoked {
        Ok(_) => {
            resync(&sync).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => store_problem(&e),
    }
}

/// `GET /audit?since=RFC3339&limit=N`: the newest `limit` entries since then, oldest first.
async fn audit_entries(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Response {
    let (_, sync) = match open(&state) {
        Some(pair) => pair,
        None => return no_database(),
    };
    let (mut since, mut limit) = (None, DEFAULT_AUDIT_LIMIT);
    for pair in query.as_deref().unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "since" => match parse_rfc3339(&value) {
                Some(t) => since = Some(t),
                None => return problem(ErrorCode::BadRequest, "since must be an RFC 3339 time"),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if n > 0 => limit = n,
                _ => return problem(ErrorCode::BadRequest, "limit must be a positive integer"),
            },
            _ => return problem(ErrorCode::BadRequest, "the parameters are since and limit"),
        }
    }
    match sync.store().list_audit(since, limit).await {
        Ok(entries) => {
            let entries: Vec<Value> = entries
                .iter()
                .map(|a| {
                    json!({
                        "ts": rfc3339(a.ts),
                        "actor": a.actor,
                        "action": a.action,
                        "target": a.target,
                        "result": a.result,
                        "detail": a.detail,
                    })
                })
                .collect();
            axum::Json(Value::Array(entries)).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

/// `%XX` escapes in a query value. A `+` stays a `+`: the values here are times and numbers,
/// and `since=2026-12-02T06:00:00+01:00` typed as is must work.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_decoded_and_keep_plus() {
        assert_eq!(super::percent_decode("2026-12-02T06%3A00%3A00%2B01%3A00"), "2026-12-02T06:00:00+01:00");
        assert_eq!(super::percent_decode("a+b%"), "a+b%");
        assert_eq!(super::percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn store_errors_are_classified_once() {
        use portcullis_core::ErrorCode;
        use portcullis_store::StoreError;
        let cases = [
            (StoreError::Invalid("bad name".into()), "invalid_request", 422),
            (StoreError::NotFound { what: "consumer", name: "acme".into() }, "not_found", 404),
            (StoreError::Conflict { what: "consumer", name: "acme".into() }, "conflict", 409),
            (StoreError::InvalidUrl("x".into()), "internal", 500),
        ];
        for (error, code, status) in cases {
            let problem = super::classify(&error);
            assert_eq!((problem.code.as_str(), problem.status().as_u16()), (code, status), "{error}");
        }
        let internal = super::classify(&StoreError::InvalidUrl("postgres://user:secret@db".into()));
        assert_eq!(internal.code, ErrorCode::Internal);
        assert!(!internal.detail.contains("secret"), "an internal error never shows its cause");
    }

    /// Admin errors are core's problem documents: the same members, type and headers as the
    /// gateway's.
    #[tokio::test]
    async fn admin_problems_have_the_gateways_shape() {
        let response = super::problem(portcullis_core::ErrorCode::Conflict, "consumer `acme` already exists");
        assert_eq!(response.status().as_u16(), 409);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["cache-control"], "no-store");
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Conflict");
        assert_eq!(body["status"], 409);
        assert_eq!(body["code"], "conflict");
        assert_eq!(body["detail"], "consumer `acme` already exists");
        assert_eq!(body["request_id"].as_str(), headers["x-request-id"].to_str().ok());
    }
}
