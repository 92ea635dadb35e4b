//! YAML text → a JSON value tree plus where each node was written.
//!
//! Values come from `serde-saphyr`, which owns YAML semantics (tags, anchors, merge keys,
//! duplicate keys, resource budgets). Locations come from a second, cheap walk over the event
//! stream of `granit-parser`, the parser underneath it, which is only done once the values
//! parsed, so both walks see the same single document.

use std::collections::HashMap;
use std::path::Path;

use granit_parser::{Event, Parser};
use serde_json::Value;

use crate::{Diagnostic, Diagnostics, KeyPath, Location, Locations};

/// Bounds the location map when aliases copy the locations of what they refer to; past it a
/// node is placed at its nearest recorded ancestor, which is still a useful answer.
const MAX_LOCATED_NODES: usize = 500_000;

/// A parsed document.
pub(super) struct Parsed {
    pub(super) value: Value,
    pub(super) locations: Locations,
}

/// Parses one YAML document; a syntax error is one diagnostic at `(document)` with its place.
pub(super) fn parse(text: &str, file: &Path) -> Result<Parsed, Diagnostics> {
    let value = serde_saphyr::from_str::<Value>(text).map_err(|e| syntax_error(&e, file))?;
    let locations = Locations { file: file.to_path_buf(), nodes: locate(text) };
    Ok(Parsed { value, locations })
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

/// JSON pointer → location for every node of the (first) document.
fn locate(text: &str) -> HashMap<String, Location> {
    let mut walker = Walker::default();
    for item in Parser::new_from_str(text) {
        // The values parsed, so an error here is unexpected; keep what was recorded.
        let Ok((event, span)) = item else { break };
        let at = Location { line: span.start.line(), column: span.start.col() + 1 };
        match event {
            Event::Scalar(text, _, anchor, _) => walker.scalar(&text, anchor, at),
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
    walker.nodes
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

    fn scalar(&mut self, text: &str, anchor: usize, at: Location) {
        match self.next_slot() {
            Slot::Key => self.read_key(Some(text.to_owned()), at),
            Slot::Value { pointer, at: key_at, merge: false } => {
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
        let prefix = format!("{}/", source.pointer());
        let copies: Vec<(String, Location)> = self
            .nodes
            .iter()
            .filter_map(|(k, loc)| {
                let rest = k.strip_prefix(&prefix)?;
                Some((format!("{}/{rest}", pointer.pointer()), *loc))
            })
            .collect();
        for (k, loc) in copies {
            if merge {
                // Merged keys never override the keys the mapping writes itself.
                self.nodes.entry(k).or_insert(loc);
            } else {
                self.nodes.insert(k, loc);
            }
        }
    }
}
