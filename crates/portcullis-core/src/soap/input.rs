//! One request's input for a SOAP operation (SPEC §6): the route's `soap.request` template
//! rendered against the request, or, without a template, the JSON body (POST, PUT, PATCH) or
//! the query parameters as they are.
//!
//! Values are what the client meant, not what it sent on the wire: path parameters and query
//! values are percent-decoded (`+` is a space in the query, as forms write it), and a repeated
//! query parameter is an array. `{claim.x}` finds nothing until the gateway verifies tokens;
//! `{consumer}` is the authenticated consumer's name.

use crate::context::RequestContext;
use http::Method;
use http::request::Parts;
use portcullis_soap::{Placeholder, RequestTemplate, TemplateError, input_from_query};
use serde_json::{Map, Value};

/// Why a request cannot give the operation an input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The body is not JSON (serde's message: position only, never the text).
    #[error("the request body is not JSON: {0}")]
    NotJson(String),
    #[error("the request body must be a JSON object")]
    NotObject,
    #[error("{0} is not valid percent-encoded UTF-8")]
    Encoding(&'static str),
    /// A value that cannot fill the template, e.g. an object inside a text.
    #[error("{0}")]
    Template(TemplateError),
}

/// The input map of `template` (or the default mapping) for this request.
pub fn build(
    template: Option<&RequestTemplate>,
    parts: &Parts,
    body: &[u8],
    ctx: &RequestContext,
) -> Result<Map<String, Value>, InputError> {
    let Some(template) = template else {
        return if takes_body(&parts.method) { body_object(body) } else { query(parts) };
    };
    let placeholders = template.placeholders();
    let body = if placeholders.iter().any(|p| matches!(p, Placeholder::Body(_))) { json(body)? } else { Value::Null };
    let query =
        if placeholders.iter().any(|p| matches!(p, Placeholder::Query(_))) { query(parts)? } else { Map::new() };
    let mut params = Vec::with_capacity(ctx.params.len());
    for (name, raw) in &ctx.params {
        params.push((name.as_ref(), decode(raw, false).ok_or(InputError::Encoding("a path parameter"))?));
    }
    let lookup = |p: &Placeholder| -> Option<Value> {
        match p {
            Placeholder::Path(name) => params.iter().find(|(n, _)| *n == name).map(|(_, v)| Value::String(v.clone())),
            Placeholder::Query(name) => query.get(name).cloned(),
            Placeholder::Body(path) => Placeholder::select(path, &body).cloned(),
            Placeholder::Claim(name) => ctx.token.as_ref().and_then(|t| t.claims.get(name.as_str())).cloned(),
            Placeholder::Consumer => ctx.consumer.clone().map(Value::String),
        }
    };
    template.render(&lookup).map_err(InputError::Template)
}

/// Methods whose JSON body is the input when the route has no template.
fn takes_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// The body as a JSON object; an empty body is an empty object (an operation without
/// required fields needs none).
fn body_object(body: &[u8]) -> Result<Map<String, Value>, InputError> {
    match json(body)? {
        Value::Object(map) => Ok(map),
        Value::Null if body.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        _ => Err(InputError::NotObject),
    }
}

/// The body as JSON; `null` when it is empty.
fn json(body: &[u8]) -> Result<Value, InputError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| InputError::NotJson(e.to_string()))
}

/// The query parameters, decoded; a repeated name becomes an array.
fn query(parts: &Parts) -> Result<Map<String, Value>, InputError> {
    let Some(query) = parts.uri.query() else { return Ok(Map::new()) };
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name, true).ok_or(InputError::Encoding("the query string"))?;
        let value = decode(value, true).ok_or(InputError::Encoding("the query string"))?;
        pairs.push((name, value));
    }
    Ok(input_from_query(pairs))
}

/// Percent-decoding to UTF-8; `None` for a broken escape or bytes that are not UTF-8.
fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    if !text.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn parts(method: &str, uri: &str) -> Parts {
        http::Request::builder().method(method).uri(uri).body(()).unwrap().into_parts().0
    }

    fn ctx(params: &[(&str, &str)]) -> RequestContext {
        let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        RequestContext {
            now: crate::test_support::now(),
            decisions: crate::trace::Trace::default(),
            peer,
            client_ip: peer.ip(),
            https: false,
            tls: None,
            listener: Arc::from("l"),
            request_id: crate::ids::new_request_id(),
            trace: crate::ids::TraceContext::continue_or_start(None, || false),
            host: None,
            original_host: None,
            route: None,
            params: params.iter().map(|(n, v)| (Arc::from(*n), (*v).to_owned())).collect(),
            consumer: None,
            auth: None,
            plan: None,
            token: None,
            verified: crate::VerifiedCredentials::default(),
            auth_failed: None,
            jwks_refetched: false,
            outcome: None,
            cache: None,
            rate_keys: smallvec::SmallVec::new(),
            waf: None,
        }
    }

    fn template(value: Value) -> RequestTemplate {
        let Value::Object(map) = value else { panic!("an object") };
        RequestTemplate::parse(&map).unwrap()
    }

    #[test]
    fn without_a_template_posts_take_the_json_body_and_gets_the_query() {
        let post = build(None, &parts("POST", "/x?ignored=1"), br#"{"a": {"b": [1, 2]}}"#, &ctx(&[])).unwrap();
        assert_eq!(Value::Object(post), json!({"a": {"b": [1, 2]}}));
        let empty = build(None, &parts("PUT", "/x"), b"  ", &ctx(&[])).unwrap();
        assert!(empty.is_empty());
        let get = build(None, &parts("GET", "/x?name=Ada+L%C3%B6&tag=a&tag=b&flag"), b"", &ctx(&[])).unwrap();
        assert_eq!(Value::Object(get), json!({"name": "Ada Lö", "tag": ["a", "b"], "flag": ""}));
    }

    #[test]
    fn bodies_that_are_not_a_json_object_are_refused() {
        let err = build(None, &parts("POST", "/x"), b"<xml/>", &ctx(&[])).unwrap_err();
        assert!(matches!(err, InputError::NotJson(_)) && !err.to_string().contains("xml"), "{err}");
        assert!(matches!(build(None, &parts("POST", "/x"), b"[1]", &ctx(&[])), Err(InputError::NotObject)));
        let deep = "[".repeat(100_000);
        assert!(matches!(build(None, &parts("POST", "/x"), deep.as_bytes(), &ctx(&[])), Err(InputError::NotJson(_))));
    }

    #[test]
    fn a_template_reads_path_query_body_and_consumer() {
        let t = template(json!({
            "Id": "{path.id}", "Page": "{query.page}", "City": "{body.address.city}",
            "Who": "{consumer}", "Sub": "{claim.sub}", "Label": "n° {path.id}"
        }));
        let mut c = ctx(&[("id", "a%2Fb%20c")]);
        c.consumer = Some("acme".into());
        let input = build(Some(&t), &parts("POST", "/x?page=2"), br#"{"address": {"city": "Paris"}}"#, &c).unwrap();
        assert_eq!(
            Value::Object(input),
            json!({"Id": "a/b c", "Page": "2", "City": "Paris", "Who": "acme", "Label": "n° a/b c"})
        );
        // With a verified token, `{claim.x}` is the claim's value.
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), json!("alice"));
        c.token = Some(Arc::new(portcullis_auth::jwt::Verified {
            claims,
            subject: Some("alice".into()),
            expires_at: Some(4_000_000_000),
            scopes: Vec::new(),
        }));
        let input = build(Some(&t), &parts("POST", "/x?page=2"), br#"{"address": {"city": "Paris"}}"#, &c).unwrap();
        assert_eq!(input["Sub"], "alice");
    }

    #[test]
    fn broken_percent_encoding_is_refused_not_guessed() {
        let t = template(json!({"Id": "{path.id}"}));
        for raw in ["%zz", "%+1", "%", "%ff"] {
            let err = build(Some(&t), &parts("GET", "/x"), b"", &ctx(&[("id", raw)])).unwrap_err();
            assert!(matches!(err, InputError::Encoding(_)), "{raw}: {err}");
        }
        assert!(matches!(build(None, &parts("GET", "/x?a=%C3"), b"", &ctx(&[])), Err(InputError::Encoding(_))));
    }
}
