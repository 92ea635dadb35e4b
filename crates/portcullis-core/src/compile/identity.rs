//! `auth`, `consumers` and `policies` become the providers, declared consumers (with their
//! key index) and compiled policies the authentication and authorization stages read. The
//! checks of each section's values live in `sections`; this builds what passed them.

use std::sync::Arc;
use std::time::Duration;

use foldhash::HashMap;
use http::{HeaderName, HeaderValue};
use portcullis_auth::api_key::{KeyIndex, KeyRecord, parse_stored_form};
use portcullis_auth::jwt::{Algorithm, JwtSettings};
use portcullis_auth::policy::Policy;
use portcullis_config::surface::{AuthProvider, OneOrMany};

use super::{Compiler, at};
use crate::snapshot::{ConsumerSpec, DistinguishedName, JwtSpec, PolicySpec, ProviderKind, ProviderSpec, TokenSource};

/// Leeway for `exp`/`nbf` when a provider names none.
pub(super) const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

pub(super) fn providers(c: &mut Compiler<'_>) -> Vec<ProviderSpec> {
    let mut out = Vec::with_capacity(c.doc.auth.len());
    for (name, provider) in &c.doc.auth {
        let kind = match provider {
            AuthProvider::Jwt(jwt) => {
                let token_from = if jwt.token_from.is_empty() {
                    vec![TokenSource::Header]
                } else {
                    jwt.token_from
                        .iter()
                        .filter_map(|from| match (from.strip_prefix("cookie:"), from.strip_prefix("query:")) {
                            _ if from == "header" => Some(TokenSource::Header),
                            (Some(cookie), _) => Some(TokenSource::Cookie(cookie.to_owned())),
                            (_, Some(query)) => Some(TokenSource::Query(query.to_owned())),
                            _ => None,
                        })
                        .collect()
                };
                let forward_claims = jwt
                    .forward_claims
                    .iter()
                    .filter_map(|(claim, header)| {
                        HeaderName::from_bytes(header.as_bytes()).ok().map(|h| (claim.clone(), h))
                    })
                    .collect();
                let algorithms = jwt.algorithms.iter().filter_map(|a| a.parse::<Algorithm>().ok()).collect();
                ProviderKind::Jwt(JwtSpec {
                    settings: JwtSettings {
                        provider: Arc::from(name.as_str()),
                        issuer: jwt.issuer.clone(),
                        jwks_uri: jwt.jwks_uri.clone(),
                        ca: jwt.ca.as_deref().map(|p| c.loaded.resolve_path(p)),
                        audiences: jwt.audiences.clone(),
                        algorithms,
                        leeway: jwt.leeway.map_or(DEFAULT_LEEWAY, |d| d.0),
                    },
                    token_from,
                    login_url: jwt.login_url.clone(),
                    forward_claims,
                })
            }
            AuthProvider::ApiKey(key) => match HeaderName::from_bytes(key.header.as_bytes()) {
                Ok(header) => {
                    // A header name is a token: no quote or control byte can reach the value.
                    let text = format!("ApiKey realm=\"portcullis\", header=\"{}\"", key.header);
                    let challenge = HeaderValue::from_str(&text)
                        .unwrap_or_else(|_| HeaderValue::from_static("ApiKey realm=\"portcullis\""));
                    ProviderKind::ApiKey { header, challenge }
                }
                Err(_) => continue,
            },
            AuthProvider::Mtls(_) => ProviderKind::Mtls,
        };
        out.push(ProviderSpec { name: Arc::from(name.as_str()), kind });
    }
    out
}

/// Declared consumers and the index of their keys. A key listed twice is an error: one
/// digest must name one consumer.
pub(super) fn consumers(c: &mut Compiler<'_>) -> (Vec<ConsumerSpec>, KeyIndex) {
    let mut consumers = Vec::with_capacity(c.doc.consumers.len());
    let mut keys = HashMap::default();
    for (name, consumer) in &c.doc.consumers {
        let path = at("consumers").key(name);
        let name: Arc<str> = Arc::from(name.as_str());
        let plan: Option<Arc<str>> = consumer.plan.as_deref().map(Arc::from);
        for (i, stored) in consumer.keys.iter().enumerate() {
            let Some(digest) = parse_stored_form(stored) else { continue };
            let record = KeyRecord { id: None, consumer: name.clone(), expires_at: None, plan: plan.clone() };
            if keys.insert(digest, record).is_some() {
                c.error(&path.key("keys").index(i), "this key is already listed for a consumer");
            }
        }
        let mtls_dn = consumer.mtls_subject.as_deref().and_then(|subject| {
            let dn = DistinguishedName::parse(subject);
            if dn.is_none() {
                let why = "not an RFC 4514 distinguished name (`CN=acme-billing,O=Acme`; `+` joins the attributes \
                           of one RDN; escape `,` `+` `\"` `\\` `<` `>` `;` `=` with `\\`)";
                c.error(&path.key("mtls_subject"), why);
            }
            dn
        });
        if mtls_dn.is_some() && consumers.iter().any(|o: &ConsumerSpec| o.mtls_dn == mtls_dn) {
            c.error(&path.key("mtls_subject"), "another consumer has this subject");
        }
        consumers.push(ConsumerSpec { name, plan, mtls_subject: consumer.mtls_subject.clone(), mtls_dn });
    }
    (consumers, KeyIndex::new(keys))
}

pub(super) fn policies(c: &mut Compiler<'_>) -> Vec<PolicySpec> {
    let mut out = Vec::with_capacity(c.doc.policies.len());
    for (name, policy) in &c.doc.policies {
        let claims = policy
            .claims
            .iter()
            .map(|(claim, values)| {
                // `One` is tried first when YAML is read, so a list arrives as one array value.
                let values = match values {
                    OneOrMany::One(serde_json::Value::Array(vs)) | OneOrMany::Many(vs) => vs.clone(),
                    OneOrMany::One(v) => vec![v.clone()],
                };
                (claim.clone(), values)
            })
            .collect();
        match Policy::compile(name, policy.scopes.clone(), claims, policy.expr.as_deref()) {
            Ok(compiled) => out.push(PolicySpec { name: Arc::from(name.as_str()), policy: compiled }),
            Err(e) => {
                let place = match (e.line, e.column) {
                    (Some(l), Some(col)) => format!(" (expression line {l}, column {col})"),
                    _ => String::new(),
                };
                c.error(&at("policies").key(name).key("expr"), format!("invalid expression: {}{place}", e.message));
            }
        }
    }
    out
}

/// Every `api_key` provider's header.
pub(super) fn key_headers(providers: &[ProviderSpec]) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = Vec::new();
    for p in providers {
        if let ProviderKind::ApiKey { header, .. } = &p.kind
            && !out.contains(header)
        {
            out.push(header.clone());
        }
    }
    out
}

/// Every JWT provider's cookie and query `token_from` places, once each.
pub(super) fn token_places(providers: &[ProviderSpec]) -> Vec<TokenSource> {
    let mut out: Vec<TokenSource> = Vec::new();
    for p in providers {
        if let ProviderKind::Jwt(spec) = &p.kind {
            for place in &spec.token_from {
                if *place != TokenSource::Header && !out.contains(place) {
                    out.push(place.clone());
                }
            }
        }
    }
    out
}
