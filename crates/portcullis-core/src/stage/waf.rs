//! The WAF phase (SPEC §3: after route match and CORS, before authentication, so an attack is
//! refused before it reaches the auth code). The route's mode decides: `off` skips; otherwise
//! the snapshot's compiled rules inspect the request head ([`Waf::head`]), then — when the
//! pipeline has read it — the first `inspect_body_bytes` of the body ([`Waf::body`]), and
//! [`Waf::verdict`] refuses with 403 `waf_blocked` in `block` mode once the anomaly score
//! reaches the threshold. `detect` only records. What is recorded (the context's `waf`, the
//! trace, the problem document) names rule ids and the score, never the matched input.

use std::sync::Arc;

use http::request::Parts;
use portcullis_waf::Scan;

use crate::context::{RequestContext, WafAction, WafFinding};
use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{RouteSpec, Snapshot, WafMode};
use crate::trace::By;

pub struct Waf;

impl Waf {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "waf";

    /// The head's inspection; `None` when the route's mode is `off`.
    pub fn head(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts) -> Option<Scan> {
        if route.waf == WafMode::Off {
            return None;
        }
        let mut scan = Scan::default();
        snapshot.waf.inspect_head(&route.name, parts, &mut scan);
        Some(scan)
    }

    /// How many body bytes the phase wants to read first: `Some` when the route's WAF is on
    /// and the body is of a kind it reads.
    pub fn body_wanted(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts) -> Option<usize> {
        (route.waf != WafMode::Off && snapshot.waf.wants_body(parts)).then(|| snapshot.waf.inspect_body_bytes())
    }

    /// The body's first bytes into the scan; `complete`: they are the whole body.
    pub fn body(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts, body: &[u8], complete: bool, scan: &mut Scan) {
        snapshot.waf.inspect_body(&route.name, parts, body, complete, scan);
    }

    /// Records what the scan found and refuses in `block` mode at the threshold.
    pub fn verdict(snapshot: &Snapshot, route: &RouteSpec, scan: Option<Scan>, ctx: &mut RequestContext) -> Flow {
        let Some(scan) = scan else { return Flow::Skip };
        if scan.is_clean() {
            return Flow::Continue;
        }
        let threshold = snapshot.waf.threshold();
        let action = match route.waf {
            WafMode::Block if scan.score() >= threshold => WafAction::Block,
            WafMode::Block => WafAction::Pass,
            WafMode::Detect | WafMode::Off => WafAction::Detect,
        };
        ctx.waf = Some(WafFinding { score: scan.score(), rules: scan.rules().into(), action });
        if action != WafAction::Block {
            return Flow::Continue;
        }
        let ids = rule_list(scan.rules());
        let detail = format!(
            "refused by WAF rule{} {ids} (anomaly score {} of threshold {threshold})",
            if scan.rules().len() == 1 { "" } else { "s" },
            scan.score()
        );
        Problem::new(ErrorCode::WafBlocked, detail).decided(By::Name(Arc::from(ids))).into()
    }
}

impl Waf {
    /// What the trace names for a request the phase let through: the rules that matched
    /// (`explain` shows them), else nothing.
    pub fn passed_by(ctx: &RequestContext) -> By {
        ctx.waf.as_ref().map_or(By::None, |f| By::Name(Arc::from(rule_list(&f.rules))))
    }
}

/// `942100,941100`: the rule ids, in the order they matched.
fn rule_list(rules: &[portcullis_waf::RuleId]) -> String {
    let mut out = String::new();
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lists_are_comma_separated_ids() {
        assert_eq!(rule_list(&[portcullis_waf::RuleId(942100), portcullis_waf::RuleId(941100)]), "942100,941100");
        assert_eq!(rule_list(&[]), "");
    }
}
