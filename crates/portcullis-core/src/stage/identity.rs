//! Identity headers (`X-Consumer`, `X-Auth-*`, every `forward_claims` header) are removed from
//! every client request, on every route, before any other stage: only the gateway sets them.

use http::HeaderName;
use http::request::Parts;

use crate::flow::Flow;

pub struct StripIdentity;

impl StripIdentity {
    pub fn run(identity_headers: &[HeaderName], parts: &mut Parts) -> Flow {
        for name in identity_headers {
            parts.headers.remove(name);
        }
        Flow::Continue
    }
}
