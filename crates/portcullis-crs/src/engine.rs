//! Evaluation of the compiled rules against one request: phase 1 (request line and headers),
//! then the body is parsed with the processor phase 1 chose, then phase 2.

use crate::compile::{
    Ctl, Disruptive, EngineMode, Item, Matcher, Op, Part, Rule, RuleSel, Selector, SetVar, Target, Template, Var,
};
use crate::prefilter::{self, Prefilter, Scratch};
use crate::request::{self, Body, BodyProcessor, Headers};
use crate::transform::Transform;
use crate::{CrsMatch, CrsVerdict, Exclusion, Transaction};
use std::borrow::Cow;
use std::collections::HashMap;

/// The per-request maps (the rules' `tx` store, the transformation and libinjection caches, a
/// scan's repeated values): rebuilt for every request and probed for every rule and value, so
/// SipHash's cost showed (8% of an evaluation); foldhash is seeded per map, as the WAF's memo.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::atomic::{AtomicU64, Ordering};

static UNIQUE: AtomicU64 = AtomicU64::new(0x5eed_0000);

pub(crate) struct Program {
    pub(crate) items: Vec<Item>,
    pub(crate) chains: Vec<Vec<Transform>>,
    pub(crate) threshold: u32,
    pub(crate) prefilter: Prefilter,
}

impl Program {
    pub(crate) fn new(mut items: Vec<Item>, chains: Vec<Vec<Transform>>, threshold: u32) -> Program {
        let prefilter = Prefilter::build(&mut items, &chains);
        Program { items, chains, threshold, prefilter }
    }
}

/// Which (slotted rule, value) pairs can match, filled by the prefilter kind by kind: the
/// request line and headers before phase 1, the body's collections before phase 2.
struct Candidates {
    /// `false` for the reference evaluation: no prefilter, no shortcuts (see `evaluate_with`).
    enabled: bool,
    /// u64 words per value: one bit per slot.
    words: usize,
    /// Kinds already scanned, and where their values' bits start.
    scanned: u32,
    base: [u32; prefilter::KINDS],
    count: [u32; prefilter::KINDS],
    bits: Vec<u64>,
    /// Per slot: whether any scanned value can match.
    any: Vec<u64>,
    scratch: Scratch,
}

impl Candidates {
    fn new(program: &Program, enabled: bool) -> Candidates {
        let words = program.prefilter.slots().div_ceil(64);
        Candidates {
            enabled,
            words,
            scanned: 0,
            base: [0; prefilter::KINDS],
            count: [0; prefilter::KINDS],
            bits: Vec::new(),
            any: vec![0; words],
            scratch: Scratch::default(),
        }
    }

    /// Scans the values of `kind` (in the engine's order, so that index `i` is the `Source`
    /// index), replacing what an earlier scan of that kind found.
    fn scan<'v>(&mut self, pf: &Prefilter, kind: usize, values: impl Iterator<Item = &'v [u8]>) {
        if !self.enabled || !pf.reads(kind) || self.words == 0 {
            return;
        }
        self.scanned |= 1 << kind;
        self.base[kind] = (self.bits.len() / self.words) as u32;
        self.count[kind] = 0;
        // The same value twice in a collection (a JSON array of alike objects) is scanned once.
        let mut seen: Map<&[u8], usize> = Map::default();
        for v in values {
            self.count[kind] += 1;
            let start = self.bits.len();
            match seen.entry(v) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let from = *e.get();
                    self.bits.extend_from_within(from..from + self.words);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(start);
                    self.bits.resize(start + self.words, 0);
                    pf.scan(kind, v, &mut self.scratch, &mut self.bits[start..]);
                    for (a, b) in self.any.iter_mut().zip(&self.bits[start..]) {
                        *a |= *b;
                    }
                }
            }
        }
    }

    /// Whether the rule in `slot` must be run on this value.
    fn may_match(&self, slot: u32, source: Source) -> bool {
        if !self.enabled || slot == prefilter::NONE {
            return true;
        }
        let Some((kind, idx)) = source.and_then(|(c, i)| prefilter::kind_of(c, i)) else { return true };
        if self.scanned & (1 << kind) == 0 || idx >= self.count[kind] {
            // Not scanned (none should be): run, never skip.
            return true;
        }
        let at = (self.base[kind] as usize + idx as usize) * self.words + slot as usize / 64;
        self.bits.get(at).is_none_or(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Whether the rule in `slot` can match any value it reads.
    fn may_match_any(&self, slot: u32, kinds: u32) -> bool {
        if !self.enabled || slot == prefilter::NONE || kinds & !self.scanned != 0 {
            return true;
        }
        self.any[slot as usize / 64] & (1 << (slot % 64)) != 0
    }
}

/// Where a value came from, so a transformed value can be reused by the next rule with the
/// same transformation chain.
type Source = Option<(u8, u32)>;

/// A transformation chain's output, `None` when it is the value itself.
type Changed = Option<Vec<u8>>;

struct Value<'a> {
    /// The collection's name, `ARGS`.
    coll: &'static str,
    /// The member's key, `q` in `ARGS:q`; empty for a single-valued variable.
    key: Cow<'a, str>,
    value: Cow<'a, [u8]>,
    source: Source,
}

impl Value<'_> {
    fn full_name(&self) -> String {
        let mut name = String::with_capacity(self.coll.len() + 1 + self.key.len());
        name.push_str(self.coll);
        if !self.key.is_empty() {
            name.push(':');
            name.push_str(&self.key);
        }
        name
    }
}

const TX_CAPTURE: [&str; 10] = ["tx.0", "tx.1", "tx.2", "tx.3", "tx.4", "tx.5", "tx.6", "tx.7", "tx.8", "tx.9"];

struct State<'p, 't> {
    program: &'p Program,
    tx: &'t Transaction<'t>,
    /// The caller's exclusions for this request.
    exclusions: &'t [Exclusion],
    hdr: Headers,
    body: Body,
    phase: u8,
    store: Map<String, Vec<u8>>,
    removed: Vec<RuleSel>,
    removed_targets: Vec<(RuleSel, Var, Option<String>)>,
    mode: EngineMode,
    processor: Option<BodyProcessor>,
    body_access: bool,
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Vec<(String, Vec<u8>)>,
    /// Transformed values by (source, chain); `None` when the chain leaves the value as it is.
    cache: std::cell::RefCell<Map<(u8, u32, u32), Changed>>,
    /// libinjection's `@detectSQLi` verdicts (with the fingerprint) by input: the same value
    /// in several places, or under several rules, is analysed once. (`@detectXSS` returns
    /// faster than a look-up on ordinary values, so it is not kept.)
    sqli: std::cell::RefCell<Map<Vec<u8>, Option<Vec<u8>>>>,
    cand: Candidates,
    matches: Vec<CrsMatch>,
    denied: bool,
    stopped: bool,
    unique_id: String,
    remote_addr: String,
}

pub(crate) fn evaluate(program: &Program, tx: &Transaction<'_>, exclusions: &[Exclusion]) -> CrsVerdict {
    evaluate_with(program, tx, exclusions, true)
}

/// [`evaluate`], fast or as the reference: with `fast` off, every rule runs on every value,
/// a `multiMatch` rule on every transformation step, every transformation is applied in
/// full and libinjection runs on every call — the plain reading of the rules the
/// differential test compares the fast path with.
pub(crate) fn evaluate_with(
    program: &Program,
    tx: &Transaction<'_>,
    exclusions: &[Exclusion],
    fast: bool,
) -> CrsVerdict {
    let content_type = tx.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| *v);
    let mut st = State {
        program,
        tx,
        exclusions,
        hdr: request::headers(tx),
        body: Body::default(),
        phase: 1,
        store: Map::default(),
        removed: Vec::new(),
        removed_targets: Vec::new(),
        mode: EngineMode::On,
        processor: content_type.and_then(BodyProcessor::for_content_type),
        body_access: true,
        matched_var: Vec::new(),
        matched_var_name: String::new(),
        matched_vars: Vec::new(),
        cache: std::cell::RefCell::new(Map::default()),
        sqli: std::cell::RefCell::new(Map::default()),
        cand: Candidates::new(program, fast),
        matches: Vec::new(),
        denied: false,
        stopped: false,
        unique_id: format!("{:016x}", UNIQUE.fetch_add(0x9e37_79b9, Ordering::Relaxed)),
        remote_addr: tx.client_ip.to_string(),
    };
    for phase in [1u8, 2] {
        if st.stopped || st.mode == EngineMode::Off {
            break;
        }
        st.phase = phase;
        if phase == 2 && st.body_access {
            st.body = request::body(tx, st.processor);
        }
        st.scan_phase();
        st.run_phase();
    }
    let score = ["tx.blocking_inbound_anomaly_score", "tx.anomaly_score", "tx.inbound_anomaly_score"]
        .iter()
        .find_map(|k| st.store.get(*k))
        .map(|v| parse_int(v).max(0) as u32)
        .unwrap_or_else(|| st.matches.iter().map(|m| u32::from(m.severity)).sum());
    let enforce = st.mode == EngineMode::On;
    CrsVerdict { score, blocked: enforce && (st.denied || score >= program.threshold), matches: st.matches }
}

impl<'p, 't> State<'p, 't> {
    /// Runs the prefilter over the values this phase adds: everything from the request line
    /// and headers in phase 1 (the body's collections are empty then), the body's in phase 2.
    fn scan_phase(&mut self) {
        fn one(v: &[u8]) -> std::iter::Once<&[u8]> {
            std::iter::once(v)
        }
        fn pairs(list: &[(String, Vec<u8>)], names: bool) -> impl Iterator<Item = &[u8]> {
            list.iter().map(move |(k, v)| if names { k.as_bytes() } else { v.as_slice() })
        }
        let pf = &self.program.prefilter;
        let (h, b, c) = (&self.hdr, &self.body, &mut self.cand);
        if self.phase == 1 {
            c.scan(pf, 0, pairs(&h.args_get, false));
            c.scan(pf, 2, pairs(&h.args_get, true));
            c.scan(pf, 4, pairs(&h.cookies, false));
            c.scan(pf, 5, pairs(&h.cookies, true));
            c.scan(pf, 6, pairs(&h.headers, false));
            c.scan(pf, 7, pairs(&h.headers, true));
            c.scan(pf, 12, one(&h.query_string));
            c.scan(pf, 13, one(&h.filename));
            c.scan(pf, 14, one(&h.basename));
            c.scan(pf, 15, one(&h.uri));
            c.scan(pf, 16, one(&h.line));
            c.scan(pf, 18, one(self.tx.method.as_bytes()));
            c.scan(pf, 19, one(self.tx.protocol.as_bytes()));
            c.scan(pf, 20, one(self.remote_addr.as_bytes()));
        }
        c.scan(pf, 1, pairs(&b.args_post, false));
        c.scan(pf, 3, pairs(&b.args_post, true));
        c.scan(pf, 8, pairs(&b.files, false));
        c.scan(pf, 9, pairs(&b.files_names, false));
        c.scan(pf, 10, pairs(&b.part_headers, false));
        c.scan(pf, 11, pairs(&b.xml, false));
        c.scan(pf, 17, one(&b.raw));
    }

    fn run_phase(&mut self) {
        let items = &self.program.items;
        let mut i = 0;
        let mut skip = 0u32;
        while i < items.len() && !self.stopped && self.mode != EngineMode::Off {
            let Item::Rule(rule) = &items[i] else {
                i += 1;
                continue;
            };
            if rule.phase != self.phase
                || self.removed.iter().any(|s| s.selects(rule))
                || self.exclusions.iter().any(|x| x.removes_rule(rule.id))
            {
                i += 1;
                continue;
            }
            if skip > 0 {
                skip -= 1;
                i += 1;
                continue;
            }
            if self.eval_chain(rule) {
                self.act(rule);
                if let Some(marker) = &rule.skip_after {
                    match items[i + 1..].iter().position(|it| matches!(it, Item::Marker(m) if m == marker)) {
                        Some(p) => {
                            i = i + 1 + p + 1;
                            continue;
                        }
                        None => break,
                    }
                }
                skip = rule.skip;
            }
            i += 1;
        }
    }

    fn eval_chain(&mut self, head: &Rule) -> bool {
        let mut link = Some(head);
        while let Some(r) = link {
            if !self.eval_rule(r, head) {
                return false;
            }
            link = r.chained.as_deref();
        }
        true
    }

    fn act(&mut self, head: &Rule) {
        let mut link = Some(head);
        while let Some(r) = link {
            for c in &r.ctls {
                self.ctl(c);
            }
            for s in &r.setvars {
                self.setvar(s, head);
            }
            link = r.chained.as_deref();
        }
        if let (Some(id), Some(sev)) = (head.id, head.severity)
            && sev > 0
            && !(949_000..950_000).contains(&id)
        {
            self.matches.push(CrsMatch {
                rule_id: u32::try_from(id).unwrap_or(u32::MAX),
                severity: sev,
                message: head.msg.clone().unwrap_or_default(),
            });
        }
        match head.disruptive {
            Some(Disruptive::Deny) => {
                self.denied = true;
                self.stopped = true;
            }
            Some(Disruptive::Allow) => self.stopped = true,
            _ => {}
        }
    }

    fn ctl(&mut self, c: &Ctl) {
        match c {
            Ctl::RemoveRules(sel) => self.removed.push(sel.clone()),
            Ctl::RemoveTarget(sel, var, key) => self.removed_targets.push((sel.clone(), *var, key.clone())),
            Ctl::RuleEngine(m) => self.mode = *m,
            Ctl::BodyProcessor(p) => {
                if self.phase == 1 {
                    self.processor = Some(*p);
                }
            }
            Ctl::ForceBodyVariable | Ctl::Audit => {}
            Ctl::RequestBodyAccess(on) => self.body_access = *on,
        }
    }

    fn setvar(&mut self, s: &SetVar, rule: &Rule) {
        match s {
            SetVar::Delete { key } => {
                let k = self.store_key(key, rule);
                self.store.remove(k.as_ref());
            }
            SetVar::Set { key, value } => {
                let k = self.store_key(key, rule).into_owned();
                let v = self.expand(value, rule);
                self.store.insert(k, v.into_bytes());
            }
            SetVar::Add { key, value } | SetVar::Sub { key, value } => {
                let k = self.store_key(key, rule).into_owned();
                let n = match value.parts.as_slice() {
                    // As `expand` would read it (lossy UTF-8), without the copy.
                    [Part::Macro(m)] => parse_int(String::from_utf8_lossy(&self.macro_value(m, rule)).as_bytes()),
                    _ => parse_int(self.expand(value, rule).as_bytes()),
                };
                let cur = self.store.get(&k).map(|v| parse_int(v)).unwrap_or(0);
                let new = if matches!(s, SetVar::Add { .. }) { cur.saturating_add(n) } else { cur.saturating_sub(n) };
                self.store.insert(k, int_bytes(new));
            }
        }
    }

    /// A setvar key: lower case (the compiler lowered its literal parts; a macro's value is
    /// lowered here), borrowed when it holds no macro.
    fn store_key<'a>(&self, key: &'a Template, rule: &Rule) -> Cow<'a, str> {
        match key.as_literal() {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(self.expand(key, rule).to_ascii_lowercase()),
        }
    }

    fn expand(&self, t: &Template, rule: &Rule) -> String {
        if let Some(lit) = t.as_literal() {
            return lit.to_string();
        }
        let mut out = String::with_capacity(32);
        for p in &t.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Macro(m) => out.push_str(&String::from_utf8_lossy(&self.macro_value(m, rule))),
            }
        }
        out
    }

    fn macro_value<'a>(&'a self, m: &str, rule: &'a Rule) -> Cow<'a, [u8]> {
        match m {
            "matched_var" => return Cow::Borrowed(&self.matched_var),
            "matched_var_name" => return Cow::Borrowed(self.matched_var_name.as_bytes()),
            "rule.id" => return Cow::Owned(rule.id.map(|i| int_bytes(i as i64)).unwrap_or_default()),
            "rule.msg" => return Cow::Borrowed(rule.msg.as_deref().unwrap_or("").as_bytes()),
            "unique_id" => return Cow::Borrowed(self.unique_id.as_bytes()),
            "remote_addr" => return Cow::Borrowed(self.remote_addr.as_bytes()),
            "request_method" => return Cow::Borrowed(self.tx.method.as_bytes()),
            "reqbody_processor" => return Cow::Borrowed(self.processor.map(|p| p.name()).unwrap_or("").as_bytes()),
            _ => {}
        }
        if let Some(v) = self.store.get(m) {
            return Cow::Borrowed(v);
        }
        if let Some((coll, key)) = m.split_once('.') {
            let var = match coll {
                "request_headers" => Some(Var::RequestHeaders),
                "args" => Some(Var::Args),
                "request_cookies" => Some(Var::RequestCookies),
                _ => None,
            };
            if let Some(var) = var {
                let t = Target { var, sel: Selector::Key(key.to_string()), count: false, store_key: None };
                let mut first = None;
                self.each_value(&t, &mut |v| {
                    if first.is_none() {
                        first = Some(v.value.into_owned());
                    }
                });
                if let Some(v) = first {
                    return Cow::Owned(v);
                }
            }
        }
        Cow::Borrowed(b"")
    }

    fn excluded(&self, rule: &Rule, head: &Rule, var: Var, key: &str) -> bool {
        if rule.excludes.is_empty() && self.removed_targets.is_empty() && self.exclusions.is_empty() {
            return false;
        }
        rule.excludes.iter().any(|e| e.var == var && e.sel.selects(key))
            || self.removed_targets.iter().any(|(sel, v, k)| {
                *v == var && sel.selects(head) && k.as_deref().is_none_or(|k| selector_matches(k, key))
            })
            || self.exclusions.iter().any(|x| x.removes_target(head.id, var.name(), key))
    }

    fn eval_rule(&mut self, rule: &Rule, head: &Rule) -> bool {
        if rule.targets.is_empty() {
            return !rule.negated;
        }
        if !self.cand.may_match_any(rule.slot, self.program.prefilter.slot_kinds_or_all(rule.slot)) {
            return false;
        }
        // Matching borrows the request; what a match records is applied afterwards.
        let mut hits: Vec<(String, Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
        {
            let this = &*self;
            for t in &rule.targets {
                if t.count {
                    let mut n = 0usize;
                    this.each_value(t, &mut |v| n += usize::from(!this.excluded(rule, head, t.var, &v.key)));
                    let v = int_bytes(n as i64);
                    if let Some(caps) = this.test(rule, &v) {
                        hits.push((format!("&{}", t.var.name()), v, caps));
                    }
                    continue;
                }
                this.each_value(t, &mut |v| {
                    if !this.cand.may_match(rule.slot, v.source) || this.excluded(rule, head, t.var, &v.key) {
                        return;
                    }
                    if rule.multi_match {
                        // The operator runs on the value and again after each transformation
                        // that changes it (as ModSecurity does; rerunning it on the same bytes
                        // could not give another answer).
                        let mut cur: Cow<'_, [u8]> = Cow::Borrowed(&v.value);
                        let mut hit = this.test(rule, &cur);
                        for f in &rule.transforms {
                            if hit.is_some() {
                                break;
                            }
                            match this.changed(*f, &cur) {
                                Some(next) => {
                                    cur = Cow::Owned(next);
                                    hit = this.test(rule, &cur);
                                }
                                None if !this.cand.enabled => hit = this.test(rule, &cur),
                                None => {}
                            }
                        }
                        if let Some(caps) = hit {
                            hits.push((v.full_name(), cur.into_owned(), caps));
                        }
                    } else {
                        let tv = this.transformed(rule, &v.value, v.source);
                        if let Some(caps) = this.test(rule, &tv) {
                            hits.push((v.full_name(), tv.into_owned(), caps));
                        }
                    }
                });
            }
        }
        if hits.is_empty() {
            return false;
        }
        for (name, value, caps) in &hits {
            if rule.capture && !caps.is_empty() {
                for key in TX_CAPTURE {
                    self.store.remove(key);
                }
                for (i, c) in caps.iter().enumerate().take(10) {
                    self.store.insert(TX_CAPTURE[i].to_string(), c.clone());
                }
            }
            self.matched_var.clone_from(value);
            self.matched_var_name.clone_from(name);
        }
        self.matched_vars = hits.into_iter().map(|(n, v, _)| (n, v)).collect();
        true
    }

    /// The operator's verdict after negation: `Some(captures)` when the rule matches.
    fn test(&self, rule: &Rule, v: &[u8]) -> Option<Vec<Vec<u8>>> {
        match (self.operator(rule, v), rule.negated) {
            (Some(caps), false) => Some(caps),
            (None, true) => Some(Vec::new()),
            _ => None,
        }
    }

    fn transformed<'v>(&self, rule: &Rule, raw: &'v [u8], source: Source) -> Cow<'v, [u8]> {
        if rule.transforms.is_empty() {
            return Cow::Borrowed(raw);
        }
        let chain = &self.program.chains[rule.chain_key as usize];
        if self.cand.enabled {
            // Most values hold nothing any function of the chain acts on: no cache needed.
            let mask = crate::transform::byte_mask(raw);
            if chain.iter().all(|f| f.unchanged_for(mask)) {
                return Cow::Borrowed(raw);
            }
        }
        if let Some((c, i)) = source
            && let Some(v) = self.cache.borrow().get(&(c, i, rule.chain_key))
        {
            return match v {
                Some(v) => Cow::Owned(v.clone()),
                None => Cow::Borrowed(raw),
            };
        }
        let mut cur = Cow::Borrowed(raw);
        for f in chain {
            if let Some(next) = self.changed(*f, &cur) {
                cur = Cow::Owned(next);
            }
        }
        if let Some((c, i)) = source {
            let changed = match &cur {
                Cow::Borrowed(_) => None,
                Cow::Owned(v) => Some(v.clone()),
            };
            self.cache.borrow_mut().insert((c, i, rule.chain_key), changed);
        }
        cur
    }

    /// `f`'s output when it differs from `v`. The reference evaluation (prefilter off) applies
    /// every function in full, where the fast one first scans for what the function changes.
    fn changed(&self, f: Transform, v: &[u8]) -> Option<Vec<u8>> {
        if self.cand.enabled {
            f.apply_if_changed(v)
        } else {
            let out = f.apply(v);
            (out != v).then_some(out)
        }
    }

    /// `Some(captures)` when the operator matches.
    fn operator(&self, rule: &Rule, v: &[u8]) -> Option<Vec<Vec<u8>>> {
        let yes = || Some(Vec::new());
        let arg = |t: &Template| self.expand(t, rule);
        match &rule.op {
            Op::Rx(m) => rx(m, v, rule.capture),
            Op::RxMacro(t) => {
                let pattern = arg(t);
                let m = crate::compile::compile_regex(&pattern).ok()?;
                rx(&m, v, rule.capture)
            }
            Op::Pm(ac, _) => ac.find(v).map(|m| vec![v[m.start()..m.end()].to_vec()]),
            Op::Streq(t) => (v == arg(t).as_bytes()).then(yes).flatten(),
            Op::Contains(t) => contains(v, arg(t).as_bytes()).then(yes).flatten(),
            Op::ContainsWord(t) => {
                let w = arg(t);
                let s = String::from_utf8_lossy(v);
                s.split(|c: char| !c.is_alphanumeric() && c != '_').any(|x| x == w).then(yes).flatten()
            }
            Op::BeginsWith(t) => v.starts_with(arg(t).as_bytes()).then(yes).flatten(),
            Op::EndsWith(t) => v.ends_with(arg(t).as_bytes()).then(yes).flatten(),
            Op::Within(t) => contains(arg(t).as_bytes(), v).then(yes).flatten(),
            Op::Eq(t) => (parse_int(v) == parse_int(arg(t).as_bytes())).then(yes).flatten(),
            Op::Ge(t) => (parse_int(v) >= parse_int(arg(t).as_bytes())).then(yes).flatten(),
            Op::Gt(t) => (parse_int(v) > parse_int(arg(t).as_bytes())).then(yes).flatten(),
            Op::Lt(t) => (parse_int(v) < parse_int(arg(t).as_bytes())).then(yes).flatten(),
            Op::Le(t) => (parse_int(v) <= parse_int(arg(t).as_bytes())).then(yes).flatten(),
            Op::DetectSqli => {
                if !self.cand.enabled {
                    let r = libinjectionrs::detect_sqli(v);
                    return r
                        .is_injection()
                        .then(|| vec![r.fingerprint.map(|f| f.as_bytes().to_vec()).unwrap_or_default()]);
                }
                if let Some(known) = self.sqli.borrow().get(v) {
                    return known.clone().map(|f| vec![f]);
                }
                let found = detect_sqli(v);
                self.sqli.borrow_mut().insert(v.to_vec(), found.clone());
                found.map(|f| vec![f])
            }
            Op::DetectXss => libinjectionrs::detect_xss(v).is_injection().then(yes).flatten(),
            Op::ValidateByteRange(ranges) => {
                v.iter().any(|b| !ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&b))).then(yes).flatten()
            }
            Op::ValidateUrlEncoding => invalid_url_encoding(v).then(yes).flatten(),
            Op::ValidateUtf8Encoding => std::str::from_utf8(v).is_err().then(yes).flatten(),
            Op::IpMatch(nets) => {
                let ip: std::net::IpAddr = std::str::from_utf8(v).ok()?.trim().parse().ok()?;
                nets.iter().any(|n| n.contains(&ip)).then(yes).flatten()
            }
            Op::GeoLookup | Op::Rbl | Op::NoMatch => None,
            Op::Unconditional => yes(),
        }
    }

    /// Calls `out` with each value `t` names, in ModSecurity's order, borrowing the request.
    fn each_value<'s>(&'s self, t: &Target, out: &mut dyn FnMut(Value<'s>)) {
        let pairs = |out: &mut dyn FnMut(Value<'s>),
                     prefix: &'static str,
                     list: &'s [(String, Vec<u8>)],
                     coll: u8,
                     names: bool| {
            for (i, (k, v)) in list.iter().enumerate() {
                if t.sel.selects(k) {
                    out(Value {
                        coll: prefix,
                        key: Cow::Borrowed(k.as_str()),
                        value: if names { Cow::Borrowed(k.as_bytes()) } else { Cow::Borrowed(v.as_slice()) },
                        source: Some((coll, i as u32)),
                    });
                }
            }
        };
        let scalar = |out: &mut dyn FnMut(Value<'s>), name: &'static str, v: Cow<'s, [u8]>, slot: u32| {
            out(Value { coll: name, key: Cow::Borrowed(""), value: v, source: Some((200, slot)) });
        };
        let h = &self.hdr;
        let b = &self.body;
        match t.var {
            Var::Args => {
                pairs(out, "ARGS", &h.args_get, 0, false);
                pairs(out, "ARGS", &b.args_post, 1, false);
            }
            Var::ArgsNames => {
                pairs(out, "ARGS_NAMES", &h.args_get, 2, true);
                pairs(out, "ARGS_NAMES", &b.args_post, 3, true);
            }
            Var::ArgsGet => pairs(out, "ARGS_GET", &h.args_get, 0, false),
            Var::ArgsGetNames => pairs(out, "ARGS_GET_NAMES", &h.args_get, 2, true),
            Var::ArgsPost => pairs(out, "ARGS_POST", &b.args_post, 1, false),
            Var::ArgsPostNames => pairs(out, "ARGS_POST_NAMES", &b.args_post, 3, true),
            Var::RequestCookies => pairs(out, "REQUEST_COOKIES", &h.cookies, 4, false),
            Var::RequestCookiesNames => pairs(out, "REQUEST_COOKIES_NAMES", &h.cookies, 5, true),
            Var::RequestHeaders => pairs(out, "REQUEST_HEADERS", &h.headers, 6, false),
            Var::RequestHeadersNames => pairs(out, "REQUEST_HEADERS_NAMES", &h.headers, 7, true),
            Var::Files => pairs(out, "FILES", &b.files, 8, false),
            Var::FilesNames => pairs(out, "FILES_NAMES", &b.files_names, 9, false),
            Var::MultipartPartHeaders => pairs(out, "MULTIPART_PART_HEADERS", &b.part_headers, 10, false),
            Var::Xml => {
                for (i, (_, v)) in b.xml.iter().enumerate() {
                    out(Value {
                        coll: "XML",
                        key: Cow::Borrowed("/*"),
                        value: Cow::Borrowed(v.as_slice()),
                        source: Some((11, i as u32)),
                    });
                }
            }
            Var::ArgsCombinedSize => {
                let n: usize = h.args_get.iter().chain(b.args_post.iter()).map(|(k, v)| k.len() + v.len()).sum();
                out(Value {
                    coll: "ARGS_COMBINED_SIZE",
                    key: Cow::Borrowed(""),
                    value: Cow::Owned(n.to_string().into_bytes()),
                    source: None,
                });
            }
            Var::FilesCombinedSize => out(Value {
                coll: "FILES_COMBINED_SIZE",
                key: Cow::Borrowed(""),
                value: Cow::Owned(b.files_size.to_string().into_bytes()),
                source: None,
            }),
            Var::QueryString => scalar(out, "QUERY_STRING", Cow::Borrowed(&h.query_string), 1),
            Var::RequestFilename => scalar(out, "REQUEST_FILENAME", Cow::Borrowed(&h.filename), 2),
            Var::RequestBasename => scalar(out, "REQUEST_BASENAME", Cow::Borrowed(&h.basename), 3),
            Var::RequestUri | Var::RequestUriRaw => scalar(out, "REQUEST_URI", Cow::Borrowed(&h.uri), 4),
            Var::RequestLine => scalar(out, "REQUEST_LINE", Cow::Borrowed(&h.line), 5),
            Var::RequestBody => {
                if self.phase >= 2 && !b.raw.is_empty() {
                    scalar(out, "REQUEST_BODY", Cow::Borrowed(&b.raw), 6);
                }
            }
            Var::RequestMethod => scalar(out, "REQUEST_METHOD", Cow::Borrowed(self.tx.method.as_bytes()), 7),
            Var::RequestProtocol => scalar(out, "REQUEST_PROTOCOL", Cow::Borrowed(self.tx.protocol.as_bytes()), 8),
            Var::RemoteAddr => scalar(out, "REMOTE_ADDR", Cow::Borrowed(self.remote_addr.as_bytes()), 9),
            Var::UniqueId => out(Value {
                coll: "UNIQUE_ID",
                key: Cow::Borrowed(""),
                value: Cow::Borrowed(self.unique_id.as_bytes()),
                source: None,
            }),
            Var::RequestBodyLength => out(Value {
                coll: "REQUEST_BODY_LENGTH",
                key: Cow::Borrowed(""),
                value: Cow::Owned(b.raw.len().to_string().into_bytes()),
                source: None,
            }),
            Var::ReqbodyProcessor => {
                if let Some(p) = self.processor {
                    out(Value {
                        coll: "REQBODY_PROCESSOR",
                        key: Cow::Borrowed(""),
                        value: Cow::Borrowed(p.name().as_bytes()),
                        source: None,
                    });
                }
            }
            Var::ReqbodyError => out(Value {
                coll: "REQBODY_ERROR",
                key: Cow::Borrowed(""),
                value: Cow::Borrowed(if b.error { b"1" } else { b"0" }),
                source: None,
            }),
            Var::Duration => {
                out(Value { coll: "DURATION", key: Cow::Borrowed(""), value: Cow::Borrowed(b"0"), source: None })
            }
            Var::MatchedVar => out(Value {
                coll: "MATCHED_VAR",
                key: Cow::Borrowed(""),
                value: Cow::Borrowed(&self.matched_var),
                source: None,
            }),
            Var::MatchedVarName => out(Value {
                coll: "MATCHED_VAR_NAME",
                key: Cow::Borrowed(""),
                value: Cow::Borrowed(self.matched_var_name.as_bytes()),
                source: None,
            }),
            Var::MatchedVars => {
                for (k, v) in &self.matched_vars {
                    if t.sel.selects(k) {
                        out(Value {
                            coll: "MATCHED_VARS",
                            key: Cow::Borrowed(k.as_str()),
                            value: Cow::Borrowed(v),
                            source: None,
                        });
                    }
                }
            }
            Var::MatchedVarsNames => {
                for (k, _) in &self.matched_vars {
                    if t.sel.selects(k) {
                        out(Value {
                            coll: "MATCHED_VARS_NAMES",
                            key: Cow::Borrowed(k.as_str()),
                            value: Cow::Borrowed(k.as_bytes()),
                            source: None,
                        });
                    }
                }
            }
            Var::Tx | Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource | Var::Geo => {
                let prefix = t.var.store_prefix().unwrap_or("tx");
                match &t.sel {
                    Selector::Key(k) => {
                        let full = match &t.store_key {
                            Some(key) => Cow::Borrowed(key.as_str()),
                            None => Cow::Owned(format!("{prefix}.{}", k.to_ascii_lowercase())),
                        };
                        if let Some(v) = self.store.get(full.as_ref()) {
                            out(Value {
                                coll: t.var.name(),
                                key: Cow::Owned(k.clone()),
                                value: Cow::Borrowed(v),
                                source: None,
                            });
                        }
                    }
                    sel => {
                        let mut keys: Vec<&String> = self
                            .store
                            .keys()
                            .filter(|k| k.strip_prefix(prefix).is_some_and(|r| r.starts_with('.')))
                            .collect();
                        keys.sort();
                        for k in keys {
                            let short = &k[prefix.len() + 1..];
                            if sel.selects(short) {
                                out(Value {
                                    coll: t.var.name(),
                                    key: Cow::Borrowed(short),
                                    value: Cow::Borrowed(&self.store[k]),
                                    source: None,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// libinjection's SQLi verdict and, on a detection, its fingerprint: what
/// `libinjectionrs::detect_sqli` returns, without that function's second tokenizing pass for
/// the fingerprint of input that is not an injection (half its cost on ordinary values).
fn detect_sqli(v: &[u8]) -> Option<Vec<u8>> {
    let mut state = libinjectionrs::SqliState::new(v, libinjectionrs::SqliFlags::FLAG_NONE);
    state.detect().then(|| state.get_fingerprint().as_bytes().to_vec())
}

fn selector_matches(sel: &str, key: &str) -> bool {
    if sel.len() >= 2 && sel.starts_with('/') && sel.ends_with('/') {
        regex::RegexBuilder::new(&sel[1..sel.len() - 1]).case_insensitive(true).build().is_ok_and(|r| r.is_match(key))
    } else {
        sel.eq_ignore_ascii_case(key)
    }
}

fn rx(m: &Matcher, v: &[u8], capture: bool) -> Option<Vec<Vec<u8>>> {
    match m {
        Matcher::Std(r) => {
            if !capture {
                return r.is_match(v).then(Vec::new);
            }
            let caps = r.captures(v)?;
            Some(caps.iter().map(|c| c.map(|m| m.as_bytes().to_vec()).unwrap_or_default()).collect())
        }
        Matcher::Fancy(r) => {
            let s = String::from_utf8_lossy(v);
            if !capture {
                return r.is_match(s.as_ref()).ok()?.then(Vec::new);
            }
            let caps = r.captures(s.as_ref()).ok()??;
            Some(caps.iter().map(|c| c.map(|m| m.as_str().as_bytes().to_vec()).unwrap_or_default()).collect())
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn invalid_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if i + 2 >= v.len() || !v[i + 1].is_ascii_hexdigit() || !v[i + 2].is_ascii_hexdigit() {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// An integer's decimal digits, as the store keeps numbers.
fn int_bytes(n: i64) -> Vec<u8> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    let mut out = Vec::with_capacity(21 - i);
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
    out
}

/// ModSecurity's `atoi`: an optional sign and the leading digits, 0 otherwise.
pub(crate) fn parse_int(v: &[u8]) -> i64 {
    let s = std::str::from_utf8(v).unwrap_or("").trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().unwrap_or(0);
    if neg { -n } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqli_detection_matches_libinjectionrs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-waf/tests/corpus");
        let mut inputs: Vec<Vec<u8>> = ["", "1' OR '1'='1", "1 union select 1,2--", "O'Brien", "a\"b", "-- x", "#a\n1"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        for f in ["attacks-sqli.jsonl", "attacks-evasions.jsonl", "benign.jsonl"] {
            let text = std::fs::read_to_string(dir.join(f)).expect("corpus");
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("json");
                for k in ["uri", "body"] {
                    if let Some(s) = v[k].as_str() {
                        inputs.push(crate::transform::url_decode(s.as_bytes(), true));
                    }
                }
            }
        }
        let mut detected = 0;
        for i in &inputs {
            let r = libinjectionrs::detect_sqli(i);
            let want = r.is_injection().then(|| r.fingerprint.map(|f| f.as_bytes().to_vec()).unwrap_or_default());
            detected += usize::from(want.is_some());
            assert_eq!(detect_sqli(i), want, "{:?}", String::from_utf8_lossy(i));
        }
        assert!(detected > 100, "only {detected} detections");
    }

    #[test]
    fn integers_print_as_decimal() {
        for n in [0i64, 7, -7, 10, 12345, -98765, i64::MAX, i64::MIN] {
            assert_eq!(int_bytes(n), n.to_string().into_bytes());
            if n != i64::MIN {
                assert_eq!(parse_int(&int_bytes(n)), n);
            }
        }
    }
}
