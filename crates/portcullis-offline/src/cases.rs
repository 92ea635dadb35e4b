//! The case file of `portcullis test` (SPEC §1): signing keys per JWT provider, then cases —
//! a request, what the stand-in upstream answers, and what must come of it. An expectation
//! left out is not checked; one written as `null` must be absent (`code: null`: no problem
//! document; `upstream: null`: the upstream was never contacted; a header `null`: not sent).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Error, OfflineRequest, StandIn, Upstreamed, fail};

/// The address a case's request comes from when it names none (TEST-NET-3, RFC 5737).
pub const DEFAULT_CLIENT_IP: [u8; 4] = [203, 0, 113, 1];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Per JWT provider: the private key whose public half stands in for its JWKS.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, KeySpec>,
    /// When the cases run (RFC 3339); default: now. Token expiry and quota periods read it.
    #[serde(default)]
    pub now: Option<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub private_key: PathBuf,
    #[serde(default = "default_kid")]
    pub kid: String,
}

fn default_kid() -> String {
    "test".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: CaseRequest,
    /// How many times the request is sent, on one offline gateway (default 1): rate limits
    /// and quotas count across the sends, and the expectations apply to the last answer.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    #[serde(default)]
    pub upstream_response: Option<CaseResponse>,
    #[serde(default)]
    pub expect: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub client_cert_subject: Option<String>,
    #[serde(default)]
    pub token: Option<TokenSpec>,
}

fn default_repeat() -> u32 {
    1
}

/// The most sends one case may ask for: enough to use up any burst a case needs to show.
pub const MAX_REPEAT: u32 = 10_000;

fn default_method() -> String {
    "GET".to_owned()
}

/// A token made from claims with the case file's key for `provider`, or a literal one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TokenSpec {
    Literal(String),
    Made(MadeToken),
}

/// `token: { provider, claims }` (a misspelt key is an error, not a token without claims).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MadeToken {
    pub provider: String,
    #[serde(default)]
    pub claims: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<String>,
}

fn default_status() -> u16 {
    200
}

/// Reads a case file (YAML 1.2: `yes`/`no` are text).
pub fn read(path: &Path) -> Result<CaseFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let options = serde_saphyr::options! { strict_booleans: true };
    let value: Value = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| Error::new(format!("{}: not YAML: {e}", path.display())))?;
    serde_json::from_value(value).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// A header value from a YAML scalar (a number or boolean is its text).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn header_map(map: &Map<String, Value>, what: &str) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in map {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::new(format!("{what}: `{name}` is not a header name")))?;
        let values: Vec<&Value> = match value {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = scalar_text(value).ok_or_else(|| Error::new(format!("{what}: `{name}` needs a text value")))?;
            headers.append(name.clone(), HeaderValue::from_str(&text).map_err(Error::from_display)?);
        }
    }
    Ok(headers)
}

impl CaseRequest {
    /// The request, with `token` (a literal or a made one) put where the route's provider
    /// looks first: `token_place` says where (`None`: `Authorization: Bearer`).
    pub fn build(&self, token: Option<(String, TokenPlace)>) -> Result<OfflineRequest, Error> {
        let method = Method::from_bytes(self.method.as_bytes()).map_err(Error::from_display)?;
        let mut url: Uri = self.url.parse().map_err(|e| Error::new(format!("url `{}`: {e}", self.url)))?;
        if url.scheme().is_none() || url.authority().is_none() {
            fail!("url `{}` must be absolute (https://host/path)", self.url);
        }
        let mut headers = header_map(&self.headers, "request.headers")?;
        match token {
            None => {}
            Some((token, TokenPlace::Header)) => {
                headers.append(
                    http::header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(Error::from_display)?,
                );
            }
            Some((token, TokenPlace::Cookie(name))) => {
                headers.append(
                    http::header::COOKIE,
                    HeaderValue::from_str(&format!("{name}={token}")).map_err(Error::from_display)?,
                );
            }
            Some((token, TokenPlace::Query(name))) => {
                let text = url.to_string();
                let separator = if url.query().is_some() { '&' } else { '?' };
                url = format!("{text}{separator}{name}={token}").parse().map_err(Error::from_display)?;
            }
        }
        let client_ip = match &self.client_ip {
            Some(ip) => ip.parse::<IpAddr>().map_err(|e| Error::new(format!("client_ip `{ip}`: {e}")))?,
            None => IpAddr::from(DEFAULT_CLIENT_IP),
        };
        Ok(OfflineRequest {
            method,
            url,
            headers,
            body: Bytes::from(self.body.clone().unwrap_or_default()),
            client_ip,
            client_cert_subject: self.client_cert_subject.clone(),
        })
    }
}

/// Where a made token goes.
#[derive(Debug, Clone)]
pub enum TokenPlace {
    Header,
    Cookie(String),
    Query(String),
}

impl CaseResponse {
    pub fn stand_in(&self) -> Result<StandIn, Error> {
        Ok(StandIn {
            status: StatusCode::from_u16(self.status).map_err(Error::from_display)?,
            headers: header_map(&self.headers, "upstream_response.headers")?,
            body: Bytes::from(self.body.clone().unwrap_or_default()),
        })
    }
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

/// What came of a request, as far as expectations look: what the client got, what the
/// upstream received, and what the phases decided. An offline run and a running gateway
/// (its access log) both give one, so one case file checks both the same way.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub upstream: Option<Upstreamed>,
    pub route: Option<String>,
    pub consumer: Option<String>,
    pub decided_by: Option<String>,
}

/// Compares what came of a case with its `expect`; an unknown expectation is an error.
pub fn check(expect: &Map<String, Value>, outcome: &Observed) -> Result<Vec<Mismatch>, Error> {
    let mut out = Vec::new();
    let mut differ = |field: &str, expected: String, actual: String| {
        if expected != actual {
            out.push(Mismatch { field: field.to_owned(), expected, actual });
        }
    };
    let problem: Option<Value> = outcome
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"))
        .then(|| serde_json::from_slice(&outcome.body).ok())
        .flatten();
    for (key, want) in expect {
        match key.as_str() {
            "status" => differ("status", shown(want), outcome.status.as_u16().to_string()),
            "code" => {
                let code = problem.as_ref().and_then(|p| p.get("code")).and_then(Value::as_str);
                differ("code", shown(want), code.map_or_else(|| "null".to_owned(), str::to_owned));
            }
            "consumer" => differ("consumer", shown(want), or_null(outcome.consumer.as_deref())),
            "decided_by" => differ("decided_by", shown(want), or_null(outcome.decided_by.as_deref())),
            "route" => differ("route", shown(want), or_null(outcome.route.as_deref())),
            "headers" => {
                let wants = want.as_object().ok_or_else(|| Error::new("expect.headers must be a map"))?;
                for (name, value) in wants {
                    let actual = header_shown(&outcome.headers, name);
                    differ(&format!("headers.{name}"), shown(value), actual);
                }
            }
            "body" => differ("body", shown(want), String::from_utf8_lossy(&outcome.body).into_owned()),
            "upstream" => check_upstream(want, outcome, &mut differ)?,
            other => fail!(
                "unknown expectation `{other}` (status, code, headers, body, upstream, consumer, route, decided_by)"
            ),
        }
    }
    Ok(out)
}

fn or_null(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_owned(), str::to_owned)
}

fn check_upstream(
    want: &Value,
    outcome: &Observed,
    differ: &mut impl FnMut(&str, String, String),
) -> Result<(), Error> {
    let Some(seen) = &outcome.upstream else {
        differ("upstream", if want.is_null() { "null".to_owned() } else { "contacted".to_owned() }, "null".to_owned());
        return Ok(());
    };
    let Some(wants) = want.as_object() else {
        differ("upstream", shown(want), format!("{} {}", seen.method, seen.path_and_query));
        return Ok(());
    };
    for (key, want) in wants {
        match key.as_str() {
            "path" => {
                let wanted = shown(want);
                // Without a `?`, the path alone is compared; with one, the query too.
                let actual = if wanted.contains('?') {
                    seen.path_and_query.clone()
                } else {
                    seen.path_and_query.split('?').next().unwrap_or_default().to_owned()
                };
                differ("upstream.path", wanted, actual);
            }
            "method" => differ("upstream.method", shown(want), seen.method.to_string()),
            "upstream" => differ("upstream.upstream", shown(want), seen.upstream.to_string()),
            "body" => differ("upstream.body", shown(want), String::from_utf8_lossy(&seen.body).into_owned()),
            "headers" => {
                let wants = want.as_object().ok_or_else(|| Error::new("expect.upstream.headers must be a map"))?;
                for (name, value) in wants {
                    differ(&format!("upstream.headers.{name}"), shown(value), header_shown(&seen.headers, name));
                }
            }
            other => fail!("unknown expectation `upstream.{other}` (path, method, upstream, headers, body)"),
        }
    }
    Ok(())
}

/// An expected value as text (`null` for null).
fn shown(value: &Value) -> String {
    scalar_text(value).unwrap_or_else(|| if value.is_null() { "null".to_owned() } else { value.to_string() })
}

/// A header's values as sent (joined with `, `), `null` when absent.
fn header_shown(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<String> =
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    if values.is_empty() { "null".to_owned() } else { values.join(", ") }
}
