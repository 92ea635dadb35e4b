//! Reads the WSDL 1.1 sections (messages, port types, bindings, services) with every QName
//! resolved, before they are assembled into operations.

use std::collections::HashMap;

use crate::names::{QName, WSDL, WSDL_SOAP11, WSDL_SOAP12};
use crate::wsdl::{Port, Service, SoapVersion, Style, WsdlError};
use crate::xml::Element;

#[derive(Debug, Default)]
pub(crate) struct Definitions {
    pub(crate) target_namespace: String,
    pub(crate) messages: HashMap<QName, Vec<Part>>,
    pub(crate) port_types: HashMap<QName, Vec<PortTypeOp>>,
    pub(crate) bindings: HashMap<QName, Binding>,
    pub(crate) services: Vec<Service>,
    /// Ports with the binding each names, in document order.
    pub(crate) ports: Vec<(String, Port, QName)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) element: Option<QName>,
    pub(crate) ty: Option<QName>,
}

#[derive(Debug, Clone)]
pub(crate) struct PortTypeOp {
    pub(crate) name: String,
    pub(crate) input: Option<QName>,
    pub(crate) output: Option<QName>,
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) port_type: QName,
    /// `None`: not a SOAP binding (HTTP or MIME bindings are skipped).
    pub(crate) version: Option<SoapVersion>,
    pub(crate) style: Option<Style>,
    pub(crate) transport: Option<String>,
    pub(crate) operations: Vec<BindingOp>,
}

#[derive(Debug, Clone)]
pub(crate) struct BindingOp {
    pub(crate) name: String,
    pub(crate) action: Option<String>,
    pub(crate) style: Option<Style>,
    pub(crate) input: Option<BodyUse>,
    pub(crate) output: Option<BodyUse>,
}

/// What `<soap:body>` (and its siblings) say about one direction of an operation.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyUse {
    pub(crate) encoded: bool,
    pub(crate) namespace: Option<String>,
    /// `parts="a b"`: only these parts go in the body.
    pub(crate) parts: Option<Vec<String>>,
    /// A construct besides `soap:body` that this crate does not map (`soap:header`, MIME).
    pub(crate) unsupported: Option<String>,
}

fn required<'e>(el: &'e Element, attr: &str, location: &str) -> Result<&'e str, WsdlError> {
    el.attr(attr).ok_or_else(|| WsdlError::Invalid {
        location: location.to_owned(),
        message: format!("<{}> has no `{attr}` attribute", el.local),
    })
}

fn qname_attr(el: &Element, attr: &str, location: &str) -> Result<QName, WsdlError> {
    let value = required(el, attr, location)?;
    el.resolve_qname(value).map_err(|e| WsdlError::Invalid { location: location.to_owned(), message: e.to_string() })
}

fn optional_qname(el: &Element, attr: &str, location: &str) -> Result<Option<QName>, WsdlError> {
    match el.attr(attr) {
        Some(_) => qname_attr(el, attr, location).map(Some),
        None => Ok(None),
    }
}

/// Reads every section of `<definitions>`.
pub(crate) fn definitions(root: &Element) -> Result<Definitions, WsdlError> {
    let tns = root.attr("targetNamespace").unwrap_or_default().to_owned();
    let mut defs = Definitions { target_namespace: tns.clone(), ..Definitions::default() };
    for el in root.children.iter().filter(|c| &*c.ns == WSDL) {
        let Some(name) = el.attr("name") else { continue };
        let qname = QName::new(&tns, name);
        match &*el.local {
            "message" => {
                defs.messages.insert(qname, message(el, name)?);
            }
            "portType" => {
                defs.port_types.insert(qname, port_type(el, name)?);
            }
            "binding" => {
                defs.bindings.insert(qname, binding(el, name)?);
            }
            "service" => service(el, name, &mut defs),
            _ => {}
        }
    }
    Ok(defs)
}

fn message(el: &Element, name: &str) -> Result<Vec<Part>, WsdlError> {
    let location = format!("message `{name}`");
    let mut parts = Vec::new();
    for part in el.children_named(WSDL, "part") {
        parts.push(Part {
            name: required(part, "name", &location)?.to_owned(),
            element: optional_qname(part, "element", &location)?,
            ty: optional_qname(part, "type", &location)?,
        });
    }
    Ok(parts)
}

fn port_type(el: &Element, name: &str) -> Result<Vec<PortTypeOp>, WsdlError> {
    let mut ops = Vec::new();
    for op in el.children_named(WSDL, "operation") {
        let location = format!("portType `{name}`");
        let op_name = required(op, "name", &location)?.to_owned();
        let location = format!("portType `{name}` operation `{op_name}`");
        let input = op.child(WSDL, "input").map(|i| qname_attr(i, "message", &location)).transpose()?;
        let output = op.child(WSDL, "output").map(|o| qname_attr(o, "message", &location)).transpose()?;
        ops.push(PortTypeOp { name: op_name, input, output });
    }
    Ok(ops)
}

fn style(value: Option<&str>) -> Option<Style> {
    match value {
        Some("rpc") => Some(Style::Rpc),
        Some("document") => Some(Style::Document),
        _ => None,
    }
}

fn binding(el: &Element, name: &str) -> Result<Binding, WsdlError> {
    let location = format!("binding `{name}`");
    let port_type = qname_attr(el, "type", &location)?;
    let (version, soap) = if let Some(b) = el.child(WSDL_SOAP11, "binding") {
        (Some(SoapVersion::Soap11), Some(b))
    } else if let Some(b) = el.child(WSDL_SOAP12, "binding") {
        (Some(SoapVersion::Soap12), Some(b))
    } else {
        (None, None)
    };
    let ns = match version {
        Some(SoapVersion::Soap12) => WSDL_SOAP12,
        _ => WSDL_SOAP11,
    };
    let mut operations = Vec::new();
    for op in el.children_named(WSDL, "operation") {
        let op_name = required(op, "name", &location)?.to_owned();
        let soap_op = op.child(ns, "operation");
        operations.push(BindingOp {
            name: op_name,
            action: soap_op.and_then(|o| o.attr("soapAction")).map(str::to_owned),
            style: style(soap_op.and_then(|o| o.attr("style"))),
            input: op.child(WSDL, "input").map(|i| body_use(i, ns)),
            output: op.child(WSDL, "output").map(|o| body_use(o, ns)),
        });
    }
    Ok(Binding {
        port_type,
        version,
        style: style(soap.and_then(|b| b.attr("style"))),
        transport: soap.and_then(|b| b.attr("transport")).map(str::to_owned),
        operations,
    })
}

fn body_use(el: &Element, ns: &str) -> BodyUse {
    let mut body = BodyUse::default();
    for child in &el.children {
        if child.is(ns, "body") {
            body.encoded = child.attr("use") == Some("encoded");
            body.namespace = child.attr("namespace").map(str::to_owned);
            body.parts = child.attr("parts").map(|p| p.split_ascii_whitespace().map(str::to_owned).collect());
        } else if child.is(ns, "header") {
            body.unsupported.get_or_insert_with(|| "a soap:header in the binding".to_owned());
        } else if &*child.local == "multipartRelated" || &*child.local == "content" {
            body.unsupported.get_or_insert_with(|| "MIME attachments (mime:multipartRelated)".to_owned());
        }
    }
    body
}

fn service(el: &Element, name: &str, defs: &mut Definitions) {
    let location = format!("service `{name}`");
    let mut ports = Vec::new();
    for port in el.children_named(WSDL, "port") {
        let (Some(port_name), Ok(binding)) = (port.attr("name"), qname_attr(port, "binding", &location)) else {
            continue;
        };
        let address = |ns| port.child(ns, "address").and_then(|a| a.attr("location")).map(str::to_owned);
        let (version, address) = match (address(WSDL_SOAP11), address(WSDL_SOAP12)) {
            (Some(a), _) => (Some(SoapVersion::Soap11), Some(a)),
            (None, Some(a)) => (Some(SoapVersion::Soap12), Some(a)),
            (None, None) => (None, None),
        };
        let port = Port { name: port_name.to_owned(), binding: binding.local.clone(), version, address };
        defs.ports.push((name.to_owned(), port.clone(), binding));
        ports.push(port);
    }
    defs.services.push(Service { name: name.to_owned(), ports });
}
