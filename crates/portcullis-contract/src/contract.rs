//! A compiled contract and the per-request check: every violation is collected (up to
//! [`MAX_VIOLATIONS`]), each with a location (`query.limit`, `header.x-trace`,
//! `body/items/0/qty`) and a message that names the rule broken, never the value sent.

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind as Kind;
use jsonschema::json::Json;
use serde_json::Value;

use crate::body::{self, Body};
use crate::params::{In, Reader, cookies};

/// At most this many violations are reported for one request.
pub const MAX_VIOLATIONS: usize = 20;
/// Locations and messages are cut to this many characters (a long key is not echoed whole).
const MAX_TEXT: usize = 160;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub location: String,
    pub message: String,
}

impl Violation {
    fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self { location: cut(location.into()), message: cut(message.into()) }
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A declared parameter.
pub(crate) struct Param {
    pub(crate) reader: Reader,
    pub(crate) required: bool,
    pub(crate) validator: Option<Validator>,
}

/// One media type a body may have.
pub(crate) struct Media {
    /// Lower case: `application/json`, `application/*`, `*/*`.
    pub(crate) range: String,
    /// Checked against its schema (JSON bodies only, read in place; others pass as they are).
    pub(crate) validator: Option<Validator<Body>>,
}

pub(crate) struct BodyRules {
    pub(crate) required: bool,
    pub(crate) media: Vec<Media>,
}

/// What a request must look like: an OpenAPI operation's parameters and body, or a JSON
/// Schema for the body.
pub struct Contract {
    pub(crate) params: Vec<Param>,
    pub(crate) body: Option<BodyRules>,
    /// The operation as OpenAPI 3.1 describes it (`parameters`, `requestBody`), for
    /// `portcullis openapi`.
    pub described: Value,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract").field("params", &self.params.len()).field("body", &self.body.is_some()).finish()
    }
}

/// The parts of a request a contract reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The route's path parameters, as matched (still percent-encoded).
    pub path_params: &'a [(&'a str, &'a str)],
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Whether the request has a body at all.
    pub has_body: bool,
    /// The body, read whole, when [`Contract::reads_body`] said so.
    pub body: Option<&'a [u8]>,
}

impl Contract {
    /// Whether the body must be read to check this request: its content type is one with a
    /// JSON schema. Every other body streams through.
    pub fn reads_body(&self, headers: &HeaderMap) -> bool {
        self.matched_media(headers).is_some_and(|m| m.validator.is_some())
    }

    /// Whether the contract has path parameters (the route must capture them).
    pub fn has_path_params(&self) -> bool {
        self.params.iter().any(|p| p.reader.place == In::Path)
    }

    /// Every violation of the request, at most [`MAX_VIOLATIONS`]; empty when it conforms.
    pub fn check(&self, request: &Request<'_>) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check_params(request, &mut out);
        if let Some(body) = &self.body {
            self.check_body(body, request, &mut out);
        }
        out.truncate(MAX_VIOLATIONS);
        out
    }

    fn check_params(&self, request: &Request<'_>, out: &mut Vec<Violation>) {
        let query: Vec<(String, String)> = request
            .query
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let declared: Vec<&str> =
            self.params.iter().filter(|p| p.reader.place == In::Query).map(|p| p.reader.name.as_str()).collect();
        for param in &self.params {
            if out.len() >= MAX_VIOLATIONS {
                return;
            }
            let reader = &param.reader;
            let location = format!("{}.{}", reader.place.as_str(), reader.name);
            let repeated = match reader.place {
                In::Query => reader.repeated_in(&query),
                In::Cookie => cookie_count(request.headers, &reader.name) > 1,
                In::Path | In::Header => false,
            };
            if repeated {
                out.push(Violation::new(location, "is given more than once"));
                continue;
            }
            if reader.place == In::Query
                && let Some(alias) = reader.aliased_in(&query, &declared)
            {
                let message = format!("is also given as `{alias}`, which PHP or Express backends read as it");
                out.push(Violation::new(location, message));
                continue;
            }
            let value = match reader.place {
                In::Query => reader.read_query(&query, &declared),
                In::Path => request
                    .path_params
                    .iter()
                    .find(|(k, _)| *k == reader.name)
                    .map(|(_, v)| reader.read_text(&percent_encoding::percent_decode_str(v).decode_utf8_lossy())),
                In::Header => header_text(request.headers, &reader.name).map(|v| reader.read_text(&v)),
                In::Cookie => cookie(request.headers, &reader.name).map(|v| reader.read_text(&v)),
            };
            match (value, &param.validator) {
                (None, _) if param.required => out.push(Violation::new(location, "is required")),
                (None, _) | (Some(_), None) => {}
                (Some(value), Some(validator)) => schema_violations(validator, &value, &location, '/', out),
            }
        }
    }

    fn check_body(&self, rules: &BodyRules, request: &Request<'_>, out: &mut Vec<Violation>) {
        let has_body = request.body.map_or(request.has_body, |b| !b.is_empty());
        if !has_body {
            if rules.required {
                out.push(Violation::new("body", "a request body is required"));
            }
            return;
        }
        let Some(content_type) = request.headers.get(CONTENT_TYPE) else {
            out.push(Violation::new("header.content-type", "a body needs a Content-Type"));
            return;
        };
        let Some(media) = self.matched_media(request.headers) else {
            let accepted: Vec<&str> = rules.media.iter().map(|m| m.range.as_str()).collect();
            let sent = content_type.to_str().map_or("(not text)", |s| s.split(';').next().unwrap_or(s).trim());
            let message = format!("`{}` is not accepted; send {}", cut(sent.to_owned()), accepted.join(" or "));
            out.push(Violation::new("header.content-type", message));
            return;
        };
        let (Some(validator), Some(bytes)) = (&media.validator, request.body) else { return };
        match body::parse(bytes) {
            Ok(parsed) => {
                if let Some((pointer, clash)) = parsed.ambiguous_name() {
                    let message = match clash {
                        body::Clash::Repeated => "repeats a name earlier in its object",
                        body::Clash::Case => "differs from another member's name only in letter case",
                    };
                    out.push(Violation::new(format!("body{}", cut(pointer)), message));
                }
                schema_violations(validator, parsed.root(), "body", '/', out);
            }
            Err(e) => out.push(Violation::new("body", format!("not valid JSON ({e})"))),
        }
    }

    /// The most specific media range the request's content type falls in.
    fn matched_media(&self, headers: &HeaderMap) -> Option<&Media> {
        let body = self.body.as_ref()?;
        let sent = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = sent.split(';').next().unwrap_or(sent).trim().to_ascii_lowercase();
        let (kind, _) = essence.split_once('/')?;
        let exact = body.media.iter().find(|m| m.range == essence);
        let suffix = || {
            essence.rsplit_once('+').and_then(|(_, s)| body.media.iter().find(|m| m.range == format!("{kind}/*+{s}")))
        };
        let family = || body.media.iter().find(|m| m.range == format!("{kind}/*"));
        let any = || body.media.iter().find(|m| m.range == "*/*");
        exact.or_else(suffix).or_else(family).or_else(any)
    }
}

/// Media ranges whose bodies are JSON.
pub(crate) fn is_json(range: &str) -> bool {
    range == "application/json" || range.ends_with("+json") || range == "*/*" || range == "application/*"
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// How many cookies of the request are named `name`. Backends disagree on which of several
/// they read (Go and Werkzeug the first, Django's parser the last).
fn cookie_count(headers: &HeaderMap, name: &str) -> usize {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookies)
        .filter(|(k, _)| *k == name)
        .count()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookies)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The schema's complaints about `value`, placed under `base`.
fn schema_violations<'v, F: Json>(
    validator: &'v Validator<F>,
    value: F::Node<'v>,
    base: &str,
    join: char,
    out: &mut Vec<Violation>,
) {
    // Most requests are valid: a walk that stops at the first failure and builds no error
    // values answers them; only an invalid value is walked again for its complaints.
    if validator.is_valid(value.clone()) {
        return;
    }
    for error in validator.iter_errors(value) {
        if out.len() >= MAX_VIOLATIONS {
            return;
        }
        let at = error.instance_path().as_str();
        let place =
            |pointer: &str| if pointer.is_empty() { base.to_owned() } else { format!("{base}{join}{}", &pointer[1..]) };
        match error.kind() {
            Kind::Required { property } => {
                let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
                out.push(Violation::new(format!("{}/{}", place(at), escape(&name)), "is required"));
            }
            Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
                for key in unexpected.iter().take(MAX_VIOLATIONS.saturating_sub(out.len())) {
                    out.push(Violation::new(format!("{}/{}", place(at), escape(key)), "is not allowed"));
                }
            }
            _ => out.push(Violation::new(place(at), error.masked().to_string())),
        }
    }
}

/// A JSON pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
