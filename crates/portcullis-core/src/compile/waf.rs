//! `waf`: the built-in rules compiled once per load (families, threshold, exclusions checked
//! against the known rule ids and the config's routes), the OWASP CRS loaded from `waf.crs`
//! (every file error a diagnostic at `waf.crs.path`), and each route's mode.

use std::collections::HashMap;
use std::sync::Arc;

use portcullis_config::surface::{self, Document, WafRuleId};
use portcullis_crs::{CrsRules, ExcludedTarget, LoadOptions, Member};
use portcullis_waf::{Exclusion, Families, Family, Oversize, Settings, TargetSpec, Waf};

use super::{Compiler, at};
use crate::snapshot::{CrsSpec, WafMode};

/// `waf.crs.paranoia_level` when not given: CRS's own default.
pub(crate) const DEFAULT_CRS_PARANOIA_LEVEL: u8 = 1;
/// `waf.crs.inbound_threshold` when not given: CRS's own default, one critical match.
pub(crate) const DEFAULT_CRS_INBOUND_THRESHOLD: u32 = 5;

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

pub(super) fn compile(c: &mut Compiler<'_>) -> (Arc<Waf>, Option<Arc<CrsSpec>>) {
    let Some(waf) = c.doc.waf.clone() else { return (Arc::new(Waf::new(Settings::default())), None) };
    let path = at("waf");
    let families = match &waf.rules {
        None => Families::all(),
        Some(sets) => sets.iter().map(|s| family(*s)).collect(),
    };
    let threshold = waf.threshold.unwrap_or(portcullis_waf::DEFAULT_THRESHOLD);
    if threshold == 0 {
        c.error(&path.key("threshold"), "must be at least 1 (0 would refuse every request)");
    }
    let crs = waf.crs.as_ref().map(|crs| load_crs(c, crs));
    let inspect_body_bytes = waf
        .inspect_body_bytes
        .map_or(portcullis_waf::DEFAULT_INSPECT_BODY_BYTES, |b| usize::try_from(b.0).unwrap_or(usize::MAX));
    if let Some(max) = c.doc.limits.max_body_bytes.as_ref()
        && inspect_body_bytes as u64 > max.0
    {
        c.warn(&path.key("inspect_body_bytes"), "is larger than limits.max_body_bytes, which bounds it");
    }
    let crs_ids = match &crs {
        Some(Some(loaded)) => Known::BuiltInAndCrs(&loaded.0),
        // The rule files did not load (already an error): CRS ids cannot be checked.
        Some(None) => Known::Unchecked,
        None => Known::BuiltIn,
    };
    let exclusions: Vec<Exclusion> =
        waf.exclusions.iter().enumerate().map(|(i, e)| exclusion(c, i, e, &crs_ids)).collect();
    let oversize = match waf.oversize {
        Some(surface::WafOversize::Block) => Oversize::Block,
        Some(surface::WafOversize::Pass) | None => Oversize::Pass,
    };
    let crs = crs.flatten().map(|(rules, path, threshold)| {
        let (everywhere, by_route) = crs_exclusions(c.doc, &exclusions);
        Arc::new(CrsSpec { rules, path, threshold, everywhere, by_route })
    });
    (Arc::new(Waf::new(Settings { families, threshold, exclusions, inspect_body_bytes, oversize })), crs)
}

/// Loads `waf.crs`; `None` when it did not load (the errors are recorded).
fn load_crs(c: &mut Compiler<'_>, crs: &surface::WafCrs) -> Option<(CrsRules, std::path::PathBuf, u32)> {
    let path = at("waf").key("crs");
    let paranoia_level = crs.paranoia_level.unwrap_or(DEFAULT_CRS_PARANOIA_LEVEL);
    let threshold = crs.inbound_threshold.unwrap_or(DEFAULT_CRS_INBOUND_THRESHOLD);
    let mut ok = true;
    if !(1..=4).contains(&paranoia_level) {
        c.error(&path.key("paranoia_level"), format!("is {paranoia_level}; CRS paranoia levels are 1 to 4"));
        ok = false;
    }
    if threshold == 0 {
        c.error(&path.key("inbound_threshold"), "must be at least 1 (0 would refuse every request)");
        ok = false;
    }
    if !ok {
        return None;
    }
    let dir = c.loaded.resolve_path(&crs.path);
    let opts = LoadOptions { paranoia_level, inbound_threshold: threshold, disabled_rules: &[] };
    match CrsRules::load_with(&dir, &opts) {
        Ok(rules) => Some((rules, dir, threshold)),
        Err(errors) => {
            // Each names its file, line and rule id; a broken release may hold many.
            for e in errors.iter().take(MAX_LOAD_ERRORS) {
                c.error(&path.key("path"), e.to_string());
            }
            if errors.len() > MAX_LOAD_ERRORS {
                c.error(&path.key("path"), format!("and {} more errors", errors.len() - MAX_LOAD_ERRORS));
            }
            None
        }
    }
}

/// CRS load errors reported one by one; past this, counted.
const MAX_LOAD_ERRORS: usize = 50;

/// Which rule ids an exclusion may name.
enum Known<'a> {
    BuiltIn,
    BuiltInAndCrs(&'a CrsRules),
    Unchecked,
}

impl Known<'_> {
    fn knows(&self, id: portcullis_waf::RuleId) -> bool {
        portcullis_waf::rules::rule(id).is_some()
            || match self {
                Known::BuiltIn => false,
                Known::BuiltInAndCrs(crs) => crs.has_rule(id.0),
                Known::Unchecked => true,
            }
    }
}

/// `waf.exclusions` in CRS terms: those naming no route, and for each route named anywhere,
/// those plus the route's own.
fn crs_exclusions(
    doc: &Document,
    exclusions: &[Exclusion],
) -> (Vec<portcullis_crs::Exclusion>, HashMap<String, Vec<portcullis_crs::Exclusion>>) {
    let everywhere: Vec<_> = exclusions.iter().filter(|e| e.routes.is_empty()).flat_map(to_crs).collect();
    let mut by_route = HashMap::new();
    for route in &doc.routes {
        let own: Vec<_> = exclusions.iter().filter(|e| e.routes.contains(&route.name)).flat_map(to_crs).collect();
        if !own.is_empty() {
            by_route.insert(route.name.clone(), everywhere.iter().cloned().chain(own).collect());
        }
    }
    (everywhere, by_route)
}

/// One exclusion as CRS exclusions: no targets, the rules do not run; else one per collection
/// each target names.
fn to_crs(e: &Exclusion) -> Vec<portcullis_crs::Exclusion> {
    let rules: Vec<u32> = e.rules.iter().map(|r| r.0).collect();
    if e.targets.is_empty() {
        return vec![portcullis_crs::Exclusion { rules, target: None }];
    }
    e.targets
        .iter()
        .flat_map(crs_targets)
        .map(|target| portcullis_crs::Exclusion { rules: rules.clone(), target: Some(target) })
        .collect()
}

/// The CRS collections (and members) a gateway target names.
pub(crate) fn crs_targets(t: &TargetSpec) -> Vec<ExcludedTarget> {
    let named = |name: Option<&str>| name.map_or(Member::All, |n| Member::Named(n.to_owned()));
    let (collections, member): (&[&str], Member) = match t.kind() {
        "path" => (&["REQUEST_FILENAME", "REQUEST_BASENAME"], Member::All),
        "args" => (&["ARGS", "ARGS_GET", "ARGS_POST"], named(t.name())),
        "args_names" => (&["ARGS_NAMES", "ARGS_GET_NAMES", "ARGS_POST_NAMES"], named(t.name())),
        "cookies" => (&["REQUEST_COOKIES", "REQUEST_COOKIES_NAMES"], named(t.name())),
        "headers" => (&["REQUEST_HEADERS"], named(t.name())),
        // The JSON body processor names `{"a":{"b":[x]}}`'s leaf `json.a.b.0`, its keys too.
        "json" => (
            &["ARGS", "ARGS_POST", "ARGS_NAMES", "ARGS_POST_NAMES"],
            Member::Under(t.name().map_or_else(|| "json".to_owned(), json_pointer_to_arg)),
        ),
        "xml" => (&["XML"], Member::All),
        _ => (&["REQUEST_BODY"], Member::All),
    };
    collections.iter().map(|c| ExcludedTarget { collection: (*c).to_owned(), member: member.clone() }).collect()
}

/// `/comment/0` → `json.comment.0` (`~1` and `~0` undone).
fn json_pointer_to_arg(pointer: &str) -> String {
    let mut out = String::from("json");
    for segment in pointer.split('/').skip(1) {
        out.push('.');
        out.push_str(&segment.replace("~1", "/").replace("~0", "~"));
    }
    out
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

fn exclusion(c: &mut Compiler<'_>, i: usize, e: &surface::WafExclusion, known: &Known<'_>) -> Exclusion {
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
        match portcullis_waf::parse_rule_id(&text).filter(|id| known.knows(*id)) {
            Some(id) => rules.push(id),
            None => {
                c.error(&path.key("rules").index(j), format!("`{text}` is not a WAF rule id ({})", known_ids(known)))
            }
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

fn known_ids(known: &Known<'_>) -> String {
    let ids: Vec<String> = portcullis_waf::RULES.iter().map(|r| r.id.to_string()).collect();
    match known {
        Known::BuiltInAndCrs(crs) => {
            format!("built-in: {}; or one of the {} rules loaded from waf.crs.path", ids.join(", "), crs.rule_count())
        }
        Known::BuiltIn | Known::Unchecked => {
            format!("built-in: {}; CRS rule ids are known once `waf.crs` is set", ids.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_become_the_json_processors_argument_names() {
        assert_eq!(json_pointer_to_arg("/comment"), "json.comment");
        assert_eq!(json_pointer_to_arg("/a~1b/0/c~0d"), "json.a/b.0.c~d");
    }

    #[test]
    fn targets_map_to_the_crs_collections_holding_them() {
        let t: TargetSpec = "args:q".parse().expect("target");
        let got: Vec<_> = crs_targets(&t).into_iter().map(|t| (t.collection, t.member)).collect();
        assert_eq!(got[0], ("ARGS".to_owned(), Member::Named("q".to_owned())));
        assert_eq!(got.len(), 3);
        let t: TargetSpec = "json:/comment".parse().expect("target");
        assert!(crs_targets(&t).iter().all(|t| t.member == Member::Under("json.comment".to_owned())));
        let t: TargetSpec = "headers:User-Agent".parse().expect("target");
        assert_eq!(crs_targets(&t)[0].member, Member::Named("user-agent".to_owned()));
    }
}
