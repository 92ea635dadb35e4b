//! Compile `routes`: every reference resolved (upstream, auth providers, policies, rate
//! limits, CORS), patterns inserted into the route table, limits only lowered, header edits
//! and rewrites parsed; a route's `soap` block is resolved in [`super::soap`].

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};
use portcullis_config::KeyPath;
use portcullis_config::surface::{AuthKeyword, AuthProvider, Route, RouteAuth, RouteLimits, TrailingSlash};

use super::{Compiler, at, soap};
use crate::route::{PathOptions, RouteFlags, RouteTable};
use crate::snapshot::{
    AuthRule, CacheSpec, HeaderOps, Limits, Protocol, Rewrite, RewritePart, RouteSpec, UpstreamKind, UpstreamSpec,
};

pub(super) fn compile(
    c: &mut Compiler<'_>,
    global: &Limits,
    upstreams: &[UpstreamSpec],
) -> (Vec<Arc<RouteSpec>>, RouteTable) {
    let mut routes = Vec::with_capacity(c.doc.routes.len());
    let routing = &c.doc.routing;
    let mut table = RouteTable::new(PathOptions {
        case_insensitive: routing.case_insensitive,
        ignore_trailing_slash: routing.trailing_slash == TrailingSlash::Ignore,
    });
    for (i, r) in c.doc.routes.iter().enumerate() {
        let path = at("routes").index(i);
        if c.doc.routes[..i].iter().any(|o| o.name == r.name) {
            c.error(&path.key("name"), format!("route name `{}` is used twice", r.name));
        }
        let Some(spec) = route(c, &path, r, global, upstreams) else { continue };
        let flags = RouteFlags { captures: spec.captures_params, matrix_params: spec.matrix_params };
        let added = table.add(spec.name.clone(), spec.host.as_deref(), &spec.path, spec.methods.clone(), flags);
        match added {
            Ok(_) => routes.push(Arc::new(spec)),
            Err(e) => c.error(&path.key("match").key("path"), e.to_string()),
        }
    }
    (routes, table)
}

fn route(
    c: &mut Compiler<'_>,
    path: &KeyPath,
    r: &Route,
    global: &Limits,
    upstreams: &[UpstreamSpec],
) -> Option<RouteSpec> {
    let upstream = upstreams.iter().position(|u| u.name.as_ref() == r.upstream);
    if upstream.is_none() && !c.doc.upstreams.contains_key(&r.upstream) {
        c.error(&path.key("upstream"), format!("unknown upstream `{}`", r.upstream));
    }
    let auth = auth(c, &path.key("auth"), &r.auth);
    references(c, path, r);
    let methods = methods(c, &path.key("match").key("methods"), r.matcher.methods.as_deref());
    host(c, &path.key("match").key("host"), r.matcher.host.as_deref());
    let params = pattern_params(&r.matcher.path);
    let rewrite = r.rewrite.as_ref().map(|rw| rewrite(c, &path.key("rewrite").key("path"), &rw.path, &params));
    let limits = route_limits(c, &path.key("limits"), global, r.limits.as_ref());
    let headers = r.headers.clone().unwrap_or_default();
    let request_path = path.key("headers").key("request");
    let request_headers = header_ops(c, &request_path, &headers.request.set, &headers.request.remove);
    let response_headers =
        header_ops(c, &path.key("headers").key("response"), &headers.response.set, &headers.response.remove);
    let allow_underscore =
        allow_underscore(c, &request_path.key("allow_underscore"), &headers.request.allow_underscore);
    let spec = upstream.and_then(|i| upstreams.get(i));
    let kind = spec.map(|u| &u.kind);
    let te_trailers = matches!(kind, Some(UpstreamKind::Targets(t)) if t.protocol == Protocol::H2);
    if r.websocket {
        websocket(c, &path.key("websocket"), kind, methods.as_deref());
    }
    let soap = soap::route(c, path, r, spec, &soap::RouteFacts { params: &params, auth: &auth });
    let cache = cache(c, &path.key("cache"), r, methods.as_deref(), soap.is_some());
    Some(RouteSpec {
        name: Arc::from(r.name.as_str()),
        host: r.matcher.host.as_ref().map(|h| h.to_ascii_lowercase()),
        path: r.matcher.path.clone(),
        methods,
        upstream: upstream?,
        // A SOAP route's template may read path parameters.
        captures_params: (rewrite.is_some() || soap.is_some()) && !params.is_empty(),
        rewrite,
        auth,
        policies: r
            .policy
            .as_ref()
            .map(|p| p.as_slice().iter().map(|s| Arc::from(s.as_str())).collect())
            .unwrap_or_default(),
        limits,
        request_headers,
        response_headers,
        timeout: r.timeout.map(|d| d.0),
        rate_limits: r.rate_limits.iter().filter_map(|name| c.doc.rate_limits.keys().position(|k| k == name)).collect(),
        websocket: r.websocket,
        te_trailers,
        soap,
        cache,
        matrix_params: r.matcher.matrix_params,
        allow_underscore,
        waf: super::waf::route_mode(c.doc, r.waf),
    })
}

/// `cache: { ttl, shared }`: a positive TTL on a route that takes GET or HEAD. SOAP routes
/// answer from a POSTed envelope, which this build does not cache: stated, then ignored.
fn cache(c: &mut Compiler<'_>, path: &KeyPath, r: &Route, methods: Option<&[Method]>, soap: bool) -> Option<CacheSpec> {
    let spec = r.cache.as_ref()?;
    if spec.ttl.0.is_zero() {
        c.error(&path.key("ttl"), "the cache TTL must be longer than zero");
    }
    if methods.is_some_and(|m| !m.contains(&Method::GET) && !m.contains(&Method::HEAD)) {
        c.error(path, "only GET and HEAD responses are cached, but the route's `methods` leave both out");
    }
    if soap {
        c.warn(path, "SOAP routes are not cached by this build: `cache` is ignored here");
        return None;
    }
    Some(CacheSpec { ttl: spec.ttl.0, shared: spec.shared })
}

/// `websocket: true` needs a route that takes `GET` and an upstream that can answer 101.
fn websocket(c: &mut Compiler<'_>, path: &KeyPath, kind: Option<&UpstreamKind>, methods: Option<&[Method]>) {
    match kind {
        Some(UpstreamKind::Mock(_)) => c.error(path, "a mock upstream cannot take a WebSocket upgrade"),
        Some(UpstreamKind::Targets(t)) if t.protocol == Protocol::H2 => {
            c.error(path, "WebSocket upgrades need an `http1` upstream; this one is `protocol: h2`");
        }
        _ => {}
    }
    if methods.is_some_and(|m| !m.contains(&Method::GET)) {
        c.error(path, "a WebSocket upgrade is a GET request, but the route's `methods` leave GET out");
    }
}

fn auth(c: &mut Compiler<'_>, path: &KeyPath, rule: &RouteAuth) -> AuthRule {
    let (names, any) = match rule {
        RouteAuth::Keyword(AuthKeyword::None) => return AuthRule::Public,
        RouteAuth::Any(a) => (&a.any, true),
        RouteAuth::All(a) => (&a.all, false),
    };
    let list = path.key(if any { "any" } else { "all" });
    if names.is_empty() {
        c.error(&list, "list at least one auth provider (or write `auth: none`)");
    }
    for (i, name) in names.iter().enumerate() {
        if !c.doc.auth.contains_key(name) {
            c.error(&list.index(i), format!("unknown auth provider `{name}`"));
        }
    }
    let names = names.iter().map(|n| Arc::from(n.as_str())).collect();
    if any { AuthRule::Any(names) } else { AuthRule::All(names) }
}

fn references(c: &mut Compiler<'_>, path: &KeyPath, r: &Route) {
    if let Some(policy) = &r.policy {
        for (i, name) in policy.as_slice().iter().enumerate() {
            if !c.doc.policies.contains_key(name) {
                let p = if matches!(policy, portcullis_config::surface::OneOrMany::One(_)) {
                    path.key("policy")
                } else {
                    path.key("policy").index(i)
                };
                c.error(&p, format!("unknown policy `{name}`"));
            }
        }
    }
    for (i, name) in r.rate_limits.iter().enumerate() {
        if !c.doc.rate_limits.contains_key(name) {
            c.error(&path.key("rate_limits").index(i), format!("unknown rate limit `{name}`"));
        }
    }
    if let Some(cors) = &r.cors
        && !c.doc.cors.contains_key(cors)
    {
        c.error(&path.key("cors"), format!("unknown cors entry `{cors}`"));
    }
    if r.validate.is_some() {
        c.warn(path, "validate on routes is not enforced by this build yet");
    }
}

fn methods(c: &mut Compiler<'_>, path: &KeyPath, list: Option<&[String]>) -> Option<Vec<Method>> {
    let list = list?;
    if list.is_empty() {
        c.error(path, "list at least one method, or leave `methods` out for all");
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        match Method::from_bytes(m.as_bytes()) {
            Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => out.push(method),
            _ => c.error(&path.index(i), format!("`{m}` is not an upper-case HTTP method")),
        }
    }
    Some(out)
}

fn host(c: &mut Compiler<'_>, path: &KeyPath, host: Option<&str>) {
    let Some(host) = host else { return };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let valid = !bare.is_empty()
        && !bare.contains('*')
        && bare.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !valid {
        c.error(path, format!("`{host}` is not a host name or `*.domain` wildcard"));
    }
}

/// Parameter names of a pattern, catch-alls without their `*`.
fn pattern_params(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push(rest[open + 1..open + close].trim_start_matches('*').to_owned());
        rest = &rest[open + close + 1..];
    }
    out
}

fn rewrite(c: &mut Compiler<'_>, path: &KeyPath, template: &str, params: &[String]) -> Rewrite {
    if !template.starts_with('/') {
        c.error(path, "must start with `/`");
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(RewritePart::Literal(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find('}') else {
            c.error(path, "unclosed `{`");
            return Rewrite { parts };
        };
        let name = rest[open + 1..open + close].trim_start_matches('*');
        if !params.iter().any(|p| p == name) {
            c.error(path, format!("`{{{name}}}` is not a parameter of the route's path"));
        }
        parts.push(RewritePart::Param(name.to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(RewritePart::Literal(rest.to_owned()));
    }
    Rewrite { parts }
}

fn route_limits(c: &mut Compiler<'_>, path: &KeyPath, global: &Limits, route: Option<&RouteLimits>) -> Limits {
    let mut limits = *global;
    let Some(r) = route else { return limits };
    let mut lower = |key: &str, value: Option<u64>, slot: &mut u64| {
        let Some(v) = value else { return };
        if v > *slot {
            c.error(&path.key(key), format!("{v} is higher than the global limit {slot}; a route may only lower it"));
        } else {
            *slot = v;
        }
    };
    lower("max_body_bytes", r.max_body_bytes.map(|b| b.0), &mut limits.max_body_bytes);
    lower("max_header_bytes", r.max_header_bytes.map(|b| b.0), &mut limits.max_header_bytes);
    lower("max_uri_bytes", r.max_uri_bytes.map(|b| b.0), &mut limits.max_uri_bytes);
    limits
}

fn header_ops(
    c: &mut Compiler<'_>,
    path: &KeyPath,
    set: &std::collections::BTreeMap<String, String>,
    remove: &[String],
) -> HeaderOps {
    let mut ops = HeaderOps::default();
    for (name, value) in set {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(n), Ok(v)) => ops.set.push((n, v)),
            _ => c.error(&path.key("set").key(name), "invalid header name or value"),
        }
    }
    for (i, name) in remove.iter().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => ops.remove.push(n),
            Err(_) => c.error(&path.key("remove").index(i), format!("`{name}` is not a header name")),
        }
    }
    ops
}

/// `headers.request.allow_underscore`: names holding `_` (the others are forwarded anyway)
/// whose `-` spelling is no header the gateway sets, strips or reads itself — a backend that
/// reads `_` as `-` would take `Content_Length` or `X_Consumer` for the real one.
fn allow_underscore(c: &mut Compiler<'_>, path: &KeyPath, names: &[String]) -> Vec<HeaderName> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            c.error(&path.index(i), format!("`{name}` is not a header name"));
            continue;
        };
        let dashed = header.as_str().replace('_', "-");
        if !header.as_str().contains('_') {
            c.error(&path.index(i), format!("`{name}` holds no `_`: it is forwarded without being listed"));
        } else if gateway_owned(c, &dashed) {
            c.error(
                &path.index(i),
                format!("`{name}` reads as `{dashed}`, a header the gateway sets, strips or reads itself"),
            );
        } else {
            out.push(header);
        }
    }
    out
}

/// Whether `lower` is a header the gateway sets, strips or reads itself: framing, hop-by-hop,
/// credential and forwarding headers, API-key headers and the identity headers.
fn gateway_owned(c: &Compiler<'_>, lower: &str) -> bool {
    let mut key_headers = Vec::new();
    let mut claim_headers = Vec::new();
    for provider in c.doc.auth.values() {
        match provider {
            AuthProvider::ApiKey(key) => key_headers.push(key.header.clone()),
            AuthProvider::Jwt(jwt) => claim_headers.extend(jwt.forward_claims.values().cloned()),
            AuthProvider::Mtls(_) => {}
        }
    }
    super::sections::is_gateway_header(lower, &key_headers)
        || claim_headers.iter().any(|h| h.eq_ignore_ascii_case(lower))
}
