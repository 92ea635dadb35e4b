//! Authorization: every policy the route names must allow the request (SPEC §3). A missing
//! scope is 403 `insufficient_scope` with an RFC 6750 challenge naming it; any other refusal
//! is 403 `forbidden`. Policies see the request, the verified claims, the consumer and the
//! route; they never see credentials (see `portcullis_auth::policy`).

use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use http::request::Parts;
use portcullis_auth::policy::{Decision, PolicyInput};

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{RouteSpec, Snapshot};
use crate::trace::By;

pub struct Authorize;

impl Authorize {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "authorize";

    pub fn run(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts, ctx: &RequestContext) -> Flow {
        if route.policies.is_empty() {
            return Flow::Skip;
        }
        let input = PolicyInput {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            host: ctx.host.as_deref(),
            query: parts.uri.query(),
            headers: &parts.headers,
            client_ip: ctx.client_ip,
            claims: ctx.token.as_ref().map(|t| &t.claims),
            scopes: ctx.token.as_ref().map_or(&[][..], |t| &t.scopes[..]),
            consumer: ctx.consumer.as_deref(),
            plan: ctx.plan.as_deref(),
            provider: ctx.auth.as_deref(),
            route: &route.name,
        };
        for name in &route.policies {
            let Some(spec) = snapshot.policy(name) else {
                return Problem::new(ErrorCode::Internal, "the route names an unknown policy").into();
            };
            match spec.policy.evaluate(&input) {
                Decision::Allow => {}
                Decision::InsufficientScope { missing } => {
                    let challenge = format!(
                        "Bearer realm=\"portcullis\", error=\"insufficient_scope\", scope=\"{}\"",
                        missing.replace(['"', '\\'], "")
                    );
                    let problem = Problem::new(ErrorCode::InsufficientScope, "the token lacks a required scope")
                        .decided(By::Name(name.clone()));
                    return match HeaderValue::from_str(&challenge) {
                        Ok(v) => problem.with_header(WWW_AUTHENTICATE, v),
                        Err(_) => problem,
                    }
                    .into();
                }
                Decision::Forbidden => {
                    return Problem::new(ErrorCode::Forbidden, format!("refused by the route's policy `{name}`"))
                        .decided(By::Name(name.clone()))
                        .into();
                }
            }
        }
        Flow::Continue
    }
}
