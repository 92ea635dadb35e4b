//! SOAP faults, 1.1 and 1.2, as one type the gateway turns into a `soap_fault` problem.

use http::StatusCode;
use serde_json::Value;

use crate::names::{QName, SOAP11_ENV, SOAP12_ENV, XML};
use crate::response::Mapper;
use crate::xml::{Element, is_xml_space};

/// Who the fault blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SOAP 1.1 `Client` (and `Client.*`), SOAP 1.2 `Sender`: the request was wrong (400).
    Client,
    /// Everything else: `Server`/`Receiver`, `VersionMismatch`, `MustUnderstand` (the
    /// gateway wrote the envelope, so these are not the caller's fault) and codes outside the
    /// envelope namespace, whose meaning is unknown (502).
    Server,
}

/// A SOAP fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// The fault code with its prefix resolved.
    pub code: QName,
    /// The code as shown to clients: the local name (`Client.InvalidInput`, `Sender`) when in
    /// the envelope namespace, else Clark notation (`{urn:x}Oops`).
    pub faultcode: String,
    /// SOAP 1.2 `Subcode/Value`s, outermost first (empty for 1.1).
    pub subcodes: Vec<QName>,
    /// `faultstring` (1.1) or the `Reason/Text` (1.2; English preferred, else the first).
    pub faultstring: String,
    /// `faultactor` (1.1) or `Node` (1.2).
    pub actor: Option<String>,
    /// `detail`/`Detail` mapped without a schema (by repetition, values as strings).
    pub detail: Option<Value>,
}

impl Fault {
    /// 400 for client/sender faults, 502 for the rest (SPEC §6).
    pub fn status(&self) -> StatusCode {
        match self.kind {
            FaultKind::Client => StatusCode::BAD_REQUEST,
            FaultKind::Server => StatusCode::BAD_GATEWAY,
        }
    }
}

fn child<'e>(el: &'e Element, local: &str) -> Option<&'e Element> {
    // Fault children are unqualified in 1.1 and qualified in 1.2; senders get this wrong
    // both ways, so local names decide.
    el.children.iter().find(|c| &*c.local == local)
}

fn text(el: Option<&Element>) -> Option<String> {
    let text = el?.text.trim_matches(is_xml_space);
    (!text.is_empty()).then(|| text.to_owned())
}

fn code_of(el: Option<&Element>) -> QName {
    let Some(el) = el else { return QName::new("", "") };
    el.resolve_qname(&el.text).unwrap_or_else(|_| QName::new("", el.text.trim_matches(is_xml_space)))
}

fn display(code: &QName, env: &str) -> String {
    if code.namespace == env { code.local.clone() } else { code.to_string() }
}

fn detail(el: &mut Element, local: &str) -> Option<Value> {
    let index = el.children.iter().position(|c| &*c.local == local)?;
    let el = el.children.swap_remove(index);
    if el.children.is_empty() && el.text.trim_matches(is_xml_space).is_empty() {
        return None;
    }
    Some(Value::Object(Mapper { types: None }.object(el, None)))
}

/// Reads the `Fault` element of an envelope in namespace `env`.
pub(crate) fn parse(el: Element, env: &str) -> Fault {
    if env == SOAP12_ENV { soap12(el) } else { soap11(el) }
}

fn soap11(mut el: Element) -> Fault {
    let detail = detail(&mut el, "detail");
    let el = &el;
    let code = code_of(child(el, "faultcode"));
    let in_env = code.namespace == SOAP11_ENV || code.namespace.is_empty();
    let client = in_env && code.local.split('.').next() == Some("Client");
    Fault {
        kind: if client { FaultKind::Client } else { FaultKind::Server },
        faultcode: if code.namespace.is_empty() { code.local.clone() } else { display(&code, SOAP11_ENV) },
        code,
        subcodes: Vec::new(),
        faultstring: text(child(el, "faultstring")).unwrap_or_default(),
        actor: text(child(el, "faultactor")),
        detail,
    }
}

fn soap12(mut el: Element) -> Fault {
    let detail = detail(&mut el, "Detail");
    let el = &el;
    let code_el = child(el, "Code");
    let code = code_of(code_el.and_then(|c| child(c, "Value")));
    let mut subcodes = Vec::new();
    let mut sub = code_el.and_then(|c| child(c, "Subcode"));
    while let Some(s) = sub {
        subcodes.push(code_of(child(s, "Value")));
        sub = child(s, "Subcode");
    }
    let texts: Vec<&Element> = child(el, "Reason").map(|r| r.children.iter().collect()).unwrap_or_default();
    let english = texts.iter().find(|t| t.attr_ns(XML, "lang").is_some_and(|l| l.starts_with("en")));
    let client = code.is(SOAP12_ENV, "Sender") || (code.namespace.is_empty() && code.local == "Sender");
    Fault {
        kind: if client { FaultKind::Client } else { FaultKind::Server },
        faultcode: display(&code, SOAP12_ENV),
        code,
        subcodes,
        faultstring: text(english.or(texts.first()).copied()).unwrap_or_default(),
        actor: text(child(el, "Node")),
        detail,
    }
}
