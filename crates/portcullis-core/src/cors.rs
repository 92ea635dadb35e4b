//! CORS policies (SPEC §2 `cors`, route `cors`): compiled once at load, read per request
//! without allocating.
//!
//! Origins compare after normalisation: the scheme and host case-insensitively, the default
//! port of `http` (80) and `https` (443) the same as none. A pattern is an exact origin, `*`
//! (any origin; never with `credentials: true`), or `scheme://*.domain[:port]`, where `*` is
//! exactly one DNS label (`https://*.example.com` takes `https://a.example.com`, not
//! `https://example.com` nor `https://a.b.example.com`). The answer always names the exact
//! origin the browser sent, never `*`.

use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// What the gateway itself sets that a browser app needs to read: always exposed.
pub const GATEWAY_EXPOSED: [&str; 5] =
    ["X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"];

/// The methods a policy without `methods` allows: the CORS-safelisted ones.
pub const DEFAULT_METHODS: [Method; 3] = [Method::GET, Method::HEAD, Method::POST];

/// How long a browser may keep a preflight's answer when the policy says nothing (the
/// Fetch standard's own default, sent explicitly).
pub const DEFAULT_MAX_AGE_SECS: u64 = 5;

/// The `Vary` of a preflight answer: it depends on all three request headers.
const PREFLIGHT_VARY: HeaderValue =
    HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");

/// The response headers a CORS route owns: an upstream's own are dropped, so the policy is
/// the only voice (and a cached answer never carries another origin's).
const OWNED: [HeaderName; 6] = [
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
];

/// An origin split into its parts, borrowed from the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    /// `None`: the scheme's default port (or none given).
    pub port: Option<u16>,
}

/// Why a text is no origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginError {
    /// `null` (sandboxed frames, `file:` pages, cross-origin redirects send it).
    Null,
    NoScheme,
    /// A path (even `/`), query or fragment after the host.
    HasPath,
    UserInfo,
    BadHost,
    BadPort,
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Null => {
                "`null` is sent by sandboxed frames, `file:` pages and redirected requests alike: it identifies no one"
            }
            Self::NoScheme => "an origin is `scheme://host[:port]`",
            Self::HasPath => "an origin has no path, query or fragment (not even a trailing `/`)",
            Self::UserInfo => "an origin has no user name or password",
            Self::BadHost => "the host is not a DNS name or IP address in ASCII (write IDNs as punycode)",
            Self::BadPort => "the port is not a number from 1 to 65535",
        })
    }
}

/// Splits `scheme://host[:port]`; `*` is allowed in the host only where `wildcard` says so
/// (the caller checks its place). Allocation-free: it runs on requests.
pub fn parse_origin(text: &str, wildcard: bool) -> Result<Origin<'_>, OriginError> {
    if text.eq_ignore_ascii_case("null") {
        return Err(OriginError::Null);
    }
    let (scheme, rest) = text.split_once("://").ok_or(OriginError::NoScheme)?;
    let scheme_ok = scheme.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(OriginError::NoScheme);
    }
    if rest.bytes().any(|b| matches!(b, b'/' | b'?' | b'#')) {
        return Err(OriginError::HasPath);
    }
    if rest.contains('@') {
        return Err(OriginError::UserInfo);
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inner, after) = v6.split_once(']').ok_or(OriginError::BadHost)?;
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.')) {
            return Err(OriginError::BadHost);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(OriginError::BadPort)?),
        };
        (&rest[..inner.len() + 2], port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') || (wildcard && b == b'*')));
    if !host_ok {
        return Err(OriginError::BadHost);
    }
    let port = match port {
        None => None,
        Some(p) => {
            let n = (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .filter(|n| *n != 0)
                .ok_or(OriginError::BadPort)?;
            (Some(n) != default_port(scheme)).then_some(n)
        }
    };
    Ok(Origin { scheme, host: host.strip_suffix('.').unwrap_or(host), port })
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// One entry of a policy's `origins`, normalised (lowercase, default port dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Any,
    Exact {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
    /// `scheme://*.suffix`: `suffix` starts with `.`.
    Label {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

impl OriginPattern {
    /// Reads a configured origin; `*`, an exact origin, or `scheme://*.domain[:port]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let origin = parse_origin(text, true).map_err(|e| e.to_string())?;
        let scheme = origin.scheme.to_ascii_lowercase();
        let host = origin.host.to_ascii_lowercase();
        if let Some(suffix) = host.strip_prefix('*') {
            let domain = suffix.strip_prefix('.').unwrap_or("");
            if domain.contains('*') || !domain.contains('.') || domain.split('.').any(str::is_empty) {
                return Err(
                    "a wildcard is `scheme://*.domain.tld`: `*` as the whole first label, before two labels or more"
                        .to_owned(),
                );
            }
            return Ok(Self::Label { scheme, suffix: suffix.to_owned(), port: origin.port });
        }
        if host.contains('*') {
            return Err("a wildcard is `scheme://*.domain`: `*` as the whole first label only".to_owned());
        }
        Ok(Self::Exact { scheme, host, port: origin.port })
    }

    pub fn matches(&self, o: &Origin<'_>) -> bool {
        match self {
            Self::Any => true,
            Self::Exact { scheme, host, port } => {
                *port == o.port && o.scheme.eq_ignore_ascii_case(scheme) && o.host.eq_ignore_ascii_case(host)
            }
            Self::Label { scheme, suffix, port } => {
                if *port != o.port || !o.scheme.eq_ignore_ascii_case(scheme) || o.host.len() <= suffix.len() {
                    return false;
                }
                let (label, rest) = o.host.split_at(o.host.len() - suffix.len());
                rest.eq_ignore_ascii_case(suffix) && !label.contains('.') && !label.contains('*')
            }
        }
    }
}

/// A compiled `cors` entry with its header values rendered once.
#[derive(Debug)]
pub struct CorsPolicy {
    pub name: Arc<str>,
    pub origins: Vec<OriginPattern>,
    pub methods: Vec<Method>,
    /// Lowercase names a preflight may ask for.
    pub headers: Vec<HeaderName>,
    pub credentials: bool,
    pub allow_methods: HeaderValue,
    /// `None`: the policy allows no request headers beyond the safelisted ones.
    pub allow_headers: Option<HeaderValue>,
    pub expose_headers: HeaderValue,
    pub max_age: HeaderValue,
}

/// What a preflight asked that the policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightRefusal {
    Method,
    Header,
}

impl CorsPolicy {
    /// Builds the policy; `expose` are the policy's own `expose_headers`.
    pub fn new(
        name: Arc<str>,
        origins: Vec<OriginPattern>,
        methods: Vec<Method>,
        headers: Vec<HeaderName>,
        expose: &[HeaderName],
        credentials: bool,
        max_age_secs: u64,
    ) -> Self {
        let methods = if methods.is_empty() { DEFAULT_METHODS.to_vec() } else { methods };
        let join = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(", ");
        let render = |text: String| HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
        let allow_methods = render(join(&mut methods.iter().map(ToString::to_string)));
        let allow_headers =
            (!headers.is_empty()).then(|| render(join(&mut headers.iter().map(|h| h.as_str().to_owned()))));
        let mut exposed: Vec<String> = GATEWAY_EXPOSED.iter().map(|s| (*s).to_owned()).collect();
        for h in expose {
            if !exposed.iter().any(|e| e.eq_ignore_ascii_case(h.as_str())) {
                exposed.push(h.as_str().to_owned());
            }
        }
        Self {
            name,
            origins,
            methods,
            headers,
            credentials,
            allow_methods,
            allow_headers,
            expose_headers: render(exposed.join(", ")),
            max_age: HeaderValue::from(max_age_secs),
        }
    }

    /// Whether the request's `Origin` value is one of the policy's.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(text) = origin.to_str() else { return false };
        let Ok(origin) = parse_origin(text, false) else { return false };
        self.origins.iter().any(|p| p.matches(&origin))
    }

    /// Checks a preflight's `Access-Control-Request-Method` and `-Headers`.
    pub fn check_preflight(&self, method: &[u8], headers: &HeaderMap) -> Result<(), PreflightRefusal> {
        if !self.methods.iter().any(|m| m.as_str().as_bytes() == method) {
            return Err(PreflightRefusal::Method);
        }
        for value in headers.get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(text) = value.to_str() else { return Err(PreflightRefusal::Header) };
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.headers.iter().any(|h| h.as_str().eq_ignore_ascii_case(name)) {
                    return Err(PreflightRefusal::Header);
                }
            }
        }
        Ok(())
    }

    /// The 204 answer to an allowed preflight from `origin`.
    pub fn preflight_response(&self, origin: &HeaderValue) -> http::Response<bytes::Bytes> {
        let mut response = http::Response::new(bytes::Bytes::new());
        *response.status_mut() = http::StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(headers) = &self.allow_headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, headers.clone());
        }
        if self.credentials {
            h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        h.insert(VARY, PREFLIGHT_VARY);
        h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// The headers of any answer to an actual request from `origin` (an allowed one), or, with
    /// `None`, of an answer to a request without an allowed origin: only `Vary: Origin`.
    pub fn annotate(&self, headers: &mut HeaderMap, origin: Option<&HeaderValue>, upstream: bool) {
        // An upstream rarely sends CORS headers of its own: one pass over the names (no
        // hashing) finds out, and only then are the six looked up and removed.
        if upstream && headers.keys().any(|k| k.as_str().starts_with("access-control-")) {
            for name in OWNED {
                headers.remove(name);
            }
        }
        add_vary_origin(headers);
        let Some(origin) = origin else { return };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, self.expose_headers.clone());
    }
}

/// Adds `Origin` to `Vary` unless it is there (or `Vary: *`).
fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.eq_ignore_ascii_case("origin")))
    });
    if !present {
        headers.append(VARY, VARY_ORIGIN);
    }
}

/// What the CORS phase found for a request, read by the response phases.
#[derive(Debug, Clone, Default)]
pub enum CorsOutcome {
    /// The route has no policy (or the phase was not reached): no CORS headers.
    #[default]
    Off,
    /// A CORS route, but no allowed origin on this answer (none sent, or refused): `Vary: Origin`.
    NoOrigin,
    /// An allowed origin: its answer carries the policy's headers.
    Allowed(HeaderValue),
    /// The phase answered a preflight itself, with every header it needs.
    Preflight,
}

#[cfg(test)]
mod tests;
