//! The WAF phase (SPEC §3: after route match and CORS, before authentication, so an attack is
//! refused before it reaches the auth code). The route's mode decides: `off` skips; otherwise
//! the snapshot's compiled rules inspect the request head ([`Waf::head`]), then — when the
//! pipeline has read it — the first `inspect_body_bytes` of the body ([`Waf::body`]); with
//! `waf.crs`, the OWASP CRS evaluates the same head and body bytes ([`Waf::crs`]). Then
//! [`Waf::verdict`] refuses with 403 `waf_blocked` in `block` mode when either says block: the
//! built-in rules' anomaly score reaches `waf.threshold`, or CRS's inbound score reaches
//! `waf.crs.inbound_threshold` (each engine scores on its own; neither adds to the other).
//! `detect` only records. What is recorded (the context's `waf`, the trace, the problem
//! document) names rule ids and the scores, never the matched input.

use std::sync::Arc;

use http::request::Parts;
use portcullis_crs::CrsVerdict;
use portcullis_waf::{RuleId, Scan};

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
    /// and the body is of a kind it reads (the built-in rules and CRS read the same bodies).
    pub fn body_wanted(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts) -> Option<usize> {
        let wanted =
            snapshot.waf.wants_body(parts) || snapshot.crs.is_some() && portcullis_waf::reads_body(&parts.headers);
        (route.waf != WafMode::Off && wanted).then(|| snapshot.waf.inspect_body_bytes())
    }

    /// CRS's verdict on the head and the body's first `inspect_body_bytes` (`None`: no body
    /// was read); `None` when CRS is not configured or the route's mode is `off`. CPU work,
    /// done inline: milliseconds per request.
    pub fn crs(
        snapshot: &Snapshot,
        route: &RouteSpec,
        parts: &Parts,
        body: Option<&[u8]>,
        ctx: &RequestContext,
    ) -> Option<CrsVerdict> {
        let crs = snapshot.crs.as_deref()?;
        if route.waf == WafMode::Off {
            return None;
        }
        let mut headers: Vec<(&str, &[u8])> =
            parts.headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
        // HTTP/2 carries the host as `:authority`: CRS reads it as `Host`, as a server would.
        if !parts.headers.contains_key(http::header::HOST)
            && let Some(authority) = parts.uri.authority()
        {
            headers.push(("host", authority.as_str().as_bytes()));
        }
        let protocol = match parts.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        };
        let uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let limit = snapshot.waf.inspect_body_bytes();
        let tx = portcullis_crs::Transaction {
            method: parts.method.as_str(),
            uri,
            protocol,
            client_ip: ctx.client_ip,
            headers: &headers,
            body: body.filter(|b| !b.is_empty()).map(|b| b.get(..limit).unwrap_or(b)),
        };
        Some(crs.rules.evaluate_with(&tx, crs.exclusions(&route.name)))
    }

    /// The body's first bytes into the scan; `complete`: they are the whole body.
    pub fn body(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts, body: &[u8], complete: bool, scan: &mut Scan) {
        snapshot.waf.inspect_body(&route.name, parts, body, complete, scan);
    }

    /// Records what the built-in scan and CRS found, and refuses in `block` mode when either
    /// reached its threshold.
    pub fn verdict(
        snapshot: &Snapshot,
        route: &RouteSpec,
        scan: Option<Scan>,
        crs: Option<CrsVerdict>,
        ctx: &mut RequestContext,
    ) -> Flow {
        let Some(scan) = scan else { return Flow::Skip };
        let crs_clean = crs.as_ref().is_none_or(|v| v.matches.is_empty() && !v.blocked);
        if scan.is_clean() && crs_clean {
            return Flow::Continue;
        }
        let threshold = snapshot.waf.threshold();
        let builtin_blocks = !scan.is_clean() && scan.score() >= threshold;
        let crs_blocks = crs.as_ref().is_some_and(|v| v.blocked);
        let action = match route.waf {
            WafMode::Block if builtin_blocks || crs_blocks => WafAction::Block,
            WafMode::Block => WafAction::Pass,
            WafMode::Detect | WafMode::Off => WafAction::Detect,
        };
        // The built-in rules first, then CRS's in evaluation order; an id both matched (the
        // built-in rules carry CRS's numbers) once.
        let mut rules: smallvec::SmallVec<[RuleId; 4]> = scan.rules().into();
        for m in crs.iter().flat_map(|v| &v.matches) {
            if !rules.contains(&RuleId(m.rule_id)) {
                rules.push(RuleId(m.rule_id));
            }
        }
        let crs_score = crs.as_ref().map(|v| v.score);
        ctx.waf = Some(WafFinding { score: scan.score(), crs_score, rules, action });
        if action != WafAction::Block {
            return Flow::Continue;
        }
        let rules = ctx.waf.as_ref().map(|f| f.rules.clone()).unwrap_or_default();
        let ids = rule_list(&rules);
        let mut detail = format!(
            "refused by WAF rule{} {ids} (anomaly score {}",
            if rules.len() == 1 { "" } else { "s" },
            scan.score()
        );
        match (crs_score, snapshot.crs.as_deref()) {
            (Some(crs_score), Some(spec)) => detail.push_str(&format!(
                " of threshold {threshold}; CRS inbound score {crs_score} of threshold {})",
                spec.threshold
            )),
            _ => detail.push_str(&format!(" of threshold {threshold})")),
        }
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
fn rule_list(rules: &[RuleId]) -> String {
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
