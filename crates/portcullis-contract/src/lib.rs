//! An API's contract at the edge (SPEC §2 route `validate`, top-level `openapi`; §3
//! `invalid_request`).
//!
//! Data flows: at config load an OpenAPI document ([`OpenApiDoc`]) or a JSON Schema file is
//! parsed with the place of each node, schemas in OpenAPI 3.0's dialect are rewritten to
//! JSON Schema 2020-12 ([`dialect`]), and each operation's parameters and request body become
//! a [`Contract`] whose schemas are compiled once ([`schema`]: `$ref`s only within the
//! document or to local files). Per request, [`Contract::check`] reads the parameters back
//! from their strings (OpenAPI `style`/`explode`, coerced to the schema's types), the content
//! type and the JSON body (read in place, [`body`]), and returns every [`Violation`] (bounded). [`import`] turns a
//! document's operations into routes.

mod body;
mod contract;
mod dialect;
mod document;
pub mod import;
mod params;
mod schema;
#[cfg(test)]
mod tests;

pub use contract::{Contract, MAX_VIOLATIONS, Request, Violation};
pub use document::{Compiled, METHODS, OpenApiDoc, OperationRef, schema_contract, schema_contract_text};
pub use params::In;
