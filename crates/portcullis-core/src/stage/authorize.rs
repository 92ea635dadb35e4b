//! Authorization. Policy evaluation is not in this build, so a route that names a policy
//! fails closed: it is refused rather than forwarded unchecked.

use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::RouteSpec;

pub struct Authorize;

impl Authorize {
    pub fn run(route: &RouteSpec) -> Flow {
        if route.policies.is_empty() {
            return Flow::Continue;
        }
        Problem::new(ErrorCode::Forbidden, "this route's policies cannot be evaluated by this build").into()
    }
}
