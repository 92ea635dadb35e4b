//! Authorization policies (SPEC §2 `policies`, §3 403 `forbidden` / `insufficient_scope`).
//!
//! A policy is compiled once at config load — scopes, claim rules and an optional CEL
//! expression — and evaluated on every request after authentication. Checks run cheapest
//! first (scopes, then claims, then CEL) and stop at the first refusal. Every doubt fails
//! closed: an absent claim, a claim of another type, a CEL evaluation error and a CEL
//! result that is not a boolean all refuse the request.
//!
//! The CEL context is built only for policies with an expression, and then only the
//! top-level variables the expression names (of `request`, only the fields it reads).
//! Credential headers are never put in it.

mod expr;

use std::net::IpAddr;

use serde_json::Value as Json;

use self::expr::Expr;

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
    pub(super) fn new(message: String) -> PolicyError {
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

#[cfg(test)]
mod tests;
