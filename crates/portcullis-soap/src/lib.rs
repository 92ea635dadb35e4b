//! SOAP to REST (SPEC §6): everything the gateway needs to put a JSON API in front of a SOAP
//! service, without sockets.
//!
//! Data flows like this. At config load, [`Wsdl::parse`] reads the upstream's WSDL and
//! [`Wsdl::operation`] finds the route's [`Operation`] (or says which construct stops it); a
//! `soap.request` map becomes a [`RequestTemplate`], checked against the operation with
//! [`RequestTemplate::check`]. Per request, the template is rendered against the request's
//! values ([`Lookup`]) — or the JSON body / query parameters are used as they are — and
//! [`Operation::build_request`] writes the envelope and its headers ([`SoapRequest`]); a
//! [`MapError`] is the client's 400. The upstream's answer goes to
//! [`Operation::parse_response`], which gives the output object or a [`Fault`] (400 for
//! client/sender faults, 502 for the rest), or a [`ResponseError`] (502).
//! [`routes_yaml`] and [`Operation::json_schemas`] serve `portcullis soap routes` and
//! `portcullis openapi`.
//!
//! # Mapping rules
//!
//! Requests (JSON → SOAP):
//! - Keys are the local names of the input's elements: the children of the wrapper element
//!   for document/literal wrapped (and bare with one complex element), the parts' elements for
//!   other bare messages, the part names for rpc/literal. `@name` keys are attributes, `#text`
//!   the text of a simple-content element. An unknown key, a missing required field, an
//!   array where one value is allowed, or two alternatives of one `xs:choice` are errors.
//! - Elements are written in schema order with the namespaces the schema gives them
//!   (`elementFormDefault`/`form`); each namespace is declared once on the envelope.
//! - Values are checked against their XSD type: integers (within the type's range), decimals,
//!   floats and booleans accept JSON numbers/booleans or strings holding them (path and query
//!   values are strings); strings accept any scalar; dates and other strings go as given.
//!   Arrays become repeated elements; `null` becomes `xsi:nil="true"` when nillable, else an
//!   error. All text is escaped; characters XML cannot carry are an error.
//! - SOAP 1.1: `Content-Type: text/xml; charset=utf-8` and `SOAPAction: "…"`; SOAP 1.2:
//!   `Content-Type: application/soap+xml; charset=utf-8; action="…"`.
//!
//! Responses (SOAP → JSON):
//! - The body's response wrapper becomes an object keyed by its children's local names.
//! - A repeated element, or one declared `maxOccurs > 1`, is an array, even with one item.
//! - XSD integers are JSON integers (beyond i64/u64, the digits as a string so no digit is
//!   lost); decimals and floats are JSON numbers with f64 precision (about 15–17 significant
//!   digits; `1.50` reads as `1.5`; `INF` and `NaN` stay strings); booleans (`true`, `false`,
//!   `1`, `0`) are booleans. Text outside the type's lexical space stays a string.
//! - `xsi:nil="true"` is `null`; an empty number or boolean element is `null`, an empty
//!   string `""`, an empty complex element `{}`. An absent element is an absent key.
//! - Attributes become `"@name"` keys (namespace dropped; `xmlns` and `xsi:` attributes are
//!   not kept), and the element's text `"#text"`, whenever an element has attributes or
//!   children besides text. `xsi:type` naming a type of the WSDL (or a built-in) is honoured.
//! - Elements the schema does not declare are mapped by repetition alone, values as strings.
//! - Faults: 1.1 `faultcode`/`faultstring`, 1.2 `Code/Value`/`Reason/Text`, prefixes resolved;
//!   see [`Fault`].
//!
//! # Safety
//!
//! All XML is parsed by [`xml`] with no DTD processing at all: a `<!DOCTYPE` is refused, so
//! neither external entities (XXE) nor entity expansion (billion laughs) can happen; only the
//! five predefined entities and character references are expanded. Size, depth and node
//! count are capped by [`Limits`], and malformed XML is an error. Nothing here panics or
//! recurses deeper than the depth limit on any input.
//!
//! # Not supported (reported as errors naming the construct and the operation or type)
//!
//! `wsdl:import`, schemas outside the WSDL file, `use="encoded"` and SOAP-encoded arrays,
//! `soap:header` in an input, MIME attachments, `xs:any`, `xs:group` references, repeating
//! or nested-in-choice groups, overloaded operation names, non-HTTP transports, WSDL 2.0.
//! Attribute references and attribute groups are skipped (they can then not be sent).

mod fault;
pub mod json_schema;
mod names;
pub mod request;
mod response;
pub mod routes;
mod schema;
pub mod template;
pub mod wsdl;
pub mod xml;

pub use fault::{Fault, FaultKind};
pub use json_schema::JsonSchemas;
pub use names::QName;
pub use request::{MapError, SOAP_ACTION, SoapRequest};
pub use response::{ResponseError, SoapResponse, parse_response_untyped};
pub use routes::{GeneratedRoute, RouteAuth, RouteOptions, generated_routes, kebab, routes_yaml};
pub use template::{Lookup, Placeholder, RequestTemplate, TemplateError};
pub use wsdl::{Operation, Port, Service, SoapVersion, Style, UnsupportedOperation, Wsdl, WsdlError, WsdlFileError};
pub use xml::{Limits, XmlError};

/// Collects query parameters into an input map: a repeated name becomes an array, so it can
/// fill a `maxOccurs > 1` element.
pub fn input_from_query<K: AsRef<str>, V: Into<String>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        let value = Value::String(value.into());
        match map.get_mut(key.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key.as_ref().to_owned(), value);
            }
        }
    }
    map
}
