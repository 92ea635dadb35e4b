//! Who is calling: the bearer token checked against the current config's admin tokens, the
//! caller named (the token's name and the client IP, as the audit `actor`), and refused
//! authentications audited — at most [`AUDITED_FAILURES_PER_MINUTE`] a minute, so a flood
//! cannot fill the disk or the database; the rest are counted and summed up in the next
//! audited one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_core::{ErrorCode, Problem};
use portcullis_telemetry::audit::AuditEntry;

use super::AdminState;

/// Refused authentications written to the audit trail per minute, per process.
pub(crate) const AUDITED_FAILURES_PER_MINUTE: u32 = 10;

/// How much of a refused request's path the audit entry keeps.
const MAX_TARGET_CHARS: usize = 200;

/// The authenticated caller of a guarded endpoint, as the audit trail names it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// `name@ip`: the admin token's name (`admin` for `admin.token`, `local` without a token
    /// on loopback) and the client's address.
    pub(crate) actor: String,
}

/// How many refused authentications this minute has audited, and suppressed.
#[derive(Debug)]
pub(crate) struct FailureBudget {
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    audited: u32,
    suppressed: u64,
}

impl Default for FailureBudget {
    fn default() -> Self {
        Self { window: Mutex::new(Window { started: Instant::now(), audited: 0, suppressed: 0 }) }
    }
}

impl FailureBudget {
    /// `Some(n)`: audit this one (and say that `n` before it were suppressed); `None`: the
    /// minute's budget is spent.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut w = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(w.started) >= Duration::from_secs(60) {
            w.started = now;
            w.audited = 0;
        }
        if w.audited >= AUDITED_FAILURES_PER_MINUTE {
            w.suppressed += 1;
            return None;
        }
        w.audited += 1;
        Some(std::mem::take(&mut w.suppressed))
    }
}

fn client_ip(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn actor(name: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(ip)) => format!("{name}@[{ip}]"),
        Some(ip) => format!("{name}@{ip}"),
        None => name.to_owned(),
    }
}

pub(crate) async fn require_token(State(state): State<AdminState>, mut request: Request, next: Next) -> Response {
    match check_token(&state, &request) {
        Ok(name) => {
            let caller = Caller { actor: actor(&name, client_ip(&request)) };
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err((code, detail)) => {
            // Only what is needed is taken: a request body cannot be held across an await.
            let path: String = request.uri().path().chars().take(MAX_TARGET_CHARS).collect();
            let target = format!("{} {path}", request.method());
            audit_failure(&state, client_ip(&request), &target, detail).await;
            unauthorized(code, detail)
        }
    }
}

pub(crate) async fn require_token_for_metrics(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let public = state.current().snapshot.admin.as_ref().is_some_and(|a| a.public_metrics);
    if public {
        return next.run(request).await;
    }
    require_token(State(state), request, next).await
}

/// The name of the token presented, or why the request is refused.
fn check_token(state: &AdminState, request: &Request) -> Result<String, (ErrorCode, &'static str)> {
    let runtime = state.current();
    let tokens = runtime.snapshot.admin.as_ref().map(|a| a.tokens.as_slice()).unwrap_or_default();
    if tokens.is_empty() {
        // No token is open only to local processes; off loopback nothing can authenticate.
        return if state.loopback {
            Ok("local".to_owned())
        } else {
            Err((ErrorCode::MissingCredentials, "the current config sets no admin token"))
        };
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(presented) = presented else {
        return Err((ErrorCode::MissingCredentials, "the admin API needs a bearer token"));
    };
    // Every token is compared, so the time taken does not say which one matched.
    let mut matched = None;
    for token in tokens {
        if same_secret(presented.trim().as_bytes(), token.token.as_bytes()) {
            matched = Some(token.name.clone());
        }
    }
    matched.ok_or((ErrorCode::InvalidToken, "the admin token is not valid"))
}

/// Audits a refused authentication, within the minute's budget, and counts it either way.
/// The presented token is never written: only the path, the address and the reason.
async fn audit_failure(state: &AdminState, ip: Option<IpAddr>, target: &str, reason: &str) {
    let admitted = state.failures.admit(Instant::now());
    state.reloader.handle().metrics().admin_auth_failure(admitted.is_some());
    let Some(suppressed) = admitted else { return };
    let detail = match suppressed {
        0 => reason.to_owned(),
        n => format!("{reason} ({n} earlier refusals not audited: more than {AUDITED_FAILURES_PER_MINUTE} a minute)"),
    };
    let actor = actor("anonymous", ip);
    let entry = AuditEntry {
        actor: &actor,
        action: "admin.auth",
        target: Some(target),
        result: "error",
        detail: Some(&detail),
    };
    portcullis_proxy::audit::record(&state.current(), &entry).await;
}

/// Compares digests, so the time taken says nothing about how much of the token was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (ring::digest::digest(&ring::digest::SHA256, a), ring::digest::digest(&ring::digest::SHA256, b));
    a.as_ref() == b.as_ref()
}

fn unauthorized(code: ErrorCode, detail: &'static str) -> Response {
    let challenge = match code {
        ErrorCode::InvalidToken => r#"Bearer realm="portcullis-admin", error="invalid_token""#,
        _ => r#"Bearer realm="portcullis-admin""#,
    };
    super::problem(
        Problem::new(code, detail).with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"x"));
    }

    #[test]
    fn a_flood_of_refusals_is_audited_up_to_the_budget_then_summed_up_next_minute() {
        let budget = FailureBudget::default();
        let start = Instant::now();
        for _ in 0..AUDITED_FAILURES_PER_MINUTE {
            assert_eq!(budget.admit(start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(budget.admit(start + Duration::from_secs(30)), None);
        }
        assert_eq!(budget.admit(start + Duration::from_secs(61)), Some(5), "the next minute says how many were lost");
        assert_eq!(budget.admit(start + Duration::from_secs(62)), Some(0));
    }

    #[test]
    fn actors_name_the_token_and_the_address() {
        assert_eq!(actor("ops", Some("10.0.0.7".parse().expect("ip"))), "ops@10.0.0.7");
        assert_eq!(actor("ops", Some("::1".parse().expect("ip"))), "ops@[::1]");
    }
}
