//! `soap.request` templates: parsed once at config load, rendered per request.
//!
//! A template is a map like the operation's input, whose string values may hold
//! placeholders: `{path.NAME}`, `{query.NAME}`, `{body.A.B}`, `{claim.NAME}`, `{consumer}`.
//! `{{` and `}}` stand for literal braces. A string that is exactly one placeholder takes the
//! looked-up value as it is (a number stays a number, `{body.address}` can be an object); a
//! string mixing text and placeholders is text. A placeholder that finds nothing (or `null`)
//! leaves its key out, so optional parameters map to optional elements; a nested map left
//! empty that way is left out too.

use std::fmt;

use serde_json::{Map, Value};

use crate::request::{MapError, push_pointer};
use crate::schema::{ComplexTy, Ty};
use crate::wsdl::Operation;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

/// Where a placeholder takes its value from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{path.id}`: a parameter of the route's path pattern.
    Path(String),
    /// `{query.page}`: a query parameter.
    Query(String),
    /// `{body.a.b}`: a member of the JSON request body, by path.
    Body(Vec<String>),
    /// `{claim.sub}`: a claim of the verified token (everything after `claim.` is the name).
    Claim(String),
    /// `{consumer}`: the authenticated consumer's name.
    Consumer,
}

impl Placeholder {
    /// For `Body`, the member of `body` it selects.
    pub fn select<'v>(path: &[String], body: &'v Value) -> Option<&'v Value> {
        path.iter().try_fold(body, |v, key| v.get(key))
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(n) => write!(f, "{{path.{n}}}"),
            Self::Query(n) => write!(f, "{{query.{n}}}"),
            Self::Body(p) => write!(f, "{{body.{}}}", p.join(".")),
            Self::Claim(n) => write!(f, "{{claim.{n}}}"),
            Self::Consumer => f.write_str("{consumer}"),
        }
    }
}

/// Supplies placeholder values at request time. Closures `Fn(&Placeholder) -> Option<Value>`
/// implement it.
pub trait Lookup {
    fn lookup(&self, placeholder: &Placeholder) -> Option<Value>;
}

impl<F: Fn(&Placeholder) -> Option<Value>> Lookup for F {
    fn lookup(&self, placeholder: &Placeholder) -> Option<Value> {
        self(placeholder)
    }
}

/// A bad template (at load) or a value that cannot fill it (at request time, a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if key.is_empty() { "soap.request" } else { key.as_str() })]
pub struct TemplateError {
    /// Dotted path of the template key (`Address.City`).
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A number, boolean or null, or a string without placeholders.
    Literal(Value),
    Text(Vec<Piece>),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Value(Placeholder),
}

/// A parsed `soap.request` template.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    fields: Vec<(String, Node)>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

impl RequestTemplate {
    /// Parses a template map (e.g. the config's `BTreeMap<String, serde_json::Value>`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Result<Self, TemplateError> {
        let fields = entries.into_iter().map(|(k, v)| Ok((k.clone(), node(v, k)?))).collect::<Result<_, _>>()?;
        Ok(Self { fields })
    }

    /// Every placeholder used, so config checks can tie `{path.x}` to the route's pattern
    /// and `{claim.x}` to an authenticated route.
    pub fn placeholders(&self) -> Vec<&Placeholder> {
        let mut out = Vec::new();
        for (_, node) in &self.fields {
            collect(node, &mut out);
        }
        out
    }

    /// The input map for [`Operation::build_request`].
    pub fn render(&self, lookup: &dyn Lookup) -> Result<Map<String, Value>, TemplateError> {
        render_fields(&self.fields, lookup, "")
    }

    /// Checks at load time that every key names an input field of `op` (recursively into
    /// nested maps) and that every required field is given.
    pub fn check(&self, op: &Operation) -> Result<(), MapError> {
        let Ty::Complex(ty) = op.types.get(op.input.ty) else { return Ok(()) };
        check_fields(op, ty, &self.fields, &mut String::new())
    }
}

fn collect<'n>(node: &'n Node, out: &mut Vec<&'n Placeholder>) {
    match node {
        Node::Literal(_) => {}
        Node::Text(pieces) => out.extend(pieces.iter().filter_map(|p| match p {
            Piece::Value(v) => Some(v),
            Piece::Literal(_) => None,
        })),
        Node::Object(fields) => fields.iter().for_each(|(_, n)| collect(n, out)),
        Node::Array(items) => items.iter().for_each(|n| collect(n, out)),
    }
}

fn node(value: &Value, key: &str) -> Result<Node, TemplateError> {
    Ok(match value {
        Value::String(s) => {
            let pieces = pieces(s).map_err(|message| TemplateError { key: key.to_owned(), message })?;
            match pieces.as_slice() {
                [] => Node::Literal(Value::String(String::new())),
                [Piece::Literal(text)] => Node::Literal(Value::String(text.clone())),
                _ => Node::Text(pieces),
            }
        }
        Value::Object(map) => {
            Node::Object(map.iter().map(|(k, v)| Ok((k.clone(), node(v, &join(key, k))?))).collect::<Result<_, _>>()?)
        }
        Value::Array(items) => Node::Array(
            items.iter().enumerate().map(|(i, v)| node(v, &join(key, &i.to_string()))).collect::<Result<_, _>>()?,
        ),
        scalar => Node::Literal(scalar.clone()),
    })
}

fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
            literal.push_str(&tail[..1]);
            rest = after;
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("a lone `}}` in {text:?}; write `}}}}` for a literal brace"));
        }
        let end = tail.find('}').ok_or_else(|| format!("an unclosed `{{` in {text:?}"))?;
        let placeholder = placeholder(&tail[1..end])?;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Value(placeholder));
        rest = &tail[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn placeholder(inner: &str) -> Result<Placeholder, String> {
    let bad = || {
        format!(
            "`{{{inner}}}` is not a placeholder; use {{path.NAME}}, {{query.NAME}}, {{body.A.B}}, {{claim.NAME}} or {{consumer}}"
        )
    };
    if inner == "consumer" {
        return Ok(Placeholder::Consumer);
    }
    let (source, name) = inner.split_once('.').ok_or_else(bad)?;
    if name.is_empty() || inner.contains('{') {
        return Err(bad());
    }
    match source {
        "path" => Ok(Placeholder::Path(name.to_owned())),
        "query" => Ok(Placeholder::Query(name.to_owned())),
        "claim" => Ok(Placeholder::Claim(name.to_owned())),
        "body" if name.split('.').all(|s| !s.is_empty()) => {
            Ok(Placeholder::Body(name.split('.').map(str::to_owned).collect()))
        }
        _ => Err(bad()),
    }
}

fn render_fields(
    fields: &[(String, Node)],
    lookup: &dyn Lookup,
    key: &str,
) -> Result<Map<String, Value>, TemplateError> {
    let mut map = Map::new();
    for (name, node) in fields {
        if let Some(value) = render(node, lookup, &join(key, name))? {
            map.insert(name.clone(), value);
        }
    }
    Ok(map)
}

fn render(node: &Node, lookup: &dyn Lookup, key: &str) -> Result<Option<Value>, TemplateError> {
    match node {
        Node::Literal(value) => Ok(Some(value.clone())),
        Node::Text(pieces) => text(pieces, lookup, key),
        Node::Object(fields) => {
            let map = render_fields(fields, lookup, key)?;
            Ok((fields.is_empty() || !map.is_empty()).then_some(Value::Object(map)))
        }
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.extend(render(item, lookup, &join(key, &i.to_string()))?);
            }
            Ok(Some(Value::Array(out)))
        }
    }
}

fn text(pieces: &[Piece], lookup: &dyn Lookup, key: &str) -> Result<Option<Value>, TemplateError> {
    if let [Piece::Value(p)] = pieces {
        return Ok(lookup.lookup(p).filter(|v| !v.is_null()));
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Value(p) => match lookup.lookup(p) {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(s)) => out.push_str(&s),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                Some(_) => {
                    return Err(TemplateError {
                        key: key.to_owned(),
                        message: format!("{p} is an object or array and cannot be part of a text"),
                    });
                }
            },
        }
    }
    Ok(Some(Value::String(out)))
}

fn check_fields(
    op: &Operation,
    ty: &ComplexTy,
    fields: &[(String, Node)],
    pointer: &mut String,
) -> Result<(), MapError> {
    let len = pointer.len();
    for (name, node) in fields {
        push_pointer(pointer, name);
        let field = ty.field(name);
        let known = field.is_some()
            || name.strip_prefix('@').is_some_and(|a| ty.attribute(a).is_some())
            || (name == "#text" && ty.text.is_some());
        if !known {
            let names: Vec<&str> = ty.fields.iter().map(|f| f.name.local.as_str()).collect();
            return Err(MapError {
                pointer: pointer.clone(),
                message: format!("unknown field `{name}`; expected one of: {}", names.join(", ")),
            });
        }
        if let (Some(field), Node::Object(inner)) = (field, node) {
            match op.types.get(field.ty) {
                Ty::Complex(child) => check_fields(op, child, inner, pointer)?,
                Ty::Simple(_) => {
                    return Err(MapError {
                        pointer: pointer.clone(),
                        message: "expected a value, not a map".to_owned(),
                    });
                }
                Ty::Any | Ty::Broken(_) => {}
            }
        }
        pointer.truncate(len);
    }
    for field in ty.fields.iter().filter(|f| f.min > 0) {
        if !fields.iter().any(|(name, _)| *name == field.name.local) {
            push_pointer(pointer, &field.name.local);
            return Err(MapError {
                pointer: pointer.clone(),
                message: "this required field is not in the template".to_owned(),
            });
        }
    }
    Ok(())
}
