//! The built-in web application firewall. A [`Waf`] is compiled once per config load from
//! [`Settings`] (the families of `waf.rules`, the anomaly `threshold`, the exclusions) and
//! shared by every request of that config. A request is inspected in two steps, head then body,
//! into one [`Scan`]:
//!
//! - [`Waf::inspect_head`]: the path, every query parameter name and value, cookie names and
//!   values, and the usual attack headers (never credentials);
//! - [`Waf::inspect_body`]: the first `inspect_body_bytes` of a form, JSON (every key and
//!   string leaf), multipart (field values, file names), XML (text and attributes) or text body.
//!
//! Every value goes through [`decode`] first, then each enabled family's rules. A matching
//! rule adds its severity to the scan's anomaly score once (as CRS scores), unless an
//! exclusion covers that rule on this route and target; the caller refuses a request whose
//! score reaches [`Waf::threshold`]. The scan holds no input text: what is logged or shown is
//! rule ids and the score, never the payload.

mod body;
pub mod decode;
mod detect;
pub mod exclusion;
pub mod rules;

use std::collections::HashMap;

use http::request::Parts;
use smallvec::SmallVec;

use self::detect::{Detectors, Place};
pub use self::exclusion::{BadTarget, Exclusion, Target, TargetSpec, parse_rule_id};
pub use self::rules::{Families, Family, RULES, Rule, RuleId, Severity};

/// `waf.threshold`: CRS's default inbound anomaly threshold — one critical match.
pub const DEFAULT_THRESHOLD: u32 = 5;
/// `waf.inspect_body_bytes`.
pub const DEFAULT_INSPECT_BODY_BYTES: usize = 64 * 1024;

/// Request headers the WAF reads (lowercase). Credentials (`Authorization`, API keys) are never
/// read; `Cookie` is read cookie by cookie.
pub const INSPECTED_HEADERS: &[&str] =
    &["user-agent", "referer", "origin", "x-forwarded-for", "x-forwarded-host", "x-requested-with"];

/// [`INSPECTED_HEADERS`] as header names, in the same order; then `Cookie` (read cookie by
/// cookie). Found by one pass over the request's names: a name looked up by `&str` is parsed
/// again on every request, and most requests carry few of these.
static INSPECTED_NAMES: [http::HeaderName; 7] = [
    http::header::USER_AGENT,
    http::header::REFERER,
    http::header::ORIGIN,
    http::HeaderName::from_static("x-forwarded-for"),
    http::HeaderName::from_static("x-forwarded-host"),
    http::HeaderName::from_static("x-requested-with"),
    http::header::COOKIE,
];
/// The index of `Cookie` in [`INSPECTED_NAMES`].
const COOKIE_AT: usize = 6;

/// What happens to the body past `inspect_body_bytes` (`waf.oversize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Oversize {
    /// The first `inspect_body_bytes` are inspected, the rest is forwarded unread.
    #[default]
    Pass,
    /// A body longer than `inspect_body_bytes` matches rule 920390 (critical).
    Block,
}

/// The compiled WAF settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub families: Families,
    pub threshold: u32,
    pub exclusions: Vec<Exclusion>,
    pub inspect_body_bytes: usize,
    pub oversize: Oversize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            families: Families::all(),
            threshold: DEFAULT_THRESHOLD,
            exclusions: Vec::new(),
            inspect_body_bytes: DEFAULT_INSPECT_BODY_BYTES,
            oversize: Oversize::Pass,
        }
    }
}

/// The rules of one config load.
#[derive(Debug)]
pub struct Waf {
    settings: Settings,
    detectors: Detectors,
    /// The fast path: detectors skipped where their pre-screen proves they cannot match, body
    /// values checked once per request however often they repeat, JSON walked as it parses.
    /// Off only in [`Waf::reference`], the plain path the fast one is tested against.
    fast: bool,
}

/// What a request's inspection found: the anomaly score and the rules that matched (each
/// once, in the order they first matched). Inline for up to four rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    score: u32,
    rules: SmallVec<[RuleId; 4]>,
}

impl Scan {
    /// Counts a match: `points` once per rule.
    pub fn add(&mut self, rule: RuleId, points: u32) {
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
            self.score = self.score.saturating_add(points);
        }
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn rules(&self) -> &[RuleId] {
        &self.rules
    }

    pub fn is_clean(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Waf {
    pub fn new(settings: Settings) -> Self {
        Self { settings, detectors: Detectors::new(), fast: true }
    }

    /// The same rules without any of the fast path's shortcuts: every detector on every value,
    /// JSON parsed into a tree first. Gives the same verdicts as [`Waf::new`], only slower; the
    /// differential tests hold the two to that.
    #[doc(hidden)]
    pub fn reference(settings: Settings) -> Self {
        Self { settings, detectors: Detectors::new(), fast: false }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn threshold(&self) -> u32 {
        self.settings.threshold
    }

    pub fn inspect_body_bytes(&self) -> usize {
        self.settings.inspect_body_bytes
    }

    /// Whether a body of this request's content type is inspected (form, JSON, multipart, XML,
    /// text). Any other body (images, archives, octet streams) streams on unread.
    pub fn wants_body(&self, parts: &Parts) -> bool {
        !self.settings.families.is_empty() && body::kind(&parts.headers).is_some()
    }

    /// The path, query, cookies and attack headers of a request.
    pub fn inspect_head(&self, route: &str, parts: &Parts, scan: &mut Scan) {
        let mut pass = Pass::new(self, route, scan);
        pass.value(Target::Path, parts.uri.path().as_bytes(), false, Place::Url);
        if let Some(query) = parts.uri.query() {
            pass.fields(query.as_bytes(), Place::Url);
        }
        // Which of the inspected names the request carries (bit `i`: `INSPECTED_NAMES[i]`).
        let mut present = 0u8;
        for name in parts.headers.keys() {
            if let Some(i) = INSPECTED_NAMES.iter().position(|n| n == name) {
                present |= 1 << i;
            }
        }
        let cookies =
            if present & 1 << COOKIE_AT != 0 { Some(parts.headers.get_all(http::header::COOKIE)) } else { None };
        for cookie in cookies.into_iter().flatten() {
            for pair in cookie.as_bytes().split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                let (name, value) = split_pair(pair);
                let name = String::from_utf8_lossy(name);
                pass.value(Target::Cookie(&name), name.as_bytes(), false, Place::Url);
                pass.value(Target::Cookie(&name), value, false, Place::Url);
                if let Some(unquoted) = cookie_unquote(value) {
                    pass.value(Target::Cookie(&name), &unquoted, false, Place::Url);
                }
            }
        }
        for (i, (&label, name)) in INSPECTED_HEADERS.iter().zip(&INSPECTED_NAMES).enumerate() {
            if present & 1 << i == 0 {
                continue;
            }
            for value in parts.headers.get_all(name) {
                pass.value(Target::Header(label), value.as_bytes(), false, Place::Url);
            }
        }
        if self.settings.families.contains(Family::Protocol)
            && matches!(parts.method, http::Method::GET | http::Method::HEAD)
            && has_body(&parts.headers)
        {
            pass.hit(rules::BODY_ON_GET, Target::Body);
        }
    }

    /// The first `inspect_body_bytes` of a body; `complete`: this is the whole body.
    pub fn inspect_body(&self, route: &str, parts: &Parts, body: &[u8], complete: bool, scan: &mut Scan) {
        let mut pass = Pass::new(self, route, scan);
        let limit = self.settings.inspect_body_bytes;
        let oversize = body.len() > limit || !complete && body.len() >= limit;
        let body = body.get(..limit).unwrap_or(body);
        if oversize && self.settings.oversize == Oversize::Block {
            pass.hit(rules::OVERSIZE, Target::Body);
        }
        let Some(kind) = body::kind(&parts.headers) else { return };
        // A compressed form, JSON, XML or text body is unreadable here but not to every
        // backend (Express's body-parser inflates gzip, deflate and br): refused, not passed.
        if kind != body::Kind::Unlabelled && !body.is_empty() && content_coded(&parts.headers) {
            pass.hit(rules::ENCODED_BODY, Target::Body);
            return;
        }
        body::inspect(kind, body, &mut pass);
    }
}

/// Whether `Content-Encoding` names any coding but `identity`.
fn content_coded(headers: &http::HeaderMap) -> bool {
    headers.get_all(http::header::CONTENT_ENCODING).iter().any(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .split(',')
            .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"))
    })
}

/// Whether a body of this content type is one the WAF reads (form, JSON, multipart, XML,
/// text), whichever rules look at it: the body buffering every rule set shares.
pub fn reads_body(headers: &http::HeaderMap) -> bool {
    body::kind(headers).is_some()
}

/// `Content-Length` above zero or any `Transfer-Encoding`.
fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// A double-quoted cookie value with backslash escapes, undone as Python's `http.cookies`
/// does (Django's `parse_cookie`, Werkzeug): `\ooo` (octal, first digit 0–3) is that byte,
/// `\c` is `c`. `"1\047 OR \0471\047=\0471"` is `1' OR '1'='1` to those backends. `None`
/// when the value is not quoted or has no backslash (it is read as it is).
fn cookie_unquote(value: &[u8]) -> Option<Vec<u8>> {
    let inner = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        match inner[i..] {
            [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
                i += 4;
            }
            [b'\\', c, ..] => {
                out.push(c);
                i += 2;
            }
            [c, ..] => {
                out.push(c);
                i += 1;
            }
            [] => break,
        }
    }
    Some(out)
}

/// `name=value` (a missing `=` is a name with an empty value).
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => (&pair[..eq], &pair[eq + 1..]),
        None => (pair, &[]),
    }
}

/// A value's bit in [`Pass::memo_lengths`].
fn length_bit(raw: &[u8]) -> u64 {
    1 << (raw.len() % 64)
}

/// The rules one value matched, before exclusions.
type Found = SmallVec<[RuleId; 4]>;

/// One inspection: the values of one request checked into its scan.
struct Pass<'a> {
    waf: &'a Waf,
    route: &'a str,
    scan: &'a mut Scan,
    /// What each body value already checked matched, by its raw bytes, one map per decoding
    /// (`+` as a space or not): a value repeated in a body (the same status in every item of
    /// a list) is decoded and checked once. Bounded by the inspected body.
    memo: [HashMap<Box<[u8]>, Found, foldhash::fast::RandomState>; 2],
    /// The lengths (modulo 64, one bit each) of the values in each memo: a value of a length
    /// none of them has is not hashed and looked up (most values of a body are new, and the
    /// few that repeat have lengths of their own).
    memo_lengths: [u64; 2],
    /// While `Some`, hits are held here instead of counted (a JSON walk that may yet fail and
    /// be replaced by the string-literal fallback): rule ids past the exclusions, in order.
    held: Option<Found>,
}

impl<'a> Pass<'a> {
    fn new(waf: &'a Waf, route: &'a str, scan: &'a mut Scan) -> Self {
        Self { waf, route, scan, memo: Default::default(), memo_lengths: [0; 2], held: None }
    }
}

impl Pass<'_> {
    /// `name=value&…` pairs (a query string or a form body).
    fn fields(&mut self, raw: &[u8], place: Place) {
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = split_pair(pair);
            let classes = detect::classes(name);
            let name = if detect::is_plain(name, classes) {
                // Nothing to decode, but still a name the rules read (`?1--=x`).
                let text = std::str::from_utf8(name).unwrap_or_default();
                let found = self.check_classified(name, classes, true, place);
                self.hits(found, Target::ArgName(text));
                std::borrow::Cow::Borrowed(text)
            } else {
                let decoded = decode::decode(name, true);
                let found = self.found(name, true, place, Some(&decoded));
                self.hits(found, Target::ArgName(&decoded.text));
                decoded.text
            };
            self.value(Target::Arg(&name), value, true, place);
        }
    }

    /// Decodes and checks one value.
    fn value(&mut self, target: Target<'_>, raw: &[u8], plus: bool, place: Place) {
        let found = self.check(raw, plus, place);
        if !found.is_empty() {
            self.hits(found, target);
        }
    }

    /// The rules one raw value matches, before exclusions (its target is only needed when
    /// something matched: the JSON walk builds a member's pointer only then).
    fn check(&mut self, raw: &[u8], plus: bool, place: Place) -> Found {
        self.check_classified(raw, detect::classes(raw), plus, place)
    }

    /// [`Pass::check`] with `classes`: [`detect::classes`] of `raw`.
    ///
    /// No shortcut for one-token values (letters, digits, `-_@:.,`): libinjection reads SQL in
    /// them (`1--`, `-1union`, `0-@a`) and the OS-file list names some (`web.config`); they
    /// decode to themselves, so checking them costs no allocation.
    fn check_classified(&mut self, raw: &[u8], classes: u8, plus: bool, place: Place) -> Found {
        // A body value seen before in this body: its answer, before the pre-screen reads it
        // again (the same note or status in every item of a list).
        if let Some(found) = self.memo(raw, plus, place) {
            return found;
        }
        // Words of ASCII letters and digits with spaces and commas between, none of them SQL
        // to libinjection: no decoding has anything to undo (no `%`, `+`, `&`, `\`, NUL or
        // non-ASCII byte), no family but SQLi can match without a byte outside that set (each
        // pre-screen of `Detectors::check` names its bytes) and SQLi's pre-screen passes it
        // (that pre-screen also passes slashes, which the path rules read: not cleared here).
        // The most common free text of API bodies (`Widget number 12`) costs one look-up a
        // word, with no decoding, memo entry or allocation. Identifiers of words and numbers
        // joined by dashes (`SKU-00012`, `2024-05-01`) are cleared the same way.
        let prose = classes & !(detect::LETTER | detect::DIGIT | detect::SPACE | detect::COMMA) == 0
            && detect::sqli_cannot_match(raw, classes);
        if self.waf.fast && (prose || detect::dashed_cannot_match(raw, classes)) {
            return Found::new();
        }
        self.found(raw, plus, place, None)
    }

    /// What a body value already checked in this body matched (fast path only).
    fn memo(&self, raw: &[u8], plus: bool, place: Place) -> Option<Found> {
        if !(self.waf.fast && place == Place::Body) || self.memo_lengths[usize::from(plus)] & length_bit(raw) == 0 {
            return None;
        }
        self.memo[usize::from(plus)].get(raw).cloned()
    }

    /// The rules `raw` matches (decoded as `decode::decode(raw, plus)`, which `decoded` is
    /// when the caller has it already).
    fn found(&mut self, raw: &[u8], plus: bool, place: Place, decoded: Option<&decode::Decoded<'_>>) -> Found {
        let memo = self.waf.fast && place == Place::Body;
        if let Some(found) = self.memo(raw, plus, place) {
            return found;
        }
        let mut found = Found::new();
        let mut detect = |d: &decode::Decoded<'_>| {
            self.waf.detectors.check(self.waf.settings.families, d, place, self.waf.fast, &mut |rule| found.push(rule));
        };
        match decoded {
            Some(d) => detect(d),
            None => detect(&decode::decode(raw, plus)),
        }
        if memo {
            self.memo[usize::from(plus)].insert(raw.into(), found.clone());
            self.memo_lengths[usize::from(plus)] |= length_bit(raw);
        }
        found
    }

    fn hits(&mut self, found: Found, target: Target<'_>) {
        for rule in found {
            self.hit(rule, target);
        }
    }

    fn hit(&mut self, rule: RuleId, target: Target<'_>) {
        if self.waf.settings.exclusions.iter().any(|e| e.excludes(rule, self.route, target)) {
            return;
        }
        match &mut self.held {
            Some(held) => held.push(rule),
            None => self.count(rule),
        }
    }

    /// Counts the held hits and stops holding.
    fn release(&mut self) {
        for rule in self.held.take().unwrap_or_default() {
            self.count(rule);
        }
    }

    fn count(&mut self, rule: RuleId) {
        let points = rules::rule(rule).map_or(0, |r| r.severity.points());
        self.scan.add(rule, points);
    }
}

#[cfg(test)]
mod tests;
