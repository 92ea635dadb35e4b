//! Request bodies the WAF reads, by content type: form fields, JSON keys and string leaves
//! (each with its JSON Pointer, for exclusions), multipart field values and file names, XML
//! text and attribute values, plain text. A body cut at `inspect_body_bytes` (or malformed)
//! is still read as far as it goes: JSON falls back to its string literals, XML to its
//! events up to the cut.

use std::fmt;

use http::HeaderMap;
use quick_xml::events::Event;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::detect::{self, Place};
use crate::exclusion::Target;
use crate::{Found, Pass};

/// The body kinds the WAF reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Form,
    Json,
    /// With its boundaries: every `boundary` parameter, the first usually the only one
    /// (backends differ on which of two they take: each is read).
    Multipart(Vec<String>),
    Xml,
    Text,
    /// No `Content-Type` at all: read as JSON when it looks like JSON (FastAPI parses an
    /// unlabelled body as JSON), else not read.
    Unlabelled,
}

/// The kind of a request's body, from its `Content-Type`; `None`: not read. A value with a
/// byte past ASCII is read as Latin-1 text is by the backends (Werkzeug reads
/// `application/json; charset=\xff` as JSON), not skipped as no known type.
pub(crate) fn kind(headers: &HeaderMap) -> Option<Kind> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else { return Some(Kind::Unlabelled) };
    let value = String::from_utf8_lossy(value.as_bytes());
    let mut params = value.split(';');
    // Compared without case, in place (asked twice a request: no lower-cased copy).
    let essence = params.next()?.trim().as_bytes();
    let is = |t: &str| essence.eq_ignore_ascii_case(t.as_bytes());
    let ends =
        |t: &str| essence.len() >= t.len() && essence[essence.len() - t.len()..].eq_ignore_ascii_case(t.as_bytes());
    if is("application/x-www-form-urlencoded") {
        Some(Kind::Form)
    } else if is("application/json") {
        Some(Kind::Json)
    } else if is("multipart/form-data") {
        let mut boundaries: Vec<String> = Vec::new();
        for (_, b) in
            params.filter_map(|p| p.split_once('=')).filter(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        {
            let b = b.trim().trim_matches('"');
            if !b.is_empty() && !boundaries.iter().any(|seen| seen == b) {
                boundaries.push(b.to_owned());
            }
        }
        (!boundaries.is_empty()).then_some(Kind::Multipart(boundaries))
    } else if is("application/xml") || is("text/xml") {
        Some(Kind::Xml)
    } else if ends("+json") {
        Some(Kind::Json)
    } else if ends("+xml") {
        Some(Kind::Xml)
    } else if essence.len() >= 5 && essence[..5].eq_ignore_ascii_case(b"text/") {
        Some(Kind::Text)
    } else {
        None
    }
}

pub(crate) fn inspect(kind: Kind, body: &[u8], pass: &mut Pass<'_>) {
    match kind {
        Kind::Form => pass.fields(body, Place::Body),
        Kind::Json => json(body, pass),
        Kind::Multipart(boundaries) => {
            for boundary in &boundaries {
                multipart(body, boundary, pass);
            }
        }
        Kind::Xml => xml(body, pass),
        Kind::Text => pass.value(Target::Body, body, false, Place::Body),
        Kind::Unlabelled => {
            // A UTF-8 byte order mark and JSON's blanks may come first (Python's `json.loads`
            // of bytes takes both).
            let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
            if matches!(body.trim_ascii_start().first(), Some(b'{' | b'[')) {
                json(body, pass);
            }
        }
    }
}

fn json(body: &[u8], pass: &mut Pass<'_>) {
    if !pass.waf.fast {
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => {
                let mut pointer = String::new();
                walk(&value, &mut pointer, pass);
            }
            Err(_) => json_strings(body, pass),
        };
    }
    // Checked as it parses (no tree is built); the hits are held until the whole body has
    // parsed, since JSON that turns out broken is read by its string literals instead.
    // First the plain scanner (the common JSON of APIs); whatever it does not take on (an
    // escape, an exponent, a syntax error) is parsed by serde_json from the start.
    pass.held = Some(Found::new());
    // UTF-8 checked once for the whole body: every string the scanner cuts out of it at its
    // (ASCII) quotes is then valid text. A body that is not UTF-8 is serde_json's to judge.
    let plain = std::str::from_utf8(body).ok().and_then(|text| Plain::new(text, &mut *pass).document());
    if plain.is_some() {
        return pass.release();
    }
    let mut pointer = String::new();
    pass.held = Some(Found::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Walk { pointer: &mut pointer, pass: &mut *pass }.deserialize(&mut de).is_ok() && de.end().is_ok();
    if parsed {
        pass.release();
    } else {
        pass.held = None;
        json_strings(body, pass);
    }
}

/// How deep the plain scanner follows arrays and objects (serde_json's limit is 128).
const PLAIN_DEPTH: usize = 100;

/// A JSON scanner for the plain subset of JSON that most API bodies are: strings without
/// escapes or control characters (UTF-8 checked), numbers without exponents and at most 15
/// digits, bounded nesting. Everything it accepts serde_json accepts, with the same strings
/// (unescaped text is itself); `None` for anything else, which serde_json then parses. Each
/// string leaf and key is checked as it is met; its JSON Pointer is written out only when it
/// matched something (for the exclusions), from the path of members and items held meanwhile.
struct Plain<'b, 'p, 'a> {
    text: &'b str,
    at: usize,
    /// Where the scanner is: the keys and indexes from the document's root.
    path: Vec<Segment<'b>>,
    pass: &'p mut Pass<'a>,
    /// Strings of this body already checked and found clean, one slot each by [`seen_slot`]
    /// (a later string there replaces it): the same keys in every item of a list, a repeated
    /// value, are then answered by one comparison. Only clean verdicts are kept (a string's
    /// verdict is a function of its bytes alone, and a clean one adds no hit wherever it is);
    /// a string that matched is checked again, each time with its own pointer.
    seen: [&'b [u8]; SEEN_SLOTS],
    /// What the objects met so far held where they were found clean: slot `2m` the key of an
    /// object's member `m`, slot `2m + 1` that member's string value (the items of a list
    /// repeat their keys in order, and often values). A string at the scanner that is the one
    /// its slot holds (the same bytes, then its closing quote) is passed over unread: the same
    /// bytes are the same verdict.
    expected: [&'b str; EXPECTED_SLOTS],
}

/// The slots of [`Plain::expected`]: the first eight members of an object.
const EXPECTED_SLOTS: usize = 16;

/// The slots of [`Plain::seen`].
const SEEN_SLOTS: usize = 64;

/// A string's slot in [`Plain::seen`]: from its length and first, middle and last bytes.
fn seen_slot(s: &[u8]) -> usize {
    let (Some(&first), Some(&last)) = (s.first(), s.last()) else { return 0 };
    let mixed = (s.len() as u32) ^ u32::from(first) << 8 ^ u32::from(s[s.len() / 2]) << 16 ^ u32::from(last) << 24;
    (mixed.wrapping_mul(0x9E37_79B1) >> 26) as usize
}

/// One step of a JSON Pointer.
#[derive(Debug, Clone, Copy)]
enum Segment<'b> {
    Key(&'b str),
    Index(usize),
}

impl<'b, 'p, 'a> Plain<'b, 'p, 'a> {
    fn new(text: &'b str, pass: &'p mut Pass<'a>) -> Self {
        Self { text, at: 0, path: Vec::new(), pass, seen: [&[]; SEEN_SLOTS], expected: [""; EXPECTED_SLOTS] }
    }

    /// Whether the string at the scanner (at its opening quote) is the one `expected` slot
    /// holds: then the scanner is moved past it. That string holds no byte that ends a
    /// string, so the same bytes followed by a quote are that string, whole.
    fn skip_expected(&mut self, slot: usize) -> Option<&'b str> {
        let expected = *self.expected.get(slot)?;
        let start = self.at + 1;
        let end = start + expected.len();
        let body = self.body();
        if expected.is_empty() || body.get(start..end)? != expected.as_bytes() || body.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        Some(expected)
    }

    /// A string value at the scanner, checked; `slot`: its [`Plain::expected`] slot.
    fn member_value(&mut self, slot: usize) -> Option<()> {
        if self.skip_expected(slot).is_some() {
            return Some(());
        }
        let s = self.string()?;
        if self.check(s) {
            self.remember(slot, s);
        }
        Some(())
    }

    /// `s`, found clean, as what `slot` of [`Plain::expected`] holds.
    fn remember(&mut self, slot: usize, s: &'b str) {
        if let Some(expected) = self.expected.get_mut(slot) {
            *expected = s;
        }
    }

    /// Checks a key or string leaf at the current path; its pointer is built only on a match.
    /// Whether it was clean.
    fn check(&mut self, s: &'b str) -> bool {
        let s = s.as_bytes();
        let slot = seen_slot(s);
        if !s.is_empty() && self.seen[slot] == s {
            return true;
        }
        let found = self.pass.check_classified(s, detect::classes(s), false, Place::Body);
        if found.is_empty() {
            self.seen[slot] = s;
            return true;
        }
        let mut pointer = String::new();
        for segment in &self.path {
            match *segment {
                Segment::Key(key) => push_segment(&mut pointer, key),
                Segment::Index(i) => push_index(&mut pointer, i),
            }
        }
        self.pass.hits(found, Target::Json(&pointer));
        false
    }

    fn body(&self) -> &'b [u8] {
        self.text.as_bytes()
    }

    fn document(&mut self) -> Option<()> {
        self.value(0)?;
        self.blanks();
        (self.at == self.text.len()).then_some(())
    }

    /// Past JSON's four blanks.
    fn blanks(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.body().get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.blanks();
        self.body().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let here = self.peek() == Some(b);
        self.at += usize::from(here);
        here
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let s = self.string()?;
                self.check(s);
                Some(())
            }
            b'[' if depth < PLAIN_DEPTH => {
                self.at += 1;
                if self.eat(b']') {
                    return Some(());
                }
                let mut i = 0usize;
                loop {
                    self.path.push(Segment::Index(i));
                    let item = self.value(depth + 1);
                    self.path.pop();
                    item?;
                    if self.eat(b']') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                    i += 1;
                }
            }
            b'{' if depth < PLAIN_DEPTH => {
                self.at += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                let mut m = 0usize;
                loop {
                    if self.peek() != Some(b'"') {
                        return None;
                    }
                    let (key_slot, value_slot) = (2 * m, 2 * m + 1);
                    match self.skip_expected(key_slot) {
                        Some(key) => self.path.push(Segment::Key(key)),
                        None => {
                            let key = self.string()?;
                            self.path.push(Segment::Key(key));
                            if self.check(key) {
                                self.remember(key_slot, key);
                            }
                        }
                    }
                    // A string value is read here, against its slot, and a number; any other by `value`.
                    let member = match self.eat(b':').then(|| self.peek()).flatten() {
                        Some(b'"') => self.member_value(value_slot),
                        Some(b'-' | b'0'..=b'9') => self.number(),
                        Some(_) => self.value(depth + 1),
                        None => None,
                    };
                    self.path.pop();
                    m += 1;
                    member?;
                    if self.eat(b'}') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.body().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most 15 digits: always a finite f64 or an integer.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        self.at += usize::from(self.body().get(self.at) == Some(&b'-'));
        let int = self.digits();
        let first = self.body().get(self.at - int).copied();
        if int == 0 || int > 1 && first == Some(b'0') {
            return None;
        }
        let mut count = int;
        if self.body().get(self.at) == Some(&b'.') {
            self.at += 1;
            let frac = self.digits();
            if frac == 0 {
                return None;
            }
            count += frac;
        }
        let next = self.body().get(self.at).copied();
        if count > 15 || matches!(next, Some(b'e' | b'E' | b'0'..=b'9' | b'.')) {
            return None;
        }
        (self.at > start).then_some(())
    }

    fn digits(&mut self) -> usize {
        let n = self.body()[self.at..].iter().take_while(|b| b.is_ascii_digit()).count();
        self.at += n;
        n
    }

    /// A string without escapes or control characters; at its opening quote.
    fn string(&mut self) -> Option<&'b str> {
        let body = self.body();
        let start = self.at + 1;
        let rest = body.get(start..)?;
        let mut len = 0;
        // Eight bytes at a time while eight are left (past the string's end too: the quote
        // that ends it is found first), then byte by byte.
        loop {
            let Some(chunk) = rest.get(len..len + 8) else {
                len += rest[len..].iter().position(|&b| detect::CLASS[usize::from(b)] & detect::JSON_STOP != 0)?;
                break;
            };
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let stops = json_stops(word);
            if stops != 0 {
                len += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            len += 8;
        }
        if rest[len] != b'"' {
            return None;
        }
        let end = start + len;
        self.at = end + 1;
        // Cut at two ASCII quotes: always on character boundaries.
        self.text.get(start..end)
    }
}

/// Eight bytes (little-endian) with the high bit of each byte set where a JSON string stops:
/// at `"`, `\` or a control character (the [`detect::JSON_STOP`] bytes). Exact up to its first
/// set bit, which is all that is read (a borrow may set bits past a true stop, never before).
fn json_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (quote | backslash | control) & HIGH
}

/// A JSON Pointer segment for an array index.
fn push_index(pointer: &mut String, i: usize) {
    pointer.push('/');
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = i;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    pointer.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// A JSON Pointer segment: `~` is `~0`, `/` is `~1`.
fn push_segment(pointer: &mut String, key: &str) {
    pointer.push('/');
    if key.bytes().any(|b| b == b'~' || b == b'/') {
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(key);
    }
}

/// One JSON value as it parses: every string leaf checked with its JSON Pointer, every
/// object key with its member's. serde_json bounds the nesting at 128.
struct Walk<'p, 'a> {
    pointer: &'p mut String,
    pass: &'p mut Pass<'a>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.pass.value(Target::Json(self.pointer), s.as_bytes(), false, Place::Body);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let len = self.pointer.len();
            push_index(self.pointer, i);
            let item = items.next_element_seed(Walk { pointer: &mut *self.pointer, pass: &mut *self.pass });
            self.pointer.truncate(len);
            if item?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        loop {
            let len = self.pointer.len();
            let key = members.next_key_seed(Key { pointer: &mut *self.pointer, pass: &mut *self.pass });
            let member = match key {
                Ok(Some(())) => {
                    members.next_value_seed(Walk { pointer: &mut *self.pointer, pass: &mut *self.pass }).map(Some)
                }
                other => other,
            };
            self.pointer.truncate(len);
            if member?.is_none() {
                return Ok(());
            }
        }
    }
}

/// An object key: appended to the pointer (which its member's value then extends) and checked.
struct Key<'p, 'a> {
    pointer: &'p mut String,
    pass: &'p mut Pass<'a>,
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        push_segment(self.pointer, key);
        self.pass.value(Target::Json(self.pointer), key.as_bytes(), false, Place::Body);
        Ok(())
    }
}

/// Every key and string leaf, with its JSON Pointer, of a parsed tree (the reference path;
/// serde_json bounds the nesting at 128).
fn walk(value: &serde_json::Value, pointer: &mut String, pass: &mut Pass<'_>) {
    use serde_json::Value;
    match value {
        Value::String(s) => pass.value(Target::Json(pointer), s.as_bytes(), false, Place::Body),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer, pass);
                pointer.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = pointer.len();
                push_segment(pointer, key);
                pass.value(Target::Json(pointer), key.as_bytes(), false, Place::Body);
                walk(item, pointer, pass);
                pointer.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The string literals of JSON that does not parse (cut at the inspection limit, or broken, or
/// JSON to laxer parsers: Python's `json.loads` takes `NaN` and `Infinity`): the one-byte
/// escapes are undone here (`\"` and `\/` would otherwise hide an injection), `\uXXXX` by the
/// decoding's JavaScript step.
fn json_strings(body: &[u8], pass: &mut Pass<'_>) {
    let mut i = 0;
    while let Some(start) = body[i..].iter().position(|&b| b == b'"').map(|p| p + i + 1) {
        let mut end = start;
        while end < body.len() && body[end] != b'"' {
            end += if body[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(body.len());
        pass.value(Target::Body, &unescape_short(&body[start..end]), false, Place::Body);
        i = (end + 1).min(body.len());
    }
}

/// A JSON string literal's one-byte escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`)
/// undone; `\u` and anything else kept as written.
fn unescape_short(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let unescaped = match (raw[i], raw.get(i + 1)) {
            (b'\\', Some(&b @ (b'"' | b'\\' | b'/'))) => Some(b),
            (b'\\', Some(b'b')) => Some(0x08),
            (b'\\', Some(b'f')) => Some(0x0c),
            (b'\\', Some(b'n')) => Some(b'\n'),
            (b'\\', Some(b'r')) => Some(b'\r'),
            (b'\\', Some(b't')) => Some(b'\t'),
            _ => None,
        };
        match unescaped {
            Some(b) => {
                out.push(b);
                i += 2;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// multipart/form-data: each part's field value (files: their name; text files: content too).
fn multipart(body: &[u8], boundary: &str, pass: &mut Pass<'_>) {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut rest = match find(body, &delimiter) {
        Some(p) => &body[p + delimiter.len()..],
        None => return pass.value(Target::Body, body, false, Place::Body),
    };
    while !rest.starts_with(b"--") && !rest.is_empty() {
        let (part, next) = match find(rest, &delimiter) {
            Some(p) => (&rest[..p], &rest[p + delimiter.len()..]),
            None => (rest, &[][..]),
        };
        one_part(part, pass);
        rest = next;
    }
}

fn one_part(part: &[u8], pass: &mut Pass<'_>) {
    let part = part.strip_prefix(b"\r\n").or_else(|| part.strip_prefix(b"\n")).unwrap_or(part);
    // Where the part's headers end: at `\r\n\r\n` for most parsers, at the first blank line
    // of any line break (`\n\n`, `\r\r` too) for Werkzeug. Each reading is inspected.
    let crlf = find(part, b"\r\n\r\n").map(|p| (p, 4));
    let any = [find(part, b"\n\n").map(|p| (p, 2)), find(part, b"\r\r").map(|p| (p, 2)), crlf]
        .into_iter()
        .flatten()
        .min_by_key(|&(p, _)| p);
    match (crlf, any) {
        (None, None) => part_fields(part, &[], pass),
        (Some(c), Some(a)) if c != a => {
            part_fields(&part[..c.0], &part[c.0 + c.1..], pass);
            part_fields(&part[..a.0], &part[a.0 + a.1..], pass);
        }
        // `any` includes `crlf`: one reading.
        (_, Some((p, len))) | (Some((p, len)), None) => part_fields(&part[..p], &part[p + len..], pass),
    }
}

/// One part's fields, its headers and content told apart.
fn part_fields(head: &[u8], content: &[u8], pass: &mut Pass<'_>) {
    let content = content.strip_suffix(b"\r\n").or_else(|| content.strip_suffix(b"\n")).unwrap_or(content);
    let head = String::from_utf8_lossy(head);
    let mut name = String::new();
    let mut filename = None;
    let mut text_file = true;
    for line in head.lines() {
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        if key.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                if let Some((k, v)) = param.split_once('=') {
                    let v = v.trim().trim_matches('"').to_owned();
                    match k.trim().to_ascii_lowercase().as_str() {
                        "name" => name = v,
                        "filename" => filename = Some(v),
                        _ => {}
                    }
                }
            }
        } else if key.trim().eq_ignore_ascii_case("content-type") {
            let t = value.trim().to_ascii_lowercase();
            text_file = t.starts_with("text/") || t.contains("json") || t.contains("xml");
        }
    }
    pass.value(Target::ArgName(&name), name.as_bytes(), false, Place::Body);
    if let Some(filename) = &filename {
        pass.value(Target::Arg(&name), filename.as_bytes(), false, Place::Body);
    }
    if filename.is_none() || text_file {
        pass.value(Target::Arg(&name), content, false, Place::Body);
    }
}

/// XML text, CDATA and attribute values, and a DOCTYPE's declarations as one value; no DTD or
/// entity processing (references such as `&lt;` are kept in the text and decoded by the
/// decoding step, never expanded from a DTD).
/// The text between two tags is read as one value, however the parser splits it.
fn xml(body: &[u8], pass: &mut Pass<'_>) {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut text: Vec<u8> = Vec::new();
    loop {
        let event = reader.read_event();
        match &event {
            Ok(Event::Text(t)) => text.extend_from_slice(AsRef::<str>::as_ref(t).as_bytes()),
            Ok(Event::CData(t)) => text.extend_from_slice(AsRef::<str>::as_ref(t).as_bytes()),
            Ok(Event::GeneralRef(r)) => {
                text.push(b'&');
                text.extend_from_slice(AsRef::<str>::as_ref(r).as_bytes());
                text.push(b';');
            }
            _ => {
                if !text.trim_ascii().is_empty() {
                    pass.value(Target::Xml, text.trim_ascii(), false, Place::Body);
                }
                text.clear();
            }
        }
        match event {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                for attr in e.attributes().flatten() {
                    pass.value(Target::Xml, attr.value.as_bytes(), false, Place::Body);
                }
            }
            // Never expanded here, but backends that expand internal entities (lxml, Python's
            // ElementTree) read `&e;` as the text declared for it: the declarations are read.
            Ok(Event::DocType(d)) => pass.value(Target::Xml, AsRef::<str>::as_ref(&d).as_bytes(), false, Place::Body),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => {
                // Malformed from here: what is left is read as text.
                let at = usize::try_from(reader.buffer_position()).unwrap_or(body.len()).min(body.len());
                pass.value(Target::Body, &body[at..], false, Place::Body);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{Scan, Settings, Waf};

    /// Whether the plain scanner takes this document on.
    fn plain(doc: &[u8]) -> bool {
        static WAF: std::sync::LazyLock<Waf> = std::sync::LazyLock::new(|| Waf::new(Settings::default()));
        let waf = &*WAF;
        let mut scan = Scan::default();
        let mut pass = Pass::new(waf, "r", &mut scan);
        std::str::from_utf8(doc).ok().and_then(|text| Plain::new(text, &mut pass).document()).is_some()
    }

    #[test]
    fn body_kinds_come_from_the_content_type_in_any_case() {
        let kind_of = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, ct.parse().expect("a header value"));
            kind(&headers)
        };
        assert_eq!(kind_of("application/x-www-form-urlencoded"), Some(Kind::Form));
        assert_eq!(kind_of(" Application/JSON ; charset=utf-8"), Some(Kind::Json));
        assert_eq!(kind_of("application/problem+JSON"), Some(Kind::Json));
        assert_eq!(kind_of("Multipart/Form-Data; Boundary=\"x y\""), Some(Kind::Multipart(vec!["x y".to_owned()])));
        assert_eq!(kind_of("multipart/form-data; boundary="), None);
        assert_eq!(kind_of("multipart/form-data"), None);
        assert_eq!(kind_of("TEXT/XML"), Some(Kind::Xml));
        assert_eq!(kind_of("application/xml"), Some(Kind::Xml));
        assert_eq!(kind_of("application/soap+xml; charset=utf-8"), Some(Kind::Xml));
        assert_eq!(kind_of("Text/Plain"), Some(Kind::Text));
        assert_eq!(kind_of("text/"), Some(Kind::Text));
        assert_eq!(kind_of("image/png"), None);
        assert_eq!(kind_of("json"), None);
        assert_eq!(kind_of(""), None);
        assert_eq!(kind(&HeaderMap::new()), Some(Kind::Unlabelled));
    }

    #[test]
    fn the_plain_scanner_takes_plain_json_and_leaves_the_rest_to_serde_json() {
        for doc in [
            &br#"{"a": [1, -2.5, 0, true, false, null, "x y", {}], "b": {"c": []}}"#[..],
            b" \"caf\xc3\xa9\" ",
            b"-0",
            b"123456789012345",
        ] {
            assert!(plain(doc), "{}", String::from_utf8_lossy(doc));
        }
        let deep = [&[b'['; 101][..], &[b']'; 101][..]].concat();
        for doc in [
            &br#"{"a": "x\ny"}"#[..],
            br#""x\"y""#,
            b"1e5",
            b"1E5",
            b"01",
            b"1.",
            b"-",
            b"1234567890123456",
            b"[1,]",
            b"{\"a\" 1}",
            b"{\"a\": 1,}",
            b"\"tab\tin a string\"",
            b"\"\xff\"",
            b"[1] x",
            b"",
            b"tru",
            &deep,
        ] {
            assert!(!plain(doc), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn an_expected_string_is_passed_over_only_when_it_is_the_whole_string() {
        let waf = Waf::new(Settings::default());
        let mut scan = Scan::default();
        let mut pass = Pass::new(&waf, "r", &mut scan);
        for (doc, whole) in [(r#""abc","#, true), (r#""abcd""#, false), (r#""ab""#, false), (r#""abc\"""#, false)] {
            let mut plain = Plain::new(doc, &mut pass);
            plain.expected[1] = "abc";
            assert_eq!(plain.skip_expected(1), whole.then_some("abc"), "{doc}");
            assert_eq!(plain.at, if whole { 5 } else { 0 }, "{doc}");
            assert_eq!(plain.skip_expected(0), None, "{doc}: an empty slot expects nothing");
        }
    }

    /// JSON-ish bytes, so random documents are often valid or nearly so.
    const JSONISH: &[u8] = b"{}[]:,\" \t\n\r-+.0123456789eEtruefalsn\\ax\xc3\xa9\x01";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

        /// The eight-byte stop search finds the first byte the class table says ends a JSON
        /// string, in any eight bytes.
        #[test]
        fn json_stops_finds_the_first_stop_byte(
            bytes in prop::array::uniform8(prop_oneof![any::<u8>(), prop::sample::select(&b"\"\\\x00\x1f\x20\x21\x7f\x80\xa0\xff"[..])]),
        ) {
            let first = bytes.iter().position(|&b| detect::CLASS[usize::from(b)] & detect::JSON_STOP != 0);
            let stops = json_stops(u64::from_le_bytes(bytes));
            prop_assert_eq!((stops != 0).then(|| (stops.trailing_zeros() / 8) as usize), first, "{:?}", bytes);
        }

        /// Whatever the plain scanner takes on, serde_json parses too (so the JSON Pointer
        /// walk, not the string-literal fallback, is the right reading of it).
        #[test]
        fn what_the_plain_scanner_takes_serde_json_parses(
            doc in prop::collection::vec(prop::sample::select(JSONISH), 0..40),
        ) {
            if plain(&doc) {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&doc).is_ok(), "{:?}", String::from_utf8_lossy(&doc));
            }
        }
    }
}
