//! The request stages. Each is a small type whose `run` looks at the request head and the
//! context and returns [`Flow`](crate::Flow); none does socket I/O. Their order is written
//! once, in [`crate::pipeline`].

mod auth;
mod authorize;
mod identity;
mod ip_filter;
mod rate_limit;
mod request_limits;
mod request_target;
mod route_match;
mod transform;
mod waf;

pub use auth::{AuthSources, Authenticate};
pub use authorize::Authorize;
pub use identity::StripIdentity;
pub use ip_filter::IpFilter;
pub use rate_limit::RateLimitKeys;
pub use request_limits::{RawHeadFlaw, RequestLimits};
pub use request_target::RequestTarget;
pub use route_match::{MatchRoute, Routed, request_host as route_match_host};
pub use transform::{StripHopByHop, Transform};
pub use waf::Waf;
