//! Namespace names of the specifications this crate reads, and the resolved XML name type.

use std::fmt;

/// WSDL 1.1.
pub(crate) const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
/// WSDL 2.0, recognised only to say it is not supported.
pub(crate) const WSDL20: &str = "http://www.w3.org/ns/wsdl";
/// The WSDL 1.1 SOAP 1.1 binding extension (`soap:`).
pub(crate) const WSDL_SOAP11: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
/// The WSDL 1.1 SOAP 1.2 binding extension (`soap12:`).
pub(crate) const WSDL_SOAP12: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";
/// The only transport a SOAP binding may name here: SOAP over HTTP.
pub(crate) const SOAP_HTTP_TRANSPORT: &str = "http://schemas.xmlsoap.org/soap/http";
/// XML Schema 1.0/1.1.
pub(crate) const XSD: &str = "http://www.w3.org/2001/XMLSchema";
/// XML Schema instance attributes (`xsi:nil`, `xsi:type`).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The SOAP 1.1 envelope.
pub(crate) const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope.
pub(crate) const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The `xml:` prefix, bound in every document.
pub(crate) const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// An XML name with its namespace resolved: `{namespace}local`.
///
/// An empty `namespace` means the name is in no namespace. Prefixes never survive parsing:
/// two documents that bind different prefixes to the same namespace give equal names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub namespace: String,
    pub local: String,
}

impl QName {
    pub fn new(namespace: impl Into<String>, local: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), local: local.into() }
    }

    pub(crate) fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace == namespace && self.local == local
    }
}

/// Clark notation, `{urn:example}Name`, or just `Name` when in no namespace.
impl fmt::Display for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.local)
        } else {
            write!(f, "{{{}}}{}", self.namespace, self.local)
        }
    }
}
