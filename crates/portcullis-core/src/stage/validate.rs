//! Validation: the request against its route's contract (an OpenAPI operation's parameters,
//! content type and body, or a JSON Schema for the body). Every violation is listed in the
//! `errors` member of a 400 `invalid_request`, bounded, each `{location, message}`; the
//! request never reaches the upstream.

use http::request::Parts;
use portcullis_contract::{Contract, Request};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};

pub struct Validate;

impl Validate {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "validate";

    /// `body` is the request body read whole when the contract asked for it
    /// ([`Contract::reads_body`]); `has_body` says whether there is one at all.
    pub fn run(contract: &Contract, parts: &Parts, ctx: &RequestContext, has_body: bool, body: Option<&[u8]>) -> Flow {
        let params: Vec<(&str, &str)> = ctx.params.iter().map(|(k, v)| (k.as_ref(), v.as_str())).collect();
        let request =
            Request { path_params: &params, query: parts.uri.query(), headers: &parts.headers, has_body, body };
        let violations = contract.check(&request);
        if violations.is_empty() {
            return Flow::Continue;
        }
        let detail = match violations.len() {
            1 => "the request breaks its API contract in 1 place".to_owned(),
            n => format!("the request breaks its API contract in {n} places"),
        };
        let errors: Vec<Value> =
            violations.into_iter().map(|v| json!({ "location": v.location, "message": v.message })).collect();
        let mut problem = Problem::new(ErrorCode::InvalidRequest, detail);
        problem.extensions.push(("errors", Value::Array(errors)));
        problem.into()
    }
}
