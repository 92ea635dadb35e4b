//! Compile-step tests: cross-references, limits only lowered, fail-closed warnings.

use std::path::Path;

use portcullis_config::load_str;

use crate::compile;
use crate::snapshot::{AuthRule, Balance};

const BASE: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
upstreams:
  up: { targets: ["http://127.0.0.1:9000/base/"], balance: "hash:header:X-User" }
  m: { mock: { status: 201, body: made } }
"#;

fn compile_text(extra: &str) -> Result<crate::Snapshot, String> {
    let text = format!("{BASE}{extra}");
    let loaded = load_str(&text, "t.yaml", Path::new("/tmp"), None).map_err(|e| e.to_string())?;
    compile(&loaded).map_err(|e| e.to_string())
}

#[test]
fn a_valid_config_compiles_with_defaults() {
    let snap = compile_text("routes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none }\n");
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.routes[0].auth, AuthRule::Public);
    assert_eq!(snap.limits, crate::snapshot::Limits::default());
    let crate::snapshot::UpstreamKind::Targets(t) = &snap.upstreams[1].kind else { panic!("targets") };
    assert_eq!(t.targets[0].base_path, "/base");
    assert!(matches!(t.balance, Balance::HashHeader(_)));
}

#[test]
fn every_cross_reference_error_is_reported_at_once() {
    let err = compile_text(
        "routes:\n  - { name: r, match: { path: /x }, upstream: nope, auth: { all: [ghost] }, policy: [p1, p2], cors: c }\n  - { name: r, match: { path: /y }, upstream: up, auth: none }\n",
    )
    .err()
    .unwrap_or_default();
    for needle in [
        "unknown upstream `nope`",
        "unknown auth provider `ghost`",
        "unknown policy `p1`",
        "unknown policy `p2`",
        "unknown cors entry `c`",
        "route name `r` is used twice",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
    assert!(err.contains("t.yaml:7:"), "placed on the route's line:\n{err}");
}

#[test]
fn a_route_may_only_lower_limits() {
    let err = compile_text(
        "limits: { max_body_bytes: 100 }\nroutes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none, limits: { max_body_bytes: 200 } }\n",
    );
    assert!(err.err().unwrap_or_default().contains("may only lower"));
    let ok = compile_text(
        "limits: { max_body_bytes: 100 }\nroutes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none, limits: { max_body_bytes: 50 } }\n",
    );
    assert_eq!(ok.map(|s| s.routes[0].limits.max_body_bytes).ok(), Some(50));
}

#[test]
fn rewrite_may_only_use_the_routes_parameters() {
    let err = compile_text(
        "routes:\n  - { name: r, match: { path: \"/o/{id}\" }, upstream: up, auth: none, rewrite: { path: \"/x/{other}\" } }\n",
    );
    assert!(err.err().unwrap_or_default().contains("`{other}` is not a parameter"));
}

#[test]
fn insecure_jwt_algorithms_are_refused() {
    let auth = "auth:\n  corp: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [none, HS256, RS256] }\n";
    let err = compile_text(&format!(
        "{auth}routes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: {{ any: [corp] }} }}\n"
    ));
    let err = err.err().unwrap_or_default();
    assert!(err.contains("`none` is refused") && err.contains("`HS256` is refused"), "{err}");
    let ok = compile_text(
        "auth:\n  corp: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256] }\nroutes:\n  - { name: r, match: { path: /x }, upstream: up, auth: { any: [corp] } }\n",
    );
    let snap = ok.unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    assert!(matches!(snap.routes[0].auth, AuthRule::Any(_)));
    assert_eq!(snap.providers.len(), 1);
}

fn compile_listeners(listeners: &str) -> Result<crate::Snapshot, String> {
    let text = format!("version: 1\nlisteners: {listeners}\n");
    let loaded = load_str(&text, "t.yaml", Path::new("/etc/pc"), None).map_err(|e| e.to_string())?;
    compile(&loaded).map_err(|e| e.to_string())
}

#[test]
fn tls_listener_paths_resolve_against_the_config_folder() {
    let snap = compile_listeners(
        "[{ name: l, bind: \"127.0.0.1:8443\", tls: { certificates: [{ cert: c.pem, key: /k/k.pem }], min_version: \"1.3\", client_ca: ca.pem, client_cert: required } }]",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tls = snap.listeners[0].tls.as_ref().unwrap_or_else(|| panic!("tls"));
    assert_eq!(tls.certificates, vec![("/etc/pc/c.pem".into(), "/k/k.pem".into())]);
    assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/pc/ca.pem")));
    assert!(tls.client_cert_required && !tls.allow_tls12);
    for f in ["/etc/pc/c.pem", "/k/k.pem", "/etc/pc/ca.pem"] {
        assert!(snap.watch.iter().any(|w| w == Path::new(f)), "{f} is watched");
    }
}

#[test]
fn a_tls_listener_needs_a_certificate_and_client_cert_needs_a_ca() {
    let err =
        compile_listeners("[{ name: l, bind: \"127.0.0.1:8443\", tls: { certificates: [], client_cert: optional } }]")
            .err()
            .unwrap_or_default();
    assert!(err.contains("at least one certificate") && err.contains("needs `client_ca`"), "{err}");
}

#[test]
fn admin_compiles_and_may_not_share_a_listener_address() {
    let snap = compile_text("admin: { bind: \"127.0.0.1:9901\", token: t, public_metrics: true }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = snap.admin.unwrap_or_else(|| panic!("admin"));
    let tokens: Vec<(&str, &str)> = admin.tokens.iter().map(|t| (t.name.as_str(), t.token.as_str())).collect();
    assert_eq!((admin.bind.port(), tokens, admin.public_metrics), (9901, vec![("admin", "t")], true));
    let err = compile_text("admin: { bind: \"127.0.0.1:8080\" }\n").err().unwrap_or_default();
    assert!(err.contains("already a traffic listener"), "{err}");
}

#[test]
fn named_admin_tokens_compile_beside_the_plain_one_each_name_and_token_once() {
    let snap = compile_text("admin: { bind: \"127.0.0.1:9901\", token: t, tokens: [{ name: ops, token: o }] }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = snap.admin.map(|a| a.tokens.into_iter().map(|t| t.name).collect()).unwrap_or_default();
    assert_eq!(names, ["admin", "ops"]);
    let off_loopback = "admin: { bind: \"0.0.0.0:9901\", tokens: [{ name: ops, token: o }] }\n";
    assert!(compile_text(off_loopback).is_ok(), "a named token is a token");
    for (tokens, wanted) in [
        ("[{ name: ops, token: o }, { name: ops, token: p }]", "names two admin tokens"),
        ("[{ name: ops, token: t }]", "same as another admin token"),
        ("[{ name: sighup, token: o }]", "cannot name an admin token"),
        ("[{ name: ops, token: \"\" }]", "must not be empty"),
    ] {
        let text = format!("admin: {{ bind: \"127.0.0.1:9901\", token: t, tokens: {tokens} }}\n");
        let err = compile_text(&text).err().unwrap_or_default();
        assert!(err.contains(wanted), "{tokens}: {err}");
    }
}

#[test]
fn rate_limits_compile_with_their_keys_and_routes_refer_by_index() {
    let snap = compile_text(
        "rate_limits:\n  b: { rate: 10/s, burst: 20, key: \"header:X-Key\" }\n  a: { rate: 5/m, key: route }\nroutes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none, rate_limits: [b, a] }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = snap.rate_limits.iter().map(|l| &*l.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(snap.routes[0].rate_limits, vec![1, 0]);
    assert_eq!(snap.rate_limits[1].key, crate::snapshot::LimitKey::Header(http::HeaderName::from_static("x-key")));
    assert_eq!((snap.rate_limits[0].count, snap.rate_limits[0].period.as_secs()), (5, 60));
    let err = compile_text("rate_limits:\n  z: { rate: 0/s, burst: 0, key: consumer }\n").err().unwrap_or_default();
    assert!(err.contains("must be more than 0") && err.contains("must be at least 1"), "{err}");
}

#[test]
fn a_rate_limit_may_not_be_keyed_on_a_credential_header() {
    let with = |header: &str| {
        compile_text(&format!(
            "auth:\n  partners: {{ type: api_key, header: X-Partner-Key }}\nrate_limits:\n  k: {{ rate: 1/s, key: \"header:{header}\" }}\n"
        ))
    };
    for header in ["X-Partner-Key", "x_partner_key", "Authorization", "cookie", "Proxy_Authorization"] {
        let err = with(header).err().unwrap_or_default();
        assert!(err.contains("carries credentials") && err.contains("key: consumer"), "{header}: {err}");
    }
    assert!(with("X-Tenant").is_ok());
}

#[test]
fn token_places_and_trusted_proxy_headers_are_collected_once() {
    let snap = compile_text(
        "trusted_proxy_headers: [X-Edge-Country, x-edge-country]\nauth:\n  a: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256], token_from: [header, cookie:s, query:t] }\n  b: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256], token_from: [cookie:s] }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    use crate::snapshot::TokenSource;
    assert_eq!(snap.token_places, [TokenSource::Cookie("s".into()), TokenSource::Query("t".into())]);
    assert_eq!(snap.trusted_proxy_headers, [http::HeaderName::from_static("x-edge-country")]);
    let err = compile_text("trusted_proxy_headers: [\"bad header\"]\n").err().unwrap_or_default();
    assert!(err.contains("is not a header name"), "{err}");
}

#[test]
fn admin_off_loopback_needs_a_token() {
    let err = compile_text("admin: { bind: \"0.0.0.0:9901\" }\n");
    assert!(err.err().unwrap_or_default().contains("a token is required"));
}

#[test]
fn identity_headers_include_forward_claims() {
    let snap = compile_text(
        "auth:\n  corp: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256], forward_claims: { email: X-User-Email } }\n",
    );
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.identity_headers.iter().any(|h| h == "x-user-email"));
    assert!(snap.identity_headers.iter().any(|h| h == "x-consumer"));
}

#[test]
fn forward_claims_may_not_name_headers_the_gateway_sets_strips_or_reads() {
    let with = |header: &str| {
        compile_text(&format!(
            "auth:\n  partners: {{ type: api_key, header: X-Api-Key }}\n  corp: {{ type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256], forward_claims: {{ name: \"{header}\" }} }}\n"
        ))
    };
    for header in [
        "X-Auth-Subject",
        "x-consumer",
        "Connection",
        "Host",
        "Content-Length",
        "Authorization",
        "Cookie",
        "X-Api-Key",
        "X-Forwarded-For",
        "Proxy-Authorization",
        "traceparent",
    ] {
        let err = with(header).err().unwrap_or_default();
        assert!(err.contains("auth.corp.forward_claims.name") && err.contains("the gateway sets"), "{header}: {err}");
    }
    let err = with("X_User").err().unwrap_or_default();
    assert!(err.contains("holds `_`"), "{err}");
    assert!(with("X-User-Name").is_ok());
}

#[test]
fn the_api_key_challenge_keeps_the_configured_spelling_of_the_header() {
    let snap = compile_text("auth:\n  partners: { type: api_key, header: X-Partner-Key }\n");
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    let Some(crate::snapshot::ProviderKind::ApiKey { header, challenge }) = snap.provider("partners").map(|p| &p.kind)
    else {
        panic!("an api_key provider");
    };
    assert_eq!(header, "x-partner-key", "matched case-insensitively");
    assert_eq!(challenge, "ApiKey realm=\"portcullis\", header=\"X-Partner-Key\"");
}

#[test]
fn forward_claims_written_header_to_claim_are_refused_with_the_swap() {
    let with = |entries: &str| {
        compile_text(&format!(
            "auth:\n  corp: {{ type: jwt, issuer: \"https://idp.example.com\", algorithms: [RS256], forward_claims: {{ {entries} }} }}\n"
        ))
    };
    for (entry, fix) in [
        ("X-User-Id: sub", "write `sub: X-User-Id`"),
        ("x-user-email: email", "write `email: x-user-email`"),
        ("User-Name: preferred_username", "write `preferred_username: User-Name`"),
        ("X-Groups: \"cognito:groups\"", "write `cognito:groups: X-Groups`"),
    ] {
        let err = with(entry).err().unwrap_or_default();
        assert!(err.contains("maps a claim to a header (`claim: Header-Name`)") && err.contains(fix), "{entry}: {err}");
    }
    for fine in
        ["sub: X-User-Id", "email: x-user-email", "\"https://example.com/roles\": X-Roles", "tenant-id: X-Tenant"]
    {
        assert!(with(fine).is_ok(), "{fine}: {:?}", with(fine).err());
    }
}

#[test]
fn es512_is_refused_as_unsupported_rather_than_silently_dropped() {
    let err = compile_text("auth:\n  corp: { type: jwt, issuer: \"https://idp.example.com\", algorithms: [ES512] }\n")
        .err()
        .unwrap_or_default();
    assert!(err.contains("`ES512` is not supported"), "{err}");
}

#[test]
fn targets_get_the_default_port_and_refuse_credentials() {
    let head = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:8080\" }]\n";
    let compile_own = |extra: &str| {
        let text = format!("{head}{extra}");
        let loaded = load_str(&text, "t.yaml", Path::new("/tmp"), None).map_err(|e| e.to_string())?;
        compile(&loaded).map_err(|e| e.to_string())
    };
    let snap = compile_own("upstreams:\n  plain: { targets: [\"http://orders.internal\"] }\n");
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    let plain = snap.upstreams.iter().find(|u| u.name.as_ref() == "plain");
    let Some(crate::snapshot::UpstreamKind::Targets(t)) = plain.map(|u| &u.kind) else { panic!("targets") };
    assert_eq!(t.targets[0].authority.as_str(), "orders.internal:80");
    let err = compile_own("upstreams:\n  creds: { targets: [\"http://u:secret@h:8080\"] }\n");
    let err = err.err().unwrap_or_default();
    assert!(err.contains("cannot carry user:password"), "{err}");
    assert!(!err.contains("secret@"), "the credential is not echoed: {err}");
}

fn targets_of<'a>(snap: &'a crate::Snapshot, name: &str) -> &'a crate::snapshot::TargetsSpec {
    let upstream = snap.upstreams.iter().find(|u| u.name.as_ref() == name);
    let Some(crate::snapshot::UpstreamKind::Targets(t)) = upstream.map(|u| &u.kind) else { panic!("targets") };
    t
}

#[test]
fn upstream_tls_paths_resolve_against_the_config_folder() {
    let snap = compile_text(
        "  secure:\n    targets: [\"https://orders.internal\"]\n    tls: { ca: certs/ca.pem, client_cert: /etc/gw.pem, client_key: gw-key.pem, server_name: orders.internal }\n",
    );
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    let t = targets_of(&snap, "secure");
    assert!(t.targets[0].https);
    assert_eq!(t.targets[0].authority.as_str(), "orders.internal:443");
    assert_eq!(t.tls.ca.as_deref(), Some(Path::new("/tmp/certs/ca.pem")));
    let client = t.tls.client_cert.as_ref().unwrap_or_else(|| panic!("client cert"));
    assert_eq!(client.cert, Path::new("/etc/gw.pem"));
    assert_eq!(client.key, Path::new("/tmp/gw-key.pem"));
    assert_eq!(t.tls.server_name.as_deref(), Some("orders.internal"));
    assert_eq!(targets_of(&snap, "up").tls, crate::snapshot::UpstreamTlsSpec::default());
}

#[test]
fn a_client_certificate_needs_its_key_and_a_key_its_certificate() {
    let err = compile_text(
        "  a: { targets: [\"https://a:8443\"], tls: { client_cert: gw.pem } }\n  b: { targets: [\"https://b:8443\"], tls: { client_key: gw-key.pem } }\n",
    );
    let err = err.err().unwrap_or_default();
    assert!(err.contains("`client_cert` needs `client_key`"), "{err}");
    assert!(err.contains("`client_key` needs `client_cert`"), "{err}");
    assert!(err.contains("upstreams.a.tls.client_cert") && err.contains("upstreams.b.tls.client_key"), "{err}");
}

#[test]
fn tls_on_a_mock_and_a_bad_server_name_or_empty_file_are_errors() {
    let err = compile_text(
        "  m2: { mock: { status: 200 }, tls: { ca: ca.pem } }\n  s: { targets: [\"https://s:8443\"], tls: { server_name: \"bad name!\", ca: \"\" } }\n",
    );
    let err = err.err().unwrap_or_default();
    assert!(err.contains("a mock upstream has no connection to secure"), "{err}");
    assert!(err.contains("`bad name!` is not a DNS name or IP address"), "{err}");
    assert!(err.contains("upstreams.s.tls.ca") && err.contains("name a PEM file"), "{err}");
    let mixed = compile_text("  x: { targets: [\"http://a:80\", \"https://b:443\"] }\n");
    assert!(mixed.err().unwrap_or_default().contains("mixes http:// and https:// targets"));
}

#[test]
fn an_http_target_of_an_upstream_with_tls_is_reached_over_tls_with_a_warning() {
    let snap = compile_text("  t: { targets: [\"http://10.0.0.1:8080\"], tls: { ca: ca.pem } }\n");
    let snap = snap.unwrap_or_else(|e| panic!("{e}"));
    assert!(targets_of(&snap, "t").targets[0].https, "never plaintext when TLS settings were given");
    assert!(snap.warnings.iter().any(|w| w.message.contains("reached over TLS")), "{:?}", snap.warnings);
}

#[test]
fn websocket_routes_need_get_and_an_http1_upstream() {
    let err = compile_text(
        "  grpc: { targets: [\"http://127.0.0.1:9001\"], protocol: h2 }\nroutes:\n  - { name: a, match: { path: /a }, upstream: m, auth: none, websocket: true }\n  - { name: b, match: { path: /b }, upstream: grpc, auth: none, websocket: true }\n  - { name: c, match: { path: /c, methods: [POST] }, upstream: up, auth: none, websocket: true }\n",
    );
    let err = err.err().unwrap_or_default();
    assert!(err.contains("a mock upstream cannot take a WebSocket upgrade"), "{err}");
    assert!(err.contains("this one is `protocol: h2`"), "{err}");
    assert!(err.contains("leave GET out"), "{err}");
    let ok = compile_text(
        "  grpc: { targets: [\"http://127.0.0.1:9001\"], protocol: h2 }\nroutes:\n  - { name: ws, match: { path: /ws }, upstream: up, auth: none, websocket: true }\n  - { name: g, match: { path: /g }, upstream: grpc, auth: none }\n",
    );
    let snap = ok.unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.routes[0].websocket && !snap.routes[0].te_trailers);
    assert!(!snap.routes[1].websocket && snap.routes[1].te_trailers, "TE: trailers goes to h2 upstreams");
}

#[test]
fn cache_needs_a_positive_ttl_and_a_get_or_head_route() {
    let snap = compile_text(
        "routes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none, cache: { ttl: 30s, shared: true } }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cache = snap.routes[0].cache.unwrap_or_else(|| panic!("cache compiled"));
    assert_eq!((cache.ttl, cache.shared), (std::time::Duration::from_secs(30), true));
    assert!(!snap.warnings.iter().any(|w| w.message.contains("cache")), "{:?}", snap.warnings);
    let err = compile_text(
        "routes:\n  - { name: r, match: { path: /x, methods: [POST] }, upstream: up, auth: none, cache: { ttl: 0s } }\n",
    )
    .err()
    .unwrap_or_default();
    assert!(err.contains("longer than zero"), "{err}");
    assert!(err.contains("leave both out"), "{err}");
}

#[test]
fn a_bad_policy_expression_is_an_error_at_its_place() {
    let err = compile_text(
        "policies:\n  p: { expr: \"request.method ==\" }\nroutes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none, policy: p }\n",
    )
    .err()
    .unwrap_or_default();
    assert!(err.contains("policies.p.expr") && err.contains("invalid expression"), "{err}");
}

#[test]
fn a_key_listed_for_two_consumers_is_an_error() {
    let key = format!("sha256:{}", "a".repeat(64));
    let err = compile_text(&format!(
        "consumers:\n  a: {{ keys: [\"{key}\"] }}\n  b: {{ keys: [\"{key}\"] }}\nroutes:\n  - {{ name: r, match: {{ path: /x }}, upstream: up, auth: none }}\n"
    ))
    .err()
    .unwrap_or_default();
    assert!(err.contains("already listed"), "{err}");
}

#[test]
fn state_redis_takes_redis_rediss_and_unix_urls_and_a_ca_only_for_tls() {
    let route = "routes:\n  - { name: r, match: { path: /x }, upstream: up, auth: none }\n";
    for ok in ["redis://127.0.0.1:6379", "redis://:pw@cache:6379/2", "rediss://cache:6380", "unix:///run/redis.sock"] {
        let text = format!("state: {{ redis: \"{ok}\" }}\n{route}");
        assert!(compile_text(&text).is_ok(), "{ok}");
    }
    let other = compile_text(&format!("state: {{ redis: \"http://cache\" }}\n{route}")).expect_err("http");
    assert!(other.contains("must be a redis://, rediss:// or unix:// URL"), "{other}");
    let snap = compile_text(&format!("state: {{ redis: \"rediss://cache:6380\", redis_ca: certs/ca.pem }}\n{route}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.state.redis_ca.as_deref(), Some(Path::new("/tmp/certs/ca.pem")));
    assert!(snap.watch.iter().any(|w| w == Path::new("/tmp/certs/ca.pem")), "a reload follows the CA file");
    let plain = compile_text(&format!("state: {{ redis: \"redis://cache\", redis_ca: ca.pem }}\n{route}"))
        .expect_err("a CA for a plain-text Redis");
    assert!(plain.contains("state.redis_ca") && plain.contains("rediss://"), "{plain}");
}

mod routing;
