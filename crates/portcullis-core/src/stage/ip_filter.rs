//! IP allow/deny (SPEC §3): the client IP (after the trusted-proxy rule) against
//! `waf.deny_ips` and `waf.allow_ips`, before routing, so a refused address learns nothing
//! about the routes. 403 `ip_denied`.

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::IpRules;

pub struct IpFilter;

impl IpFilter {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "ip_filter";

    pub fn run(rules: &IpRules, ctx: &RequestContext) -> Flow {
        if rules.is_empty() {
            return Flow::Skip;
        }
        if rules.admits(ctx.client_ip) {
            return Flow::Continue;
        }
        Problem::new(ErrorCode::IpDenied, "requests from this address are not accepted").into()
    }
}

#[cfg(test)]
mod tests {
    use crate::snapshot::IpRules;

    fn rules(allow: &[&str], deny: &[&str]) -> IpRules {
        let nets = |l: &[&str]| l.iter().filter_map(|n| n.parse().ok()).collect();
        IpRules { allow: nets(allow), deny: nets(deny) }
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn deny_wins_over_allow_and_allow_admits_only_its_own() {
        let r = rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.6.6.0/24"]);
        assert!(r.admits(ip("10.1.2.3")));
        assert!(!r.admits(ip("10.6.6.6")));
        assert!(!r.admits(ip("192.0.2.1")));
        assert!(r.admits(ip("2001:db8::1")));
        assert!(r.admits(ip("::ffff:10.1.2.3")), "IPv4-mapped addresses compare as IPv4");
        let deny_only = rules(&[], &["203.0.113.0/24"]);
        assert!(deny_only.admits(ip("198.51.100.1")));
        assert!(!deny_only.admits(ip("203.0.113.9")));
    }
}
