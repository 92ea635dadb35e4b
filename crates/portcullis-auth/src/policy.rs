//! Authorization policies (SPEC §2 `policies`, §3 403 `forbidden` / `insufficient_scope`).
//!
//! A policy is compiled once at config load — scopes, claim rules and an optional CEL
//! expression — and evaluated on every request after authentication. Checks run cheapest
//! first (scopes, then claims, then CEL) and stop at the first refusal. Every doubt fails
//! closed: an absent claim, a claim of another type, a CEL evaluation error and a CEL
//! result that is not a boolean all refuse the request.
//!
//! The CEL context is built only for policies with an expression, and then only the
//! top-level variables the expression names. Credential headers are never put in it.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value};
use serde_json::Value as Json;

/// Request headers a policy must never read: they carry credentials.
const HIDDEN_HEADERS: [http::HeaderName; 3] =
    [http::header::AUTHORIZATION, http::header::COOKIE, http::header::PROXY_AUTHORIZATION];

/// A compiled policy: immutable, shared by every request of a config snapshot.
#[derive(Debug)]
pub struct Policy {
    name: String,
    scopes: Vec<String>,
    claims: Vec<ClaimRule>,
    expr: Option<Expr>,
}

/// A policy that cannot be compiled; a config diagnostic, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    pub message: String,
    /// 1-based line inside the expression, when the CEL parser gives one.
    pub line: Option<usize>,
    /// 1-based column inside the expression, when the CEL parser gives one.
    pub column: Option<usize>,
}

/// What a policy sees of a request: borrowed, built by the authorization stage.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
    /// The raw query string, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub client_ip: IpAddr,
    /// Verified JWT claims.
    pub claims: Option<&'a serde_json::Map<String, Json>>,
    /// Granted scopes (from `scope`, space separated, or `scp`), already extracted.
    pub scopes: &'a [String],
    pub consumer: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub route: &'a str,
}

/// The outcome of a policy; both refusals are 403 (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 403 `insufficient_scope`; `missing` is the first required scope not granted.
    InsufficientScope {
        missing: String,
    },
    /// 403 `forbidden`.
    Forbidden,
}

impl Policy {
    /// Compiles a policy at config load. `claims`: each claim must equal one of the values
    /// (when the claim is an array: contain one of them). `expr` is CEL, parsed here once.
    pub fn compile(
        name: &str,
        scopes: Vec<String>,
        claims: Vec<(String, Vec<Json>)>,
        expr: Option<&str>,
    ) -> Result<Policy, PolicyError> {
        if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(PolicyError::new(format!(
                "policy `{name}`: scope {bad:?} can never be granted (empty or contains whitespace)"
            )));
        }
        if let Some((claim, _)) = claims.iter().find(|(_, values)| values.is_empty()) {
            return Err(PolicyError::new(format!(
                "policy `{name}`: claim `{claim}` lists no accepted value, so it could never match"
            )));
        }
        if scopes.is_empty() && claims.is_empty() && expr.is_none() {
            return Err(PolicyError::new(format!(
                "policy `{name}`: states none of `scopes`, `claims`, `expr` and would allow everything"
            )));
        }
        let expr = expr.map(|source| Expr::compile(name, source)).transpose()?;
        let claims = claims.into_iter().map(|(name, accepted)| ClaimRule { name, accepted }).collect();
        Ok(Policy { name: name.to_owned(), scopes, claims, expr })
    }

    /// The policy's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Decides one request. Never errors: whatever cannot be decided is `Forbidden`.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Decision {
        if let Some(missing) = self.scopes.iter().find(|s| !input.scopes.contains(s)) {
            return Decision::InsufficientScope { missing: missing.clone() };
        }
        if !self.claims.iter().all(|rule| rule.matches(input.claims)) {
            return Decision::Forbidden;
        }
        match &self.expr {
            Some(expr) if !expr.allows(input) => Decision::Forbidden,
            _ => Decision::Allow,
        }
    }
}

/// The scopes a token grants: its `scope` claim (space separated, RFC 8693 / RFC 9068) and its
/// `scp` claim (an array, or a space-separated string as some providers send it), together.
/// For the authentication stage to fill `PolicyInput::scopes` once per token.
pub fn granted_scopes(claims: &serde_json::Map<String, Json>) -> Vec<String> {
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Json::String(s)) => scopes.extend(s.split_ascii_whitespace().map(str::to_owned)),
            Some(Json::Array(items)) => {
                scopes.extend(items.iter().filter_map(Json::as_str).map(str::to_owned));
            }
            _ => {}
        }
    }
    scopes
}

impl PolicyError {
    fn new(message: String) -> PolicyError {
        PolicyError { message, line: None, column: None }
    }
}

#[derive(Debug)]
struct ClaimRule {
    name: String,
    accepted: Vec<Json>,
}

impl ClaimRule {
    /// Equality, or membership when the claim is an array; an absent claim does not match.
    fn matches(&self, claims: Option<&serde_json::Map<String, Json>>) -> bool {
        match claims.and_then(|c| c.get(&self.name)) {
            Some(Json::Array(items)) => items.iter().any(|item| self.accepted.contains(item)),
            Some(value) => self.accepted.contains(value),
            None => false,
        }
    }
}

/// A parsed CEL expression and the top-level variables it reads.
struct Expr {
    source: String,
    program: Program,
    env: Arc<Env>,
    uses: Uses,
}

/// Which variables to build: the rest of the context is never allocated.
#[derive(Debug, Clone, Copy)]
struct Uses {
    request: bool,
    claims: bool,
    token: bool,
    consumer: bool,
    route: bool,
    provider: bool,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr").field("source", &self.source).field("uses", &self.uses).finish()
    }
}

impl Expr {
    fn compile(policy: &str, source: &str) -> Result<Expr, PolicyError> {
        let env = Env::stdlib();
        let program = env.compile(source).map_err(|errors| parse_error(policy, &errors))?;
        let refs = program.references();
        let uses = Uses {
            request: refs.has_variable("request"),
            claims: refs.has_variable("claims"),
            token: refs.has_variable("token"),
            consumer: refs.has_variable("consumer"),
            route: refs.has_variable("route"),
            provider: refs.has_variable("provider"),
        };
        Ok(Expr { source: source.to_owned(), program, env: Arc::new(env), uses })
    }

    /// True only for a boolean `true`; any other value or an error refuses (fail closed).
    fn allows(&self, input: &PolicyInput<'_>) -> bool {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        let uses = self.uses;
        if uses.request {
            ctx.add_variable_from_value("request", request_value(input));
        }
        if uses.claims || uses.token {
            let claims = input.claims.map_or_else(empty_map, json_object);
            if uses.token {
                ctx.add_variable_from_value("token", claims.clone());
            }
            ctx.add_variable_from_value("claims", claims);
        }
        if uses.consumer {
            let consumer = map([("name", opt_str(input.consumer)), ("plan", opt_str(input.plan))]);
            ctx.add_variable_from_value("consumer", consumer);
        }
        if uses.route {
            ctx.add_variable_from_value("route", map([("name", Value::from(input.route))]));
        }
        if uses.provider {
            ctx.add_variable_from_value("provider", opt_str(input.provider));
        }
        matches!(self.program.execute(&ctx), Ok(Value::Bool(true)))
    }
}

fn parse_error(policy: &str, errors: &cel::ParseErrors) -> PolicyError {
    let first = errors.errors.first();
    // The parser's line and column are both 1-based (checked in the tests); a position it
    // could not place is not passed on.
    let position = first.map(|e| e.pos).filter(|&(line, column)| line >= 1 && column >= 1);
    let message = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
    PolicyError {
        message: format!("policy `{policy}`: CEL expression does not parse: {message}"),
        line: position.and_then(|(line, _)| usize::try_from(line).ok()),
        column: position.and_then(|(_, column)| usize::try_from(column).ok()),
    }
}

fn request_value(input: &PolicyInput<'_>) -> Value {
    let query = input.query.map_or_else(empty_map, query_value);
    map([
        ("method", Value::from(input.method)),
        ("path", Value::from(input.path)),
        ("host", opt_str(input.host)),
        ("query", query),
        ("headers", headers_value(input.headers)),
        ("client_ip", Value::from(input.client_ip.to_string())),
    ])
}

/// Percent-decoded (and `+` as space) query parameters, the first value of each name.
fn query_value(query: &str) -> Value {
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        params.entry(Key::from(name.into_owned())).or_insert_with(|| Value::from(value.into_owned()));
    }
    Value::Map(Map { map: Arc::new(params) })
}

/// Header names are already lowercase in `HeaderMap`; each keeps its first value.
fn headers_value(headers: &http::HeaderMap) -> Value {
    let mut out = HashMap::with_capacity(headers.keys_len());
    for name in headers.keys().filter(|name| !HIDDEN_HEADERS.contains(name)) {
        if let Some(value) = headers.get(name) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            out.insert(Key::from(name.as_str()), Value::from(value));
        }
    }
    Value::Map(Map { map: Arc::new(out) })
}

fn json_object(object: &serde_json::Map<String, Json>) -> Value {
    let entries = object.iter().map(|(k, v)| (Key::from(k.as_str()), json_value(v))).collect();
    Value::Map(Map { map: Arc::new(entries) })
}

fn json_value(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(json_value).collect())),
        Json::Object(object) => json_object(object),
    }
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let entries = entries.into_iter().map(|(k, v)| (Key::from(k), v)).collect();
    Value::Map(Map { map: Arc::new(entries) })
}

fn empty_map() -> Value {
    Value::Map(Map { map: Arc::new(HashMap::new()) })
}

fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests;
