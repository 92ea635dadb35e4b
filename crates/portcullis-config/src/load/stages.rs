//! `--stage NAME`: merging an overlay from `stages:` into the base document (SPEC §2).
//!
//! Maps merge deeply, lists are replaced whole, and `routes` merge by `name`: an overlay route
//! whose name matches a base route deep-merges into it, a new name is appended. Every node the
//! overlay supplied is then located where the overlay wrote it, so an error in a stage points
//! at the stage.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::{Diagnostics, KeyPath, Location, Locations};

/// The names under `stages:`, in the order the document map keeps them.
pub(super) fn names(value: &Value, locations: &Locations) -> Result<Vec<String>, Diagnostics> {
    match value.get("stages") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(stages)) => Ok(stages.keys().cloned().collect()),
        Some(_) => Err(not_a_map(locations)),
    }
}

/// Merges stage `name` (if any) into `value` and re-keys `locations` to match.
pub(super) fn apply(value: &mut Value, locations: &mut Locations, name: Option<&str>) -> Result<(), Diagnostics> {
    fill_empty(value);
    let Some(name) = name else { return Ok(()) };
    let overlay = overlay(value, locations, name)?;
    let Value::Object(base) = value else {
        // The version check has already refused a document that is not a mapping.
        return Ok(());
    };
    let from = KeyPath::root().key("stages").key(name);
    let mut moves = Vec::new();
    merge_map(base, overlay, &KeyPath::root(), &from, &mut moves);
    locations.nodes = rekey(&locations.nodes, &moves);
    Ok(())
}

/// `prod:` with nothing under it is an empty overlay; written as `{}` so the schema, which
/// wants a mapping per stage, agrees.
fn fill_empty(value: &mut Value) {
    if let Some(Value::Object(stages)) = value.get_mut("stages") {
        for overlay in stages.values_mut().filter(|o| o.is_null()) {
            *overlay = Value::Object(Map::new());
        }
    }
}

/// A copy of the overlay for `name`, or why there is none.
fn overlay(value: &Value, locations: &Locations, name: &str) -> Result<Map<String, Value>, Diagnostics> {
    let stages = match value.get("stages") {
        None | Some(Value::Null) => {
            let message = format!("unknown stage `{name}`: the config file defines no `stages`");
            return Err(Diagnostics(vec![locations.diagnostic(&KeyPath::root(), message)]));
        }
        Some(Value::Object(stages)) => stages,
        Some(_) => return Err(not_a_map(locations)),
    };
    let path = KeyPath::root().key("stages").key(name);
    match stages.get(name) {
        Some(Value::Object(overlay)) => Ok(overlay.clone()),
        Some(other) => {
            let got = super::schema::kind_of(other);
            let message = format!("stage `{name}` must be a mapping of the sections it overrides, not {got}");
            Err(Diagnostics(vec![locations.diagnostic(&path, message)]))
        }
        None => {
            let known: Vec<String> = stages.keys().map(|k| format!("`{k}`")).collect();
            let message = format!("unknown stage `{name}`; the config file defines {}", known.join(", "));
            Err(Diagnostics(vec![locations.diagnostic(&KeyPath::root().key("stages"), message)]))
        }
    }
}

fn not_a_map(locations: &Locations) -> Diagnostics {
    let message = "`stages` must be a mapping of stage names to overlays";
    Diagnostics(vec![locations.diagnostic(&KeyPath::root().key("stages"), message)])
}

/// A subtree the overlay supplied: its nodes move from the overlay's pointer to the merged one.
struct Move {
    from: String,
    to: String,
}

fn merge_map(
    base: &mut Map<String, Value>,
    overlay: Map<String, Value>,
    at: &KeyPath,
    from: &KeyPath,
    moves: &mut Vec<Move>,
) {
    for (key, incoming) in overlay {
        let (to, src) = (at.key(&key), from.key(&key));
        let top_level_routes = at.pointer().is_empty() && key == "routes";
        match (base.get_mut(&key), incoming) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_map(existing, incoming, &to, &src, moves);
            }
            (Some(Value::Array(existing)), Value::Array(incoming)) if top_level_routes => {
                merge_routes(existing, incoming, &to, &src, moves);
            }
            (_, incoming) => {
                base.insert(key, incoming);
                moves.push(Move { from: src.pointer().to_owned(), to: to.pointer().to_owned() });
            }
        }
    }
}

/// Routes merge by `name`; a route without a usable name is appended (the schema then says
/// what is wrong with it, at the overlay's line).
fn merge_routes(base: &mut Vec<Value>, overlay: Vec<Value>, at: &KeyPath, from: &KeyPath, moves: &mut Vec<Move>) {
    for (j, incoming) in overlay.into_iter().enumerate() {
        let src = from.index(j);
        let name = incoming.get("name").and_then(Value::as_str);
        let target = name.and_then(|n| base.iter().position(|r| r.get("name").and_then(Value::as_str) == Some(n)));
        match (target.and_then(|i| base.get_mut(i).map(|r| (i, r))), incoming) {
            (Some((i, Value::Object(existing))), Value::Object(incoming)) => {
                merge_map(existing, incoming, &at.index(i), &src, moves);
            }
            (_, incoming) => {
                let to = at.index(base.len());
                base.push(incoming);
                moves.push(Move { from: src.pointer().to_owned(), to: to.pointer().to_owned() });
            }
        }
    }
}

/// The locations of the merged document: base nodes an overlay replaced are dropped (so a
/// missing key is not placed at a base node that no longer exists) and the overlay's nodes
/// take their place.
fn rekey(nodes: &HashMap<String, Location>, moves: &[Move]) -> HashMap<String, Location> {
    let mut out = nodes.clone();
    for Move { from, to } in moves {
        out.retain(|k, _| !super::is_within(k, to));
        for (k, loc) in nodes.iter().filter(|(k, _)| super::is_within(k, from)) {
            out.insert(format!("{to}{}", &k[from.len()..]), *loc);
        }
    }
    out
}
