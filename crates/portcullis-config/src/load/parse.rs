//! YAML text → a JSON value tree plus where each node was written.
//!
//! Values come from `serde-saphyr`, which owns YAML semantics (tags, anchors, merge keys,
//! duplicate keys, resource budgets). Locations come from a second, cheap walk over the event
//! stream of `granit-parser`, the parser underneath it, which is only done once the values
//! parsed, so both walks see the same single document.
//!
//! Scalars follow YAML 1.2's core schema: only `true`/`false` (and their capitalised forms)
//! are booleans, so `y`, `no`, `on` and `off` are text, not YAML 1.1's booleans (the "Norway
//! problem"). A plain scalar that does read as a number or boolean keeps its source text
//! beside the value, so that where the config schema wants text the text is used as written
//! (`1.0` stays `1.0`, not `1`; see `scalars`).

use std::collections::HashMap;
use std::path::Path;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::Value;
use serde_saphyr::options::NonFiniteFloatPolicy;

use crate::{Diagnostic, Diagnostics, KeyPath, Location, Locations};

/// Bounds the location map when aliases copy the locations of what they refer to; past it a
/// node is placed at its nearest recorded ancestor, which is still a useful answer.
const MAX_LOCATED_NODES: usize = 500_000;

/// A parsed document.
pub(super) struct Parsed {
    pub(super) value: Value,
    pub(super) locations: Locations,
    /// JSON pointer → source text of each plain (unquoted, untagged) scalar value that may
    /// have been read as a number or a boolean.
    pub(super) plain: HashMap<String, String>,
}

/// Parses one YAML document; a syntax error is one diagnostic at `(document)` with its place.
pub(super) fn parse(text: &str, file: &Path) -> Result<Parsed, Diagnostics> {
    let options = serde_saphyr::options! {
        // YAML 1.2 core: `yes`/`no`/`on`/`off`/`y`/`n` are text.
        strict_booleans: true,
        // `.inf` and `.nan` arrive as text (and are then restored to their spelling), so a
        // name such as `.inf` is not a parse error and a number field reports them as text.
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
    };
    let value = serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| syntax_error(&e, file))?;
    let walker = locate(text);
    let locations = Locations { file: file.to_path_buf(), nodes: walker.nodes };
    Ok(Parsed { value, locations, plain: walker.plain })
}

/// The locations of every node of a document already parsed (a JSON text parses as YAML
/// flow style, so this places JSON documents too).
pub(super) fn locations(text: &str, file: &Path) -> Locations {
    Locations { file: file.to_path_buf(), nodes: locate(text).nodes }
}

/// Whether a plain scalar could have been read as something other than text: a YAML 1.2
/// boolean or a number (`1`, `-2`, `+3`, `.5`, `0x1F`, `1e3`, `.inf`). Null is not included:
/// `~`, `null` and an empty value mean nothing, in a string field too.
fn may_be_typed(text: &str) -> bool {
    text.eq_ignore_ascii_case("true")
        || text.eq_ignore_ascii_case("false")
        || text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

fn syntax_error(error: &serde_saphyr::Error, file: &Path) -> Diagnostics {
    let inner = error.without_snippet();
    let message = if matches!(inner, serde_saphyr::Error::MultipleDocuments { .. }) {
        "the config file must hold a single YAML document; found another one (`---`)".to_owned()
    } else {
        format!("invalid YAML: {}", reword(strip_position(&inner.to_string())))
    };
    let location = error.location().and_then(|l| {
        let line = usize::try_from(l.line()).ok().filter(|&n| n > 0)?;
        let column = usize::try_from(l.column()).ok()?.max(1);
        Some(Location { line, column })
    });
    Diagnostics(vec![Diagnostic { file: file.to_path_buf(), path: KeyPath::root(), location, message }])
}

/// serde-saphyr ends its messages with " at line N, column M"; the diagnostic already says
/// where, so the position would only be printed twice.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => &message[..at],
        _ => message,
    }
}

/// A few serde-saphyr messages speak to the programmer calling it; say it to the user.
fn reword(message: &str) -> String {
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split_once(", set DuplicateKeyPolicy").map_or(key, |(key, _)| key);
        return format!("duplicate key `{key}`");
    }
    if message.starts_with("cannot deserialize null into string") {
        return "a mapping key is empty".to_owned();
    }
    message.to_owned()
}

/// JSON pointer → location for every node of the (first) document, and the source text of
/// the plain scalars that may have been read as numbers or booleans.
fn locate(text: &str) -> Walker {
    let mut walker = Walker::default();
    for item in Parser::new_from_str(text) {
        // The values parsed, so an error here is unexpected; keep what was recorded.
        let Ok((event, span)) = item else { break };
        let at = Location { line: span.start.line(), column: span.start.col() + 1 };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let typed = style == ScalarStyle::Plain && tag.is_none() && may_be_typed(&text);
                walker.scalar(&text, typed, anchor, at);
            }
            Event::SequenceStart(_, anchor, _) => walker.open(anchor, at, false),
            Event::MappingStart(_, anchor, _) => walker.open(anchor, at, true),
            Event::SequenceEnd | Event::MappingEnd => {
                walker.stack.pop();
            }
            Event::Alias(anchor) => walker.alias(anchor, at),
            Event::DocumentEnd => break,
            _ => {}
        }
    }
    walker
}

/// An open collection. `pointer` is `None` inside a node that has no place in the JSON tree
/// (a complex mapping key).
enum Frame {
    Map { pointer: Option<KeyPath>, key: Key },
    Seq { pointer: Option<KeyPath>, next: usize, merge: bool },
}

/// Where a mapping is between its keys and values.
enum Key {
    Expected,
    /// The key was read; the value comes next. `None`: a key that is not a plain scalar.
    Read(Option<String>, Location),
}

/// Where the next node goes.
enum Slot {
    /// It is a mapping key.
    Key,
    /// It is a value at `pointer`, written at `at` (the key, for a mapping value).
    Value { pointer: Option<KeyPath>, at: Option<Location>, merge: bool },
}

#[derive(Default)]
struct Walker {
    nodes: HashMap<String, Location>,
    /// Pointer → source text of plain scalar values that [`may_be_typed`].
    plain: HashMap<String, String>,
    stack: Vec<Frame>,
    /// Anchor id → the pointer of the node that defined it.
    anchors: HashMap<usize, KeyPath>,
}

impl Walker {
    fn next_slot(&mut self) -> Slot {
        match self.stack.last_mut() {
            None => Slot::Value { pointer: Some(KeyPath::root()), at: None, merge: false },
            Some(Frame::Map { pointer, key }) => {
                let Key::Read(name, at) = std::mem::replace(key, Key::Expected) else {
                    return Slot::Key;
                };
                // `<<: *base` merges the keys of `base` into this mapping (YAML merge key),
                // so its value is placed at the mapping itself.
                let merge = name.as_deref() == Some("<<");
                let pointer = match (pointer, name) {
                    (Some(p), Some(_)) if merge => Some(p.clone()),
                    (Some(p), Some(name)) => Some(p.key(&name)),
                    _ => None,
                };
                Slot::Value { pointer, at: Some(at), merge }
            }
            // Inside `<<: [*a, *b]` every item merges into the mapping that holds `<<`.
            Some(Frame::Seq { pointer, merge: true, .. }) => {
                Slot::Value { pointer: pointer.clone(), at: None, merge: true }
            }
            Some(Frame::Seq { pointer, next, merge: false }) => {
                let index = *next;
                *next += 1;
                Slot::Value { pointer: pointer.as_ref().map(|p| p.index(index)), at: None, merge: false }
            }
        }
    }

    fn scalar(&mut self, text: &str, typed: bool, anchor: usize, at: Location) {
        match self.next_slot() {
            Slot::Key => self.read_key(Some(text.to_owned()), at),
            Slot::Value { pointer, at: key_at, merge: false } => {
                if let Some(p) = &pointer {
                    // A key the mapping writes itself replaces what a merge (`<<`) put there.
                    if typed && self.nodes.len() <= MAX_LOCATED_NODES {
                        self.plain.insert(p.pointer().to_owned(), text.to_owned());
                    } else {
                        self.plain.remove(p.pointer());
                    }
                }
                self.record(pointer.as_ref(), anchor, key_at.unwrap_or(at));
            }
            Slot::Value { merge: true, .. } => {}
        }
    }

    fn open(&mut self, anchor: usize, at: Location, mapping: bool) {
        let (pointer, merge) = match self.next_slot() {
            Slot::Key => {
                self.read_key(None, at);
                (None, false)
            }
            Slot::Value { pointer, at: key_at, merge } => {
                // A merged collection is placed at the mapping that holds `<<`, which already
                // has its own location.
                if !merge {
                    self.record(pointer.as_ref(), anchor, key_at.unwrap_or(at));
                }
                (pointer, merge)
            }
        };
        self.stack.push(if mapping {
            Frame::Map { pointer, key: Key::Expected }
        } else {
            Frame::Seq { pointer, next: 0, merge }
        });
    }

    fn read_key(&mut self, name: Option<String>, at: Location) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Key::Read(name, at);
        }
    }

    fn record(&mut self, pointer: Option<&KeyPath>, anchor: usize, at: Location) {
        let Some(pointer) = pointer else { return };
        self.nodes.insert(pointer.pointer().to_owned(), at);
        if anchor != 0 {
            self.anchors.insert(anchor, pointer.clone());
        }
    }

    /// An alias is placed where it is written; what lies inside it is placed where its
    /// anchor wrote it (that is where a wrong value has to be fixed).
    fn alias(&mut self, anchor: usize, at: Location) {
        let (pointer, merge) = match self.next_slot() {
            Slot::Key => return self.read_key(None, at),
            Slot::Value { pointer: None, .. } => return,
            Slot::Value { pointer: Some(p), at: key_at, merge } => {
                if !merge {
                    self.nodes.insert(p.pointer().to_owned(), key_at.unwrap_or(at));
                }
                (p, merge)
            }
        };
        let Some(source) = self.anchors.get(&anchor) else {
            return;
        };
        if self.nodes.len() > MAX_LOCATED_NODES {
            return;
        }
        if !merge && let Some(text) = self.plain.get(source.pointer()) {
            self.plain.insert(pointer.pointer().to_owned(), text.clone());
        }
        let (from, to) = (format!("{}/", source.pointer()), pointer.pointer());
        let copies: Vec<(String, Location, Option<String>)> = self
            .nodes
            .iter()
            .filter_map(|(k, loc)| {
                let rest = k.strip_prefix(&from)?;
                Some((format!("{to}/{rest}"), *loc, self.plain.get(k).cloned()))
            })
            .collect();
        for (k, loc, text) in copies {
            // Merged keys never override the keys the mapping writes itself.
            if merge && self.nodes.contains_key(&k) {
                continue;
            }
            match text {
                Some(text) => self.plain.insert(k.clone(), text),
                None => self.plain.remove(&k),
            };
            self.nodes.insert(k, loc);
        }
    }
}
