//! Authentication. `auth: none` routes are public by statement. Provider types whose
//! verification this build does not contain fail closed: the request is refused, never
//! forwarded unauthenticated (and `validate` warns about such routes).

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::AuthRule;

pub struct Authenticate;

impl Authenticate {
    pub fn run(rule: &AuthRule, _ctx: &mut RequestContext) -> Flow {
        match rule {
            AuthRule::Public => Flow::Continue,
            AuthRule::Any(_) | AuthRule::All(_) => Problem::new(
                ErrorCode::Internal,
                "this route's authentication providers are not available in this build",
            )
            .into(),
        }
    }
}
