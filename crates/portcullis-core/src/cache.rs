//! The response cache's rules (SPEC §3 "Caching"), without its store: which requests may be
//! answered from the cache, under what key, which answers may be kept and for how long. The
//! pipeline's cache-lookup phase asks the [`Edge`](crate::pipeline::Edge) for the key's entry
//! (memory or Redis: the proxy's concern); on a miss, the cache-store phase hands the edge a
//! [`Capture`] that copies the upstream's body while it streams to the client and is stored
//! when it ends (dropped past [`MAX_ENTRY_BYTES`]).
//!
//! Choices, each for safety first:
//! - key: route name and its cache settings, scheme, host, path, sorted query, and the
//!   consumer (`None` = anonymous) unless `shared: true`. HEAD reads the GET entry; only GET
//!   stores.
//! - BYPASS (no lookup, no store): other methods; a request `Cache-Control: no-cache|no-store`
//!   or `Pragma: no-cache`; a request whose `Authorization` or `Cookie`, as it leaves for the
//!   upstream, is not what the gateway verified ([`unverified_credentials`]): the upstream may
//!   answer per credential, and the key only tells apart identities the gateway checked.
//! - stored: status 200 only; never with `Cache-Control: no-store|private|no-cache`,
//!   `Set-Cookie` or `Vary` (the key has no varying headers); TTL is the route's, shortened to
//!   the upstream's `s-maxage` (or else `max-age`) when that is smaller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, COOKIE, PRAGMA, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::context::{RequestContext, VerifiedCredentials};
use crate::snapshot::{CacheSpec, HeaderOps, RouteSpec};

/// A larger body streams to the client as usual and is not stored.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What one entry is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub route: Arc<str>,
    pub spec: CacheSpec,
    /// The request came over TLS: the upstream sees it as `X-Forwarded-Proto` and may build
    /// links from it, so a route on an http and an https listener keeps an entry per scheme.
    pub https: bool,
    /// The host exactly as the client sent it (port and case included): the upstream sees it
    /// as `X-Forwarded-Host` and may build links from it, so each spelling is its own entry.
    pub host: Option<String>,
    pub path: String,
    /// `&`-separated pairs as sent, ordered by name: the order of different names does not
    /// split entries, while repeated names keep their order (backends differ on which wins).
    pub query: String,
    /// Who the upstream is told is asking (see [`partition`]); `None` for shared routes and
    /// anonymous requests.
    pub consumer: Option<String>,
}

impl CacheKey {
    pub fn new(
        route: &Arc<str>,
        spec: CacheSpec,
        https: bool,
        host: Option<&str>,
        uri: &Uri,
        consumer: Option<&str>,
    ) -> Self {
        let mut pairs: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).collect();
        // Stable: pairs of one name stay in the order sent.
        pairs.sort_by_key(|pair| pair.split('=').next().unwrap_or(pair));
        Self {
            route: route.clone(),
            spec,
            https,
            host: host.map(str::to_owned),
            path: uri.path().to_owned(),
            query: pairs.join("&"),
            consumer: if spec.shared { None } else { consumer.map(str::to_owned) },
        }
    }
}

/// A stored 200 answer: the upstream's headers (before the response transform) and body.
/// `stored` is when it was stored, on this process's monotonic clock (a store that keeps it
/// elsewhere, like Redis, gives it back as "now minus its age").
#[derive(Debug)]
pub struct Entry {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stored: Instant,
    pub ttl: Duration,
}

impl Entry {
    /// What the entry costs a memory store: bodies, headers and key.
    pub fn weight(&self, key: &CacheKey) -> u32 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
        let key_len = key.path.len() + key.query.len() + key.host.as_ref().map_or(0, String::len);
        u32::try_from(self.body.len() + headers + key_len + 128).unwrap_or(u32::MAX)
    }

    pub fn fresh(&self) -> bool {
        self.stored.elapsed() < self.ttl
    }

    /// The head and body of a hit, with `Age` and `X-Cache: HIT`; HEAD gets no body.
    pub fn response(&self, head_only: bool) -> (http::response::Parts, Bytes) {
        let mut head = http::Response::new(()).into_parts().0;
        head.status = StatusCode::OK;
        head.headers.clone_from(&self.headers);
        head.headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        head.headers.insert(AGE, HeaderValue::from(self.stored.elapsed().as_secs()));
        head.headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
        (head, if head_only { Bytes::new() } else { self.body.clone() })
    }
}

/// The outcome of a lookup, for one request of a route.
#[derive(Debug)]
pub enum Lookup {
    /// The route has no cache (or it is a SOAP or mock route): no `X-Cache`.
    Uncached,
    Bypass,
    Hit(Arc<Entry>),
    Miss {
        key: CacheKey,
        store: bool,
    },
}

impl Lookup {
    /// The value of `X-Cache` (and, lower-case, of the log's `cache` and the metric's `result`).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Self::Uncached => None,
            Self::Bypass => Some("BYPASS"),
            Self::Hit(_) => Some("HIT"),
            Self::Miss { .. } => Some("MISS"),
        }
    }

    /// When the upstream's answer may be stored, the capture that will store its body. `head`
    /// is the upstream's head before the response transform.
    pub fn on_upstream_head(&self, head: &http::response::Parts) -> Option<Box<Capture>> {
        let Self::Miss { key, store: true } = self else { return None };
        let ttl = store_ttl(head.status, &head.headers, key.spec.ttl)?;
        let declared = head.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_ENTRY_BYTES) {
            return None;
        }
        let mut headers = head.headers.clone();
        headers.remove(AGE);
        Some(Box::new(Capture { key: key.clone(), headers, ttl, body: BytesMut::new() }))
    }

    /// Adds `X-Cache` to a response head (after the response transform).
    pub fn mark(&self, headers: &mut HeaderMap) {
        if let Some(label) = self.label() {
            headers.insert(X_CACHE, HeaderValue::from_static(label));
        }
    }
}

/// The TTL of a storable answer, `None` when it must not be stored.
pub fn store_ttl(status: StatusCode, headers: &HeaderMap, route_ttl: Duration) -> Option<Duration> {
    if status != StatusCode::OK || headers.contains_key(SET_COOKIE) || headers.contains_key(VARY) {
        return None;
    }
    let (mut max_age, mut s_maxage) = (None, None);
    for directive in directives(headers, &CACHE_CONTROL) {
        let (name, value) = directive.split_once('=').map_or((directive.as_str(), None), |(n, v)| (n, Some(v)));
        let seconds = || value.and_then(|v| v.trim_matches('"').parse::<u64>().ok());
        match name.trim() {
            "no-store" | "private" | "no-cache" => return None,
            "max-age" => max_age = seconds(),
            "s-maxage" => s_maxage = seconds(),
            _ => {}
        }
    }
    let ttl = s_maxage.or(max_age).map_or(route_ttl, |s| route_ttl.min(Duration::from_secs(s)));
    (!ttl.is_zero()).then_some(ttl)
}

/// Lower-cased comma-separated directives of every `name` header. A value that is not
/// text reads as `no-store`: what it says cannot be known, so nothing is kept.
fn directives(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("no-store").split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect()
}

/// The identity an entry belongs to: the consumer, then every identity header the gateway
/// set for the upstream (`X-Consumer`, `X-Auth-Subject`, `X-Auth-Provider`, `forward_claims`).
/// Under `auth: { all: [user_jwt, partner_key] }` the consumer is the key's owner while the
/// subject is each user's own, and an answer made for one user must not reach another.
/// Header values hold no line breaks, so `\n` separates fields unambiguously.
pub(crate) fn partition(
    consumer: Option<&str>,
    headers: &HeaderMap,
    identity_headers: &[HeaderName],
) -> Option<String> {
    let mut out = consumer?.to_owned();
    for name in identity_headers {
        for value in headers.get_all(name) {
            out.push('\n');
            out.push_str(name.as_str());
            out.push('=');
            out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    Some(out)
}

/// Whether the request must go to the upstream without lookup or store.
fn bypass(method: &Method, headers: &HeaderMap, ctx: &RequestContext, set_by_route: &HeaderOps) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return true;
    }
    let asks_fresh = directives(headers, &CACHE_CONTROL).iter().any(|d| d == "no-cache" || d == "no-store")
        || directives(headers, &PRAGMA).iter().any(|d| d == "no-cache");
    asks_fresh || unverified_credentials(headers, ctx.consumer.is_some(), &ctx.verified, set_by_route)
}

/// Whether an `Authorization` or `Cookie` goes upstream that the key cannot tell apart: any
/// at all on a request without a consumer, else one the gateway did not verify (a session
/// cookie beside an API key, a bearer token no provider checked, a cookie beside the verified
/// token cookie). Judged on the request as it leaves, after every stage: a value the route's
/// `headers.request` sets is the gateway's own, the same for every request.
pub(crate) fn unverified_credentials(
    headers: &HeaderMap,
    has_consumer: bool,
    verified: &VerifiedCredentials,
    set_by_route: &HeaderOps,
) -> bool {
    let own = |name: &HeaderName| set_by_route.set.iter().any(|(n, _)| n == name);
    let authorization = headers.contains_key(AUTHORIZATION) && !own(&AUTHORIZATION);
    let cookie = headers.contains_key(COOKIE) && !own(&COOKIE);
    if !authorization && !cookie {
        return false;
    }
    !has_consumer
        || (authorization && !authorization_verified(headers, verified))
        || (cookie && !cookies_verified(headers, verified))
}

/// The request's one `Authorization` is the bearer token a JWT provider verified (with a
/// second value beside it, one of the two was not).
fn authorization_verified(headers: &HeaderMap, verified: &VerifiedCredentials) -> bool {
    verified.authorization && headers.get_all(AUTHORIZATION).iter().count() == 1
}

/// Every cookie sent is a token cookie a JWT provider verified.
fn cookies_verified(headers: &HeaderMap, verified: &VerifiedCredentials) -> bool {
    !verified.cookies.is_empty()
        && headers.get_all(COOKIE).iter().all(|value| {
            value.to_str().is_ok_and(|value| {
                value.split(';').map(str::trim).filter(|pair| !pair.is_empty()).all(|pair| {
                    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    verified.cookies.iter().any(|c| c == name)
                })
            })
        })
}

/// The cache-lookup phase's first half: `Uncached` for a route without `cache`, `Bypass`, or
/// the key to look up (a `Miss` until the edge finds an entry). `uri` is the downstream URI
/// (before any rewrite); `identity_headers` are the names the gateway sets after
/// authentication.
pub fn plan(
    route: &RouteSpec,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    uri: &Uri,
    identity_headers: &[HeaderName],
) -> Lookup {
    let Some(spec) = route.cache else { return Lookup::Uncached };
    if bypass(&parts.method, &parts.headers, ctx, &route.request_headers) {
        return Lookup::Bypass;
    }
    let host = ctx.original_host.as_ref().map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    let who = partition(ctx.consumer.as_deref(), &parts.headers, identity_headers);
    let key = CacheKey::new(&route.name, spec, ctx.https, host.as_deref(), uri, who.as_deref());
    Lookup::Miss { key, store: parts.method == Method::GET }
}

/// A copy of a response body on its way to the client, stored when the body ends.
pub struct Capture {
    pub key: CacheKey,
    headers: HeaderMap,
    ttl: Duration,
    body: BytesMut,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("bytes", &self.body.len()).finish_non_exhaustive()
    }
}

impl Capture {
    /// Copies a chunk; `false` once the body is too large to store (drop the capture).
    pub fn push(&mut self, data: &Bytes) -> bool {
        if self.body.len() + data.len() > MAX_ENTRY_BYTES {
            return false;
        }
        self.body.extend_from_slice(data);
        true
    }

    /// The body ended cleanly: the entry to store under [`Capture::key`].
    pub fn finish(self) -> (CacheKey, Entry) {
        let entry = Entry { headers: self.headers, body: self.body.freeze(), stored: Instant::now(), ttl: self.ttl };
        (self.key, entry)
    }
}

#[cfg(test)]
mod tests;
