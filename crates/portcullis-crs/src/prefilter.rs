//! The literal prefilter: which rules can possibly match a request value, found with one
//! Aho-Corasick pass instead of running every rule's operator on every value.
//!
//! At load, each rule whose operator cannot match a value unless the value holds one of a set
//! of literals gets a *slot*: `@pm`/`@pmFromFile` phrases, the argument of `@contains`,
//! `@beginsWith`, `@endsWith` and `@streq`, and for `@rx` the literals its syntax tree
//! requires (every match of `(?i)\bunion\b.{1,100}?\bselect\b` contains `union`; every match
//! of `<(?:script|iframe)` contains `<script` or `<iframe`). All literals are folded to lower
//! case and matched ASCII-case-insensitively, which can only find more, never fewer. Rules
//! whose operator has no such set (`@detectSQLi`, numeric comparisons, a regex that can match
//! without any literal or needs look-around), negated operators, `&COUNT` and targets outside
//! the request's own collections (TX, MATCHED_VAR) keep [`NONE`] and are evaluated as before.
//! A `multiMatch` rule, which tests the value after each transformation, is a candidate when
//! any of those steps holds a literal.
//!
//! Per request, each value of the request's collections is transformed once per distinct
//! transformation chain its slotted rules use (chains share prefixes in a trie, and a
//! function that would not change the value costs a scan, not a copy), each distinct result
//! is searched once, and the hits mark the (rule, value) pairs that can match. The engine
//! then runs a slotted rule's operator only on the values it marked: a rule that marked none
//! is not evaluated at all. Skipping is exact in effect: a skipped pair is one on which the
//! operator cannot match, so it would have recorded nothing (no capture, no MATCHED_VAR, no
//! setvar) — the same holds for a chain's first rule, whose chain cannot match then. The
//! `prefilter_changes_no_verdict` test compares both ways over the attack and benign corpora.

use crate::compile::{Item, Matcher, Op, Rule, Var};
use crate::transform::Transform;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind};
use std::collections::{BTreeSet, HashMap};

/// The slot of a rule the prefilter does not cover.
pub(crate) const NONE: u32 = u32::MAX;

/// Value kinds: the pair collections by the `Source` number the engine gives them (0 ARGS_GET
/// values, 1 ARGS_POST values, 2 and 3 their names, 4 and 5 cookies, 6 and 7 headers, 8 FILES,
/// 9 FILES_NAMES, 10 MULTIPART_PART_HEADERS, 11 XML), then the single values by slot (12
/// QUERY_STRING ... 20 REMOTE_ADDR).
pub(crate) const KINDS: usize = 21;

/// Cross products of literals grow fast: beyond these sizes a set is cut where it is.
const MAX_SET: usize = 256;
const MAX_LIT: usize = 32;
const MAX_ALTERNATION: usize = 4096;

/// The kind and index of a value the engine produced from `Source` `(collection, index)`.
pub(crate) fn kind_of(coll: u8, idx: u32) -> Option<(usize, u32)> {
    match coll {
        0..=11 => Some((usize::from(coll), idx)),
        200 if (1..=9).contains(&idx) => Some((11 + idx as usize, 0)),
        _ => None,
    }
}

/// The kinds a variable reads; `None` for variables the prefilter does not see (TX,
/// MATCHED_VAR, sizes, counts).
fn var_kinds(v: Var) -> Option<u32> {
    Some(match v {
        Var::Args => 0b11,
        Var::ArgsGet => 1 << 0,
        Var::ArgsPost => 1 << 1,
        Var::ArgsNames => 0b1100,
        Var::ArgsGetNames => 1 << 2,
        Var::ArgsPostNames => 1 << 3,
        Var::RequestCookies => 1 << 4,
        Var::RequestCookiesNames => 1 << 5,
        Var::RequestHeaders => 1 << 6,
        Var::RequestHeadersNames => 1 << 7,
        Var::Files => 1 << 8,
        Var::FilesNames => 1 << 9,
        Var::MultipartPartHeaders => 1 << 10,
        Var::Xml => 1 << 11,
        Var::QueryString => 1 << 12,
        Var::RequestFilename => 1 << 13,
        Var::RequestBasename => 1 << 14,
        Var::RequestUri | Var::RequestUriRaw => 1 << 15,
        Var::RequestLine => 1 << 16,
        Var::RequestBody => 1 << 17,
        Var::RequestMethod => 1 << 18,
        Var::RequestProtocol => 1 << 19,
        Var::RemoteAddr => 1 << 20,
        _ => return None,
    })
}

pub(crate) struct Prefilter {
    /// All literals of all slots, lower case, matched ASCII-case-insensitively.
    ac: Option<AhoCorasick>,
    /// The groups each literal belongs to. A slot has one to [`MAX_GROUPS`] groups of
    /// literals, each of which must occur: `(?i)<[^>]*on\w+=` needs `<`, `on` and `=`.
    pattern_groups: Vec<Vec<u32>>,
    /// The same, per kind, for the groups whose rule reads that kind: `by_kind[k].0[p]..
    /// by_kind[k].0[p + 1]` indexes `by_kind[k].1`.
    by_kind: Vec<(Vec<u32>, Vec<u32>)>,
    group_slot: Vec<u32>,
    slot_groups: Vec<Box<[u32]>>,
    /// Per slot: the trie nodes whose output its operator sees (the chain's last; with
    /// `multiMatch`, every step from the value as received on), and the kinds it reads.
    slot_nodes: Vec<Box<[u32]>>,
    slot_kinds: Vec<u32>,
    /// Transformation trie: node `i + 1` applies `nodes[i].1` to node `nodes[i].0`'s output;
    /// node 0 is the value as received.
    nodes: Vec<(u32, Transform)>,
    /// Per kind, the trie nodes its slots need, parents first.
    kind_nodes: Vec<Vec<u32>>,
    kind_used: u32,
}

impl Prefilter {
    /// Gives a slot to every rule at the top of `items` that can have one.
    pub(crate) fn build(items: &mut [Item], chains: &[Vec<Transform>]) -> Prefilter {
        let mut pf = Prefilter {
            ac: None,
            pattern_groups: Vec::new(),
            by_kind: Vec::new(),
            group_slot: Vec::new(),
            slot_groups: Vec::new(),
            slot_nodes: Vec::new(),
            slot_kinds: Vec::new(),
            nodes: Vec::new(),
            kind_nodes: vec![Vec::new(); KINDS],
            kind_used: 0,
        };
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut pattern_ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut children: HashMap<(u32, Transform), u32> = HashMap::new();
        let mut kind_nodes: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); KINDS];
        for item in items.iter_mut() {
            let Item::Rule(rule) = item else { continue };
            let Some((groups, kinds)) = plan(rule) else { continue };
            let slot = pf.slot_nodes.len() as u32;
            rule.slot = slot;
            let chain: &[Transform] = if rule.transforms.is_empty() { &[] } else { &chains[rule.chain_key as usize] };
            let mut node = 0u32;
            let mut path = Vec::new();
            for t in chain {
                node = *children.entry((node, *t)).or_insert_with(|| {
                    pf.nodes.push((node, *t));
                    pf.nodes.len() as u32
                });
                path.push(node);
            }
            for (k, set) in kind_nodes.iter_mut().enumerate() {
                if kinds & (1 << k) != 0 {
                    set.extend(path.iter().copied());
                }
            }
            pf.kind_used |= kinds;
            pf.slot_nodes.push(if rule.multi_match {
                std::iter::once(0).chain(path.iter().copied()).collect()
            } else {
                Box::new([node])
            });
            pf.slot_kinds.push(kinds);
            let mut ids = Vec::new();
            for lits in groups {
                let group = pf.group_slot.len() as u32;
                pf.group_slot.push(slot);
                ids.push(group);
                for lit in lits {
                    let id = *pattern_ids.entry(lit.clone()).or_insert_with(|| {
                        patterns.push(lit);
                        pf.pattern_groups.push(Vec::new());
                        patterns.len() - 1
                    });
                    pf.pattern_groups[id].push(group);
                }
            }
            pf.slot_groups.push(ids.into_boxed_slice());
        }
        pf.kind_nodes = kind_nodes.into_iter().map(|s| s.into_iter().collect()).collect();
        pf.by_kind = (0..KINDS)
            .map(|k| {
                if pf.kind_used & (1 << k) == 0 {
                    return (Vec::new(), Vec::new());
                }
                let mut offsets = Vec::with_capacity(pf.pattern_groups.len() + 1);
                let mut groups = Vec::new();
                offsets.push(0);
                for gs in &pf.pattern_groups {
                    groups.extend(
                        gs.iter()
                            .copied()
                            .filter(|g| pf.slot_kinds[pf.group_slot[*g as usize] as usize] & (1 << k) != 0),
                    );
                    offsets.push(groups.len() as u32);
                }
                (offsets, groups)
            })
            .collect();
        if !patterns.is_empty() {
            match AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&patterns)
            {
                Ok(ac) => pf.ac = Some(ac),
                Err(_) => {
                    // Too large an automaton: no rule is filtered, all are evaluated.
                    for item in items.iter_mut() {
                        if let Item::Rule(rule) = item {
                            rule.slot = NONE;
                        }
                    }
                    pf.slot_nodes.clear();
                    pf.slot_groups.clear();
                    pf.slot_kinds.clear();
                    pf.kind_used = 0;
                }
            }
        }
        pf
    }

    /// How many rules have a slot.
    pub(crate) fn slots(&self) -> usize {
        self.slot_nodes.len()
    }

    /// Whether a slotted rule reads values of `kind`.
    pub(crate) fn reads(&self, kind: usize) -> bool {
        self.kind_used & (1 << kind) != 0
    }

    /// The kinds a slot reads; all of them for [`NONE`].
    pub(crate) fn slot_kinds_or_all(&self, slot: u32) -> u32 {
        self.slot_kinds.get(slot as usize).copied().unwrap_or(u32::MAX)
    }

    /// Marks in `out` (one bit per slot) the slots that can match `raw`, a value of `kind`.
    pub(crate) fn scan(&self, kind: usize, raw: &[u8], s: &mut Scratch, out: &mut [u64]) {
        let Some(ac) = &self.ac else { return };
        if !self.reads(kind) {
            return;
        }
        let n = self.nodes.len() + 1;
        s.bufs.clear();
        s.node_buf.clear();
        s.node_buf.resize(n, 0);
        s.node_class.clear();
        s.node_class.resize(n, 0);
        s.class_buf.clear();
        s.class_buf.push(0);
        s.masks.clear();
        s.masks.push(crate::transform::byte_mask(raw));
        for &node in &self.kind_nodes[kind] {
            let (parent, t) = self.nodes[node as usize - 1];
            let pb = s.node_buf[parent as usize];
            let input: &[u8] = if pb == 0 { raw } else { &s.bufs[pb - 1] };
            let out = if t.unchanged_for(s.masks[pb]) { None } else { t.apply_if_changed(input) };
            match out {
                None => {
                    s.node_buf[node as usize] = pb;
                    s.node_class[node as usize] = s.node_class[parent as usize];
                }
                Some(v) => {
                    let class = s.class_buf.iter().position(|&b| {
                        let have: &[u8] = if b == 0 { raw } else { &s.bufs[b - 1] };
                        have.eq_ignore_ascii_case(&v)
                    });
                    s.masks.push(crate::transform::byte_mask(&v));
                    s.bufs.push(v);
                    let b = s.bufs.len();
                    s.node_buf[node as usize] = b;
                    s.node_class[node as usize] = class.unwrap_or_else(|| {
                        s.class_buf.push(b);
                        s.class_buf.len() - 1
                    });
                }
            }
        }
        if s.group_hit.len() < self.group_slot.len() {
            s.group_hit.resize(self.group_slot.len(), false);
        }
        if s.seen.len() < self.pattern_groups.len() {
            s.seen.resize(self.pattern_groups.len(), 0);
        }
        let (offsets, groups) = &self.by_kind[kind];
        for (class, &b) in s.class_buf.iter().enumerate() {
            let hay: &[u8] = if b == 0 { raw } else { &s.bufs[b - 1] };
            // Each pattern once per searched value: `seen` holds the search it was last seen in.
            s.stamp = s.stamp.wrapping_add(1);
            if s.stamp == 0 {
                s.seen.fill(0);
                s.stamp = 1;
            }
            s.hits.clear();
            for m in ac.find_overlapping_iter(hay) {
                let p = m.pattern().as_usize();
                if s.seen[p] != s.stamp {
                    s.seen[p] = s.stamp;
                    s.hits.push(p as u32);
                }
            }
            for &p in &s.hits {
                let p = p as usize;
                for &g in &groups[offsets[p] as usize..offsets[p + 1] as usize] {
                    let slot = self.group_slot[g as usize] as usize;
                    if !s.group_hit[g as usize]
                        && self.slot_nodes[slot].iter().any(|&n| s.node_class[n as usize] == class)
                    {
                        s.group_hit[g as usize] = true;
                        s.groups_set.push(g);
                    }
                }
            }
        }
        // A slot whose groups all occurred can match. (For multiMatch the groups may have
        // occurred at different steps: more candidates, never fewer.)
        for &g in &s.groups_set {
            let slot = self.group_slot[g as usize] as usize;
            if self.slot_groups[slot].iter().all(|&h| s.group_hit[h as usize]) {
                out[slot / 64] |= 1 << (slot % 64);
            }
        }
        for &g in &s.groups_set {
            s.group_hit[g as usize] = false;
        }
        s.groups_set.clear();
    }
}

/// Buffers reused from one value to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Transformed values; buffer number `i` is `bufs[i - 1]`, 0 the value as received.
    bufs: Vec<Vec<u8>>,
    /// Per buffer, its [`crate::transform::byte_mask`].
    masks: Vec<u32>,
    node_buf: Vec<usize>,
    /// Values equal but for ASCII case are one class, searched once.
    node_class: Vec<usize>,
    class_buf: Vec<usize>,
    hits: Vec<u32>,
    /// Literal groups found in this value, as flags and as a list.
    group_hit: Vec<bool>,
    groups_set: Vec<u32>,
    /// Per pattern, the number of the search that last found it.
    seen: Vec<u32>,
    stamp: u32,
}

/// The literal groups a rule needs and the kinds it reads, when it can have a slot.
fn plan(rule: &Rule) -> Option<(Vec<Set>, u32)> {
    if rule.targets.is_empty() || rule.negated {
        return None;
    }
    let mut kinds = 0u32;
    for t in &rule.targets {
        if t.count {
            return None;
        }
        kinds |= var_kinds(t.var)?;
    }
    let groups = match &rule.op {
        Op::Rx(Matcher::Std(re)) => regex_literals(re.as_str())?,
        Op::Pm(_, words) => vec![norm(words.iter().map(|w| w.to_ascii_lowercase()).collect())],
        Op::Streq(t) | Op::Contains(t) | Op::BeginsWith(t) | Op::EndsWith(t) => {
            vec![vec![t.literal()?.into_bytes().to_ascii_lowercase()]]
        }
        _ => return None,
    };
    (!groups.is_empty() && groups.iter().all(|g| usable(g))).then_some((groups, kinds))
}

/// A set can stand for "one of these must occur" when it is not empty and holds no empty
/// string (which every value contains).
fn usable(s: &[Vec<u8>]) -> bool {
    !s.is_empty() && s.iter().all(|l| !l.is_empty())
}

/// Groups of literals such that every match of `pattern` (as the `regex` crate compiles it
/// for [`crate::compile::compile_regex`]: bytes, no Unicode) contains, ignoring ASCII case, a
/// literal of each group.
pub(crate) fn regex_literals(pattern: &str) -> Option<Vec<Set>> {
    let hir = regex_syntax::ParserBuilder::new().unicode(false).utf8(false).build().parse(pattern).ok()?;
    let lits = analyze(&hir);
    (!lits.req.is_empty()).then_some(lits.req)
}

type Set = Vec<Vec<u8>>;

/// At most this many groups per rule, the most selective.
const MAX_GROUPS: usize = 4;

/// What is known of the strings a sub-pattern matches: all of them when few (`exact`), and
/// sets each of which has a literal every match contains (`req`, best first). Lower case.
struct Lits {
    exact: Option<Set>,
    req: Vec<Set>,
}

impl Lits {
    fn new(exact: Option<Set>, mut req: Vec<Set>) -> Lits {
        if let Some(e) = exact.clone().filter(|e| usable(e)) {
            req.push(e);
        }
        req.retain(|s| usable(s));
        req.sort_by_key(|s| std::cmp::Reverse(quality(s)));
        // A group implied by a better one (each of whose literals contains one of its own:
        // `<` by `<script`) adds nothing.
        let mut kept: Vec<Set> = Vec::new();
        for g in req {
            let implied = kept.iter().any(|h| h.iter().all(|l| g.iter().any(|x| contains(l, x))));
            if !implied && kept.len() < MAX_GROUPS {
                kept.push(g);
            }
        }
        Lits { exact, req: kept }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

fn norm(mut s: Set) -> Set {
    s.sort_unstable();
    s.dedup();
    s
}

/// How selective a group is, by its least selective literal: its length, plus 2 when it
/// holds a byte other than a letter, digit or space (`=`, `<`, `:` are rarer in ordinary
/// values than `s` or `on`); then fewer literals.
fn quality(s: &Set) -> (usize, std::cmp::Reverse<usize>) {
    let weight = |l: &Vec<u8>| l.len() + if l.iter().any(|b| !b.is_ascii_alphanumeric() && *b != b' ') { 2 } else { 0 };
    (s.iter().map(weight).min().unwrap_or(0).min(8), std::cmp::Reverse(s.len()))
}

fn cross(a: &Set, b: &Set) -> Option<Set> {
    if a.len().saturating_mul(b.len()) > MAX_SET {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            if x.len() + y.len() > MAX_LIT {
                return None;
            }
            let mut s = Vec::with_capacity(x.len() + y.len());
            s.extend_from_slice(x);
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    Some(norm(out))
}

fn class_bytes(c: &Class) -> Option<Set> {
    let mut bytes = BTreeSet::new();
    match c {
        Class::Bytes(b) => {
            for r in b.ranges() {
                if usize::from(r.end() - r.start()) >= 32 {
                    return None;
                }
                for x in r.start()..=r.end() {
                    bytes.insert(x.to_ascii_lowercase());
                }
            }
        }
        Class::Unicode(u) => {
            for r in u.ranges() {
                let (a, b) = (u32::from(r.start()), u32::from(r.end()));
                if b >= 0x80 || b - a >= 32 {
                    return None;
                }
                for x in a..=b {
                    bytes.insert((x as u8).to_ascii_lowercase());
                }
            }
        }
    }
    (bytes.len() <= 16).then(|| bytes.into_iter().map(|b| vec![b]).collect())
}

fn analyze(h: &Hir) -> Lits {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Lits::new(Some(vec![Vec::new()]), Vec::new()),
        HirKind::Literal(l) => Lits::new(Some(vec![l.0.to_ascii_lowercase()]), Vec::new()),
        HirKind::Class(c) => Lits::new(class_bytes(c), Vec::new()),
        HirKind::Capture(c) => analyze(&c.sub),
        HirKind::Repetition(r) => {
            let sub = analyze(&r.sub);
            if r.min == 0 {
                // May match the empty string: nothing is required.
                let exact = match (r.max, sub.exact) {
                    (Some(1), Some(mut e)) => {
                        e.push(Vec::new());
                        Some(norm(e))
                    }
                    _ => None,
                };
                Lits::new(exact, Vec::new())
            } else {
                let exact = match (r.max, &sub.exact) {
                    (Some(max), Some(e)) if max == r.min && max <= 4 => {
                        let mut acc = e.clone();
                        let mut ok = true;
                        for _ in 1..max {
                            match cross(&acc, e) {
                                Some(n) => acc = n,
                                None => {
                                    ok = false;
                                    break;
                                }
                            }
                        }
                        ok.then_some(acc)
                    }
                    _ => None,
                };
                Lits::new(exact, sub.req)
            }
        }
        HirKind::Concat(subs) => {
            // Every part's groups are required, and so is each run of parts whose strings
            // are all known (their cross product: `un` `[iI]` `on` gives `union`).
            let parts: Vec<Lits> = subs.iter().map(analyze).collect();
            let mut req: Vec<Set> = Vec::new();
            let mut run: Option<Set> = None;
            let mut whole = true;
            for p in &parts {
                req.extend(p.req.iter().cloned());
                match &p.exact {
                    Some(e) => {
                        run = match run.take() {
                            None => Some(e.clone()),
                            Some(r) => match cross(&r, e) {
                                Some(n) => Some(n),
                                None => {
                                    whole = false;
                                    req.push(r);
                                    Some(e.clone())
                                }
                            },
                        };
                    }
                    None => {
                        whole = false;
                        if let Some(r) = run.take() {
                            req.push(r);
                        }
                    }
                }
            }
            let exact = if whole { run.clone() } else { None };
            if let Some(r) = run {
                req.push(r);
            }
            Lits::new(exact, req)
        }
        HirKind::Alternation(subs) => {
            // A match matches one branch: it contains a literal of that branch's best group.
            let parts: Vec<Lits> = subs.iter().map(analyze).collect();
            let mut exact: Option<Set> = Some(Vec::new());
            let mut any: Option<Set> = Some(Vec::new());
            for p in parts {
                any = match (any, p.req.into_iter().next()) {
                    (Some(mut a), Some(b)) if a.len() + b.len() <= MAX_ALTERNATION => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
                exact = match (exact, p.exact) {
                    (Some(mut a), Some(b)) if a.len() + b.len() <= MAX_SET => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
            }
            Lits::new(exact.map(norm), any.map(norm).into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Option<Vec<Vec<String>>> {
        let m = crate::compile::compile_regex(p).ok()?;
        let Matcher::Std(re) = m else { return None };
        regex_literals(re.as_str())
            .map(|gs| gs.iter().map(|g| g.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()).collect())
    }

    #[test]
    fn finds_the_literals_a_match_requires() {
        let g = |groups: &[&[&str]]| -> Option<Vec<Vec<String>>> {
            Some(groups.iter().map(|g| g.iter().map(|l| (*l).to_string()).collect()).collect())
        };
        assert_eq!(lits("(?i)\\bunion\\b.{1,100}?\\bselect\\b"), g(&[&["select"], &["union"]]));
        assert_eq!(lits("<(?:a|b)c"), g(&[&["<ac", "<bc"]]));
        assert_eq!(lits("(?i)<SCRIPT[^>]*>"), g(&[&["<script"], &[">"]]));
        assert_eq!(lits("\\x25"), g(&[&["%"]]));
        assert_eq!(lits("(?:abc|de)f?"), g(&[&["abc", "de"]]));
        // A pattern that can match without any literal has no group.
        assert_eq!(lits("^.*$"), None);
        assert_eq!(lits("a?b*"), None);
        assert_eq!(lits("[a-z]+"), None);
        assert_eq!(lits("(?:abc|.)"), None);
    }

    #[test]
    fn the_literal_set_is_implied_by_every_match() {
        // For each pattern and haystack the regex matches, a literal of the set occurs in the
        // haystack (ignoring ASCII case): the property the prefilter relies on.
        let cases: &[(&str, &[&str])] = &[
            ("(?i)s[e3]lect\\s+\\w+\\s+from", &["SELECT a FROM", "s3lect b\tfrom x"]),
            ("(?i)(?:on(?:load|error)|formaction)\\s*=", &["img onerror =", "ONLOAD=", "x formaction=y"]),
            ("\\.\\./|\\.\\.\\\\", &["a/../b", "..\\\\win"]),
            ("(?i)(?:\\$\\{|%24%7b)jndi", &["${jndi:ldap", "%24%7BJNDI"]),
            ("[0-9]{2}x[ab]", &["12xa", "a99xb"]),
        ];
        for (p, hays) in cases {
            let Ok(Matcher::Std(re)) = crate::compile::compile_regex(p) else { panic!("{p} compiles") };
            let groups = regex_literals(re.as_str()).unwrap_or_else(|| panic!("{p} has literals"));
            for h in *hays {
                assert!(re.is_match(h.as_bytes()), "{p} matches {h}");
                let low = h.to_ascii_lowercase();
                for set in &groups {
                    assert!(
                        set.iter().any(|l| contains(low.as_bytes(), l)),
                        "{p} on {h}: none of {:?}",
                        set.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
}
