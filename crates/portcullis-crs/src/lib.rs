//! The OWASP Core Rule Set, evaluated in-process.
//!
//! [`CrsRules::load`] reads unmodified CRS rule files (SecLang) — a CRS release directory
//! (`crs-setup.conf` or `crs-setup.conf.example` beside `rules/`, CRS 3.3 and 4.x) or Debian's
//! `modsecurity-crs` layout (`/usr/share/modsecurity-crs`, whose `owasp-crs.load` names the
//! setup file under `/etc/modsecurity/crs`) — and compiles the request rules once.
//! [`CrsRules::evaluate`] runs phase 1 and phase 2 against one request and returns the
//! inbound anomaly score, the matched rules and whether the score reached the threshold.
//!
//! Every directive, variable, operator, transformation and action the files use must be one
//! this engine implements; anything else is a [`LoadError`] naming the file, line and rule
//! id. Nothing is skipped silently. Deliberate limits, all documented on the items involved:
//! response rules (`RESPONSE-*.conf`) are not loaded, persistent collections (`IP`, `GLOBAL`)
//! live for one request, `@geoLookup` finds nothing (no GeoIP database) and `@rbl` is never
//! queried (a setup that turns RBL checks on is refused at load).
//!
//! Cost (`cargo bench -p portcullis-crs --bench crs`, Debian CRS 3.3.4 at PL1, the shared
//! 2-core development VM at load ~2): about 60 µs for a GET with three query parameters and
//! 0.92 ms for a 4 KiB JSON POST, down from 1.8 and 52 ms when every rule ran on every value
//! it targets. The literal prefilter (`prefilter.rs`) runs a rule only on the values that hold
//! the literals its operator needs, after the rule's transformations; what remains is mostly
//! the prefilter's own pass (one Aho-Corasick search per distinct transformed value),
//! libinjection's SQL tokenizer (rule 942100 runs on every argument name and value) and the
//! body's parsing. The unit test `prefilter_changes_no_verdict` holds the fast path to the
//! plain evaluation.

mod compile;
#[cfg(test)]
mod differential_tests;
mod engine;
mod prefilter;
mod request;
mod seclang;
mod transform;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A compiled rule set. Built once per configuration load, shared by all requests.
pub struct CrsRules {
    program: engine::Program,
    rule_count: usize,
    paranoia_level: u8,
    /// The id of every rule loaded (chains: their first rule's), sorted.
    rule_ids: Vec<u32>,
    /// The files read, in load order.
    files: Vec<PathBuf>,
}

/// Why a rule file could not be loaded: the file, the line the directive starts on, the rule
/// id when the directive has one, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub rule_id: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(id) = &self.rule_id {
            write!(f, " (rule {id})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// Options for [`CrsRules::load_with`].
#[derive(Debug, Clone)]
pub struct LoadOptions<'a> {
    /// CRS paranoia level, 1 to 4.
    pub paranoia_level: u8,
    /// The inbound anomaly score at which a request is blocked.
    pub inbound_threshold: u32,
    /// Rule ids removed at load, as `SecRuleRemoveById` would.
    pub disabled_rules: &'a [u32],
}

/// One request as the gateway received it.
pub struct Transaction<'a> {
    pub method: &'a str,
    /// Path and query as received (`/a/b?x=1`), not decoded.
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    pub client_ip: IpAddr,
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body, at most `inspect_body_bytes` of it; `None` when there is none.
    pub body: Option<&'a [u8]>,
}

/// What some rules must not look at in one request, as `ctl:ruleRemoveTargetById` (with a
/// target) or `ctl:ruleRemoveById` (without) would say it: the caller's exclusions for the
/// request's route (a gateway's false-positive tuning), passed to [`CrsRules::evaluate_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// Rule ids (a chain is known by its first rule's id); empty: every rule.
    pub rules: Vec<u32>,
    /// `None`: the rules do not run at all (their anomaly points are never added).
    pub target: Option<ExcludedTarget>,
}

/// Values of one collection that a rule must not inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedTarget {
    /// The collection as SecLang names it: `ARGS`, `ARGS_GET`, `ARGS_NAMES`,
    /// `REQUEST_HEADERS`, `REQUEST_COOKIES`, `REQUEST_FILENAME`, `XML`, `REQUEST_BODY`…
    pub collection: String,
    pub member: Member,
}

/// Which members of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// Every member (and a single-valued variable such as `REQUEST_BODY`).
    All,
    /// The member of this name, compared without regard to ASCII case (`ARGS:q`).
    Named(String),
    /// This member and every one below it, as the JSON body processor names them:
    /// `json.comment` covers `json.comment` and `json.comment.0.text`, not `json.comments`.
    Under(String),
}

impl Exclusion {
    fn covers_rule(&self, id: Option<u64>) -> bool {
        self.rules.is_empty() || id.is_some_and(|id| self.rules.iter().any(|r| u64::from(*r) == id))
    }

    /// Whether rule `id` must not see member `key` of `collection`.
    pub(crate) fn removes_target(&self, id: Option<u64>, collection: &str, key: &str) -> bool {
        let Some(t) = &self.target else { return false };
        t.collection == collection
            && self.covers_rule(id)
            && match &t.member {
                Member::All => true,
                Member::Named(n) => n.eq_ignore_ascii_case(key),
                Member::Under(n) => {
                    key.len() >= n.len()
                        && key.is_char_boundary(n.len())
                        && key[..n.len()].eq_ignore_ascii_case(n)
                        && (key.len() == n.len() || key.as_bytes()[n.len()] == b'.')
                }
            }
    }

    /// Whether rule `id` does not run at all.
    pub(crate) fn removes_rule(&self, id: Option<u64>) -> bool {
        self.target.is_none() && self.covers_rule(id)
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsVerdict {
    /// The inbound anomaly score CRS computed.
    pub score: u32,
    /// Whether the score reached the threshold (or a rule denied outright).
    pub blocked: bool,
    /// The scoring rules that matched, in evaluation order.
    pub matches: Vec<CrsMatch>,
}

/// One matched CRS rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsMatch {
    pub rule_id: u32,
    /// Anomaly points of the rule's severity: critical 5, error 4, warning 3, notice 2.
    pub severity: u8,
    /// The rule's `msg`, unexpanded: it never holds request data.
    pub message: String,
}

impl CrsRules {
    /// Loads the CRS under `dir` at `paranoia_level`, blocking at `inbound_threshold`.
    pub fn load(dir: &Path, paranoia_level: u8, inbound_threshold: u32) -> Result<CrsRules, Vec<LoadError>> {
        Self::load_with(dir, &LoadOptions { paranoia_level, inbound_threshold, disabled_rules: &[] })
    }

    /// Loads with options, among them rule ids to remove.
    pub fn load_with(dir: &Path, opts: &LoadOptions<'_>) -> Result<CrsRules, Vec<LoadError>> {
        let at_dir = |message: String| vec![LoadError { file: dir.to_path_buf(), line: 0, rule_id: None, message }];
        if !(1..=4).contains(&opts.paranoia_level) {
            return Err(at_dir(format!("paranoia level {} is not 1 to 4", opts.paranoia_level)));
        }
        let files = rule_files(dir).map_err(at_dir)?;
        let mut c = compile::Compiler::new();
        let mut errors = Vec::new();
        let settings = format!(
            "SecAction \"id:9999001,phase:1,pass,nolog,setvar:tx.paranoia_level={pl},setvar:tx.blocking_paranoia_level={pl},setvar:tx.inbound_anomaly_score_threshold={th}\"\n",
            pl = opts.paranoia_level,
            th = opts.inbound_threshold
        );
        let settings_path = PathBuf::from("<portcullis waf.crs settings>");
        let mut settings_done = false;
        for (path, is_setup) in &files {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(LoadError {
                        file: path.clone(),
                        line: 0,
                        rule_id: None,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            if !is_setup && !settings_done {
                settings_done = true;
                load_text(&mut c, &mut errors, &settings_path, &settings);
            }
            load_text(&mut c, &mut errors, path, &text);
            if *is_setup {
                refuse_rbl(path, &text, &mut errors);
            }
        }
        if !opts.disabled_rules.is_empty() {
            c.removed.push(compile::RuleSel::Ids(
                opts.disabled_rules.iter().map(|i| (u64::from(*i), u64::from(*i))).collect(),
            ));
        }
        c.apply_updates();
        errors.extend(std::mem::take(&mut c.errors));
        if !errors.is_empty() {
            return Err(errors);
        }
        let removed = std::mem::take(&mut c.removed);
        c.items.retain(|it| match it {
            compile::Item::Rule(r) => !removed.iter().any(|s| s.selects(r)),
            compile::Item::Marker(_) => true,
        });
        let rule_count = c.items.iter().filter(|i| matches!(i, compile::Item::Rule(_))).count();
        let mut rule_ids: Vec<u32> = c
            .items
            .iter()
            .filter_map(|i| match i {
                compile::Item::Rule(r) => r.id.and_then(|id| u32::try_from(id).ok()),
                compile::Item::Marker(_) => None,
            })
            .collect();
        rule_ids.sort_unstable();
        rule_ids.dedup();
        Ok(CrsRules {
            program: engine::Program::new(c.items, c.chains, opts.inbound_threshold),
            rule_count,
            paranoia_level: opts.paranoia_level,
            rule_ids,
            files: files.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// Evaluates one request.
    pub fn evaluate(&self, tx: &Transaction<'_>) -> CrsVerdict {
        engine::evaluate(&self.program, tx, &[])
    }

    /// Evaluates one request with `exclusions` applied (the caller's for this request).
    pub fn evaluate_with(&self, tx: &Transaction<'_>, exclusions: &[Exclusion]) -> CrsVerdict {
        engine::evaluate(&self.program, tx, exclusions)
    }

    /// Whether a rule of this id was loaded (and not removed at load).
    pub fn has_rule(&self, id: u32) -> bool {
        self.rule_ids.binary_search(&id).is_ok()
    }

    /// The files the rules were read from (setup, rules; the `.data` files they name are not
    /// listed), in load order: what a reload watches.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// How many rules (chains counted once) were loaded.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    pub fn paranoia_level(&self) -> u8 {
        self.paranoia_level
    }
}

fn load_text(c: &mut compile::Compiler, errors: &mut Vec<LoadError>, path: &Path, text: &str) {
    match seclang::directives(path, text) {
        Ok(ds) => {
            for d in &ds {
                c.directive(d);
            }
            c.finish_file(path);
        }
        Err((line, message)) => errors.push(LoadError { file: path.to_path_buf(), line, rule_id: None, message }),
    }
}

/// RBL look-ups need DNS queries per request, which this engine does not make: a setup that
/// turns them on is refused rather than silently not checked.
fn refuse_rbl(path: &Path, text: &str, errors: &mut Vec<LoadError>) {
    let Ok(ds) = seclang::directives(path, text) else { return };
    for d in ds {
        let joined = d.args.join(" ").to_ascii_lowercase();
        for key in [
            "tx.block_search_ip=1",
            "tx.block_suspicious_ip=1",
            "tx.block_harvester_ip=1",
            "tx.block_spammer_ip=1",
            "tx.httpbl_api_key=",
        ] {
            if joined.contains(key) {
                errors.push(LoadError {
                    file: path.to_path_buf(),
                    line: d.line,
                    rule_id: None,
                    message: format!(
                        "{} enables RBL (DNS block list) look-ups, which are not supported",
                        key.trim_end_matches("=1").trim_end_matches('=')
                    ),
                });
            }
        }
    }
}

/// The files to load, in order, each marked when it is the setup file.
fn rule_files(dir: &Path) -> Result<Vec<(PathBuf, bool)>, String> {
    let is_setup = |p: &Path| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("crs-setup.conf"));
    let loader = dir.join("owasp-crs.load");
    let mut files = Vec::new();
    if loader.is_file() {
        // Debian: follow the Include lines of owasp-crs.load.
        let text = std::fs::read_to_string(&loader).map_err(|e| format!("cannot read {}: {e}", loader.display()))?;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(kind), Some(pattern)) = (words.next(), words.next()) else { continue };
            let optional = kind.eq_ignore_ascii_case("IncludeOptional");
            if !optional && !kind.eq_ignore_ascii_case("Include") {
                continue;
            }
            let found = expand_glob(Path::new(pattern));
            if found.is_empty() && !optional {
                return Err(format!("{} includes {pattern}, which does not exist", loader.display()));
            }
            files.extend(found);
        }
    } else {
        let setup = ["crs-setup.conf", "crs-setup.conf.example"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no crs-setup.conf or crs-setup.conf.example in {}", dir.display()))?;
        files.push(setup);
        let rules = expand_glob(&dir.join("rules").join("*.conf"));
        if rules.is_empty() {
            return Err(format!("no rules/*.conf in {}", dir.display()));
        }
        files.extend(rules);
    }
    // Response rules inspect what the upstream sends back; this engine inspects requests.
    files.retain(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("RESPONSE-")));
    if !files.iter().any(|p| is_setup(p)) {
        return Err(format!("no CRS setup file (crs-setup.conf) found for {}", dir.display()));
    }
    Ok(files
        .into_iter()
        .map(|p| {
            let s = is_setup(&p);
            (p, s)
        })
        .collect())
}

/// `dir/*.conf`-style patterns: a `*` in the file name only; sorted as Apache does.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(star) = name.find('*') else {
        return if pattern.is_file() { vec![pattern.to_path_buf()] } else { Vec::new() };
    };
    let (prefix, suffix) = (&name[..star], &name[star + 1..]);
    let parent = pattern.parent().unwrap_or(Path::new("."));
    let Ok(rd) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= prefix.len() + suffix.len()
                })
        })
        .collect();
    out.sort();
    out
}
