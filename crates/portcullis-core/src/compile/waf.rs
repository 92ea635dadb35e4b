//! `waf`: the built-in rules compiled once per load (families, threshold, exclusions checked
//! against the known rule ids and the config's routes), and each route's mode.

use std::sync::Arc;

use portcullis_config::surface::{self, Document, WafRuleId};
use portcullis_waf::{Exclusion, Families, Family, Oversize, Settings, TargetSpec, Waf};

use super::{Compiler, at};
use crate::snapshot::WafMode;

/// A route's mode: its own `waf`, else `waf.mode`, else `block` when a `waf` section exists
/// and `off` when none does.
pub(super) fn route_mode(doc: &Document, route: Option<surface::WafMode>) -> WafMode {
    let global = doc.waf.as_ref().map_or(surface::WafMode::Off, |w| w.mode.unwrap_or(surface::WafMode::Block));
    match route.unwrap_or(global) {
        surface::WafMode::Block => WafMode::Block,
        surface::WafMode::Detect => WafMode::Detect,
        surface::WafMode::Off => WafMode::Off,
    }
}

pub(super) fn compile(c: &mut Compiler<'_>) -> Arc<Waf> {
    let Some(waf) = c.doc.waf.clone() else { return Arc::new(Waf::new(Settings::default())) };
    let path = at("waf");
    let families = match &waf.rules {
        None => Families::all(),
        Some(sets) => sets.iter().map(|s| family(*s)).collect(),
    };
    let threshold = waf.threshold.unwrap_or(portcullis_waf::DEFAULT_THRESHOLD);
    if threshold == 0 {
        c.error(&path.key("threshold"), "must be at least 1 (0 would refuse every request)");
    }
    if waf.crs.is_some() {
        c.error(
            &path.key("crs"),
            "OWASP CRS rule files are not evaluated by this build yet; remove `crs` (the built-in rules apply)",
        );
    }
    let inspect_body_bytes = waf
        .inspect_body_bytes
        .map_or(portcullis_waf::DEFAULT_INSPECT_BODY_BYTES, |b| usize::try_from(b.0).unwrap_or(usize::MAX));
    if let Some(max) = c.doc.limits.max_body_bytes.as_ref()
        && inspect_body_bytes as u64 > max.0
    {
        c.warn(&path.key("inspect_body_bytes"), "is larger than limits.max_body_bytes, which bounds it");
    }
    let exclusions = waf.exclusions.iter().enumerate().map(|(i, e)| exclusion(c, i, e)).collect();
    let oversize = match waf.oversize {
        Some(surface::WafOversize::Block) => Oversize::Block,
        Some(surface::WafOversize::Pass) | None => Oversize::Pass,
    };
    Arc::new(Waf::new(Settings { families, threshold, exclusions, inspect_body_bytes, oversize }))
}

fn family(set: surface::WafRuleSet) -> Family {
    match set {
        surface::WafRuleSet::Sqli => Family::Sqli,
        surface::WafRuleSet::Xss => Family::Xss,
        surface::WafRuleSet::PathTraversal => Family::PathTraversal,
        surface::WafRuleSet::CommandInjection => Family::CommandInjection,
        surface::WafRuleSet::Protocol => Family::Protocol,
    }
}

fn exclusion(c: &mut Compiler<'_>, i: usize, e: &surface::WafExclusion) -> Exclusion {
    let path = at("waf").key("exclusions").index(i);
    if e.rules.is_empty() {
        c.error(&path.key("rules"), "name at least one rule id");
    }
    let mut rules = Vec::new();
    for (j, id) in e.rules.iter().enumerate() {
        let text = match id {
            WafRuleId::Number(n) => n.to_string(),
            WafRuleId::Text(t) => t.clone(),
        };
        match portcullis_waf::parse_rule_id(&text).filter(|id| portcullis_waf::rules::rule(*id).is_some()) {
            Some(id) => rules.push(id),
            None => c.error(&path.key("rules").index(j), format!("`{text}` is not a WAF rule id ({})", known_ids())),
        }
    }
    for (j, route) in e.routes.iter().enumerate() {
        if !c.doc.routes.iter().any(|r| &r.name == route) {
            c.error(&path.key("routes").index(j), format!("no route is named `{route}`"));
        }
    }
    let mut targets = Vec::new();
    for (j, t) in e.targets.iter().enumerate() {
        match t.parse::<TargetSpec>() {
            Ok(spec) => targets.push(spec),
            Err(err) => c.error(&path.key("targets").index(j), err.to_string()),
        }
    }
    Exclusion { rules, routes: e.routes.clone(), targets }
}

fn known_ids() -> String {
    let ids: Vec<String> = portcullis_waf::RULES.iter().map(|r| r.id.to_string()).collect();
    format!("built-in: {}", ids.join(", "))
}
