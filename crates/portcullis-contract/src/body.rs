//! A JSON body read in place for validation. Building a `serde_json::Value` tree — a
//! `BTreeMap` node and a `String` per member, all freed again after the check — was most of
//! a body's validation cost. Here the body becomes one flat vector of entries (a tape) whose
//! strings borrow from the body unless they hold escapes, and the validator walks it through
//! the `jsonschema` crate's documented representation traits ([`jsonschema::json`]).
//!
//! The bytes are parsed by `serde_json`'s own parser, so what is JSON here is exactly what
//! `serde_json::from_slice` accepts (RFC 8259, its recursion limit of 128, nothing after the
//! value), numbers are the same [`Number`]s, and a name repeated within an object counts
//! once with its last value, as in a `Value`. Only an error's reported instance is ever
//! turned into a `Value`, and only when read (never, for the masked messages we send).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object, cmp};
use jsonschema::types::JsonType;
use jsonschema_value::LazyInstance;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

mod scan;

/// The representation the body validators are compiled for.
pub(crate) struct Body;

/// One parsed body: its entries in document order.
pub(crate) struct Parsed<'a> {
    source: &'a [u8],
    entries: Vec<Entry<'a>>,
    /// The strings that held escapes, unescaped ([`Text::Unescaped`] indexes them). Apart,
    /// so that no entry owns memory and freeing the tape is one deallocation.
    unescaped: Vec<String>,
    /// The tape index of a member name that repeats another of its object or differs from it
    /// only in letter case ([`fold`]), if any, and which.
    ambiguous: Option<(u32, Clash)>,
}

/// A string of the body: borrowed from it, or unescaped into [`Parsed::unescaped`].
#[derive(Debug, Clone, Copy)]
enum Text<'a> {
    Body(&'a str),
    Unescaped(u32),
}

/// One tape entry. A container is followed by its contents and knows where they end, so a
/// sibling is found without walking them.
#[derive(Debug)]
enum Entry<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Text<'a>),
    /// `len` elements follow; `end` is the index after the last of them.
    Array {
        len: u32,
        end: u32,
    },
    /// Members follow, each a [`Entry::Key`] then its value; `len` counts distinct names.
    Object {
        len: u32,
        end: u32,
    },
    /// A member's name; `shadowed` when a later member of the object has the same name.
    Key {
        name: Text<'a>,
        shadowed: bool,
    },
}

/// The index after the entry at `at` and everything it contains.
fn skip(entries: &[Entry<'_>], at: usize) -> usize {
    match entries.get(at) {
        Some(Entry::Array { end, .. } | Entry::Object { end, .. }) => *end as usize,
        _ => at + 1,
    }
}

/// Parses `bytes` as one JSON value; the error is `serde_json`'s, as `from_slice` gives it.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, serde_json::Error> {
    match scan::scan(bytes) {
        Some(parsed) => Ok(parsed),
        None => parse_with_serde(bytes),
    }
}

/// [`parse`] by `serde_json`'s parser: what decides every body the scan leaves to it.
fn parse_with_serde(bytes: &[u8]) -> Result<Parsed<'_>, serde_json::Error> {
    // About one entry per eight bytes in ordinary bodies; the reservation is capped so a body
    // of long strings or whitespace does not reserve several times its size up front.
    let capacity = (bytes.len() / 8).min(4096) + 1;
    let mut builder = Builder::with_capacity(capacity);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Seed(&mut builder).deserialize(&mut de)?;
    de.end()?;
    Ok(builder.finish(bytes))
}

impl Parsed<'_> {
    /// The JSON pointer of a member name that repeats an earlier name of its object
    /// (`{"qty":-1,"qty":1}`) or equals it but for letter case (`{"role":"user","Role":"admin"}`),
    /// and which of the two. JSON parsers disagree on such a body: most keep a repeated
    /// name's last value, Go's gjson and jsonparser the first; Go's `encoding/json` fills a
    /// struct field from either spelling, the last one winning. The value a schema checked
    /// need not be the value the backend reads.
    pub(crate) fn ambiguous_name(&self) -> Option<(String, Clash)> {
        let (target, clash) = self.ambiguous?;
        let target = target as usize;
        let mut pointer = String::new();
        let mut at = 0;
        // Descend from the root into the container holding `target`.
        while at < target {
            match self.entries.get(at)? {
                Entry::Object { end, .. } | Entry::Array { end, .. } if (*end as usize) <= target => return None,
                Entry::Object { .. } => {
                    at += 1;
                    while at < target {
                        let value = at + 1;
                        let next = skip(&self.entries, value);
                        if next > target {
                            let Entry::Key { name, .. } = self.entries.get(at)? else { return None };
                            pointer.push('/');
                            pointer.push_str(&pointer_segment(resolve(&self.unescaped, name)));
                            at = value;
                            break;
                        }
                        at = next;
                    }
                    if at == target {
                        break;
                    }
                }
                Entry::Array { .. } => {
                    let mut index = 0_usize;
                    at += 1;
                    while at < target {
                        let next = skip(&self.entries, at);
                        if next > target {
                            pointer.push('/');
                            pointer.push_str(&index.to_string());
                            break;
                        }
                        at = next;
                        index += 1;
                    }
                }
                _ => return None,
            }
        }
        let Entry::Key { name, .. } = self.entries.get(target)? else { return None };
        pointer.push('/');
        pointer.push_str(&pointer_segment(resolve(&self.unescaped, name)));
        Some((pointer, clash))
    }

    /// The root value.
    pub(crate) fn root(&self) -> BodyNode<'_> {
        BodyNode { source: self.source, entries: &self.entries, unescaped: &self.unescaped, at: 0 }
    }
}

struct Builder<'a> {
    entries: Vec<Entry<'a>>,
    /// The key indices of the objects being built, innermost last (one buffer for all).
    keys: Vec<KeyRef>,
    unescaped: Vec<String>,
    /// The first member name found to repeat another of its object or to differ from it only
    /// in letter case.
    ambiguous: Option<(u32, Clash)>,
}

/// A member name being collected: its index on the tape and a digest of it (names whose
/// digests differ differ, so most pairs are told apart without reading them).
#[derive(Clone, Copy)]
struct KeyRef {
    at: u32,
    digest: u32,
}

impl KeyRef {
    /// Equal for names equal under letter-case folding ([`fold`]), so that names a backend
    /// may take for one another meet in [`Builder::close_object`]'s comparisons.
    fn digest(name: &str) -> u32 {
        if name.is_ascii() { Self::digest_ascii(name.as_bytes()) } else { Self::digest_ascii(fold(name).as_bytes()) }
    }

    /// [`Self::digest`] of a name known to be ASCII (or already folded).
    fn digest_ascii(bytes: &[u8]) -> u32 {
        let (first, last) = (bytes.first().copied().unwrap_or(0), bytes.last().copied().unwrap_or(0));
        // The length's low bits only: this is a filter, not an identity.
        ((bytes.len() as u32) << 16)
            | (u32::from(first.to_ascii_lowercase()) << 8)
            | u32::from(last.to_ascii_lowercase())
    }

    /// One of 64 bits for a digest: names whose bits differ differ.
    fn bit(digest: u32) -> u64 {
        1_u64 << (digest.wrapping_mul(0x9E37_79B9) >> 26)
    }
}

/// `name` with every character replaced by one representative of its simple case-folding
/// class: two names fold equal when Go's `encoding/json` would match one against the other
/// (`bytes.EqualFold`: `Role` for `role`, the Kelvin sign for `k`, `ſ` for `s`).
fn fold(name: &str) -> Cow<'_, str> {
    fn one(c: char) -> char {
        let mut upper = c.to_uppercase();
        let (Some(u), None) = (upper.next(), upper.next()) else { return c };
        let mut lower = u.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    }
    if name.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.chars().map(one).collect())
}

impl<'a> Builder<'a> {
    fn with_capacity(entries: usize) -> Self {
        Self { entries: Vec::with_capacity(entries), keys: Vec::new(), unescaped: Vec::new(), ambiguous: None }
    }

    fn finish(self, source: &'a [u8]) -> Parsed<'a> {
        Parsed { source, entries: self.entries, unescaped: self.unescaped, ambiguous: self.ambiguous }
    }

    /// `string` as an entry's text (`None` past `u32::MAX` unescaped strings).
    fn text(&mut self, string: Cow<'a, str>) -> Option<Text<'a>> {
        match string {
            Cow::Borrowed(s) => Some(Text::Body(s)),
            Cow::Owned(s) => {
                let at = u32::try_from(self.unescaped.len()).ok()?;
                self.unescaped.push(s);
                Some(Text::Unescaped(at))
            }
        }
    }

    fn push_string(&mut self, string: Cow<'a, str>) -> Option<()> {
        let text = self.text(string)?;
        self.entries.push(Entry::String(text));
        Some(())
    }

    fn index(&self) -> Result<u32, String> {
        u32::try_from(self.entries.len()).map_err(|_| "the body has too many values".to_owned())
    }

    /// Appends a member's name (`None` past `u32::MAX` entries).
    fn push_key(&mut self, name: Cow<'a, str>) -> Option<()> {
        let digest = KeyRef::digest(&name);
        let name = self.text(name)?;
        self.push_key_text(name, digest)
    }

    /// Appends a member's name already placed, and its [`KeyRef::digest`].
    fn push_key_text(&mut self, name: Text<'a>, digest: u32) -> Option<()> {
        let at = u32::try_from(self.entries.len()).ok()?;
        self.keys.push(KeyRef { at, digest });
        self.entries.push(Entry::Key { name, shadowed: false });
        Some(())
    }

    /// [`Self::close_object`] for the object whose entry is at `at` and whose members end
    /// before `end`, its names gathered from the tape (the scan keeps no list of them).
    fn close_object_at(&mut self, at: u32, end: u32) -> u32 {
        let first = self.keys.len();
        let (mut key, end) = (at as usize + 1, end as usize);
        while key < end {
            if let Some(Entry::Key { name, .. }) = self.entries.get(key) {
                let digest = KeyRef::digest(resolve(&self.unescaped, name));
                self.keys.push(KeyRef { at: key as u32, digest });
            }
            key = skip(&self.entries, key + 1);
        }
        self.close_object(first)
    }

    /// Marks every name of the object whose keys start at `keys[first..]` that a later
    /// member repeats, and returns the number of distinct names.
    fn close_object(&mut self, first: usize) -> u32 {
        /// Up to this many names are compared pairwise; more go through a hash set (SipHash,
        /// randomly keyed: a body cannot choose colliding names).
        const PAIRWISE: usize = 16;
        let Self { entries, keys, unescaped, ambiguous: first_ambiguous } = self;
        let object = keys.get(first..).unwrap_or_default();
        // Most objects have a few names, all different: one bit per digest (a hash of it into
        // 64 bits) tells them apart in one pass; only a shared bit needs the comparisons.
        if object.len() <= PAIRWISE {
            let mut bits = 0_u64;
            let mut clash = false;
            for key in object {
                let bit = KeyRef::bit(key.digest);
                clash |= bits & bit != 0;
                bits |= bit;
            }
            if !clash {
                let distinct = object.len();
                keys.truncate(first);
                return u32::try_from(distinct).unwrap_or(u32::MAX);
            }
        }
        let name = |at: u32| match entries.get(at as usize) {
            Some(Entry::Key { name, .. }) => resolve(unescaped, name),
            _ => "",
        };
        // Repeated names are rare: found first, marked after, without allocating for none.
        let mut shadowed = [0_u32; PAIRWISE];
        let mut count = 0;
        let mut ambiguous = None;
        if object.len() <= PAIRWISE {
            for (i, this) in object.iter().enumerate() {
                let mut repeated = false;
                for later in object[i + 1..].iter().filter(|later| later.digest == this.digest) {
                    let (a, b) = (name(this.at), name(later.at));
                    if a == b {
                        repeated = true;
                        ambiguous.get_or_insert((later.at, Clash::Repeated));
                    } else if ambiguous.is_none() && fold(a) == fold(b) {
                        ambiguous = Some((later.at, Clash::Case));
                    }
                }
                if repeated {
                    shadowed[count] = this.at;
                    count += 1;
                }
            }
            for &at in &shadowed[..count] {
                mark_shadowed(entries, at);
            }
        } else {
            let mut repeated = Vec::new();
            let mut seen = std::collections::HashMap::with_capacity(object.len());
            for key in object.iter().rev() {
                let this = name(key.at);
                match seen.insert(fold(this), (this, key.at)) {
                    Some((other, later)) if other == this => {
                        repeated.push(key.at);
                        ambiguous.get_or_insert((later, Clash::Repeated));
                    }
                    Some((_, later)) if ambiguous.is_none() => ambiguous = Some((later, Clash::Case)),
                    _ => {}
                }
            }
            count = repeated.len();
            for at in repeated {
                mark_shadowed(entries, at);
            }
        }
        if first_ambiguous.is_none() {
            *first_ambiguous = ambiguous;
        }
        let distinct = object.len() - count;
        keys.truncate(first);
        u32::try_from(distinct).unwrap_or(u32::MAX)
    }
}

/// How a member name clashes with an earlier one of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clash {
    /// The same name.
    Repeated,
    /// The same name but for letter case.
    Case,
}

/// A JSON pointer segment for `name`.
fn pointer_segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The string `text` stands for.
fn resolve<'t>(unescaped: &'t [String], text: &Text<'t>) -> &'t str {
    match *text {
        Text::Body(s) => s,
        Text::Unescaped(at) => unescaped.get(at as usize).map_or("", String::as_str),
    }
}

/// Marks the name at `at` as repeated later in its object.
fn mark_shadowed(entries: &mut [Entry<'_>], at: u32) {
    if let Some(Entry::Key { shadowed, .. }) = entries.get_mut(at as usize) {
        *shadowed = true;
    }
}

/// Appends one value (and everything in it) to the tape.
struct Seed<'b, 'a>(&'b mut Builder<'a>);

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.entries.push(Entry::Null);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.entries.push(Entry::Bool(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // As `Value` does: a number that is not finite (never parsed from JSON) is null.
        self.0.entries.push(Number::from_f64(v).map_or(Entry::Null, Entry::Number));
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.0.push_string(Cow::Borrowed(v)).ok_or_else(|| de::Error::custom("the body has too many strings"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_string(Cow::Owned(v.to_owned())).ok_or_else(|| de::Error::custom("the body has too many strings"))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.0.push_string(Cow::Owned(v)).ok_or_else(|| de::Error::custom("the body has too many strings"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.index().map_err(de::Error::custom)?;
        self.0.entries.push(Entry::Array { len: 0, end: 0 });
        let mut len = 0_u32;
        while seq.next_element_seed(Seed(self.0))?.is_some() {
            len = len.saturating_add(1);
        }
        let end = self.0.index().map_err(de::Error::custom)?;
        self.0.entries[at as usize] = Entry::Array { len, end };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.index().map_err(de::Error::custom)?;
        self.0.entries.push(Entry::Object { len: 0, end: 0 });
        let first = self.0.keys.len();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            self.0.push_key(name).ok_or_else(|| de::Error::custom("the body has too many values"))?;
            map.next_value_seed(Seed(self.0))?;
        }
        let len = self.0.close_object(first);
        let end = self.0.index().map_err(de::Error::custom)?;
        self.0.entries[at as usize] = Entry::Object { len, end };
        Ok(())
    }
}

/// A member's name, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

impl Json for Body {
    type Node<'a> = BodyNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // A lookup scans the members, so one pass over them always beats a lookup per name.
    const KEYS_PER_LOOKUP: usize = 1 << 16;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(BodyNode<'_>) -> T) -> T {
        let entries = [Entry::String(Text::Body(string))];
        f(BodyNode { source: &[], entries: &entries, unescaped: &[], at: 0 })
    }
}

/// One value of a parsed body.
#[derive(Clone, Copy)]
pub(crate) struct BodyNode<'a> {
    /// The body's bytes, from which an error's instance is built if it is ever read.
    source: &'a [u8],
    entries: &'a [Entry<'a>],
    unescaped: &'a [String],
    at: usize,
}

impl<'a> BodyNode<'a> {
    fn entry(&self) -> &'a Entry<'a> {
        // `at` always names an entry; a missing one reads as null rather than panicking.
        static NULL: Entry<'static> = Entry::Null;
        self.entries.get(self.at).unwrap_or(&NULL)
    }

    fn resolve(&self, text: &'a Text<'a>) -> &'a str {
        resolve(self.unescaped, text)
    }

    fn build_value(self) -> Value {
        match self.entry() {
            Entry::Null | Entry::Key { .. } => Value::Null,
            Entry::Bool(b) => Value::Bool(*b),
            Entry::Number(n) => Value::Number(n.clone()),
            Entry::String(s) => Value::String(self.resolve(s).to_owned()),
            Entry::Array { .. } => {
                Value::Array(BodyArray(self).elements().map(|element| element.build_value()).collect())
            }
            Entry::Object { .. } => Value::Object(
                BodyObject(self).members().map(|(name, value)| (name.to_owned(), value.build_value())).collect(),
            ),
        }
    }
}

/// The instance of an error, built when read: the body parsed again, the entry at `tag`.
fn instance_at(source: &[u8], tag: u32) -> Value {
    parse(source).map_or(Value::Null, |parsed| BodyNode { at: tag as usize, ..parsed.root() }.build_value())
}

impl<'a> Node<'a, Body> for BodyNode<'a> {
    type Object = BodyObject<'a>;
    type Array = BodyArray<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<BodyObject<'a>> {
        matches!(self.entry(), Entry::Object { .. }).then_some(BodyObject(*self))
    }

    fn as_array(&self) -> Option<BodyArray<'a>> {
        matches!(self.entry(), Entry::Array { .. }).then_some(BodyArray(*self))
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.entry() {
            Entry::String(s) => Some(Cow::Borrowed(self.resolve(s))),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self.entry() {
            Entry::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry() {
            Entry::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.entry(), Entry::Null)
    }

    fn json_type(&self) -> JsonType {
        match self.entry() {
            Entry::Null | Entry::Key { .. } => JsonType::Null,
            Entry::Bool(_) => JsonType::Boolean,
            Entry::Number(_) => JsonType::Number,
            Entry::String(_) => JsonType::String,
            Entry::Array { .. } => JsonType::Array,
            Entry::Object { .. } => JsonType::Object,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let Entry::String(s) = self.entry() else { return None };
        let s = self.resolve(s);
        // A code point takes one to four bytes: the byte length often decides it uncounted.
        let bytes = s.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match expected {
            Value::Null => self.is_null(),
            Value::Bool(b) => self.as_boolean() == Some(*b),
            Value::Number(n) => self.as_number().is_some_and(|got| cmp::equal_numbers(&got, n)),
            Value::String(s) => self.as_string().is_some_and(|got| got == s.as_str()),
            Value::Array(items) => self.as_array().is_some_and(|array| {
                array.len() == items.len() && array.elements().zip(items).all(|(got, want)| got.equals_value(want))
            }),
            Value::Object(map) => self.as_object().is_some_and(|object| {
                object.len() == map.len()
                    && map.iter().all(|(name, want)| object.find(name).is_some_and(|got| got.equals_value(want)))
            }),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.build_value())
    }

    fn lazy_value(&self) -> LazyInstance<'a> {
        match u32::try_from(self.at) {
            // A name node stands alone (no source): it is built now, being one string.
            Ok(tag) if !self.source.is_empty() => {
                LazyInstance::Deferred { bytes: self.source, tag, make: instance_at, cell: OnceLock::new() }
            }
            _ => LazyInstance::Ready(self.to_value()),
        }
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Entry<'_>>(self.entry()) as usize))
    }
}

/// An object of a parsed body.
#[derive(Clone, Copy)]
pub(crate) struct BodyObject<'a>(BodyNode<'a>);

impl<'a> BodyObject<'a> {
    fn find(&self, name: &str) -> Option<BodyNode<'a>> {
        self.members().find(|(key, _)| *key == name).map(|(_, value)| value)
    }
}

/// The members of an object, a repeated name only at its last occurrence.
pub(crate) struct Members<'a> {
    node: BodyNode<'a>,
    at: usize,
    end: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, BodyNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let entries = self.node.entries;
        while self.at < self.end {
            let key = self.at;
            let value = key + 1;
            self.at = skip(entries, value);
            if let Some(Entry::Key { name, shadowed: false }) = entries.get(key) {
                return Some((self.node.resolve(name), BodyNode { at: value, ..self.node }));
            }
        }
        None
    }
}

impl<'a> Object<'a, Body> for BodyObject<'a> {
    type Node = BodyNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        match self.0.entry() {
            Entry::Object { len, .. } => *len as usize,
            _ => 0,
        }
    }

    fn get(&self, key: &Box<str>) -> Option<BodyNode<'a>> {
        self.find(key)
    }

    fn members(&self) -> Members<'a> {
        let end = match self.0.entry() {
            Entry::Object { end, .. } => *end as usize,
            _ => self.0.at,
        };
        Members { node: self.0, at: self.0.at + 1, end }
    }
}

/// An array of a parsed body.
#[derive(Clone, Copy)]
pub(crate) struct BodyArray<'a>(BodyNode<'a>);

/// The elements of an array.
pub(crate) struct Elements<'a> {
    node: BodyNode<'a>,
    at: usize,
    end: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = BodyNode<'a>;

    fn next(&mut self) -> Option<BodyNode<'a>> {
        (self.at < self.end).then(|| {
            let element = BodyNode { at: self.at, ..self.node };
            self.at = skip(self.node.entries, self.at);
            element
        })
    }
}

impl<'a> Array<'a, Body> for BodyArray<'a> {
    type Node = BodyNode<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        match self.0.entry() {
            Entry::Array { len, .. } => *len as usize,
            _ => 0,
        }
    }

    fn elements(&self) -> Elements<'a> {
        let end = match self.0.entry() {
            Entry::Array { end, .. } => *end as usize,
            _ => self.0.at,
        };
        Elements { node: self.0, at: self.0.at + 1, end }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

    use super::*;
    use serde_json::json;

    #[test]
    fn the_representation_meets_the_validators_contract() {
        let text = serde_json::to_vec(&jsonschema_value::conformance::document()).unwrap();
        let parsed = parse(&text).unwrap();
        jsonschema_value::conformance::assert_conformance::<Body>(&parsed.root());
    }

    #[test]
    fn it_reads_back_as_the_value_serde_json_parses() {
        let texts = [
            r#"{"a":[1,-2,3.5,-0.0,1e-400,"x\u00e9\n",true,null,{}],"b":{"c":{"d":[[]]}},"é":"ü"}"#,
            r#"{"k":1,"k":{"z":2},"j":0,"k":[3]}"#,
            r#"[{"a":1,"a":2},{"b":1}]"#,
            r#""just a string""#,
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            " [ ] ",
        ];
        for text in texts {
            let expected: Result<Value, _> = serde_json::from_str(text);
            let got = parse(text.as_bytes()).map(|p| p.root().build_value());
            assert_eq!(got.as_ref().ok(), expected.as_ref().ok(), "{text}");
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused_with_its_message() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        for text in
            ["", "{", "[1,]", "{\"a\":1,}", "01", "\"\\x\"", "1e400", "[1] 2", "nul", "\"\u{1}\"", deep.as_str()]
        {
            let expected = serde_json::from_str::<Value>(text).map(|_| ()).map_err(|e| e.to_string());
            let got = parse(text.as_bytes()).map(|_| ()).map_err(|e| e.to_string());
            assert!(expected.is_err(), "{text}");
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn a_repeated_name_counts_once_with_its_last_value() {
        let parsed = parse(br#"{"k":1,"j":true,"k":"last"}"#).unwrap();
        let object = parsed.root().as_object().unwrap();
        assert_eq!(object.len(), 2);
        assert_eq!(object.get(&Body::prepare_key("k")).and_then(|n| n.as_string()).as_deref(), Some("last"));
        let names: Vec<&str> = object.members().map(|(name, _)| name).collect();
        assert_eq!(names, ["j", "k"]);
        assert!(parsed.root().equals_value(&json!({ "j": true, "k": "last" })));
        assert!(!parsed.root().equals_value(&json!({ "j": true, "k": 1 })));
    }

    #[test]
    fn repeated_names_are_found_among_up_to_sixteen_and_past_them() {
        // Names of one length and ends (one digest), of many, and a repeat at either end.
        for n in [1_usize, 2, 4, 7, 8, 9, 20] {
            for repeat in [None, Some(0), Some(n - 1)] {
                let mut members: Vec<String> = (0..n).map(|i| format!(r#""k{i:02}x":{i}"#)).collect();
                members.extend((0..n).map(|i| format!(r#""{}":{i}"#, "ab".repeat(i + 1))));
                if let Some(r) = repeat {
                    members.push(format!(r#""k{r:02}x":"again""#));
                }
                let text = format!("{{{}}}", members.join(","));
                let expected: Value = serde_json::from_str(&text).unwrap();
                let parsed = parse(text.as_bytes()).unwrap();
                assert_eq!(parsed.root().as_object().unwrap().len(), expected.as_object().unwrap().len(), "{text}");
                assert_eq!(parsed.root().build_value(), expected, "{text}");
            }
        }
    }

    #[test]
    fn names_that_differ_only_in_letter_case_are_found_with_their_place() {
        for (text, place) in [
            (r#"{"role":"user","Role":"admin"}"#, Some("/Role")),
            (r#"{"Role":"admin","role":"user"}"#, Some("/role")),
            (r#"{"a":[1,{"b":{"x":1,"ROLE":2,"role":3}}]}"#, Some("/a/1/b/role")),
            (r#"{"a":{"k":1},"b":{"\u212aey":1,"key":2}}"#, Some("/b/key")),
            (r#"{"ſ":1,"S":2}"#, Some("/S")),
            (r#"{"a/b":{"x":1,"X":2}}"#, Some("/a~1b/X")),
            (r#"{"role":"user","role":"admin","rolE2":1}"#, Some("/role")),
            (r#"{"a":1,"b":2,"c":3}"#, None),
            (r#"{"role":"user","RoleX":"admin","ß":1,"ss":2,"SS":3}"#, Some("/SS")),
            (r#"[{"id":1},{"ID":2}]"#, None),
        ] {
            let parsed = parse(text.as_bytes()).unwrap();
            let found = parsed.ambiguous_name();
            assert_eq!(found.as_ref().map(|(p, _)| p.as_str()), place, "{text}");
            let repeated = text.contains(r#""role":"user","role""#);
            assert!(found.is_none_or(|(_, clash)| (clash == Clash::Repeated) == repeated), "{text}");
        }
        // Past sixteen names (the hashed comparison), at either end.
        for at in [0_usize, 19] {
            let mut members: Vec<String> = (0..20).map(|i| format!(r#""name{i}":{i}"#)).collect();
            members.push(format!(r#""NAME{at}":"again""#));
            let text = format!("{{{}}}", members.join(","));
            let found = parse(text.as_bytes()).unwrap().ambiguous_name().map(|(p, _)| p);
            assert!(found == Some(format!("/NAME{at}")) || found == Some(format!("/name{at}")), "{found:?}");
            let text = text.replace(&format!("NAME{at}"), &format!("name{at}"));
            let found = parse(text.as_bytes()).unwrap().ambiguous_name();
            assert_eq!(found, Some((format!("/name{at}"), Clash::Repeated)), "{text}");
        }
        let plain: Vec<String> = (0..20).map(|i| format!(r#""name{i}":{i}"#)).collect();
        assert_eq!(parse(format!("{{{}}}", plain.join(",")).as_bytes()).unwrap().ambiguous_name(), None);
    }

    #[test]
    fn a_name_unescaped_outside_ascii_is_folded_wherever_its_bytes_fall() {
        // The scan tells ASCII names (digested as they are) from others (folded first) eight
        // bytes at a time: a non-ASCII character in any step, before or after the quote's,
        // must still meet its ASCII twin.
        for pad in 0..40 {
            let prefix = "p".repeat(pad);
            for (name, twin) in
                [(format!("{prefix}\u{212a}ey"), format!("{prefix}key")), (format!("{prefix}ſ"), format!("{prefix}S"))]
            {
                for text in [format!(r#"{{"{name}":1,"{twin}":2}}"#), format!(r#"{{"{twin}":1,"{name}":2}}"#)] {
                    let parsed = parse(text.as_bytes()).unwrap();
                    let found = parsed.ambiguous_name().map(|(_, clash)| clash);
                    assert_eq!(found, Some(Clash::Case), "{text}");
                }
            }
            let ascii = format!(r#"{{"{prefix}a":1,"{prefix}b":2,"x{prefix}":3}}"#);
            assert_eq!(parse(ascii.as_bytes()).unwrap().ambiguous_name(), None, "{ascii}");
        }
    }

    #[test]
    fn validators_answer_as_they_do_on_a_value() {
        let schema = json!({
            "type": "object",
            "required": ["s", "n"],
            "properties": {
                "s": { "type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-zé]+$" },
                "n": { "type": "integer", "minimum": 1, "multipleOf": 2 },
                "e": { "enum": ["x", 2, { "a": [1] }] },
                "u": { "type": "array", "uniqueItems": true, "items": { "type": ["number", "null"] } },
                "c": { "const": { "x": [true, null] } },
            },
            "propertyNames": { "maxLength": 2 },
            "additionalProperties": false,
        });
        let on_body = jsonschema::options_for::<Body>().build(&schema).unwrap();
        let on_value = jsonschema::validator_for(&schema).unwrap();
        let instances = [
            r#"{"s":"ab","n":2}"#,
            r#"{"s":"éé","n":4,"e":{"a":[1]},"u":[1,null,2.5],"c":{"x":[true,null]}}"#,
            r#"{"s":"a","n":3}"#,
            r#"{"s":"abcd","n":1.5}"#,
            r#"{"s":"ab","n":2,"e":{"a":[2]}}"#,
            r#"{"s":"ab","n":2,"u":[1,1.0]}"#,
            r#"{"s":"ab","n":2,"c":{"x":[true]}}"#,
            r#"{"s":"ab","n":2,"zzz":1}"#,
            r#"{"s":"AB","n":2,"s":"ab"}"#,
            r#"{"n":2}"#,
            r#"[1,2]"#,
        ];
        for text in instances {
            let value: Value = serde_json::from_str(text).unwrap();
            let parsed = parse(text.as_bytes()).unwrap();
            assert_eq!(on_body.is_valid(parsed.root()), on_value.is_valid(&value), "{text}");
            let mut from_body: Vec<(String, String)> = on_body
                .iter_errors(parsed.root())
                .map(|e| (e.instance_path().as_str().to_owned(), e.masked().to_string()))
                .collect();
            let mut from_value: Vec<(String, String)> = on_value
                .iter_errors(&value)
                .map(|e| (e.instance_path().as_str().to_owned(), e.masked().to_string()))
                .collect();
            from_body.sort();
            from_value.sort();
            assert_eq!(from_body, from_value, "{text}");
            for error in on_body.iter_errors(parsed.root()) {
                let at = error.instance_path().as_str();
                assert_eq!(error.instance().as_ref(), value.pointer(at).unwrap(), "{text} at {at}");
            }
        }
    }
}
