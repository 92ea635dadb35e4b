//! SOAP to JSON: a response envelope becomes the operation's output object or a [`Fault`].
//!
//! The mapping rules (documented in the crate docs and README):
//! - the body's response wrapper becomes an object keyed by its children's local names;
//! - an element repeated, or declared with `maxOccurs > 1`, becomes an array, even of one;
//! - XSD integers become JSON integers (outside i64/u64: the digits as a string), decimals and
//!   floats JSON numbers (f64 precision; `INF`/`NaN` stay strings), booleans booleans;
//! - `xsi:nil="true"` is `null`; an empty non-string element is `null`, an empty complex one `{}`;
//! - attributes are `"@name"` keys beside the children and the text is `"#text"` when an
//!   element has attributes or children as well as text (`xmlns` and `xsi:` attributes are
//!   dropped); `xsi:type` naming a known type is honoured;
//! - elements the schema does not declare are mapped by repetition alone, as strings.

use serde_json::{Map, Number, Value};

use crate::fault::{self, Fault};
use crate::names::{SOAP11_ENV, SOAP12_ENV, XSI};
use crate::request::lexical;
use crate::schema::{ComplexTy, Ty, TypeId, Types, ValueKind};
use crate::wsdl::Operation;
use crate::xml::{self, Element, Limits, XmlError, is_xml_space};

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

/// A SOAP response, mapped.
#[derive(Debug, Clone, PartialEq)]
pub enum SoapResponse {
    /// The output message as a JSON object.
    Output(Map<String, Value>),
    /// The body held a SOAP fault.
    Fault(Fault),
}

/// A response that is not a usable SOAP envelope; the gateway answers 502.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the upstream's response is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("the upstream's response is not a SOAP envelope: {0}")]
    NotSoap(String),
}

impl Operation {
    /// Maps a response body using this operation's output schema. Parse it whatever the HTTP
    /// status: SOAP 1.1 servers send faults with status 500.
    pub fn parse_response(&self, body: &[u8], limits: &Limits) -> Result<SoapResponse, ResponseError> {
        let mapper = Mapper { types: Some(&self.types) };
        let (env, body) = envelope(body, limits)?;
        respond(env, body, |mut body| match &self.output {
            Some(shape) => {
                let ty = match self.types.get(shape.ty) {
                    Ty::Complex(c) => Some(c),
                    _ => None,
                };
                match &shape.wrapper {
                    None => mapper.object(body, ty),
                    Some(wrapper) => match first_child(&mut body) {
                        Some(el) if *el.local == wrapper.local => mapper.object(el, ty),
                        Some(el) => mapper.object(el, None),
                        None => Map::new(),
                    },
                }
            }
            None => first_child(&mut body).map(|el| mapper.object(el, None)).unwrap_or_default(),
        })
    }
}

/// Maps a response without any schema: by repetition only, every value a string.
pub fn parse_response_untyped(body: &[u8], limits: &Limits) -> Result<SoapResponse, ResponseError> {
    let mapper = Mapper { types: None };
    let (env, body) = envelope(body, limits)?;
    respond(env, body, |mut body| first_child(&mut body).map(|el| mapper.object(el, None)).unwrap_or_default())
}

fn first_child(el: &mut Element) -> Option<Element> {
    (!el.children.is_empty()).then(|| el.children.swap_remove(0))
}

/// The envelope's namespace and its `Body`.
fn envelope(bytes: &[u8], limits: &Limits) -> Result<(&'static str, Element), ResponseError> {
    let mut root = xml::parse(bytes, limits)?;
    let env = [SOAP11_ENV, SOAP12_ENV].into_iter().find(|ns| root.is(ns, "Envelope")).ok_or_else(|| {
        ResponseError::NotSoap(format!("the root element is <{}>, not a SOAP 1.1 or 1.2 Envelope", root.qname()))
    })?;
    let index = root
        .children
        .iter()
        .position(|c| c.is(env, "Body"))
        .ok_or_else(|| ResponseError::NotSoap("the envelope has no Body".to_owned()))?;
    Ok((env, root.children.swap_remove(index)))
}

fn respond(
    env: &str,
    mut body: Element,
    output: impl FnOnce(Element) -> Map<String, Value>,
) -> Result<SoapResponse, ResponseError> {
    if body.children.first().is_some_and(|first| first.is(env, "Fault")) {
        let fault = body.children.swap_remove(0);
        return Ok(SoapResponse::Fault(fault::parse(fault, env)));
    }
    Ok(SoapResponse::Output(output(body)))
}

/// Maps elements to JSON with whatever schema knowledge there is. The tree is consumed, so
/// text moves into the JSON instead of being copied.
pub(crate) struct Mapper<'t> {
    pub(crate) types: Option<&'t Types>,
}

impl Mapper<'_> {
    /// An element's attributes, text and children as an object.
    pub(crate) fn object(&self, el: Element, ty: Option<&ComplexTy>) -> Map<String, Value> {
        let mut map = Map::new();
        let Element { attrs, text, children, .. } = el;
        for attr in attrs.into_iter().filter(|a| &*a.ns != XSI) {
            let kind = ty.and_then(|t| t.attribute(&attr.local)).and_then(|a| self.kind(a.ty));
            let value = kind.map_or_else(|| Value::String(attr.value.clone()), |k| scalar(attr.value.clone(), k));
            map.insert(format!("@{}", attr.local), value);
        }
        match ty.and_then(|t| t.text).and_then(|t| self.kind(t)) {
            Some(kind) => {
                map.insert("#text".to_owned(), scalar(text, kind));
            }
            None if !text.trim_matches(is_xml_space).is_empty() => {
                map.insert("#text".to_owned(), Value::String(text));
            }
            None => {}
        }
        for mut child in children {
            let field = ty.and_then(|t| t.field(&child.local));
            let repeated = field.is_some_and(|f| f.max.is_repeated());
            // The name moves into the key; the value does not need it.
            let local = std::mem::take(&mut child.local);
            let value = self.value(child, field.map(|f| f.ty));
            insert(&mut map, local, value, repeated);
        }
        map
    }

    fn kind(&self, ty: TypeId) -> Option<ValueKind> {
        match self.types?.get(ty) {
            Ty::Simple(s) => Some(s.builtin.kind),
            _ => None,
        }
    }

    fn value(&self, el: Element, ty: Option<TypeId>) -> Value {
        if matches!(el.attr_ns(XSI, "nil").map(str::trim), Some("true" | "1")) {
            return Value::Null;
        }
        let ty = self.xsi_type(&el).or(ty);
        let has_attributes = el.attrs.iter().any(|a| &*a.ns != XSI);
        match (ty, self.types) {
            (Some(ty), Some(types)) => match types.get(ty) {
                Ty::Simple(s) if !has_attributes => scalar(el.text, s.builtin.kind),
                Ty::Complex(c) if c.fields.is_empty() && c.attributes.is_empty() && !has_attributes => {
                    match c.text.and_then(|t| self.kind(t)) {
                        Some(kind) => scalar(el.text, kind),
                        None => Value::Object(self.object(el, Some(c))),
                    }
                }
                Ty::Complex(c) => Value::Object(self.object(el, Some(c))),
                Ty::Simple(_) | Ty::Any | Ty::Broken(_) => self.generic(el, has_attributes),
            },
            _ => self.generic(el, has_attributes),
        }
    }

    fn xsi_type(&self, el: &Element) -> Option<TypeId> {
        let name = el.resolve_qname(el.attr_ns(XSI, "type")?).ok()?;
        self.types?.by_name(&name)
    }

    fn generic(&self, el: Element, has_attributes: bool) -> Value {
        if el.children.is_empty() && !has_attributes {
            Value::String(el.text)
        } else {
            Value::Object(self.object(el, None))
        }
    }
}

/// Adds a child's value, turning the key into an array when the element repeats. Element
/// values are never arrays themselves, so an array under a key is always a repetition.
fn insert(map: &mut Map<String, Value>, key: Box<str>, value: Value, repeated: bool) {
    match map.get_mut(&*key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(key.into_string(), if repeated { Value::Array(vec![value]) } else { value });
        }
    }
}

/// A text value as JSON, by XSD kind; text outside the type's lexical space stays a string.
pub(crate) fn scalar(text: String, kind: ValueKind) -> Value {
    if kind == ValueKind::String {
        return Value::String(text);
    }
    let trimmed = text.trim_matches(is_xml_space);
    let empty = trimmed.is_empty();
    match kind {
        _ if empty => Value::Null,
        ValueKind::Boolean => match trimmed {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::String(text.clone()),
        },
        ValueKind::Integer(_) => integer(trimmed).unwrap_or_else(|| Value::String(trimmed.to_owned())),
        ValueKind::String | ValueKind::Decimal | ValueKind::Float => integer(trimmed)
            .or_else(|| {
                let valid = lexical::is_double(trimmed);
                trimmed
                    .parse::<f64>()
                    .ok()
                    .filter(|f| valid && f.is_finite())
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::String(trimmed.to_owned())),
    }
}

fn integer(text: &str) -> Option<Value> {
    if !lexical::is_integer(text) {
        return None;
    }
    text.parse::<i64>()
        .map(Value::from)
        .or_else(|_| text.parse::<u64>().map(Value::from))
        .ok()
        .or_else(|| Some(Value::String(text.to_owned())))
}
