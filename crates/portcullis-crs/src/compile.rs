//! SecLang directives compiled into rules: targets, operator, transformations and actions.
//! Anything CRS could write that this engine does not implement is refused here, with the
//! file, line and rule id, so that no rule is ever loaded that silently cannot work.

use crate::LoadError;
use crate::seclang::RawDirective;
use crate::transform::Transform;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::path::Path;

/// A request variable (collection) CRS reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::enum_variant_names)] // the names are ModSecurity's
pub(crate) enum Var {
    Args,
    ArgsNames,
    ArgsGet,
    ArgsGetNames,
    ArgsPost,
    ArgsPostNames,
    ArgsCombinedSize,
    Files,
    FilesNames,
    FilesCombinedSize,
    MultipartPartHeaders,
    QueryString,
    RemoteAddr,
    ReqbodyProcessor,
    ReqbodyError,
    RequestBasename,
    RequestBody,
    RequestBodyLength,
    RequestCookies,
    RequestCookiesNames,
    RequestFilename,
    RequestHeaders,
    RequestHeadersNames,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    RequestUri,
    RequestUriRaw,
    Tx,
    Ip,
    Global,
    Session,
    User,
    Resource,
    Geo,
    UniqueId,
    Duration,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    Xml,
}

impl Var {
    fn from_name(s: &str) -> Option<Var> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ARGS" => Var::Args,
            "ARGS_NAMES" => Var::ArgsNames,
            "ARGS_GET" => Var::ArgsGet,
            "ARGS_GET_NAMES" => Var::ArgsGetNames,
            "ARGS_POST" => Var::ArgsPost,
            "ARGS_POST_NAMES" => Var::ArgsPostNames,
            "ARGS_COMBINED_SIZE" => Var::ArgsCombinedSize,
            "FILES" => Var::Files,
            "FILES_NAMES" => Var::FilesNames,
            "FILES_COMBINED_SIZE" => Var::FilesCombinedSize,
            "MULTIPART_PART_HEADERS" => Var::MultipartPartHeaders,
            "QUERY_STRING" => Var::QueryString,
            "REMOTE_ADDR" => Var::RemoteAddr,
            "REQBODY_PROCESSOR" => Var::ReqbodyProcessor,
            "REQBODY_ERROR" => Var::ReqbodyError,
            "REQUEST_BASENAME" => Var::RequestBasename,
            "REQUEST_BODY" => Var::RequestBody,
            "REQUEST_BODY_LENGTH" => Var::RequestBodyLength,
            "REQUEST_COOKIES" => Var::RequestCookies,
            "REQUEST_COOKIES_NAMES" => Var::RequestCookiesNames,
            "REQUEST_FILENAME" => Var::RequestFilename,
            "REQUEST_HEADERS" => Var::RequestHeaders,
            "REQUEST_HEADERS_NAMES" => Var::RequestHeadersNames,
            "REQUEST_LINE" => Var::RequestLine,
            "REQUEST_METHOD" => Var::RequestMethod,
            "REQUEST_PROTOCOL" => Var::RequestProtocol,
            "REQUEST_URI" => Var::RequestUri,
            "REQUEST_URI_RAW" => Var::RequestUriRaw,
            "TX" => Var::Tx,
            "IP" => Var::Ip,
            "GLOBAL" => Var::Global,
            "SESSION" => Var::Session,
            "USER" => Var::User,
            "RESOURCE" => Var::Resource,
            "GEO" => Var::Geo,
            "UNIQUE_ID" => Var::UniqueId,
            "DURATION" => Var::Duration,
            "MATCHED_VAR" => Var::MatchedVar,
            "MATCHED_VAR_NAME" => Var::MatchedVarName,
            "MATCHED_VARS" => Var::MatchedVars,
            "MATCHED_VARS_NAMES" => Var::MatchedVarsNames,
            "XML" => Var::Xml,
            _ => return None,
        })
    }

    /// The name as SecLang writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::Args => "ARGS",
            Var::ArgsNames => "ARGS_NAMES",
            Var::ArgsGet => "ARGS_GET",
            Var::ArgsGetNames => "ARGS_GET_NAMES",
            Var::ArgsPost => "ARGS_POST",
            Var::ArgsPostNames => "ARGS_POST_NAMES",
            Var::ArgsCombinedSize => "ARGS_COMBINED_SIZE",
            Var::Files => "FILES",
            Var::FilesNames => "FILES_NAMES",
            Var::FilesCombinedSize => "FILES_COMBINED_SIZE",
            Var::MultipartPartHeaders => "MULTIPART_PART_HEADERS",
            Var::QueryString => "QUERY_STRING",
            Var::RemoteAddr => "REMOTE_ADDR",
            Var::ReqbodyProcessor => "REQBODY_PROCESSOR",
            Var::ReqbodyError => "REQBODY_ERROR",
            Var::RequestBasename => "REQUEST_BASENAME",
            Var::RequestBody => "REQUEST_BODY",
            Var::RequestBodyLength => "REQUEST_BODY_LENGTH",
            Var::RequestCookies => "REQUEST_COOKIES",
            Var::RequestCookiesNames => "REQUEST_COOKIES_NAMES",
            Var::RequestFilename => "REQUEST_FILENAME",
            Var::RequestHeaders => "REQUEST_HEADERS",
            Var::RequestHeadersNames => "REQUEST_HEADERS_NAMES",
            Var::RequestLine => "REQUEST_LINE",
            Var::RequestMethod => "REQUEST_METHOD",
            Var::RequestProtocol => "REQUEST_PROTOCOL",
            Var::RequestUri => "REQUEST_URI",
            Var::RequestUriRaw => "REQUEST_URI_RAW",
            Var::Tx => "TX",
            Var::Ip => "IP",
            Var::Global => "GLOBAL",
            Var::Session => "SESSION",
            Var::User => "USER",
            Var::Resource => "RESOURCE",
            Var::Geo => "GEO",
            Var::UniqueId => "UNIQUE_ID",
            Var::Duration => "DURATION",
            Var::MatchedVar => "MATCHED_VAR",
            Var::MatchedVarName => "MATCHED_VAR_NAME",
            Var::MatchedVars => "MATCHED_VARS",
            Var::MatchedVarsNames => "MATCHED_VARS_NAMES",
            Var::Xml => "XML",
        }
    }

    /// The name of a collection kept in the transaction's variable store (`tx.x`, `ip.x`).
    pub(crate) fn store_prefix(self) -> Option<&'static str> {
        Some(match self {
            Var::Tx => "tx",
            Var::Ip => "ip",
            Var::Global => "global",
            Var::Session => "session",
            Var::User => "user",
            Var::Resource => "resource",
            Var::Geo => "geo",
            _ => return None,
        })
    }
}

/// A target list: what is inspected, and what is excluded (`!ARGS:x`).
pub(crate) type TargetList = (Vec<Target>, Vec<Target>);

/// Which members of a collection a target names.
#[derive(Debug, Clone)]
pub(crate) enum Selector {
    All,
    Key(String),
    Regex(regex::Regex),
}

impl Selector {
    pub(crate) fn selects(&self, key: &str) -> bool {
        match self {
            Selector::All => true,
            Selector::Key(k) => k.eq_ignore_ascii_case(key),
            Selector::Regex(r) => r.is_match(key),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) var: Var,
    pub(crate) sel: Selector,
    pub(crate) count: bool,
    /// For `TX:name` and the other stored collections, the store's key (`tx.name`).
    pub(crate) store_key: Option<String>,
}

/// Text with `%{collection.key}` macros, expanded per transaction.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Lit(String),
    Macro(String),
}

impl Template {
    pub(crate) fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find("%{") {
            match rest[i + 2..].find('}') {
                Some(j) => {
                    if i > 0 {
                        parts.push(Part::Lit(rest[..i].to_string()));
                    }
                    parts.push(Part::Macro(rest[i + 2..i + 2 + j].to_ascii_lowercase()));
                    rest = &rest[i + 2 + j + 1..];
                }
                None => break,
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Template { parts }
    }

    /// The text when the template holds no macro, borrowed.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    pub(crate) fn literal(&self) -> Option<String> {
        match self.parts.as_slice() {
            [] => Some(String::new()),
            [Part::Lit(s)] => Some(s.clone()),
            _ => None,
        }
    }
}

pub(crate) enum Matcher {
    Std(regex::bytes::Regex),
    Fancy(fancy_regex::Regex),
}

pub(crate) enum Op {
    Rx(Matcher),
    RxMacro(Template),
    /// `@pm`/`@pmFromFile`: the automaton and its phrases (which the prefilter reuses).
    Pm(AhoCorasick, Vec<Vec<u8>>),
    Streq(Template),
    Contains(Template),
    ContainsWord(Template),
    BeginsWith(Template),
    EndsWith(Template),
    Within(Template),
    Eq(Template),
    Ge(Template),
    Gt(Template),
    Lt(Template),
    Le(Template),
    DetectSqli,
    DetectXss,
    ValidateByteRange(Vec<(u8, u8)>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    IpMatch(Vec<ipnet::IpNet>),
    /// No GeoIP database is configured: the lookup finds nothing, as in ModSecurity.
    GeoLookup,
    /// DNS block lists are not queried in-process; a setup that enables them is refused.
    Rbl,
    Unconditional,
    NoMatch,
}

#[derive(Debug, Clone)]
pub(crate) enum SetVar {
    Set { key: Template, value: Template },
    Add { key: Template, value: Template },
    Sub { key: Template, value: Template },
    Delete { key: Template },
}

#[derive(Debug, Clone)]
pub(crate) enum RuleSel {
    Ids(Vec<(u64, u64)>),
    Tag(String),
}

impl RuleSel {
    pub(crate) fn selects(&self, rule: &Rule) -> bool {
        match self {
            RuleSel::Ids(ranges) => rule.id.is_some_and(|id| ranges.iter().any(|(a, b)| (*a..=*b).contains(&id))),
            RuleSel::Tag(t) => rule.tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Ctl {
    RemoveRules(RuleSel),
    RemoveTarget(RuleSel, Var, Option<String>),
    RuleEngine(EngineMode),
    BodyProcessor(crate::request::BodyProcessor),
    /// REQUEST_BODY is always filled (as libmodsecurity 3 does), so forcing it changes nothing.
    ForceBodyVariable,
    RequestBodyAccess(bool),
    /// Audit logging controls: this engine writes no audit log.
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disruptive {
    Pass,
    Block,
    Deny,
    Allow,
}

pub(crate) struct Rule {
    pub(crate) id: Option<u64>,
    pub(crate) phase: u8,
    pub(crate) targets: Vec<Target>,
    pub(crate) excludes: Vec<Target>,
    pub(crate) op: Op,
    pub(crate) negated: bool,
    pub(crate) transforms: Vec<Transform>,
    /// Index of the transformation chain, for the per-request cache.
    pub(crate) chain_key: u32,
    pub(crate) capture: bool,
    pub(crate) multi_match: bool,
    pub(crate) setvars: Vec<SetVar>,
    pub(crate) ctls: Vec<Ctl>,
    pub(crate) skip_after: Option<String>,
    pub(crate) skip: u32,
    pub(crate) disruptive: Option<Disruptive>,
    pub(crate) severity: Option<u8>,
    pub(crate) msg: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) chained: Option<Box<Rule>>,
    /// The rule's place in the literal prefilter, [`crate::prefilter::NONE`] when the rule is
    /// evaluated on every value (see `prefilter.rs`).
    pub(crate) slot: u32,
}

pub(crate) enum Item {
    Rule(Box<Rule>),
    Marker(String),
}

/// Compiles a file's directives into `items`. `removed` collects SecRuleRemoveBy* selectors,
/// applied once everything is loaded.
pub(crate) struct Compiler {
    pub(crate) items: Vec<Item>,
    pub(crate) removed: Vec<RuleSel>,
    /// SecRuleUpdateTargetById: targets added to (or excluded from) rules, applied at the end.
    pub(crate) updates: Vec<(RuleSel, TargetList)>,
    pub(crate) errors: Vec<LoadError>,
    pub(crate) chains: Vec<Vec<Transform>>,
    pending_chain: Option<Vec<Rule>>,
    pending_at: Option<(std::path::PathBuf, usize, Option<String>)>,
}

/// Configuration directives that only tune the engine's I/O, logging or limits and have no
/// bearing on how request rules match; they are accepted and have no effect here.
const NEUTRAL_DIRECTIVES: &[&str] = &[
    "secruleengine",
    "secrequestbodyaccess",
    "secresponsebodyaccess",
    "secresponsebodymimetype",
    "secresponsebodylimit",
    "secresponsebodylimitaction",
    "secrequestbodylimit",
    "secrequestbodynofileslimit",
    "secrequestbodyinmemorylimit",
    "secrequestbodylimitaction",
    "secrequestbodyjsondepthlimit",
    "secargumentslimit",
    "secpcrematchlimit",
    "secpcrematchlimitrecursion",
    "seccomponentsignature",
    "seccollectiontimeout",
    "secauditengine",
    "secauditlog",
    "secauditlogparts",
    "secauditlogtype",
    "secauditlogformat",
    "secauditlogstoragedir",
    "secauditlogrelevantstatus",
    "secauditlogdirmode",
    "secauditlogfilemode",
    "secdebuglog",
    "secdebugloglevel",
    "sectmpdir",
    "secdatadir",
    "secuploaddir",
    "secuploadkeepfiles",
    "secuploadfilemode",
    "sectmpsaveuploadedfiles",
    "secstatusengine",
    "secunicodemapfile",
    "secdefaultaction",
];

impl Compiler {
    pub(crate) fn new() -> Compiler {
        Compiler {
            items: Vec::new(),
            removed: Vec::new(),
            updates: Vec::new(),
            errors: Vec::new(),
            chains: Vec::new(),
            pending_chain: None,
            pending_at: None,
        }
    }

    fn err(&mut self, d: &RawDirective, rule_id: Option<String>, message: String) {
        self.errors.push(LoadError { file: d.file.clone(), line: d.line, rule_id, message });
    }

    pub(crate) fn directive(&mut self, d: &RawDirective) {
        let name = d.name.to_ascii_lowercase();
        if self.pending_chain.is_some() && name != "secrule" {
            let id = self.pending_at.as_ref().and_then(|p| p.2.clone());
            self.err(d, id, "a rule with `chain` must be followed by a SecRule".into());
            self.pending_chain = None;
        }
        match name.as_str() {
            "secrule" => {
                if d.args.len() < 2 || d.args.len() > 3 {
                    self.err(d, None, format!("SecRule takes 2 or 3 arguments, found {}", d.args.len()));
                    return;
                }
                let actions = d.args.get(2).cloned().unwrap_or_default();
                self.rule(d, Some((&d.args[0], &d.args[1])), &actions);
            }
            "secaction" => {
                if d.args.len() != 1 {
                    self.err(d, None, "SecAction takes 1 argument".into());
                    return;
                }
                self.rule(d, None, &d.args[0].clone());
            }
            "secmarker" => match d.args.first() {
                Some(m) => self.items.push(Item::Marker(m.clone())),
                None => self.err(d, None, "SecMarker needs a name".into()),
            },
            "secruleremovebyid" => {
                let mut ranges = Vec::new();
                for a in &d.args {
                    match parse_id_ranges(a) {
                        Some(r) => ranges.extend(r),
                        None => self.err(d, None, format!("SecRuleRemoveById: {a:?} is not a rule id or range")),
                    }
                }
                self.removed.push(RuleSel::Ids(ranges));
            }
            "secruleupdatetargetbyid" => {
                let (Some(ids), Some(targets)) = (d.args.first(), d.args.get(1)) else {
                    self.err(d, None, "SecRuleUpdateTargetById needs a rule id and targets".into());
                    return;
                };
                if d.args.len() > 2 {
                    self.err(
                        d,
                        Some(ids.clone()),
                        "SecRuleUpdateTargetById with a replaced target is not supported".into(),
                    );
                    return;
                }
                match (parse_id_ranges(ids), parse_targets(targets)) {
                    (Some(r), Ok(t)) => self.updates.push((RuleSel::Ids(r), t)),
                    (None, _) => {
                        self.err(d, None, format!("SecRuleUpdateTargetById: {ids:?} is not a rule id or range"))
                    }
                    (_, Err(m)) => self.err(d, Some(ids.clone()), m),
                }
            }
            "secruleremovebytag" => {
                for a in &d.args {
                    self.removed.push(RuleSel::Tag(a.clone()));
                }
            }
            "secdefaultaction" => {
                // Checked like any action list; its `pass`/`block` choice does not matter because
                // the verdict is the anomaly score against the configured threshold.
                if let Some(a) = d.args.first()
                    && let Err(m) = crate::seclang::actions(a)
                        .and_then(|list| list.iter().try_for_each(|(n, v)| check_action_name(n, v.as_deref())))
                {
                    self.err(d, None, m);
                }
            }
            n if NEUTRAL_DIRECTIVES.contains(&n) => {}
            _ => self.err(d, None, format!("unsupported directive {}", d.name)),
        }
    }

    /// Applies SecRuleUpdateTargetById to the rules it names, wherever they were loaded.
    pub(crate) fn apply_updates(&mut self) {
        for (sel, (targets, excludes)) in std::mem::take(&mut self.updates) {
            for item in &mut self.items {
                if let Item::Rule(r) = item
                    && sel.selects(r)
                {
                    r.targets.extend(targets.iter().cloned());
                    r.excludes.extend(excludes.iter().cloned());
                }
            }
        }
    }

    pub(crate) fn finish_file(&mut self, file: &Path) {
        if self.pending_chain.take().is_some() {
            let (f, line, id) = self.pending_at.take().unwrap_or((file.to_path_buf(), 0, None));
            self.errors.push(LoadError {
                file: f,
                line,
                rule_id: id,
                message: "the last rule of the file has `chain` but no rule follows".into(),
            });
        }
    }

    fn chain_key(&mut self, t: &[Transform]) -> u32 {
        if let Some(i) = self.chains.iter().position(|c| c.as_slice() == t) {
            return i as u32;
        }
        self.chains.push(t.to_vec());
        (self.chains.len() - 1) as u32
    }

    fn rule(&mut self, d: &RawDirective, var_op: Option<(&String, &String)>, actions: &str) {
        let list = match crate::seclang::actions(actions) {
            Ok(l) => l,
            Err(m) => {
                self.err(d, None, m);
                return;
            }
        };
        let id_str = list.iter().find(|(n, _)| n == "id").and_then(|(_, v)| v.clone());
        let in_chain = self.pending_chain.is_some();
        let mut rule = Rule {
            id: None,
            phase: 2,
            targets: Vec::new(),
            excludes: Vec::new(),
            op: Op::Unconditional,
            negated: false,
            transforms: Vec::new(),
            chain_key: 0,
            capture: false,
            multi_match: false,
            setvars: Vec::new(),
            ctls: Vec::new(),
            skip_after: None,
            skip: 0,
            disruptive: None,
            severity: None,
            msg: None,
            tags: Vec::new(),
            chained: None,
            slot: crate::prefilter::NONE,
        };
        let mut errs = Vec::new();
        let mut chain = false;
        let rule_dir = d.file.parent().map(Path::to_path_buf).unwrap_or_default();
        for (name, value) in &list {
            if let Err(m) = check_action_name(name, value.as_deref()) {
                errs.push(m);
                continue;
            }
            let v = value.clone().unwrap_or_default();
            match name.as_str() {
                "id" => match v.parse::<u64>() {
                    Ok(id) => rule.id = Some(id),
                    Err(_) => errs.push(format!("id {v:?} is not a number")),
                },
                "phase" => match v.as_str() {
                    "1" | "request" => rule.phase = 1,
                    "2" => rule.phase = 2,
                    "3" | "4" | "response" => rule.phase = 4,
                    "5" | "logging" => rule.phase = 5,
                    _ => errs.push(format!("unknown phase {v:?}")),
                },
                "t" => {
                    if v.eq_ignore_ascii_case("none") {
                        rule.transforms.clear();
                    } else {
                        match Transform::from_name(&v) {
                            Some(t) => rule.transforms.push(t),
                            None => errs.push(format!("unsupported transformation t:{v}")),
                        }
                    }
                }
                "capture" => rule.capture = true,
                "multimatch" => rule.multi_match = true,
                "chain" => chain = true,
                "setvar" => match parse_setvar(&v) {
                    Ok(s) => rule.setvars.push(s),
                    Err(m) => errs.push(m),
                },
                "ctl" => match parse_ctl(&v) {
                    Ok(c) => rule.ctls.push(c),
                    Err(m) => errs.push(m),
                },
                "skipafter" => rule.skip_after = Some(v),
                "skip" => match v.parse() {
                    Ok(n) => rule.skip = n,
                    Err(_) => errs.push(format!("skip:{v} is not a number")),
                },
                "pass" => rule.disruptive = Some(Disruptive::Pass),
                "block" => rule.disruptive = Some(Disruptive::Block),
                "deny" | "drop" => rule.disruptive = Some(Disruptive::Deny),
                "allow" => rule.disruptive = Some(Disruptive::Allow),
                "severity" => match severity_points(&v) {
                    Some(s) => rule.severity = Some(s),
                    None => errs.push(format!("unknown severity {v:?}")),
                },
                "msg" => rule.msg = Some(v),
                "tag" => rule.tags.push(v),
                _ => {}
            }
        }
        rule.chain_key = self.chain_key(&rule.transforms.clone());
        if let Some((vars, op)) = var_op {
            match parse_targets(vars) {
                Ok((t, e)) => {
                    rule.targets = t;
                    rule.excludes = e;
                }
                Err(m) => errs.push(m),
            }
            match parse_operator(op, &rule_dir) {
                Ok((o, neg)) => {
                    rule.op = o;
                    rule.negated = neg;
                }
                Err(m) => errs.push(m),
            }
        }
        let id_for_errors = if in_chain { self.pending_at.as_ref().and_then(|p| p.2.clone()) } else { id_str.clone() };
        if !in_chain && id_str.is_none() {
            errs.push("a rule needs an id".into());
        }
        let failed = !errs.is_empty();
        for m in errs {
            self.err(d, id_for_errors.clone(), m);
        }
        let mut links = match self.pending_chain.take() {
            Some(links) => links,
            None => {
                self.pending_at = Some((d.file.clone(), d.line, id_str));
                Vec::new()
            }
        };
        links.push(rule);
        if chain {
            self.pending_chain = Some(links);
            return;
        }
        if failed {
            return;
        }
        // Link the chain: the head carries the id, phase and metadata.
        let mut next: Option<Box<Rule>> = None;
        while let Some(mut r) = links.pop() {
            r.chained = next.take();
            next = Some(Box::new(r));
        }
        if let Some(mut head) = next {
            let phase = head.phase;
            let mut link = head.chained.as_deref_mut();
            while let Some(l) = link {
                l.phase = phase;
                link = l.chained.as_deref_mut();
            }
            head.chain_key = self.chain_key(&head.transforms.clone());
            self.items.push(Item::Rule(head));
        }
    }
}

fn severity_points(v: &str) -> Option<u8> {
    Some(match v.to_ascii_uppercase().as_str() {
        "EMERGENCY" | "0" | "ALERT" | "1" | "CRITICAL" | "2" => 5,
        "ERROR" | "3" => 4,
        "WARNING" | "4" => 3,
        "NOTICE" | "5" => 2,
        "INFO" | "6" | "DEBUG" | "7" => 0,
        _ => return None,
    })
}

/// Actions accepted: those above with an effect, and metadata or logging ones without.
fn check_action_name(name: &str, value: Option<&str>) -> Result<(), String> {
    const KNOWN: &[&str] = &[
        "id",
        "phase",
        "t",
        "capture",
        "multimatch",
        "chain",
        "setvar",
        "ctl",
        "skipafter",
        "skip",
        "pass",
        "block",
        "deny",
        "drop",
        "allow",
        "severity",
        "msg",
        "tag",
        "logdata",
        "ver",
        "rev",
        "accuracy",
        "maturity",
        "log",
        "nolog",
        "auditlog",
        "noauditlog",
        "status",
        "expirevar",
        "initcol",
        "setuid",
        "setsid",
        "sanitisematched",
        "sanitizematched",
        "sanitisearg",
        "sanitizearg",
        "sanitisematchedbytes",
        "sanitizematchedbytes",
    ];
    if !KNOWN.contains(&name) {
        return Err(format!("unsupported action {name}"));
    }
    if matches!(name, "id" | "phase" | "t" | "setvar" | "ctl" | "skipafter" | "skip" | "severity") && value.is_none() {
        return Err(format!("action {name} needs a value"));
    }
    Ok(())
}

fn parse_id_ranges(s: &str) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.push((a.trim().parse().ok()?, b.trim().parse().ok()?)),
            None => {
                let id = part.trim().parse().ok()?;
                out.push((id, id));
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn parse_setvar(v: &str) -> Result<SetVar, String> {
    let v = v.trim();
    if let Some(k) = v.strip_prefix('!') {
        return Ok(SetVar::Delete { key: Template::parse(&check_collection(k)?) });
    }
    let (k, val) = match v.split_once('=') {
        Some((k, val)) => (k, val),
        None => (v, "1"),
    };
    let key = Template::parse(&check_collection(k)?);
    Ok(if let Some(n) = val.strip_prefix('+') {
        SetVar::Add { key, value: Template::parse(n) }
    } else if let Some(n) = val.strip_prefix('-') {
        SetVar::Sub { key, value: Template::parse(n) }
    } else {
        SetVar::Set { key, value: Template::parse(val) }
    })
}

fn check_collection(k: &str) -> Result<String, String> {
    let k = k.trim();
    let (coll, _) = k.split_once('.').ok_or_else(|| format!("setvar target {k:?} has no collection"))?;
    match Var::from_name(coll).and_then(Var::store_prefix) {
        Some(_) => Ok(k.to_ascii_lowercase()),
        None => Err(format!("setvar on unsupported collection {coll}")),
    }
}

fn parse_ctl(v: &str) -> Result<Ctl, String> {
    let (name, value) = v.split_once('=').ok_or_else(|| format!("ctl:{v} has no value"))?;
    let value = value.trim();
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RemoveRules(RuleSel::Ids(
            parse_id_ranges(value).ok_or_else(|| format!("ctl:ruleRemoveById={value} is not a rule id or range"))?,
        )),
        "ruleremovebytag" => Ctl::RemoveRules(RuleSel::Tag(value.to_string())),
        "ruleremovetargetbyid" | "ruleremovetargetbytag" => {
            let (sel, target) = value.split_once(';').ok_or_else(|| format!("ctl:{name}={value} has no target"))?;
            let rules = if name.eq_ignore_ascii_case("ruleremovetargetbyid") {
                RuleSel::Ids(
                    parse_id_ranges(sel).ok_or_else(|| format!("ctl:{name}: {sel:?} is not a rule id or range"))?,
                )
            } else {
                RuleSel::Tag(sel.to_string())
            };
            let (var, key) = match target.split_once(':') {
                Some((v, k)) => (v, Some(k.to_string())),
                None => (target, None),
            };
            let var = Var::from_name(var.trim()).ok_or_else(|| format!("unsupported variable {var} in ctl:{name}"))?;
            Ctl::RemoveTarget(rules, var, key)
        }
        "ruleengine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            _ => return Err(format!("ctl:ruleEngine={value} is not On, Off or DetectionOnly")),
        }),
        "requestbodyprocessor" => Ctl::BodyProcessor(
            crate::request::BodyProcessor::from_name(value)
                .ok_or_else(|| format!("unsupported body processor {value}"))?,
        ),
        "forcerequestbodyvariable" => Ctl::ForceBodyVariable,
        "requestbodyaccess" => Ctl::RequestBodyAccess(value.eq_ignore_ascii_case("on")),
        "auditengine" | "auditlogparts" => Ctl::Audit,
        other => return Err(format!("unsupported ctl:{other}")),
    })
}

/// `ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-/|XML:/*`.
fn parse_targets(s: &str) -> Result<(Vec<Target>, Vec<Target>), String> {
    let mut targets = Vec::new();
    let mut excludes = Vec::new();
    for raw in split_targets(s) {
        let raw = raw.trim();
        let (exclude, raw) = match raw.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, raw),
        };
        let (count, raw) = match raw.strip_prefix('&') {
            Some(r) => (true, r),
            None => (false, raw),
        };
        let (name, key) = match raw.split_once(':') {
            Some((n, k)) => (n, Some(k)),
            None => (raw, None),
        };
        let var = Var::from_name(name).ok_or_else(|| format!("unsupported variable {name}"))?;
        let sel = match key {
            None => Selector::All,
            Some(k) if var == Var::Xml => {
                if k != "/*" && k != "//@*" {
                    return Err(format!("unsupported XPath {k} (only XML:/* and XML://@*)"));
                }
                Selector::Key(k.to_string())
            }
            Some(k) if k.len() >= 2 && k.starts_with('/') && k.ends_with('/') => {
                let re = regex::RegexBuilder::new(&k[1..k.len() - 1])
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("bad selector regex {k}: {e}"))?;
                Selector::Regex(re)
            }
            Some(k) => Selector::Key(k.trim_matches('\'').to_string()),
        };
        let store_key = match (&sel, var.store_prefix()) {
            (Selector::Key(k), Some(prefix)) => Some(format!("{prefix}.{}", k.to_ascii_lowercase())),
            _ => None,
        };
        let t = Target { var, sel, count, store_key };
        if exclude {
            excludes.push(t);
        } else {
            targets.push(t);
        }
    }
    Ok((targets, excludes))
}

/// Splits on `|` outside a `/regex/` selector.
fn split_targets(s: &str) -> Vec<String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_re = false;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if !in_re && ch == ':' && c.get(i + 1) == Some(&'/') && !matches!(c.get(i + 2), Some('*') | Some('/')) {
            in_re = true;
            cur.push_str(":/");
            i += 2;
            continue;
        }
        if in_re && ch == '/' && c.get(i.wrapping_sub(1)) != Some(&'\\') {
            in_re = false;
        }
        if ch == '|' && !in_re {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
        i += 1;
    }
    out.push(cur);
    out
}

fn parse_operator(s: &str, dir: &Path) -> Result<(Op, bool), String> {
    let s = s.trim_start();
    let (negated, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (name, arg) = if let Some(r) = s.strip_prefix('@') {
        match r.find(' ') {
            Some(i) => (r[..i].to_ascii_lowercase(), &r[i + 1..]),
            None => (r.to_ascii_lowercase(), ""),
        }
    } else {
        ("rx".to_string(), s)
    };
    let op = match name.as_str() {
        "rx" => {
            let t = Template::parse(arg);
            if t.literal().is_some() { Op::Rx(compile_regex(arg)?) } else { Op::RxMacro(t) }
        }
        "pm" => phrases(arg.split_whitespace().map(str::to_string).collect())?,
        "pmf" | "pmfromfile" => {
            let mut words = Vec::new();
            for f in arg.split_whitespace() {
                let path = dir.join(f);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("@{name}: cannot read {}: {e}", path.display()))?;
                words.extend(
                    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string),
                );
            }
            phrases(words)?
        }
        "streq" => Op::Streq(Template::parse(arg)),
        "contains" => Op::Contains(Template::parse(arg)),
        "containsword" => Op::ContainsWord(Template::parse(arg)),
        "beginswith" => Op::BeginsWith(Template::parse(arg)),
        "endswith" => Op::EndsWith(Template::parse(arg)),
        "within" => Op::Within(Template::parse(arg)),
        "eq" => Op::Eq(Template::parse(arg)),
        "ge" => Op::Ge(Template::parse(arg)),
        "gt" => Op::Gt(Template::parse(arg)),
        "lt" => Op::Lt(Template::parse(arg)),
        "le" => Op::Le(Template::parse(arg)),
        "detectsqli" => Op::DetectSqli,
        "detectxss" => Op::DetectXss,
        "validatebyterange" => Op::ValidateByteRange(byte_ranges(arg)?),
        "validateurlencoding" => Op::ValidateUrlEncoding,
        "validateutf8encoding" => Op::ValidateUtf8Encoding,
        "ipmatch" => Op::IpMatch(ip_list(arg.split([',', ' ']).map(str::to_string).collect())?),
        "ipmatchfromfile" | "ipmatchf" => {
            let path = dir.join(arg.trim());
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("@{name}: cannot read {}: {e}", path.display()))?;
            Op::IpMatch(ip_list(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect(),
            )?)
        }
        "geolookup" => Op::GeoLookup,
        "rbl" => Op::Rbl,
        "unconditionalmatch" => Op::Unconditional,
        "nomatch" => Op::NoMatch,
        other => return Err(format!("unsupported operator @{other}")),
    };
    Ok((op, negated))
}

fn phrases(words: Vec<String>) -> Result<Op, String> {
    let words: Vec<Vec<u8>> = words.into_iter().filter(|w| !w.is_empty()).map(String::into_bytes).collect();
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&words)
        .map_err(|e| format!("phrase list: {e}"))?;
    Ok(Op::Pm(ac, words))
}

fn byte_ranges(arg: &str) -> Result<Vec<(u8, u8)>, String> {
    let mut out = Vec::new();
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u8 = a.trim().parse().map_err(|_| format!("bad byte range {part}"))?;
        let b: u8 = b.trim().parse().map_err(|_| format!("bad byte range {part}"))?;
        out.push((a, b));
    }
    Ok(out)
}

fn ip_list(items: Vec<String>) -> Result<Vec<ipnet::IpNet>, String> {
    let mut out = Vec::new();
    for i in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let net = match i.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            Err(_) => {
                let ip: std::net::IpAddr = i.parse().map_err(|_| format!("bad IP address or network {i}"))?;
                ipnet::IpNet::from(ip)
            }
        };
        out.push(net);
    }
    Ok(out)
}

/// Compiles a PCRE pattern as CRS writes it. The `regex` crate runs it when it can (linear
/// time); look-around and back-references go to `fancy-regex`.
pub(crate) fn compile_regex(pcre: &str) -> Result<Matcher, String> {
    let translated = translate_pcre(pcre, false);
    // Byte-oriented, as PCRE without UTF mode: ASCII case folding and classes keep the lazy
    // DFA small and fast, and `\xNN` means a byte.
    match regex::bytes::RegexBuilder::new(&translated)
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
    {
        Ok(r) => Ok(Matcher::Std(r)),
        Err(_) => fancy_regex::RegexBuilder::new(&translate_pcre(pcre, true))
            .backtrack_limit(1_000_000)
            .build()
            .map(Matcher::Fancy)
            .map_err(|e| format!("regular expression not supported: {e}")),
    }
}

/// PCRE and Rust's syntax differ where CRS relies on PCRE leniency: a `[` inside a class is a
/// literal, a `{` that does not start a quantifier is a literal, and `\d \w \s \b` are ASCII.
pub(crate) fn translate_pcre(p: &str, fancy: bool) -> String {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = 0usize;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' && i + 1 < c.len() {
            let n = c[i + 1];
            // `\x{bc}` is the byte 0xbc, as `\xbc`.
            if n == 'x' && c.get(i + 2) == Some(&'{') {
                let end = c[i + 3..].iter().position(|x| *x == '}').map(|p| i + 3 + p);
                if let Some(e) = end {
                    let hex: String = c[i + 3..e].iter().collect();
                    if (1..=2).contains(&hex.len()) && hex.chars().all(|x| x.is_ascii_hexdigit()) {
                        out.push_str(&format!("\\x{hex:0>2}"));
                        i = e + 1;
                        continue;
                    }
                }
            }
            let rep = match (n, in_class) {
                ('d', false) => Some("[0-9]"),
                ('d', true) => Some("0-9"),
                ('w', false) => Some("[0-9A-Za-z_]"),
                ('w', true) => Some("0-9A-Za-z_"),
                ('s', false) => Some("[\\t\\n\\x0B\\f\\r ]"),
                ('s', true) => Some("\\t\\n\\x0B\\f\\r "),
                ('D', false) => Some("[^0-9]"),
                ('W', false) => Some("[^0-9A-Za-z_]"),
                ('S', false) => Some("[^\\t\\n\\x0B\\f\\r ]"),
                ('b', false) if !fancy => Some("(?-u:\\b)"),
                ('B', false) if !fancy => Some("(?-u:\\B)"),
                ('Z', false) => Some("\\z"),
                _ => None,
            };
            match rep {
                Some(r) => out.push_str(r),
                // PCRE lets any punctuation be escaped; Rust only its meta characters.
                None if !n.is_ascii_alphanumeric() && !is_meta(n, in_class) => out.push(n),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            if ch == ']' && i > class_start {
                in_class = false;
                out.push(ch);
            } else if ch == '[' {
                if c.get(i + 1) == Some(&':') {
                    // POSIX class [:alpha:]
                    let end = (i + 2..c.len().saturating_sub(1)).find(|&j| c[j] == ':' && c[j + 1] == ']');
                    match end {
                        Some(e) => {
                            out.extend(&c[i..e + 2]);
                            i = e + 2;
                            continue;
                        }
                        None => out.push_str("\\["),
                    }
                } else {
                    out.push_str("\\[");
                }
            } else if ch == '&' || ch == '~' || (ch == '-' && c.get(i + 1) == Some(&'-')) {
                out.push('\\');
                out.push(ch);
            } else {
                out.push(ch);
            }
            i += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal.
                if c.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                class_start = i;
                continue;
            }
            '{' => {
                let end = c[i + 1..].iter().position(|x| *x == '}').map(|p| i + 1 + p);
                let valid = end.is_some_and(|e| {
                    let inner: String = c[i + 1..e].iter().collect();
                    let mut parts = inner.splitn(2, ',');
                    let a = parts.next().unwrap_or("");
                    let b = parts.next();
                    !a.is_empty()
                        && a.chars().all(|x| x.is_ascii_digit())
                        && b.is_none_or(|b| b.chars().all(|x| x.is_ascii_digit()))
                }) && i > 0;
                if valid {
                    let e = end.unwrap_or(i);
                    out.extend(&c[i..=e]);
                    i = e + 1;
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
                continue;
            }
            '}' => out.push_str("\\}"),
            _ => out.push(ch),
        }
        i += 1;
    }
    out
}

/// Characters that keep their backslash in Rust's syntax.
fn is_meta(c: char, in_class: bool) -> bool {
    if in_class { matches!(c, '\\' | ']' | '[' | '^' | '-' | '&' | '~') } else { "\\.+*?()|[]{}^$#&-~ ".contains(c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_pcre_leniencies() {
        assert_eq!(translate_pcre("[^:\\(\\)\\&\\!\\<\\~]\\<", false), "[^:()\\&!<\\~]<");
        assert_eq!(translate_pcre("['\" ?[=<>]+", false), "['\" ?\\[=<>]+");
        assert_eq!(translate_pcre("{{.*?}}", false), "\\{\\{.*?\\}\\}");
        assert_eq!(translate_pcre("a{1,3}b", false), "a{1,3}b");
        assert!(
            compile_regex(
                "(?i:[\\s'\"`()]*?\\b([\\d\\w]+)\\b[\\s'\"`()]*?(?:<(?:=(?:[\\s'\"`()]*?(?!\\b\\1\\b)[\\d\\w]+))))"
            )
            .is_ok()
        );
        assert!(matches!(compile_regex("^[\\w/]+$"), Ok(Matcher::Std(_))));
        assert!(matches!(compile_regex("\\x{bc}[^>\\x{be}]*[>\\x{be}]|<[^\\x{be}]*\\x{be}"), Ok(Matcher::Std(_))));
    }

    #[test]
    fn splits_targets_around_regex_selectors() {
        let t = split_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|ARGS:/^a|b$/|XML:/*");
        assert_eq!(t, vec!["REQUEST_COOKIES", "!REQUEST_COOKIES:/__utm/", "ARGS:/^a|b$/", "XML:/*"]);
    }
}
