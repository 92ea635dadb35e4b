//! Identity headers (`X-Consumer`, `X-Auth-*`, every `forward_claims` header) are removed from
//! every client request, on every route, before any other stage: only the gateway sets them.
//! Spellings with `_` for `-` go too: CGI-style backends (PHP-FPM, WSGI, Rack) read
//! `X_Consumer` and `X-Consumer` as the same variable.

use http::HeaderName;
use http::request::Parts;

use crate::flow::Flow;

pub struct StripIdentity;

impl StripIdentity {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "strip_identity";

    pub fn run(identity_headers: &[HeaderName], parts: &mut Parts) -> Flow {
        for name in identity_headers {
            parts.headers.remove(name);
        }
        if parts.headers.keys().any(|k| k.as_str().contains('_')) {
            let spoofed: Vec<HeaderName> = parts
                .headers
                .keys()
                .filter(|k| {
                    let dashed = k.as_str().replace('_', "-");
                    identity_headers.iter().any(|id| id.as_str() == dashed)
                })
                .cloned()
                .collect();
            for name in spoofed {
                parts.headers.remove(name);
            }
        }
        Flow::Continue
    }
}
