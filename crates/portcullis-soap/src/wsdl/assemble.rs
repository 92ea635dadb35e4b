//! Turns ports, bindings, port types and messages into [`Operation`]s.
//!
//! The shape of each message is decided here, once:
//! - document style with one part whose element has a complex type (wrapped, or bare with a
//!   complex element): the wrapper is that element and the JSON keys are its children;
//! - document style otherwise (several parts, a simple-typed element, no part): no wrapper,
//!   the JSON keys are the parts' element names;
//! - rpc style: the wrapper is the operation name (`…Response` for the output) in the
//!   `soap:body` namespace, and the JSON keys are the part names.

use std::sync::Arc;

use http::HeaderValue;

use crate::names::{QName, SOAP_HTTP_TRANSPORT};
use crate::schema::{ComplexTy, Field, MaxOccurs, Ty, Types};
use crate::wsdl::read::{Binding, BindingOp, BodyUse, Definitions, Part, PortTypeOp};
use crate::wsdl::{MessageShape, Operation, Port, SoapVersion, Style, UnsupportedOperation, WsdlError};

/// Where an operation is being assembled, for error messages.
struct Site<'a> {
    defs: &'a Definitions,
    service: &'a str,
    port: &'a Port,
    binding: &'a Binding,
    version: SoapVersion,
}

/// Every (port, operation) pair: the usable ones and the unsupported ones.
pub(super) fn operations(defs: &Definitions, mut types: Types) -> (Vec<Operation>, Vec<UnsupportedOperation>) {
    let mut built = Vec::new();
    let mut unsupported = Vec::new();
    for (service, port, binding_name) in &defs.ports {
        let Some(binding) = defs.bindings.get(binding_name) else { continue };
        let Some(version) = binding.version else { continue };
        let site = Site { defs, service, port, binding, version };
        for bop in &binding.operations {
            match site.build(&mut types, bop) {
                Ok(op) => built.push(op),
                Err(error) => unsupported.push(UnsupportedOperation {
                    name: bop.name.clone(),
                    service: service.clone(),
                    port: port.name.clone(),
                    version,
                    error,
                }),
            }
        }
    }
    let types = Arc::new(types);
    for op in &mut built {
        op.types = types.clone();
    }
    (built, unsupported)
}

fn unsupported(operation: &str, reason: impl Into<String>) -> WsdlError {
    WsdlError::UnsupportedOperation { operation: operation.to_owned(), reason: reason.into() }
}

fn invalid(location: String, message: impl Into<String>) -> WsdlError {
    WsdlError::Invalid { location, message: message.into() }
}

impl Site<'_> {
    fn build(&self, types: &mut Types, bop: &BindingOp) -> Result<Operation, WsdlError> {
        let name = bop.name.as_str();
        if let Some(transport) = &self.binding.transport
            && transport.trim_end_matches('/') != SOAP_HTTP_TRANSPORT
        {
            return Err(unsupported(name, format!("the transport `{transport}` (only SOAP over HTTP)")));
        }
        let port_op = self.port_type_op(name)?;
        let style = bop.style.or(self.binding.style).unwrap_or(Style::Document);
        let input_use = bop.input.clone().unwrap_or_default();
        check_use(name, &input_use, "input")?;
        if let Some(what) = &input_use.unsupported {
            return Err(unsupported(name, format!("{what} (input)")));
        }
        let Some(input_message) = &port_op.input else {
            return Err(unsupported(name, "an operation without an input message (notification)"));
        };
        let input = self.shape(types, style, input_message, &input_use, name, false)?;
        let output = match &port_op.output {
            Some(message) => {
                let output_use = bop.output.clone().unwrap_or_default();
                check_use(name, &output_use, "output")?;
                Some(self.shape(types, style, message, &output_use, name, true)?)
            }
            None => None,
        };
        for shape in std::iter::once(&input).chain(output.as_ref()) {
            if let Some(reason) = types.first_broken(shape.ty) {
                return Err(unsupported(name, reason));
            }
        }
        let action = bop.action.clone().filter(|a| !a.is_empty());
        let (content_type, soap_action) = http_headers(name, self.version, action.as_deref())?;
        Ok(Operation {
            name: name.to_owned(),
            service: self.service.to_owned(),
            port: self.port.name.clone(),
            port_type: self.binding.port_type.clone(),
            version: self.version,
            style,
            action,
            endpoint: self.port.address.clone(),
            input,
            output,
            content_type,
            soap_action,
            types: Arc::default(),
        })
    }

    fn port_type_op(&self, name: &str) -> Result<&PortTypeOp, WsdlError> {
        let port_type = &self.binding.port_type;
        let Some(ops) = self.defs.port_types.get(port_type) else {
            return Err(invalid(
                format!("operation `{name}`"),
                format!("portType `{}` is not defined", port_type.local),
            ));
        };
        let mut matching = ops.iter().filter(|o| o.name == name);
        match (matching.next(), matching.next()) {
            (Some(op), None) => Ok(op),
            (Some(_), Some(_)) => Err(unsupported(name, "an overloaded operation name in the portType")),
            (None, _) => Err(invalid(
                format!("operation `{name}`"),
                format!("portType `{}` has no such operation", port_type.local),
            )),
        }
    }

    fn parts(&self, message: &QName, body: &BodyUse, op: &str) -> Result<Vec<Part>, WsdlError> {
        let location = format!("operation `{op}`");
        let Some(parts) = self.defs.messages.get(message) else {
            return Err(invalid(location, format!("message `{}` is not defined", message.local)));
        };
        let Some(selected) = &body.parts else { return Ok(parts.clone()) };
        selected
            .iter()
            .map(|name| {
                parts.iter().find(|p| &p.name == name).cloned().ok_or_else(|| {
                    invalid(location.clone(), format!("soap:body names part `{name}`, not in `{}`", message.local))
                })
            })
            .collect()
    }

    fn shape(
        &self,
        types: &mut Types,
        style: Style,
        message: &QName,
        body: &BodyUse,
        op: &str,
        output: bool,
    ) -> Result<MessageShape, WsdlError> {
        let parts = self.parts(message, body, op)?;
        match style {
            Style::Document => document_shape(types, &parts, op),
            Style::Rpc => {
                let local = if output { format!("{op}Response") } else { op.to_owned() };
                let wrapper = QName::new(body.namespace.clone().unwrap_or_default(), local);
                rpc_shape(types, &parts, op, wrapper)
            }
        }
    }
}

fn check_use(op: &str, body: &BodyUse, direction: &str) -> Result<(), WsdlError> {
    if body.encoded {
        return Err(unsupported(op, format!("use=\"encoded\" (SOAP encoding) in the {direction}; only literal")));
    }
    Ok(())
}

fn one(name: QName, ty: usize, nillable: bool) -> Field {
    Field { name, ty, min: 1, max: MaxOccurs::Bounded(1), nillable, choice: None }
}

fn document_shape(types: &mut Types, parts: &[Part], op: &str) -> Result<MessageShape, WsdlError> {
    let mut fields = Vec::new();
    for part in parts {
        let Some(element) = &part.element else {
            return Err(unsupported(
                op,
                format!("part `{}` has type= rather than element= in a document-style operation", part.name),
            ));
        };
        let Some(global) = types.elements.get(element).copied() else {
            return Err(unsupported(op, format!("element `{element}` of part `{}` is not defined", part.name)));
        };
        if parts.len() == 1 && matches!(types.get(global.ty), Ty::Complex(_)) {
            return Ok(MessageShape { wrapper: Some(element.clone()), ty: global.ty });
        }
        fields.push(one(element.clone(), global.ty, global.nillable));
    }
    types.tys.push(Ty::Complex(ComplexTy { fields, ..ComplexTy::default() }));
    Ok(MessageShape { wrapper: None, ty: types.tys.len() - 1 })
}

fn rpc_shape(types: &mut Types, parts: &[Part], op: &str, wrapper: QName) -> Result<MessageShape, WsdlError> {
    let mut fields = Vec::new();
    for part in parts {
        let Some(ty_name) = &part.ty else {
            return Err(unsupported(op, format!("part `{}` uses element= in an rpc-style operation", part.name)));
        };
        let Some(ty) = types.by_name(ty_name) else {
            return Err(unsupported(op, format!("type `{ty_name}` of part `{}` is not defined", part.name)));
        };
        fields.push(one(QName::new("", &part.name), ty, false));
    }
    types.tys.push(Ty::Complex(ComplexTy { fields, ..ComplexTy::default() }));
    Ok(MessageShape { wrapper: Some(wrapper), ty: types.tys.len() - 1 })
}

/// `Content-Type` and `SOAPAction` as the SOAP version wants them, checked once here so that
/// building a request never fails on headers.
fn http_headers(
    op: &str,
    version: SoapVersion,
    action: Option<&str>,
) -> Result<(HeaderValue, Option<HeaderValue>), WsdlError> {
    if let Some(action) = action
        && (action.contains(['"', '\\']) || action.chars().any(|c| !(' '..='~').contains(&c)))
    {
        return Err(unsupported(op, format!("the soapAction {action:?} (quotes, backslashes or non-ASCII)")));
    }
    let header = |text: String| HeaderValue::try_from(text).map_err(|e| unsupported(op, e.to_string()));
    match version {
        SoapVersion::Soap11 => {
            let content_type = HeaderValue::from_static("text/xml; charset=utf-8");
            Ok((content_type, Some(header(format!("\"{}\"", action.unwrap_or_default()))?)))
        }
        SoapVersion::Soap12 => {
            let content_type = match action {
                Some(action) => header(format!("application/soap+xml; charset=utf-8; action=\"{action}\""))?,
                None => HeaderValue::from_static("application/soap+xml; charset=utf-8"),
            };
            Ok((content_type, None))
        }
    }
}
