//! The WSDL 1.1 model: services, ports and the operations a gateway route can call.
//!
//! [`Wsdl::parse`] reads one self-contained WSDL file. Each (port, operation) pair with a
//! SOAP 1.1 or 1.2 binding becomes an [`Operation`], or an [`UnsupportedOperation`] that says
//! which construct stopped it; one odd operation never makes the others unusable.

use std::sync::Arc;

use http::HeaderValue;

use crate::names::{QName, WSDL, WSDL20, XSD};
use crate::schema::{self, TypeId, Types};
use crate::xml::{self, Limits, XmlError};

mod assemble;
mod read;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
pub(crate) mod tests;

/// The SOAP version of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoapVersion {
    /// SOAP 1.1: `text/xml` and a `SOAPAction` header.
    Soap11,
    /// SOAP 1.2: `application/soap+xml` with an `action` parameter.
    Soap12,
}

/// How an operation's messages sit in the SOAP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The body holds the message parts' elements (wrapped: one element named after the operation).
    Document,
    /// The body holds an element named after the operation whose children are the parts.
    Rpc,
}

/// Why a WSDL, or one operation of it, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsdlError {
    #[error("the WSDL is not usable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("{0}")]
    NotWsdl(String),
    #[error("{construct} is not supported ({location})")]
    Unsupported { construct: String, location: String },
    #[error("invalid WSDL, {location}: {message}")]
    Invalid { location: String, message: String },
    #[error("operation `{operation}` cannot be mapped: {reason}")]
    UnsupportedOperation { operation: String, reason: String },
    #[error("the WSDL has no SOAP operation `{name}`{}", known_list(.known))]
    UnknownOperation { name: String, known: Vec<String> },
    #[error("operation `{name}` is defined by several port types ({}); keep one per WSDL", .port_types.join(", "))]
    AmbiguousOperation { name: String, port_types: Vec<String> },
    #[error("the WSDL has no operation with a SOAP 1.1 or 1.2 binding on a service port")]
    NoSoapOperations,
}

/// Why [`Wsdl::from_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WsdlFileError {
    #[error("cannot be read: {0}")]
    Io(std::io::Error),
    #[error("is not a regular file")]
    NotAFile,
    #[error("is larger than the {limit} bytes a WSDL may have")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Wsdl(#[from] WsdlError),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() { String::new() } else { format!(" (it has: {})", known.join(", ")) }
}

/// A `<wsdl:service>` and its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub ports: Vec<Port>,
}

/// A `<wsdl:port>`: a binding at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    /// The local name of the binding.
    pub binding: String,
    /// `None` for non-SOAP ports (HTTP bindings), which are ignored.
    pub version: Option<SoapVersion>,
    /// `soap:address location`: informational; the gateway sends to the upstream's targets.
    pub address: Option<String>,
}

/// An operation of a port that cannot be mapped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOperation {
    pub name: String,
    pub service: String,
    pub port: String,
    pub version: SoapVersion,
    pub error: WsdlError,
}

/// One message direction: the body's wrapper element (if any) and the type whose fields are
/// the JSON keys. Without a wrapper, the fields are the body's own children.
#[derive(Debug, Clone)]
pub(crate) struct MessageShape {
    pub(crate) wrapper: Option<QName>,
    pub(crate) ty: TypeId,
}

/// An operation bound to one port, ready to map requests and responses.
#[derive(Debug, Clone)]
pub struct Operation {
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) port: String,
    pub(crate) port_type: QName,
    pub(crate) version: SoapVersion,
    pub(crate) style: Style,
    pub(crate) action: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) input: MessageShape,
    pub(crate) output: Option<MessageShape>,
    pub(crate) content_type: HeaderValue,
    pub(crate) soap_action: Option<HeaderValue>,
    pub(crate) types: Arc<Types>,
}

impl Operation {
    /// The operation's name in the WSDL (`GetContact`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The service whose port this operation was taken from.
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn port(&self) -> &str {
        &self.port
    }

    pub fn version(&self) -> SoapVersion {
        self.version
    }

    pub fn style(&self) -> Style {
        self.style
    }

    /// The binding's `soapAction`, if it declares a non-empty one.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// The port's `soap:address location`.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// A one-way operation has no output message: a successful call answers with no body.
    pub fn is_one_way(&self) -> bool {
        self.output.is_none()
    }

    /// The JSON keys the input accepts, in schema order (attributes as `@name`).
    pub fn input_fields(&self) -> Vec<String> {
        match self.types.get(self.input.ty) {
            schema::Ty::Complex(c) => {
                let fields = c.fields.iter().map(|f| f.name.local.clone());
                fields.chain(c.attributes.iter().map(|a| format!("@{}", a.name.local))).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A parsed WSDL file.
#[derive(Debug, Clone)]
pub struct Wsdl {
    target_namespace: String,
    services: Vec<Service>,
    operations: Vec<Operation>,
    unsupported: Vec<UnsupportedOperation>,
}

impl Wsdl {
    /// Most a WSDL file may weigh; real ones are well under a megabyte.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

    /// Parses one self-contained WSDL 1.1 file.
    pub fn parse(bytes: &[u8]) -> Result<Self, WsdlError> {
        Self::parse_with_limits(bytes, &Limits::with_max_bytes(Self::DEFAULT_MAX_BYTES))
    }

    /// Reads and parses a WSDL file: a regular file of at most [`Self::DEFAULT_MAX_BYTES`],
    /// read no further than one byte past that, so a wrong path to a device, a pipe or a huge
    /// file neither hangs nor fills memory.
    pub fn from_file(path: &std::path::Path) -> Result<Self, WsdlFileError> {
        use std::io::Read as _;
        let max = Self::DEFAULT_MAX_BYTES as u64;
        let file = std::fs::File::open(path).map_err(WsdlFileError::Io)?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(WsdlFileError::NotAFile);
        }
        let mut bytes = Vec::new();
        file.take(max + 1).read_to_end(&mut bytes).map_err(WsdlFileError::Io)?;
        if bytes.len() as u64 > max {
            return Err(WsdlFileError::TooLarge { limit: Self::DEFAULT_MAX_BYTES });
        }
        Ok(Self::parse(&bytes)?)
    }

    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Self, WsdlError> {
        let root = xml::parse(bytes, limits)?;
        if root.is(WSDL20, "description") {
            return Err(WsdlError::NotWsdl("WSDL 2.0 is not supported, only WSDL 1.1".to_owned()));
        }
        if !root.is(WSDL, "definitions") {
            return Err(WsdlError::NotWsdl(format!(
                "not a WSDL 1.1 document: the root element is <{}>, not <wsdl:definitions>",
                root.qname()
            )));
        }
        if let Some(import) = root.child(WSDL, "import") {
            return Err(WsdlError::Unsupported {
                construct: "wsdl:import of another file".to_owned(),
                location: format!("location `{}`; use a single-file WSDL", import.attr("location").unwrap_or("?")),
            });
        }
        let mut raw = schema::read::Raw::default();
        for types in root.children_named(WSDL, "types") {
            for schema in types.children_named(XSD, "schema") {
                schema::read::schema(schema, &mut raw);
            }
        }
        let types = schema::link::link(&raw);
        let defs = read::definitions(&root)?;
        let (operations, unsupported) = assemble::operations(&defs, types);
        if operations.is_empty() && unsupported.is_empty() {
            return Err(WsdlError::NoSoapOperations);
        }
        Ok(Self { target_namespace: defs.target_namespace, services: defs.services, operations, unsupported })
    }

    pub fn target_namespace(&self) -> &str {
        &self.target_namespace
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// One operation per port-type operation, in document order, bound to its preferred
    /// port: SOAP 1.1 unless only SOAP 1.2 exists.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter().enumerate().filter_map(|(i, op)| {
            let same = |o: &&Operation| o.port_type == op.port_type && o.name == op.name;
            let first = self.operations.iter().position(|o| same(&o))?;
            let preferred = self.operations.iter().filter(same).find(|o| o.version == SoapVersion::Soap11);
            (first == i).then_some(preferred.unwrap_or(op))
        })
    }

    /// Every supported (port, operation) pair, SOAP 1.1 and 1.2 alike.
    pub fn all_operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Operations that cannot be mapped, each with the reason.
    pub fn unsupported(&self) -> &[UnsupportedOperation] {
        &self.unsupported
    }

    /// The operation named `name` on its preferred port (SOAP 1.1 unless only 1.2 exists).
    pub fn operation(&self, name: &str) -> Result<&Operation, WsdlError> {
        self.preferred(name, None)
    }

    /// The operation named `name` on a port of the given SOAP version.
    pub fn operation_with_version(&self, name: &str, version: SoapVersion) -> Result<&Operation, WsdlError> {
        self.preferred(name, Some(version))
    }

    fn preferred(&self, name: &str, version: Option<SoapVersion>) -> Result<&Operation, WsdlError> {
        let matches = |op: &&Operation| op.name == name && version.is_none_or(|v| op.version == v);
        let candidates: Vec<&Operation> = self.operations.iter().filter(matches).collect();
        let Some(first) = candidates.first() else {
            let unsupported =
                self.unsupported.iter().find(|u| u.name == name && version.is_none_or(|v| u.version == v));
            if let Some(u) = unsupported {
                return Err(u.error.clone());
            }
            // Once each, in document order (an operation bound to two ports is listed twice).
            let mut known: Vec<String> = Vec::new();
            for op in &self.operations {
                if !known.contains(&op.name) {
                    known.push(op.name.clone());
                }
            }
            return Err(WsdlError::UnknownOperation { name: name.to_owned(), known });
        };
        let mut port_types: Vec<String> = candidates.iter().map(|o| o.port_type.local.clone()).collect();
        port_types.sort();
        port_types.dedup();
        if port_types.len() > 1 {
            return Err(WsdlError::AmbiguousOperation { name: name.to_owned(), port_types });
        }
        Ok(candidates.iter().find(|o| o.version == SoapVersion::Soap11).unwrap_or(first))
    }
}
