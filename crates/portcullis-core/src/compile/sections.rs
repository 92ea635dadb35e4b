//! Compile checks for the sections whose enforcement lives in other stages: admin, auth
//! providers, consumers, plans, policies, WAF and CORS. They are cross-checked here so a
//! typo is caught by `validate`, whatever this build enforces.

use ipnet::IpNet;
use portcullis_config::KeyPath;
use portcullis_config::surface::AuthProvider;

use super::{Compiler, at, parse_net};
use std::sync::Arc;

use portcullis_config::surface;

use crate::snapshot::{
    AdminSpec, AdminToken, DEFAULT_DATABASE, LimitKey, OnRedisError, PlanSpec, QuotaSpec, RateLimitSpec, StateSpec,
};

const JWT_ALGORITHMS: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// Headers a `forward_claims` entry may not name: the gateway's own identity headers (a claim
/// would overwrite the gateway's value), hop-by-hop and framing headers, credentials (the
/// client's would be stripped before authentication) and the headers the gateway sets for
/// every request. `Proxy-*` is refused by prefix.
const RESERVED_CLAIM_HEADERS: [&str; 19] = [
    "x-consumer",
    "x-auth-subject",
    "x-auth-provider",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Why `header` cannot carry a claim, if it cannot; `key_headers` are the API-key headers.
fn claim_header_refusal(header: &str, key_headers: &[String]) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Some(format!("`{header}` is not a header name"));
    }
    if lower.contains('_') {
        return Some(format!(
            "`{header}` holds `_`: CGI-style backends read it as the `-` spelling; write it with `-`"
        ));
    }
    if is_gateway_header(&lower, key_headers) {
        return Some(format!("`{header}` is a header the gateway sets, strips or reads itself"));
    }
    None
}

/// Whether `lower` (a lowercase header name) is one the gateway sets, strips or reads itself.
pub(super) fn is_gateway_header(lower: &str, key_headers: &[String]) -> bool {
    RESERVED_CLAIM_HEADERS.contains(&lower)
        || lower.starts_with("proxy-")
        || lower == "forwarded"
        || key_headers.iter().any(|k| k.eq_ignore_ascii_case(lower))
}

/// Whether a `forward_claims` entry is written header → claim (`X-User-Id: sub`): its key
/// reads as a header name (with `-`, starting `X-` or a capital) and its value as a claim
/// name (no `-` and lowercase first, or not a header name at all: `cognito:groups`).
fn reads_swapped(claim: &str, header: &str) -> bool {
    let header_like = claim.contains('-')
        && http::HeaderName::from_bytes(claim.as_bytes()).is_ok()
        && (claim.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            || claim.starts_with(|c: char| c.is_ascii_uppercase()));
    let claim_like = !header.is_empty()
        && (http::HeaderName::from_bytes(header.as_bytes()).is_err()
            || (!header.contains('-') && !header.starts_with(|c: char| c.is_ascii_uppercase())));
    header_like && claim_like
}

pub(super) fn admin(c: &mut Compiler<'_>) -> Option<AdminSpec> {
    let admin = c.doc.admin.as_ref()?;
    let path = at("admin");
    let tokens = admin_tokens(c, admin);
    match admin.bind.parse::<std::net::SocketAddr>() {
        Err(_) => {
            c.error(&path.key("bind"), format!("`{}` is not IP:PORT", admin.bind));
            None
        }
        Ok(addr) if !addr.ip().is_loopback() && tokens.is_empty() => {
            c.error(&path.key("token"), "a token is required when the admin API is not on loopback");
            None
        }
        Ok(bind) => {
            // Port 0 (any free port) never collides.
            let taken = bind.port() != 0
                && c.doc.listeners.iter().any(|l| l.bind.parse::<std::net::SocketAddr>().is_ok_and(|b| b == bind));
            if taken {
                c.error(&path.key("bind"), format!("`{bind}` is already a traffic listener's address"));
            }
            Some(AdminSpec { bind, tokens, public_metrics: admin.public_metrics })
        }
    }
}

/// `admin.token` (named `admin`) and `admin.tokens`: names unique, tokens non-empty and
/// unique (a shared token could not say who used it).
fn admin_tokens(c: &mut Compiler<'_>, admin: &portcullis_config::surface::Admin) -> Vec<AdminToken> {
    let path = at("admin").key("tokens");
    let mut out: Vec<AdminToken> = Vec::with_capacity(admin.tokens.len() + 1);
    if let Some(token) = admin.token.as_ref().filter(|t| !t.is_empty()) {
        out.push(AdminToken { name: "admin".to_owned(), token: token.clone() });
    }
    for (i, named) in admin.tokens.iter().enumerate() {
        let here = path.index(i);
        if named.name.is_empty() || named.name == "cli" || named.name == "sighup" || named.name == "file-watch" {
            c.error(&here.key("name"), format!("`{}` cannot name an admin token", named.name));
        } else if out.iter().any(|t| t.name == named.name) {
            c.error(&here.key("name"), format!("`{}` names two admin tokens", named.name));
        } else if named.token.is_empty() {
            c.error(&here.key("token"), "must not be empty");
        } else if out.iter().any(|t| t.token == named.token) {
            c.error(&here.key("token"), "is the same as another admin token: each holder needs their own");
        } else {
            out.push(AdminToken { name: named.name.clone(), token: named.token.clone() });
        }
    }
    out
}

pub(super) fn cidrs(c: &mut Compiler<'_>, path: &KeyPath, list: &[String]) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(list.len());
    for (i, text) in list.iter().enumerate() {
        match parse_net(text) {
            Some(net) => out.push(net),
            None => c.error(&path.index(i), format!("`{text}` is not an IP address or CIDR block")),
        }
    }
    out
}

pub(super) fn auth(c: &mut Compiler<'_>) {
    let key_headers: Vec<String> = c
        .doc
        .auth
        .values()
        .filter_map(|p| match p {
            AuthProvider::ApiKey(key) => Some(key.header.clone()),
            _ => None,
        })
        .collect();
    for (name, provider) in &c.doc.auth {
        let path = at("auth").key(name);
        match provider {
            AuthProvider::Jwt(jwt) => {
                if jwt.algorithms.is_empty() {
                    c.error(&path.key("algorithms"), "list the accepted algorithms (e.g. [RS256])");
                }
                for (i, alg) in jwt.algorithms.iter().enumerate() {
                    if alg.eq_ignore_ascii_case("none") || alg.to_ascii_uppercase().starts_with("HS") {
                        c.error(
                            &path.key("algorithms").index(i),
                            format!("`{alg}` is refused: use an asymmetric algorithm with a JWKS"),
                        );
                    } else if alg == "ES512" {
                        c.error(&path.key("algorithms").index(i), "`ES512` is not supported by this build");
                    } else if !JWT_ALGORITHMS.contains(&alg.as_str()) {
                        c.error(&path.key("algorithms").index(i), format!("unknown algorithm `{alg}`"));
                    }
                }
                for (i, from) in jwt.token_from.iter().enumerate() {
                    let ok = from == "header"
                        || from.strip_prefix("cookie:").is_some_and(|n| !n.is_empty())
                        || from.strip_prefix("query:").is_some_and(|n| !n.is_empty());
                    if !ok {
                        c.error(
                            &path.key("token_from").index(i),
                            format!("`{from}` must be header, cookie:NAME or query:NAME"),
                        );
                    }
                }
                for (claim, header) in &jwt.forward_claims {
                    if reads_swapped(claim, header) {
                        c.error(
                            &path.key("forward_claims").key(claim),
                            format!(
                                "`forward_claims` maps a claim to a header (`claim: Header-Name`); `{claim}` reads \
                                 as a header and `{header}` as a claim: write `{header}: {claim}`"
                            ),
                        );
                    } else if let Some(why) = claim_header_refusal(header, &key_headers) {
                        c.error(&path.key("forward_claims").key(claim), why);
                    }
                }
                url_https_unless_loopback(c, &path.key("issuer"), &jwt.issuer);
                if let Some(uri) = &jwt.jwks_uri {
                    url_https_unless_loopback(c, &path.key("jwks_uri"), uri);
                }
            }
            AuthProvider::ApiKey(key) => {
                if http::HeaderName::from_bytes(key.header.as_bytes()).is_err() {
                    c.error(&path.key("header"), format!("`{}` is not a header name", key.header));
                }
            }
            AuthProvider::Mtls(_) => {}
        }
    }
}

fn url_https_unless_loopback(c: &mut Compiler<'_>, path: &KeyPath, text: &str) {
    let Ok(uri) = text.parse::<http::Uri>() else {
        return c.error(path, format!("`{text}` is not a URL"));
    };
    let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        _ => c.error(path, "must be an https URL (http is allowed on loopback only)"),
    }
}

pub(super) fn consumers_and_plans(c: &mut Compiler<'_>) {
    for (name, consumer) in &c.doc.consumers {
        let path = at("consumers").key(name);
        if let Some(plan) = &consumer.plan {
            let doc = c.doc;
            c.reference(&path.key("plan"), "plan", "plans", plan, &doc.plans);
        }
        for (i, key) in consumer.keys.iter().enumerate() {
            let ok =
                key.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                c.error(
                    &path.key("keys").index(i),
                    "must be a stored form `sha256:<64 hex digits>` from `portcullis hash-key`",
                );
            }
        }
    }
    for (name, plan) in &c.doc.plans {
        if plan.rate.is_none() && plan.quota.is_none() {
            c.error(&at("plans").key(name), "a plan needs a rate, a quota or both");
        }
        if plan.burst.is_some() && plan.rate.is_none() {
            c.error(&at("plans").key(name).key("burst"), "burst needs a rate");
        }
    }
}

/// `plans`, in name order.
pub(super) fn plans(c: &mut Compiler<'_>) -> Vec<PlanSpec> {
    let mut out = Vec::with_capacity(c.doc.plans.len());
    for (name, plan) in &c.doc.plans {
        let path = at("plans").key(name);
        let rate = plan.rate.as_ref().map(|r| (u32::try_from(r.count).unwrap_or(0), r.period()));
        if rate.is_some_and(|(n, _)| n == 0) {
            c.error(&path.key("rate"), "must be more than 0 and at most 4294967295");
        }
        if plan.burst == Some(0) {
            c.error(&path.key("burst"), "must be at least 1");
        }
        let quota = plan
            .quota
            .as_ref()
            .map(|q| QuotaSpec { limit: q.count, monthly: matches!(q.per, portcullis_config::values::Per::Month) });
        if quota.is_some_and(|q| q.limit == 0) {
            c.error(&path.key("quota"), "must be more than 0");
        }
        out.push(PlanSpec { name: Arc::from(name.as_str()), rate, burst: plan.burst, quota });
    }
    out
}

/// `rate_limits`, in name order (routes refer to them by index).
pub(super) fn rate_limits(c: &mut Compiler<'_>) -> Vec<RateLimitSpec> {
    let mut out = Vec::with_capacity(c.doc.rate_limits.len());
    for (name, limit) in &c.doc.rate_limits {
        let path = at("rate_limits").key(name);
        let count = u32::try_from(limit.rate.count).unwrap_or(0);
        if count == 0 {
            c.error(&path.key("rate"), "must be more than 0 and at most 4294967295");
        }
        if limit.burst == Some(0) {
            c.error(&path.key("burst"), "must be at least 1");
        }
        let key = match limit.key.as_str() {
            "client_ip" => LimitKey::ClientIp,
            "consumer" => LimitKey::Consumer,
            "route" => LimitKey::Route,
            other => match (other.strip_prefix("claim:"), other.strip_prefix("header:")) {
                (Some(claim), _) if !claim.is_empty() => LimitKey::Claim(claim.to_owned()),
                (_, Some(header)) => match http::HeaderName::from_bytes(header.as_bytes()) {
                    Ok(_) if is_credential_header(header, &c.doc.auth) => {
                        c.error(
                            &path.key("key"),
                            format!(
                                "`{header}` carries credentials: counters would be keyed on secrets, and the gateway \
                                 removes API key headers before limits are keyed; use `key: consumer` to count per \
                                 authenticated consumer"
                            ),
                        );
                        LimitKey::Route
                    }
                    Ok(h) => LimitKey::Header(h),
                    Err(_) => {
                        c.error(&path.key("key"), format!("`{header}` is not a header name"));
                        LimitKey::Route
                    }
                },
                _ => {
                    c.error(&path.key("key"), "must be client_ip, consumer, route, claim:NAME or header:NAME");
                    LimitKey::Route
                }
            },
        };
        out.push(RateLimitSpec {
            name: Arc::from(name.as_str()),
            count,
            period: limit.rate.period(),
            burst: limit.burst,
            key,
        });
    }
    out
}

/// Whether `header` (in any case, `_` read as `-` as CGI-style backends do) carries
/// credentials: `Authorization`, `Proxy-Authorization`, `Cookie`, or an `api_key` provider's
/// header.
fn is_credential_header(header: &str, auth: &std::collections::BTreeMap<String, AuthProvider>) -> bool {
    let normal = |name: &str| name.trim().to_ascii_lowercase().replace('_', "-");
    let header = normal(header);
    matches!(header.as_str(), "authorization" | "proxy-authorization" | "cookie")
        || auth.values().any(|p| matches!(p, AuthProvider::ApiKey(key) if normal(&key.header) == header))
}

pub(super) fn state(c: &mut Compiler<'_>) -> StateSpec {
    let state = &c.doc.state;
    let tls = state.redis.as_deref().is_some_and(|url| url.starts_with("rediss://"));
    if let Some(url) = &state.redis
        && !(tls || url.starts_with("redis://") || url.starts_with("unix://"))
    {
        c.error(&at("state").key("redis"), "must be a redis://, rediss:// or unix:// URL");
    }
    let redis_ca = match state.redis_ca.as_deref() {
        None => None,
        Some(_) if !tls => {
            c.error(&at("state").key("redis_ca"), "`redis_ca` is for a TLS Redis: write `redis: rediss://…`");
            None
        }
        Some(file) if file.trim().is_empty() => {
            c.error(&at("state").key("redis_ca"), "name a PEM file");
            None
        }
        Some(file) => Some(c.loaded.resolve_path(file)),
    };
    let database = database_url(c);
    StateSpec {
        database,
        redis: state.redis.clone(),
        redis_ca,
        on_redis_error: match state.on_redis_error {
            None | Some(surface::OnRedisError::Local) => OnRedisError::Local,
            Some(surface::OnRedisError::Allow) => OnRedisError::Allow,
            Some(surface::OnRedisError::Deny) => OnRedisError::Deny,
        },
    }
}

/// `state.database`, with a relative SQLite path joined to the config folder. The message
/// never repeats the URL: it may hold a password.
fn database_url(c: &mut Compiler<'_>) -> String {
    let url = c.doc.state.database.clone().unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    if let Some(file) = url.strip_prefix("sqlite://") {
        if file.is_empty() || file.contains('?') {
            c.error(&at("state").key("database"), "write sqlite://FILE (a path, no parameters)");
            return url;
        }
        return format!("sqlite://{}", c.loaded.resolve_path(file).display());
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        c.error(&at("state").key("database"), "must be a sqlite://FILE or postgres://… URL");
        return url;
    }
    postgres_url(c, url)
}

/// libpq's `sslmode` values, which the PostgreSQL driver takes from the URL.
const SSL_MODES: [&str; 6] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
/// The URL parameters that name files: a relative one joins the config's folder.
const DATABASE_TLS_FILES: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

/// Checks a `postgres://` URL's TLS parameters and makes its file parameters absolute. The URL
/// is rewritten only when a path changed, so the query keeps its spelling otherwise.
fn postgres_url(c: &mut Compiler<'_>, url: String) -> String {
    let path = at("state").key("database");
    let Ok(mut parsed) = url::Url::parse(&url) else {
        c.error(&path, "is not a valid URL");
        return url;
    };
    let mut changed = false;
    let mut mode = None;
    let mut files = [false; 3];
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let mut value = value.into_owned();
            if let Some(i) = DATABASE_TLS_FILES.iter().position(|f| *f == name) {
                files[i] = !value.is_empty();
                // The driver also takes the PEM text itself in place of a path.
                let inline = value.starts_with("-----BEGIN");
                let resolved = c.loaded.resolve_path(&value).display().to_string();
                if !value.is_empty() && !inline && resolved != value {
                    value = resolved;
                    changed = true;
                }
            } else if name == "sslmode" {
                mode = Some(value.clone());
            }
            (name.into_owned(), value)
        })
        .collect();
    if let Some(bad) = mode.as_deref().filter(|m| !SSL_MODES.contains(m)) {
        c.error(&path, format!("sslmode `{bad}` is not one of {}", SSL_MODES.join(", ")));
    }
    let [_, cert, key] = files;
    if cert != key {
        c.error(&path, "sslcert and sslkey go together: name both or neither");
    }
    if mode.as_deref() == Some("verify-ca") {
        c.warn(
            &path,
            "sslmode=verify-ca checks the server's name too in this build, as verify-full does \
             (sqlx issue #3793)",
        );
    }
    let checked = matches!(mode.as_deref(), Some("verify-ca" | "verify-full"));
    if !checked && !is_loopback_host(parsed.host()) {
        let now = match mode.as_deref() {
            None => "no sslmode means prefer: TLS only if the server offers it".to_owned(),
            Some(m) => format!("sslmode={m}"),
        };
        c.warn(&path, format!("the database server's certificate is not checked ({now}); add sslmode=verify-full"));
    }
    if changed {
        parsed.query_pairs_mut().clear().extend_pairs(&pairs);
        return parsed.into();
    }
    url
}

/// `localhost`, a loopback address, or no host (a Unix socket named in the parameters).
fn is_loopback_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        None => true,
        // `postgres:` is not a special scheme to the URL parser: an IPv4 address stays text.
        Some(url::Host::Domain(name)) => {
            name.is_empty()
                || name.eq_ignore_ascii_case("localhost")
                || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    }
}

pub(super) fn policies_waf_cors(c: &mut Compiler<'_>) {
    for (name, policy) in &c.doc.policies {
        if policy.scopes.is_empty() && policy.claims.is_empty() && policy.expr.is_none() {
            c.error(&at("policies").key(name), "a policy needs scopes, claims or expr");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn database(state: &str) -> Result<String, String> {
        let text = format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:8080\" }}]\nupstreams: {{ m: {{ mock: {{ status: 200 }} }} }}\n{state}routes:\n  - {{ name: r, match: {{ path: /x }}, upstream: m, auth: none }}\n"
        );
        let loaded =
            portcullis_config::load_str(&text, "t.yaml", Path::new("/etc/pc"), None).map_err(|e| e.to_string())?;
        crate::compile(&loaded).map(|s| s.state.database).map_err(|e| e.to_string())
    }

    #[test]
    fn the_database_defaults_to_a_sqlite_file_in_the_config_folder() {
        assert_eq!(database(""), Ok("sqlite:///etc/pc/portcullis.db".to_owned()));
        assert_eq!(database("state: { database: \"sqlite://d/x.db\" }\n"), Ok("sqlite:///etc/pc/d/x.db".to_owned()));
        assert_eq!(database("state: { database: \"sqlite:///var/x.db\" }\n"), Ok("sqlite:///var/x.db".to_owned()));
        let pg = "postgres://app:secret@db/p";
        assert_eq!(database(&format!("state: {{ database: \"{pg}\" }}\n")), Ok(pg.to_owned()));
    }

    fn database_warnings(url: &str) -> Vec<String> {
        let text = format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:8080\" }}]\nupstreams: {{ m: {{ mock: {{ status: 200 }} }} }}\nstate: {{ database: \"{url}\" }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: m, auth: none }}\n"
        );
        let loaded = portcullis_config::load_str(&text, "t.yaml", Path::new("/etc/pc"), None).expect("load");
        let snapshot = crate::compile(&loaded).expect("compile");
        snapshot.warnings.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn relative_tls_files_of_a_postgres_url_join_the_config_folder() {
        let url = "postgres://app:secret@db.internal/p?sslmode=verify-full&sslrootcert=tls/ca.pem&sslcert=c.pem&sslkey=/k/c.key&application_name=pc";
        assert_eq!(
            database(&format!("state: {{ database: \"{url}\" }}\n")),
            Ok("postgres://app:secret@db.internal/p?sslmode=verify-full&sslrootcert=%2Fetc%2Fpc%2Ftls%2Fca.pem&sslcert=%2Fetc%2Fpc%2Fc.pem&sslkey=%2Fk%2Fc.key&application_name=pc".to_owned())
        );
        // Nothing to resolve: the URL is kept as written.
        let absolute = "postgres://db.internal/p?sslmode=verify-full&sslrootcert=/etc/ca.pem&options=-c%20x%3Dy";
        assert_eq!(database(&format!("state: {{ database: \"{absolute}\" }}\n")), Ok(absolute.to_owned()));
    }

    #[test]
    fn bad_tls_parameters_are_errors_and_an_unchecked_remote_server_a_warning() {
        for (bad, needle) in [
            ("postgres://app:secret@db/p?sslmode=verify", "sslmode `verify`"),
            ("postgres://app:secret@db/p?sslmode=verify-full&sslcert=c.pem", "sslcert and sslkey"),
            ("postgres://app:secret@db/p?sslkey=c.key", "sslcert and sslkey"),
        ] {
            let err = database(&format!("state: {{ database: \"{bad}\" }}\n")).expect_err(bad);
            assert!(err.contains("state.database") && err.contains(needle) && !err.contains("secret"), "{err}");
        }
        for unchecked in ["postgres://db.internal/p", "postgres://10.0.0.5/p?sslmode=require"] {
            let warnings = database_warnings(unchecked);
            assert!(warnings.iter().any(|w| w.contains("sslmode=verify-full")), "{unchecked}: {warnings:?}");
        }
        let verify_ca = database_warnings("postgres://db.internal/p?sslmode=verify-ca");
        assert!(verify_ca.len() == 1 && verify_ca[0].contains("checks the server's name too"), "{verify_ca:?}");
        for fine in [
            "postgres://db.internal/p?sslmode=verify-full",
            "postgres://127.0.0.1/p",
            "postgres://localhost/p",
            "postgres://[::1]/p",
            "postgres:///p?host=/run/postgresql",
        ] {
            assert!(database_warnings(fine).iter().all(|w| !w.contains("state.database")), "{fine}");
        }
    }

    #[test]
    fn other_database_urls_are_errors_that_do_not_repeat_the_url() {
        for bad in ["mysql://app:secret@db/p", "sqlite://", "sqlite://x.db?mode=ro"] {
            let err = database(&format!("state: {{ database: \"{bad}\" }}\n")).expect_err(bad);
            assert!(err.contains("state.database") && !err.contains("secret"), "{err}");
        }
    }
}
