//! The CORS phase (SPEC §3, after route match, before the WAF and authentication). On a route
//! with a `cors` policy: a preflight is answered here (204 or 403 `cors_rejected`), never
//! forwarded, authenticated or rate limited; an actual request from an unlisted origin is
//! refused, one from a listed origin goes on and its answer, whoever makes it, carries the
//! policy's headers (see [`crate::cors::CorsPolicy::annotate`]). A request without `Origin`
//! costs one header lookup.

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::request::Parts;

use super::route_match::{Preflight, Routed};
use crate::context::RequestContext;
use crate::cors::{CorsOutcome, PreflightRefusal};
use crate::flow::{Flow, Reply};
use crate::problem::{ErrorCode, Problem};
use crate::trace::By;

pub struct Cors;

impl Cors {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "cors";

    pub fn run(routed: &Routed, parts: &Parts, ctx: &mut RequestContext) -> Flow {
        let Some(policy) = &routed.route().cors else { return Flow::Skip };
        let mut origins = parts.headers.get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            // Not a CORS request; its answer still varies by Origin.
            ctx.cors = CorsOutcome::NoOrigin;
            return Flow::Skip;
        };
        ctx.cors = CorsOutcome::NoOrigin;
        let refuse = |detail: &'static str| -> Flow {
            Problem::new(ErrorCode::CorsRejected, detail).decided(By::Name(policy.name.clone())).into()
        };
        if origins.next().is_some() {
            return refuse("the request has more than one Origin");
        }
        if !policy.allows(origin) {
            return refuse("this origin is not allowed to call this route");
        }
        let Some(preflight) = routed.preflight() else {
            ctx.cors = CorsOutcome::Allowed(origin.clone());
            return Flow::Continue;
        };
        if preflight == Preflight::MethodNotRouted {
            return refuse("no route with this CORS policy takes the requested method on this path");
        }
        let asked = parts.headers.get(ACCESS_CONTROL_REQUEST_METHOD).map_or(&b""[..], |v| v.as_bytes());
        match policy.check_preflight(asked, &parts.headers) {
            Ok(()) => {
                ctx.cors = CorsOutcome::Preflight;
                Flow::Respond(Reply::Response(policy.preflight_response(origin)))
            }
            Err(PreflightRefusal::Method) => refuse("the requested method is not allowed by the CORS policy"),
            Err(PreflightRefusal::Header) => refuse("a requested header is not allowed by the CORS policy"),
        }
    }
}
