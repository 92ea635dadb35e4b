//! `portcullis openapi`: the OpenAPI 3.1 document of the API the gateway serves, built from
//! the compiled config.
//!
//! Every route is an operation per method it takes (`operationId` is the route's name, with
//! `-get`, `-post`… when the route takes several), its path with its `{params}` (a catch-all
//! `{*rest}` is written `{rest}`), and a security requirement per auth provider (`any`: one
//! requirement each, `all`: one requirement naming them all, `auth: none`: `security: []`).
//! SOAP routes get JSON Schemas of their input and output derived from the WSDL
//! (`components/schemas`, named `{upstream}.{operation}.input`/`.output`, the XSD's named
//! types `{upstream}.{Type}`) and their `soap_fault` problem answers; other routes answer
//! whatever their upstream does. OpenAPI cannot say "any method" or route by host: a route
//! without `methods` lists the seven methods OpenAPI names, a host is given as
//! `x-portcullis-host`, and where two routes share a path and method (on different hosts)
//! only the first is described and the other is reported.
//!
//! Each operation also carries the route's gateway settings as the `x-portcullis-*`
//! extensions that `openapi:` imports (`upstream`, `auth`, `policy`, `rate-limits`, `cache`,
//! `waf`, `host`), and a route with a contract (`validate`, or imported) its parameters and
//! request body: importing the output gives the same routes back.

use std::path::Path;
use std::process::ExitCode;

use portcullis_config::surface::{AuthProvider, Document};
use portcullis_core::Snapshot;
use portcullis_core::snapshot::{AuthRule, RouteSpec, SoapRouteSpec, UpstreamSpec};
use portcullis_soap::Placeholder;
use portcullis_soap::json_schema::DIALECT;
use serde_json::{Map, Value, json};

/// The gateway's settings of a route as `x-portcullis-*` extensions (importing the document
/// gives the route back), and its contract's parameters and request body.
fn extensions(
    op: &mut Value,
    route: &RouteSpec,
    doc: &Document,
    snapshot: &Snapshot,
    schemas: &mut Map<String, Value>,
) {
    let Value::Object(op) = op else { return };
    if let Some(upstream) = snapshot.upstreams.get(route.upstream) {
        op.insert("x-portcullis-upstream".into(), upstream.name.to_string().into());
    }
    let names = |list: &[std::sync::Arc<str>]| Value::from(list.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let auth = match &route.auth {
        AuthRule::Public => json!("none"),
        AuthRule::Any(list) => json!({ "any": names(list) }),
        AuthRule::All(list) => json!({ "all": names(list) }),
    };
    op.insert("x-portcullis-auth".into(), auth);
    if !route.policies.is_empty() {
        op.insert("x-portcullis-policy".into(), names(&route.policies));
    }
    let limits: Vec<Value> = route
        .rate_limits
        .iter()
        .filter_map(|i| snapshot.rate_limits.get(*i))
        .map(|l| l.name.to_string().into())
        .collect();
    if !limits.is_empty() {
        op.insert("x-portcullis-rate-limits".into(), limits.into());
    }
    if let Some(cache) = &route.cache {
        let ttl = match cache.ttl.subsec_millis() {
            0 => format!("{}s", cache.ttl.as_secs()),
            _ => format!("{}ms", cache.ttl.as_millis()),
        };
        op.insert("x-portcullis-cache".into(), json!({ "ttl": ttl, "shared": cache.shared }));
    }
    let waf = doc.routes.iter().find(|r| r.name == *route.name).and_then(|r| r.waf.as_ref());
    if let Some(waf) = waf.and_then(|w| serde_json::to_value(w).ok()) {
        op.insert("x-portcullis-waf".into(), waf);
    }
    let Some(contract) = &route.contract else { return };
    let Value::Object(described) = &contract.described else { return };
    for (key, value) in described {
        match key.as_str() {
            "x-portcullis-components" => {
                for (name, schema) in value.as_object().into_iter().flatten() {
                    schemas.entry(name.clone()).or_insert_with(|| schema.clone());
                }
            }
            _ => {
                op.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The methods OpenAPI 3.1 has fields for, as a route without `methods` is described.
const ALL_METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// `portcullis openapi`: the document on stdout, what it cannot describe on stderr; a config
/// that does not validate prints its errors and exits 1.
pub(crate) fn run(config: &Path, stage: Option<&str>) -> ExitCode {
    let compiled = portcullis_config::load_file(config, stage)
        .and_then(|loaded| portcullis_core::compile(&loaded).map(|snapshot| (loaded, snapshot)));
    match compiled {
        Ok((loaded, snapshot)) => {
            let (document, skipped) = document(&loaded.document, &snapshot);
            for s in &skipped {
                eprintln!("note: {s}");
            }
            println!("{document:#}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.len());
            ExitCode::from(1)
        }
    }
}

/// The document, and what could not be described in it.
pub(crate) fn document(doc: &Document, snapshot: &Snapshot) -> (Value, Vec<String>) {
    let mut schemas = Map::new();
    schemas.insert("Problem".into(), problem_schema());
    let mut paths = Map::new();
    let mut skipped = Vec::new();
    for route in &snapshot.routes {
        let Some(upstream) = snapshot.upstreams.get(route.upstream) else { continue };
        let (methods, unnamed) = methods(route);
        for method in unnamed {
            skipped.push(format!("route `{}`: OpenAPI 3.1 has no field for method {method}", route.name));
        }
        let Value::Object(item) = paths.entry(openapi_path(&route.path)).or_insert_with(|| json!({})) else {
            continue;
        };
        for method in &methods {
            if item.contains_key(*method) {
                skipped.push(format!(
                    "route `{}`: {} {} is already described by another route",
                    route.name,
                    method.to_uppercase(),
                    route.path
                ));
                continue;
            }
            let id = if methods.len() == 1 { route.name.to_string() } else { format!("{}-{method}", route.name) };
            let mut op = operation(route, upstream, method, id, &mut schemas);
            extensions(&mut op, route, doc, snapshot, &mut schemas);
            item.insert((*method).to_owned(), op);
        }
    }
    let stage = snapshot.stage.as_deref().map(|s| format!(", stage `{s}`")).unwrap_or_default();
    let document = json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": {
            "title": "API served by Portcullis",
            "version": snapshot.hash,
            "description": format!("Generated by `portcullis openapi` from the config (hash {}{stage}).", snapshot.hash),
        },
        "paths": paths,
        "components": { "schemas": schemas, "securitySchemes": security_schemes(doc) },
    });
    (document, skipped)
}

/// The route's methods in lower case, and the ones OpenAPI has no field for.
fn methods(route: &RouteSpec) -> (Vec<&'static str>, Vec<String>) {
    let Some(list) = &route.methods else { return (ALL_METHODS.to_vec(), Vec::new()) };
    let mut named = Vec::new();
    let mut unnamed = Vec::new();
    for m in list {
        match ALL_METHODS.iter().find(|a| a.eq_ignore_ascii_case(m.as_str())) {
            Some(a) => named.push(*a),
            None if m.as_str() == "TRACE" => named.push("trace"),
            None => unnamed.push(m.to_string()),
        }
    }
    (named, unnamed)
}

/// `/static/{*rest}` → `/static/{rest}`.
fn openapi_path(pattern: &str) -> String {
    pattern.replace("{*", "{")
}

fn path_params(pattern: &str) -> Vec<&str> {
    pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| name.trim_start_matches('*'))
        .collect()
}

fn operation(
    route: &RouteSpec,
    upstream: &UpstreamSpec,
    method: &str,
    id: String,
    schemas: &mut Map<String, Value>,
) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), id.into());
    let mut parameters: Vec<Value> = path_params(&route.path)
        .into_iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    op.insert("security".into(), security(&route.auth));
    if let Some(host) = &route.host {
        op.insert("x-portcullis-host".into(), host.clone().into());
    }
    match &route.soap {
        Some(soap) => soap_operation(&mut op, &mut parameters, soap, &upstream.name, method, schemas),
        None => {
            op.insert("summary".into(), format!("Proxied to upstream `{}`", upstream.name).into());
            op.insert("responses".into(), json!({ "default": { "description": "The upstream's response." } }));
        }
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    Value::Object(op)
}

fn soap_operation(
    op: &mut Map<String, Value>,
    parameters: &mut Vec<Value>,
    soap: &SoapRouteSpec,
    upstream: &str,
    method: &str,
    schemas: &mut Map<String, Value>,
) {
    let operation = &soap.operation;
    let prefix = component_name(upstream);
    let generated = operation.json_schemas(&format!("#/components/schemas/{prefix}."));
    for (name, schema) in generated.definitions {
        schemas.entry(format!("{prefix}.{name}")).or_insert(schema);
    }
    let base = format!("{prefix}.{}", component_name(operation.name()));
    let (input, output) = (format!("{base}.input"), format!("{base}.output"));
    schemas.entry(input.clone()).or_insert_with(|| generated.input.clone());
    schemas.entry(output.clone()).or_insert(generated.output);
    op.insert("summary".into(), format!("SOAP operation `{}` of upstream `{upstream}`", operation.name()).into());
    let takes_body = matches!(method, "post" | "put" | "patch");
    match &soap.template {
        None if takes_body => {
            let required = generated.input.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
            op.insert("requestBody".into(), json_body(&format!("#/components/schemas/{input}"), required));
        }
        None => parameters.extend(query_parameters(&generated.input)),
        Some(template) => {
            let placeholders = template.placeholders();
            for p in &placeholders {
                if let Placeholder::Query(name) = p {
                    parameters.push(json!({ "name": name, "in": "query", "schema": { "type": "string" } }));
                }
            }
            let members: Vec<String> = placeholders
                .iter()
                .filter_map(|p| match p {
                    Placeholder::Body(path) => Some(path.join(".")),
                    _ => None,
                })
                .collect();
            if !members.is_empty() && takes_body {
                let description = format!("A JSON object; the route reads {}.", members.join(", "));
                op.insert(
                    "requestBody".into(),
                    json!({ "description": description, "content": { "application/json": { "schema": { "type": "object" } } } }),
                );
            }
        }
    }
    op.insert("responses".into(), soap_responses(&output));
}

/// A GET-like SOAP route without a template: each input field is a query parameter.
fn query_parameters(input: &Value) -> Vec<Value> {
    let required: Vec<&str> = input
        .get("required")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |r| r.iter().filter_map(Value::as_str).collect());
    let Some(Value::Object(properties)) = input.get("properties") else { return Vec::new() };
    properties
        .iter()
        .filter(|(name, _)| !name.starts_with('@'))
        .map(|(name, schema)| {
            json!({ "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema })
        })
        .collect()
}

fn json_body(reference: &str, required: bool) -> Value {
    json!({ "required": required, "content": { "application/json": { "schema": { "$ref": reference } } } })
}

fn soap_responses(output: &str) -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
        })
    };
    json!({
        "200": {
            "description": "The operation's output.",
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{output}") } } }
        },
        "400": problem("`invalid_request`: the input does not fit the operation; `soap_fault`: a client fault."),
        "502": problem("`soap_fault`: a server fault; `upstream_error`: no valid SOAP answer."),
        "504": problem("`upstream_timeout`."),
    })
}

fn security(rule: &AuthRule) -> Value {
    let requirement =
        |names: &[std::sync::Arc<str>]| Value::Object(names.iter().map(|n| (n.to_string(), json!([]))).collect());
    match rule {
        AuthRule::Public => json!([]),
        AuthRule::Any(names) => Value::Array(names.iter().map(|n| requirement(std::slice::from_ref(n))).collect()),
        AuthRule::All(names) => json!([requirement(names)]),
    }
}

fn security_schemes(doc: &Document) -> Value {
    let schemes = doc.auth.iter().map(|(name, provider)| {
        let scheme = match provider {
            AuthProvider::Jwt(jwt) => match jwt.token_from.first().map(String::as_str) {
                Some(from) if from.starts_with("cookie:") => {
                    json!({ "type": "apiKey", "in": "cookie", "name": &from["cookie:".len()..], "description": "A JWT." })
                }
                Some(from) if from.starts_with("query:") => {
                    json!({ "type": "apiKey", "in": "query", "name": &from["query:".len()..], "description": "A JWT." })
                }
                _ => json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }),
            },
            AuthProvider::ApiKey(key) => json!({ "type": "apiKey", "in": "header", "name": key.header }),
            AuthProvider::Mtls(_) => json!({ "type": "mutualTLS" }),
        };
        (name.clone(), scheme)
    });
    Value::Object(schemes.collect())
}

/// The problem document of SPEC §3, with the members a `soap_fault` adds.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail", "request_id"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "code": { "type": "string" },
            "detail": { "type": "string" },
            "request_id": { "type": "string" },
            "faultcode": { "type": "string", "description": "soap_fault only" },
            "faultstring": { "type": "string", "description": "soap_fault only" }
        }
    })
}

/// Component names may hold letters, digits, `.`, `-` and `_`.
fn component_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests;
