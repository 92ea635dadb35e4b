//! Authentication (SPEC §3). A route names its providers as `any` (the first that accepts the
//! request wins) or `all` (every one must). A provider either finds no credentials of its kind
//! (`missing`), refuses what it found, or accepts it; only then are the identity headers set,
//! after the client's own copies were stripped by [`super::StripIdentity`]. The consumer is
//! the owner of the API key or mTLS subject, else the JWT `sub`.
//!
//! Once a request is admitted, only the credentials the gateway verified go on with it
//! ([`unverified`]): the API key headers never, a bearer token, token cookie or token query
//! parameter only when it is the very token an accepting provider read.
//!
//! Nothing here blocks: JWT verification is synchronous against the provider's cached key
//! set. A token whose `kid` is unknown may ask, once per request, for a refetch
//! ([`Flow::Wait`]); the provider itself allows at most one per 30 s.

use std::sync::Arc;

use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, COOKIE, LOCATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use portcullis_auth::api_key::{KeyIndex, digest_of};
use portcullis_auth::jwt::{JwtProvider, TokenFault, Verified};

use crate::context::RequestContext;
use crate::flow::{Flow, Pending, Reply};
use crate::headers::{X_AUTH_PROVIDER, X_AUTH_SUBJECT, X_CONSUMER};
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{AuthRule, JwtSpec, ProviderKind, ProviderSpec, Snapshot, TokenSource};
use crate::trace::By;

mod unverified;

/// What authentication reads besides the snapshot: live state that outlives reloads.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthSources<'a> {
    /// Per entry of [`Snapshot::providers`]: the live JWT provider (`None` for other kinds).
    pub jwt: &'a [Option<Arc<JwtProvider>>],
    /// API keys created at run time (the database), when one is open.
    pub keys: Option<&'a KeyIndex>,
}

pub struct Authenticate;

/// One provider's verdict.
enum Attempt<'s> {
    Accepted(Accepted<'s>),
    /// No credentials of this provider's kind in the request.
    Missing,
    Refused(ErrorCode, &'static str),
    Wait(Pending),
}

struct Accepted<'s> {
    provider: Arc<str>,
    /// Where a JWT provider read the token it verified: that place's token goes upstream.
    place: Option<&'s TokenSource>,
    consumer: Option<Arc<str>>,
    plan: Option<Arc<str>>,
    subject: Option<String>,
    token: Option<Arc<Verified>>,
    /// The consumer comes from an API key or a client certificate (it outranks a JWT `sub`).
    owns_consumer: bool,
}

impl Authenticate {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "authenticate";

    pub fn run(
        snapshot: &Snapshot,
        sources: &AuthSources<'_>,
        rule: &AuthRule,
        parts: &mut Parts,
        ctx: &mut RequestContext,
    ) -> Flow {
        let (names, all) = match rule {
            // `auth: none` verifies nothing and asserts nothing: a backend behind a public
            // route authenticates for itself with what it is sent (the cache bypasses such
            // requests). Only the gateway's own API keys are never forwarded.
            AuthRule::Public => {
                strip_key_headers(snapshot, parts);
                return Flow::Skip;
            }
            AuthRule::Any(names) => (names, false),
            AuthRule::All(names) => (names, true),
        };
        let mut accepted: Vec<Accepted> = Vec::with_capacity(if all { names.len() } else { 1 });
        let mut refused: Option<(&ProviderSpec, ErrorCode, &'static str)> = None;
        for name in names {
            let Some(index) = snapshot.provider_index(name) else {
                return Problem::new(ErrorCode::Internal, "the route names an unknown provider").into();
            };
            let provider = &snapshot.providers[index];
            match attempt(snapshot, sources, index, provider, parts, ctx) {
                Attempt::Accepted(a) => {
                    accepted.push(a);
                    if !all {
                        break;
                    }
                }
                Attempt::Wait(pending) => return Flow::Wait(pending),
                Attempt::Missing if all => {
                    return refuse(snapshot, rule, parts, ctx, Some(provider), ErrorCode::MissingCredentials, "");
                }
                Attempt::Missing => {}
                Attempt::Refused(code, detail) if all => {
                    return refuse(snapshot, rule, parts, ctx, Some(provider), code, detail);
                }
                Attempt::Refused(code, detail) => {
                    refused.get_or_insert((provider, code, detail));
                }
            }
        }
        if accepted.is_empty() {
            return match refused {
                Some((provider, code, detail)) => refuse(snapshot, rule, parts, ctx, Some(provider), code, detail),
                // Nothing presented: counted against the route's first provider.
                None => {
                    let first = names.first().and_then(|n| snapshot.provider(n));
                    refuse(snapshot, rule, parts, ctx, first, ErrorCode::MissingCredentials, "")
                }
            };
        }
        let stripped = unverified::strip(snapshot, |place| accepted.iter().any(|a| a.place == Some(place)), parts);
        if !matches!(stripped, Flow::Continue) {
            return stripped;
        }
        establish(snapshot, accepted, parts, ctx);
        strip_key_headers(snapshot, parts);
        Flow::Continue
    }
}

fn attempt<'s>(
    snapshot: &Snapshot,
    sources: &AuthSources<'_>,
    index: usize,
    provider: &'s ProviderSpec,
    parts: &Parts,
    ctx: &mut RequestContext,
) -> Attempt<'s> {
    match &provider.kind {
        ProviderKind::Jwt(spec) => {
            let live = sources.jwt.get(index).and_then(Option::as_ref);
            jwt(snapshot, spec, live, provider, parts, ctx)
        }
        ProviderKind::ApiKey { header, .. } => {
            let Some(value) = parts.headers.get(header) else { return Attempt::Missing };
            let digest = digest_of(value.as_bytes());
            let record = snapshot
                .config_keys
                .lookup_digest(&digest)
                .or_else(|| sources.keys.and_then(|keys| keys.lookup_digest(&digest)));
            let Some(record) = record else {
                return Attempt::Refused(ErrorCode::InvalidApiKey, "the API key is not valid");
            };
            if record.expires_at.is_some() && record.expired_at(ctx.now.unix_seconds) {
                return Attempt::Refused(ErrorCode::InvalidApiKey, "the API key has expired");
            }
            let plan = match snapshot.consumer(&record.consumer) {
                Some(declared) => declared.plan.clone(),
                None => record.plan.clone(),
            };
            Attempt::Accepted(Accepted {
                provider: provider.name.clone(),
                subject: Some(record.consumer.to_string()),
                consumer: Some(record.consumer),
                plan,
                place: None,
                token: None,
                owns_consumer: true,
            })
        }
        ProviderKind::Mtls => {
            let Some(cert) = ctx.tls.as_ref().and_then(|t| t.client_cert.as_ref()) else { return Attempt::Missing };
            let Some(consumer) = snapshot.consumer_by_subject(&cert.subject) else {
                return Attempt::Refused(ErrorCode::InvalidClientCert, "the client certificate belongs to no consumer");
            };
            Attempt::Accepted(Accepted {
                provider: provider.name.clone(),
                consumer: Some(consumer.name.clone()),
                plan: consumer.plan.clone(),
                subject: Some(cert.subject.clone()),
                place: None,
                token: None,
                owns_consumer: true,
            })
        }
    }
}

fn jwt<'s>(
    snapshot: &Snapshot,
    spec: &'s JwtSpec,
    live: Option<&Arc<JwtProvider>>,
    provider: &ProviderSpec,
    parts: &Parts,
    ctx: &mut RequestContext,
) -> Attempt<'s> {
    let (token, place) = match find_token(&spec.token_from, parts) {
        Ok(Some(found)) => found,
        Ok(None) => return Attempt::Missing,
        // Which copy a backend reads is its own choice (the first, the last): a request that
        // sends two never goes on with one checked and another forwarded.
        Err(Ambiguous) => return Attempt::Refused(ErrorCode::InvalidToken, "more than one token was sent"),
    };
    let Some(live) = live else {
        return Attempt::Refused(ErrorCode::Internal, "the token provider is not running");
    };
    match live.verify(token, ctx.now.unix_u64()) {
        Ok(verified) => {
            // A token without `sub` names nobody the cache could keep apart.
            if verified.subject.is_some() {
                match place {
                    TokenSource::Header => ctx.verified.authorization = true,
                    TokenSource::Cookie(name) => ctx.verified.cookies.push(name.clone()),
                    TokenSource::Query(_) => {}
                }
            }
            let plan = verified.subject.as_deref().and_then(|s| snapshot.consumer(s)).and_then(|c| c.plan.clone());
            Attempt::Accepted(Accepted {
                provider: provider.name.clone(),
                consumer: verified.subject.as_deref().map(Arc::from),
                plan,
                subject: verified.subject.clone(),
                place: Some(place),
                token: Some(verified),
                owns_consumer: false,
            })
        }
        Err(e) if e.fault() == TokenFault::UnknownKey && !ctx.jwks_refetched && live.may_refetch() => {
            ctx.jwks_refetched = true;
            Attempt::Wait(Pending(Box::pin(live.clone().refetch_for_unknown_kid())))
        }
        Err(e) => Attempt::Refused(ErrorCode::from(e.fault()), e.description()),
    }
}

/// A `token_from` place held more than one token.
#[derive(Debug, PartialEq, Eq)]
struct Ambiguous;

/// The token of the first `token_from` place, in order, that holds one, and that place; a
/// place holding two (two bearer `Authorization` fields, a cookie or query name twice) is
/// [`Ambiguous`].
fn find_token<'p, 's>(
    sources: &'s [TokenSource],
    parts: &'p Parts,
) -> Result<Option<(&'p str, &'s TokenSource)>, Ambiguous> {
    for source in sources {
        let found = match source {
            TokenSource::Header => only(
                parts
                    .headers
                    .get_all(AUTHORIZATION)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim()),
            ),
            TokenSource::Cookie(name) => only(
                parts
                    .headers
                    .get_all(COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|pair| pair.trim().split_once('='))
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.trim_matches('"')),
            ),
            TokenSource::Query(name) => only(
                parts
                    .uri
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v),
            ),
        }?;
        if let Some(token) = found {
            return Ok(Some((token, source)));
        }
    }
    Ok(None)
}

/// The one non-empty item of `items`, `None` for none, [`Ambiguous`] for two or more (without
/// collecting them: this runs on every request of a JWT route).
fn only<'p>(mut items: impl Iterator<Item = &'p str>) -> Result<Option<&'p str>, Ambiguous> {
    let Some(first) = items.next() else { return Ok(None) };
    if items.next().is_some() {
        return Err(Ambiguous);
    }
    Ok(Some(first).filter(|t| !t.is_empty()))
}

/// Sets the context and the identity headers from the accepted providers.
fn establish(snapshot: &Snapshot, accepted: Vec<Accepted<'_>>, parts: &mut Parts, ctx: &mut RequestContext) {
    let token = accepted.iter().find_map(|a| a.token.clone());
    let decisive = accepted.iter().position(|a| a.owns_consumer).unwrap_or(0);
    let subject = token.as_ref().and_then(|t| t.subject.clone()).or_else(|| accepted[decisive].subject.clone());
    let mut accepted = accepted;
    let main = accepted.swap_remove(decisive);
    let headers = &mut parts.headers;
    if let Some(consumer) = main.consumer.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(X_CONSUMER, consumer);
    }
    if let Some(subject) = subject.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(X_AUTH_SUBJECT, subject);
    }
    if let Ok(provider) = HeaderValue::from_str(&main.provider) {
        headers.insert(X_AUTH_PROVIDER, provider);
    }
    // Each JWT provider's claims from its own token (under `all`, two providers may read two).
    for a in std::iter::once(&main).chain(accepted.iter()) {
        if let (Some(own), Some(ProviderKind::Jwt(spec))) = (&a.token, snapshot.provider(&a.provider).map(|p| &p.kind))
        {
            forward_claims(spec, own, headers);
        }
    }
    ctx.consumer = main.consumer.as_deref().map(str::to_owned);
    ctx.plan = main.plan;
    ctx.auth = Some(main.provider);
    ctx.token = token;
}

/// `forward_claims`: strings as they are, numbers and booleans as JSON text; arrays and
/// objects as compact JSON. A value that cannot be a header value is left out.
fn forward_claims(spec: &JwtSpec, token: &Verified, headers: &mut http::HeaderMap) {
    for (claim, header) in &spec.forward_claims {
        let value = match token.claims.get(claim) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => HeaderValue::from_str(s),
            Some(other) => HeaderValue::from_str(&other.to_string()),
        };
        if let Ok(value) = value {
            headers.insert(header.clone(), value);
        }
    }
}

/// The API key headers never reach an upstream, whichever route the request took.
fn strip_key_headers(snapshot: &Snapshot, parts: &mut Parts) {
    for header in &snapshot.key_headers {
        parts.headers.remove(header);
    }
}

/// 401 with a challenge per provider of the route (RFC 6750 for bearer tokens), or the
/// login redirect for a browser when a JWT provider of the route has a `login_url`.
fn refuse(
    snapshot: &Snapshot,
    rule: &AuthRule,
    parts: &Parts,
    ctx: &mut RequestContext,
    failed: Option<&ProviderSpec>,
    code: ErrorCode,
    detail: &'static str,
) -> Flow {
    ctx.auth_failed = Some(failed.map_or_else(|| Arc::from("none"), |p| p.name.clone()));
    let names = match rule {
        AuthRule::Public => &[][..],
        AuthRule::Any(n) | AuthRule::All(n) => &n[..],
    };
    let providers = || names.iter().filter_map(|n| snapshot.provider(n));
    if code != ErrorCode::Internal
        && parts.method == Method::GET
        && prefers_html(parts)
        && let Some(login) = providers().find_map(|p| match &p.kind {
            ProviderKind::Jwt(spec) => spec.login_url.as_deref(),
            _ => None,
        })
    {
        ctx.outcome = Some(code);
        return login_redirect(login, parts, ctx);
    }
    let detail = match (code, detail) {
        (ErrorCode::MissingCredentials, _) => "this route needs credentials",
        (_, "") => "the credentials are not valid",
        (_, d) => d,
    };
    let mut problem = Problem::new(code, detail);
    if let Some(failed) = failed {
        problem = problem.decided(By::Name(failed.name.clone()));
    }
    for provider in providers() {
        let failed_here = failed.is_some_and(|f| std::ptr::eq(f, provider));
        let error = if failed_here && code != ErrorCode::MissingCredentials { Some(detail) } else { None };
        if let Some(value) = challenge(&provider.kind, error) {
            problem = problem.with_header(WWW_AUTHENTICATE, value);
        }
    }
    if problem.headers.is_empty() {
        problem = problem.with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portcullis\""));
    }
    problem.into()
}

/// One `WWW-Authenticate` challenge. `error`: the description of what was wrong (the
/// provider refused credentials it found); `None`: nothing was presented (RFC 6750 §3.1
/// then sends no error code).
fn challenge(kind: &ProviderKind, error: Option<&str>) -> Option<HeaderValue> {
    let text = match (kind, error) {
        (ProviderKind::Jwt(_), None) => "Bearer realm=\"portcullis\"".to_owned(),
        (ProviderKind::Jwt(_), Some(desc)) => {
            format!("Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{}\"", quoted(desc))
        }
        (ProviderKind::ApiKey { challenge, .. }, _) => return Some(challenge.clone()),
        (ProviderKind::Mtls, _) => "Mutual realm=\"portcullis\"".to_owned(),
    };
    HeaderValue::from_str(&text).ok()
}

fn quoted(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

/// Whether `Accept` lists `text/html` with a weight no lower than any other type's.
fn prefers_html(parts: &Parts) -> bool {
    let Some(accept) = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    let mut html: Option<f32> = None;
    let mut best_other: f32 = 0.0;
    for item in accept.split(',') {
        let mut fields = item.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media == "text/html" || media == "application/xhtml+xml" {
            html = Some(html.map_or(q, |h| h.max(q)));
        } else if media != "*/*" {
            best_other = best_other.max(q);
        }
    }
    html.is_some_and(|h| h > 0.0 && h >= best_other)
}

/// `302` to the login page with `return_to` set to the URL the browser asked for.
fn login_redirect(login: &str, parts: &Parts, ctx: &RequestContext) -> Flow {
    let scheme = if ctx.https { "https" } else { "http" };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let back = match return_host(ctx) {
        Some(host) => format!("{scheme}://{host}{path}"),
        // No usable host: a path alone, which the login page resolves against its own site.
        None => path.to_owned(),
    };
    let separator = if login.contains('?') { '&' } else { '?' };
    let location = format!("{login}{separator}return_to={}", percent_encode(&back));
    let mut response = http::Response::new(bytes::Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
        }
        Err(_) => return Problem::new(ErrorCode::MissingCredentials, "this route needs credentials").into(),
    }
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Flow::Respond(Reply::Response(response))
}

/// The host for `return_to`: the client's `Host` (port kept) when it is a plain `host[:port]`
/// authority, else the matched host. `Host: evil.example#@api.example.com` is neither.
fn return_host(ctx: &RequestContext) -> Option<String> {
    let sent = ctx.original_host.as_ref().and_then(|h| h.to_str().ok());
    let plain = sent.filter(|h| {
        !h.contains(['@', '#', '/', '?', '\\'])
            && h.parse::<http::uri::Authority>().is_ok_and(|a| a.as_str().eq_ignore_ascii_case(h))
    });
    plain.map(str::to_owned).or_else(|| ctx.host.clone())
}

fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(accept: Option<&str>) -> Parts {
        request("/x", &accept.map(|a| ("accept", a)).into_iter().collect::<Vec<_>>())
    }

    #[test]
    fn browsers_prefer_html_and_api_clients_do_not() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert!(prefers_html(&parts(Some(browser))));
        assert!(!prefers_html(&parts(Some("application/json"))));
        assert!(!prefers_html(&parts(Some("*/*"))));
        assert!(!prefers_html(&parts(Some("application/json, text/html;q=0.5"))));
        assert!(!prefers_html(&parts(Some("text/html;q=0"))));
        assert!(!prefers_html(&parts(None)));
    }

    #[test]
    fn return_to_is_fully_encoded() {
        assert_eq!(percent_encode("https://a.example/x?y=1&z"), "https%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z");
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (name, value) in headers {
            b = b.header(*name, *value);
        }
        b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    #[test]
    fn a_place_holding_two_tokens_is_ambiguous_not_its_first() {
        let all = [TokenSource::Header, TokenSource::Cookie("t".into()), TokenSource::Query("access_token".into())];
        let find = |p: &Parts| find_token(&all, p).map(|t| t.map(|(token, _)| token.to_owned()));
        assert_eq!(find(&request("/x", &[("authorization", "Bearer a")])), Ok(Some("a".into())));
        assert_eq!(
            find(&request("/x", &[("authorization", "Bearer a"), ("authorization", "Bearer b")])),
            Err(Ambiguous)
        );
        assert_eq!(find(&request("/x", &[("cookie", "t=a; u=1; t=b")])), Err(Ambiguous));
        assert_eq!(find(&request("/x", &[("cookie", "t=a"), ("cookie", "t=b")])), Err(Ambiguous));
        assert_eq!(find(&request("/x?access_token=a&access_token=b", &[])), Err(Ambiguous));
        assert_eq!(find(&request("/x?access_token=a&x=1", &[("cookie", "u=1")])), Ok(Some("a".into())));
        // A non-bearer Authorization beside a bearer one is not a second token.
        assert_eq!(
            find(&request("/x", &[("authorization", "Basic eA=="), ("authorization", "Bearer a")])),
            Ok(Some("a".into()))
        );
        assert_eq!(find(&request("/x", &[])), Ok(None));
    }

    #[test]
    fn return_to_uses_the_clients_host_only_when_it_is_a_plain_authority() {
        let snapshot = crate::test_support::one_route_snapshot();
        let mut ctx = crate::test_support::context(&snapshot, &request("/x", &[]), [127, 0, 0, 1], true);
        let with = |ctx: &mut RequestContext, sent: &'static str, matched: Option<&str>| {
            ctx.original_host = Some(HeaderValue::from_static(sent));
            ctx.host = matched.map(str::to_owned);
            return_host(ctx)
        };
        assert_eq!(
            with(&mut ctx, "api.example.com:8443", Some("api.example.com")),
            Some("api.example.com:8443".into())
        );
        assert_eq!(with(&mut ctx, "evil.example#@api.example.com", None), None);
        assert_eq!(
            with(&mut ctx, "evil.example/@api.example.com", Some("api.example.com")),
            Some("api.example.com".into())
        );
        assert_eq!(with(&mut ctx, "user@api.example.com", Some("api.example.com")), Some("api.example.com".into()));
    }

    #[test]
    fn challenges_never_carry_quotes_or_control_characters() {
        assert_eq!(quoted("a\"b\\c\r\nd"), "abcd");
    }
}
