//! Compile the SOAP parts of the config (SPEC §6). An upstream's `soap.wsdl` is read and
//! parsed here, once per load, so a bad WSDL fails `validate` and a reload instead of the first
//! request; the file joins the watch list. A route on a SOAP upstream resolves its
//! `soap.operation` in that WSDL and checks its `soap.request` template against the operation
//! and against the route itself (path parameters, authentication).
//!
//! Rule: every route to a SOAP upstream is a SOAP route. Passing raw requests through to a
//! SOAP endpoint next to mapped ones would let a client post any envelope, around the
//! mapping's checks, so a SOAP upstream route without `soap.operation` is an error.

use std::sync::Arc;

use http::uri::PathAndQuery;
use portcullis_config::KeyPath;
use portcullis_config::surface::{Route, RouteSoap, UpstreamSoap};
use portcullis_soap::{Placeholder, RequestTemplate, Wsdl};

use super::Compiler;
use crate::snapshot::{AuthRule, SoapRouteSpec, SoapUpstreamSpec, UpstreamSpec};

#[cfg(test)]
mod tests;

/// Reads and parses `soap.wsdl`; errors are placed at `upstreams.NAME.soap.wsdl` and name the
/// file and what stopped the reader.
pub(super) fn upstream(c: &mut Compiler<'_>, path: &KeyPath, soap: &UpstreamSoap) -> Option<SoapUpstreamSpec> {
    let path = path.key("wsdl");
    if soap.wsdl.trim().is_empty() {
        c.error(&path, "name the WSDL file");
        return None;
    }
    let file = c.loaded.resolve_path(&soap.wsdl);
    // The load's one reading of the file, which the config hash covers too.
    let parsed = match c.loaded.contents.read(&file) {
        Ok(bytes) => Wsdl::parse(&bytes).map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot be read: {e}")),
    };
    match parsed {
        Ok(wsdl) => Some(SoapUpstreamSpec { wsdl_file: file, wsdl: Arc::new(wsdl) }),
        Err(e) => {
            c.error(&path, format!("WSDL `{}`: {e}", file.display()));
            None
        }
    }
}

/// What a SOAP route is checked against besides its upstream.
pub(super) struct RouteFacts<'a> {
    pub(super) params: &'a [String],
    pub(super) auth: &'a AuthRule,
}

/// The route's `soap` block against its upstream: `None` for a plain route (or after an error).
pub(super) fn route(
    c: &mut Compiler<'_>,
    path: &KeyPath,
    r: &Route,
    upstream: Option<&UpstreamSpec>,
    facts: &RouteFacts<'_>,
) -> Option<SoapRouteSpec> {
    let wsdl = upstream.and_then(|u| u.soap.as_ref()).map(|s| &s.wsdl);
    let declared_soap = c.doc.upstreams.get(&r.upstream).is_some_and(|u| u.soap.is_some());
    let soap = match (&r.soap, declared_soap) {
        (None, false) => return None,
        (None, true) => {
            let known = wsdl.map(|w| operation_names(w)).unwrap_or_default();
            c.error(
                path,
                format!(
                    "upstream `{}` is a SOAP service: the route needs `soap: {{ operation: NAME }}`{known}",
                    r.upstream
                ),
            );
            return None;
        }
        (Some(_), false) => {
            c.error(&path.key("soap"), format!("upstream `{}` has no `soap.wsdl`", r.upstream));
            return None;
        }
        (Some(soap), true) => soap,
    };
    if r.rewrite.is_some() {
        c.error(&path.key("rewrite"), "a SOAP route posts to the service's endpoint; `rewrite` does not apply");
    }
    if r.websocket {
        c.error(&path.key("websocket"), "a SOAP route cannot take a WebSocket upgrade");
    }
    let path = path.key("soap");
    if soap.operation.is_empty() {
        c.error(&path.key("operation"), "name the SOAP operation");
        return None;
    }
    // A WSDL that did not load was reported at the upstream already.
    let wsdl = wsdl?;
    let operation = match wsdl.operation(&soap.operation) {
        Ok(op) => Arc::new(op.clone()),
        Err(e) => {
            c.error(&path.key("operation"), e.to_string());
            return None;
        }
    };
    let template = template(c, &path, soap, &operation, facts);
    let address_path = operation
        .endpoint()
        .and_then(|e| e.parse::<http::Uri>().ok())
        .and_then(|u| u.path_and_query().cloned())
        .filter(|pq| pq.path().starts_with('/'))
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Some(SoapRouteSpec { operation, template, address_path })
}

fn operation_names(wsdl: &Wsdl) -> String {
    let names: Vec<&str> = wsdl.operations().map(portcullis_soap::Operation::name).collect();
    if names.is_empty() { String::new() } else { format!(" (operations: {})", names.join(", ")) }
}

fn template(
    c: &mut Compiler<'_>,
    path: &KeyPath,
    soap: &RouteSoap,
    operation: &portcullis_soap::Operation,
    facts: &RouteFacts<'_>,
) -> Option<RequestTemplate> {
    let entries = soap.request.as_ref()?;
    let path = path.key("request");
    let template = match RequestTemplate::parse(entries) {
        Ok(t) => t,
        Err(e) => {
            let at = e.key.split('.').filter(|k| !k.is_empty()).fold(path.clone(), |p, k| p.key(k));
            c.error(&at, e.message);
            return None;
        }
    };
    if let Err(e) = template.check(operation) {
        c.error(&path, format!("does not fit operation `{}`: {e}", operation.name()));
    }
    for placeholder in template.placeholders() {
        match placeholder {
            Placeholder::Path(name) if !facts.params.iter().any(|p| p == name) => {
                let params = if facts.params.is_empty() {
                    "the route's path has none".to_owned()
                } else {
                    format!("it has: {}", facts.params.join(", "))
                };
                c.error(&path, format!("`{placeholder}` is not a parameter of the route's path ({params})"));
            }
            Placeholder::Claim(_) | Placeholder::Consumer if *facts.auth == AuthRule::Public => {
                c.error(&path, format!("`{placeholder}` needs an authenticated route; this one is `auth: none`"));
            }
            _ => {}
        }
    }
    Some(template)
}
