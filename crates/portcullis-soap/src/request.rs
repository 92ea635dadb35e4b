//! JSON to SOAP: an operation's input values become an envelope and its HTTP headers.
//!
//! Fields are written in schema order whatever the JSON order; a namespace gets a prefix
//! (`ns0`, `ns1`, …) declared once on the envelope; unqualified local elements get none.
//! Every key must be known, every required field present and every value valid for its
//! XSD type, or the result is a [`MapError`] naming the field by JSON pointer (a 400).

use std::fmt::Write as _;

use http::HeaderValue;
use http::header::{CONTENT_TYPE, HeaderName};
use serde_json::{Map, Value};

use crate::names::{QName, SOAP11_ENV, SOAP12_ENV, XSI};
use crate::schema::{ComplexTy, Field, Ty, Types};
use crate::wsdl::{Operation, SoapVersion};

pub(crate) mod lexical;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

/// How deep input objects may nest (recursive types could otherwise recurse without end).
const MAX_DEPTH: usize = 64;

/// The `SOAPAction` header of SOAP 1.1.
pub static SOAP_ACTION: HeaderName = HeaderName::from_static("soapaction");

/// A ready SOAP request: POST `body` to the upstream with these headers.
#[derive(Debug, Clone)]
pub struct SoapRequest {
    /// The UTF-8 envelope.
    pub body: Vec<u8>,
    /// `text/xml; charset=utf-8` (1.1) or `application/soap+xml; charset=utf-8; action="…"` (1.2).
    pub content_type: HeaderValue,
    /// `"action"` (quoted) for SOAP 1.1; `None` for 1.2, where the action is in the content type.
    pub soap_action: Option<HeaderValue>,
    /// The port's address from the WSDL; the gateway normally sends to the upstream's targets.
    pub endpoint: Option<String>,
}

impl SoapRequest {
    /// `Content-Type` and, for SOAP 1.1, `SOAPAction`.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        std::iter::once((&CONTENT_TYPE, &self.content_type)).chain(self.soap_action.iter().map(|v| (&SOAP_ACTION, v)))
    }
}

/// Input that does not fit the operation: `pointer` is the JSON pointer of the offending
/// value (RFC 6901), `message` says what is wrong. The gateway answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if pointer.is_empty() { "the input" } else { pointer.as_str() })]
pub struct MapError {
    pub pointer: String,
    pub message: String,
}

impl Operation {
    /// Builds the request envelope for `input` (keys are the input's element local names;
    /// `@name` for attributes, `#text` for simple content).
    pub fn build_request(&self, input: &Map<String, Value>) -> Result<SoapRequest, MapError> {
        let mut w = Writer { types: &self.types, out: String::with_capacity(1024), namespaces: Vec::new(), xsi: false };
        let mut pointer = String::new();
        let Ty::Complex(ty) = self.types.get(self.input.ty) else {
            return Err(MapError { pointer, message: "the operation's input is not a complex type".to_owned() });
        };
        match &self.input.wrapper {
            Some(name) => w.complex(name, ty, input, &mut pointer, 0)?,
            None => {
                check_keys(ty, input, &pointer, false)?;
                w.fields(ty, input, &mut pointer, 0)?;
            }
        }
        Ok(SoapRequest {
            body: w.envelope(self.version),
            content_type: self.content_type.clone(),
            soap_action: self.soap_action.clone(),
            endpoint: self.endpoint.clone(),
        })
    }
}

fn error(pointer: &str, message: impl Into<String>) -> MapError {
    MapError { pointer: pointer.to_owned(), message: message.into() }
}

/// RFC 6901: `~` and `/` in a key are escaped.
pub(crate) fn push_pointer(pointer: &mut String, key: &str) {
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Every key must name a field, an attribute (`@name`) or the text (`#text`).
fn check_keys(ty: &ComplexTy, obj: &Map<String, Value>, pointer: &str, element: bool) -> Result<(), MapError> {
    for key in obj.keys() {
        let known = match key.strip_prefix('@') {
            Some(attr) => element && ty.attribute(attr).is_some(),
            None if key == "#text" => element && ty.text.is_some(),
            None => ty.field(key).is_some(),
        };
        if !known {
            let mut at = pointer.to_owned();
            push_pointer(&mut at, key);
            let mut names: Vec<String> = ty.fields.iter().map(|f| f.name.local.clone()).collect();
            names.extend(ty.attributes.iter().map(|a| format!("@{}", a.name.local)));
            let expected = if names.is_empty() { "it takes no fields".to_owned() } else { names.join(", ") };
            return Err(error(&at, format!("unknown field `{key}`; expected one of: {expected}")));
        }
    }
    Ok(())
}

struct Writer<'t> {
    types: &'t Types,
    out: String,
    namespaces: Vec<String>,
    xsi: bool,
}

impl Writer<'_> {
    fn envelope(self, version: SoapVersion) -> Vec<u8> {
        let env = match version {
            SoapVersion::Soap11 => SOAP11_ENV,
            SoapVersion::Soap12 => SOAP12_ENV,
        };
        let mut head = String::with_capacity(200 + self.out.len());
        let _ = write!(head, r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{env}""#);
        if self.xsi {
            let _ = write!(head, r#" xmlns:xsi="{XSI}""#);
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            let _ = write!(head, r#" xmlns:ns{i}=""#);
            // Namespace names come from the WSDL, already unescaped by the parser.
            let _ = lexical::escape_attribute(&mut head, ns);
            head.push('"');
        }
        head.push_str("><soap:Body>");
        head.push_str(&self.out);
        head.push_str("</soap:Body></soap:Envelope>");
        head.into_bytes()
    }

    fn name(&mut self, name: &QName) {
        if !name.namespace.is_empty() {
            let index = match self.namespaces.iter().position(|n| *n == name.namespace) {
                Some(i) => i,
                None => {
                    self.namespaces.push(name.namespace.clone());
                    self.namespaces.len() - 1
                }
            };
            self.out.push_str("ns");
            match u32::try_from(index).ok().and_then(|i| char::from_digit(i, 10)) {
                Some(digit) => self.out.push(digit),
                None => self.out.push_str(&index.to_string()),
            }
            self.out.push(':');
        }
        self.out.push_str(&name.local);
    }

    fn open(&mut self, name: &QName) {
        self.out.push('<');
        self.name(name);
    }

    fn close(&mut self, name: &QName) {
        self.out.push_str("</");
        self.name(name);
        self.out.push('>');
    }

    fn text(&mut self, text: &str, pointer: &str) -> Result<(), MapError> {
        lexical::escape_text(&mut self.out, text)
            .map_err(|c| error(pointer, format!("the character U+{:04X} cannot be sent in XML", u32::from(c))))
    }

    /// One element for one JSON value.
    fn element(&mut self, field: &Field, value: &Value, pointer: &mut String, depth: usize) -> Result<(), MapError> {
        if depth > MAX_DEPTH {
            return Err(error(pointer, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        if value.is_null() {
            if !field.nillable {
                return Err(error(pointer, "null is not allowed here (the element is not nillable)"));
            }
            self.xsi = true;
            self.open(&field.name);
            self.out.push_str(r#" xsi:nil="true"/>"#);
            return Ok(());
        }
        match self.types.get(field.ty) {
            Ty::Complex(ty) => match value {
                Value::Object(obj) => self.complex(&field.name, ty, obj, pointer, depth),
                scalar if ty.text.is_some() && !ty.attributes.iter().any(|a| a.required) => {
                    let text = Map::from_iter([("#text".to_owned(), scalar.clone())]);
                    self.complex(&field.name, ty, &text, pointer, depth)
                }
                _ if ty.text.is_some() => {
                    let required: Vec<String> =
                        ty.attributes.iter().filter(|a| a.required).map(|a| format!("@{}", a.name.local)).collect();
                    Err(error(pointer, format!("expected an object with `#text` and {}", required.join(", "))))
                }
                _ => Err(error(pointer, "expected an object")),
            },
            Ty::Simple(simple) => {
                let text =
                    lexical::lexical(&simple.builtin, value).map_err(|e| error(pointer, format!("expected {e}")))?;
                self.leaf(&field.name, &text, pointer)
            }
            Ty::Any => match value {
                Value::String(s) => self.leaf(&field.name, s, pointer),
                Value::Number(_) | Value::Bool(_) => self.leaf(&field.name, &value.to_string(), pointer),
                _ => {
                    Err(error(pointer, "this element has no declared type (xs:anyType): only a text value can be sent"))
                }
            },
            Ty::Broken(reason) => Err(error(pointer, reason.clone())),
        }
    }

    fn leaf(&mut self, name: &QName, text: &str, pointer: &str) -> Result<(), MapError> {
        self.open(name);
        self.out.push('>');
        self.text(text, pointer)?;
        self.close(name);
        Ok(())
    }

    fn complex(
        &mut self,
        name: &QName,
        ty: &ComplexTy,
        obj: &Map<String, Value>,
        pointer: &mut String,
        depth: usize,
    ) -> Result<(), MapError> {
        check_keys(ty, obj, pointer, true)?;
        self.open(name);
        self.attributes(ty, obj, pointer)?;
        self.out.push('>');
        if let (Some(text_ty), Some(value)) = (ty.text, obj.get("#text")) {
            let Ty::Simple(simple) = self.types.get(text_ty) else {
                return Err(error(pointer, "the element's text has no simple type"));
            };
            let mut at = pointer.clone();
            push_pointer(&mut at, "#text");
            let text = lexical::lexical(&simple.builtin, value).map_err(|e| error(&at, format!("expected {e}")))?;
            self.text(&text, &at)?;
        }
        self.fields(ty, obj, pointer, depth)?;
        self.close(name);
        Ok(())
    }

    fn attributes(&mut self, ty: &ComplexTy, obj: &Map<String, Value>, pointer: &str) -> Result<(), MapError> {
        for attr in &ty.attributes {
            let key = format!("@{}", attr.name.local);
            let mut at = pointer.to_owned();
            push_pointer(&mut at, &key);
            let Some(value) = obj.get(&key) else {
                if attr.required {
                    return Err(error(&at, "this required attribute is missing"));
                }
                continue;
            };
            let text = match self.types.get(attr.ty) {
                Ty::Simple(simple) => lexical::lexical(&simple.builtin, value),
                _ => lexical::lexical(&crate::schema::STRING, value),
            }
            .map_err(|e| error(&at, format!("expected {e}")))?;
            self.out.push(' ');
            self.name(&attr.name);
            self.out.push_str("=\"");
            lexical::escape_attribute(&mut self.out, &text)
                .map_err(|c| error(&at, format!("the character U+{:04X} cannot be sent in XML", u32::from(c))))?;
            self.out.push('"');
        }
        Ok(())
    }

    /// The child elements of a complex type, in schema order.
    fn fields(
        &mut self,
        ty: &ComplexTy,
        obj: &Map<String, Value>,
        pointer: &mut String,
        depth: usize,
    ) -> Result<(), MapError> {
        check_choices(ty, obj, pointer)?;
        let len = pointer.len();
        for field in &ty.fields {
            push_pointer(pointer, &field.name.local);
            let result = self.field(field, obj.get(&field.name.local), pointer, depth);
            pointer.truncate(len);
            result?;
        }
        Ok(())
    }

    fn field(
        &mut self,
        field: &Field,
        value: Option<&Value>,
        pointer: &mut String,
        depth: usize,
    ) -> Result<(), MapError> {
        match value {
            None if field.min > 0 => Err(error(pointer, "this required field is missing")),
            None => Ok(()),
            Some(Value::Array(items)) if field.max.is_repeated() => {
                if items.len() < field.min as usize {
                    return Err(error(pointer, format!("needs at least {} items", field.min)));
                }
                if !field.max.allows(items.len()) {
                    return Err(error(pointer, "has more items than the schema's maxOccurs"));
                }
                let len = pointer.len();
                for (i, item) in items.iter().enumerate() {
                    let _ = write!(pointer, "/{i}");
                    let result = self.element(field, item, pointer, depth + 1);
                    pointer.truncate(len);
                    result?;
                }
                Ok(())
            }
            Some(Value::Array(_)) => Err(error(pointer, "takes one value, not an array")),
            Some(_) if field.min > 1 => Err(error(pointer, format!("needs an array of at least {} items", field.min))),
            Some(value) => self.element(field, value, pointer, depth + 1),
        }
    }
}

/// At most one alternative of an `xs:choice`, and one if the choice is required.
fn check_choices(ty: &ComplexTy, obj: &Map<String, Value>, pointer: &str) -> Result<(), MapError> {
    for (index, choice) in ty.choices.iter().enumerate() {
        let alternatives: Vec<&str> =
            ty.fields.iter().filter(|f| f.choice == Some(index)).map(|f| f.name.local.as_str()).collect();
        let present: Vec<&str> = alternatives.iter().copied().filter(|a| obj.contains_key(*a)).collect();
        if present.len() > 1 {
            return Err(error(pointer, format!("give only one of: {}", present.join(", "))));
        }
        if present.is_empty() && choice.required {
            return Err(error(pointer, format!("give one of: {}", alternatives.join(", "))));
        }
    }
    Ok(())
}
