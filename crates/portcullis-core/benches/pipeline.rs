//! Criterion benches of the hot path without sockets: the route table lookup and the whole
//! request pipeline (intake + every stage) for a typical proxied GET, and the same with JWT
//! authentication (RS256, a verified token from the provider's cache, as in steady traffic).
//! Run: `cargo bench -p portcullis-core`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::clock::{Now, SystemClock};
use portcullis_core::pipeline::{self, Downstream};

const CONFIG: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
upstreams: { up: { targets: ["http://127.0.0.1:9000"] } }
routes:
  - { name: health, match: { path: /healthz, methods: [GET] }, upstream: up, auth: none }
  - { name: orders, match: { host: api.example.com, path: "/v1/orders/{id}", methods: [GET] }, upstream: up, auth: none, rewrite: { path: "/orders/{id}" } }
  - { name: items, match: { host: "*.example.com", path: "/v1/items/{id}" }, upstream: up, auth: none }
  - { name: static, match: { path: "/static/{*rest}" }, upstream: up, auth: none }
"#;

fn snapshot() -> portcullis_core::Snapshot {
    let loaded = portcullis_config::load_str(CONFIG, "bench.yaml", Path::new("/tmp"), None);
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    portcullis_core::compile(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

fn request() -> http::request::Parts {
    let req = http::Request::get("/v1/orders/42?expand=items")
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
        .header("x-request-id", "abc-123")
        .body(());
    req.map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh copy of a request head (each iteration's stages mutate theirs).
fn copy(template: &http::request::Parts) -> http::request::Parts {
    let mut p = http::Request::new(()).into_parts().0;
    p.method = template.method.clone();
    p.uri = template.uri.clone();
    p.headers = template.headers.clone();
    p
}

/// The request phases up to the transform, as a forwarded request passes them (the rate-limit
/// decision and the cache lookup, which await, are measured on their own).
fn forward(
    snap: &portcullis_core::Snapshot,
    decision: pipeline::Decision,
    parts: &mut http::request::Parts,
    ctx: &portcullis_core::RequestContext,
) -> portcullis_core::Flow {
    match decision {
        pipeline::Decision::Forward(routed) => portcullis_core::stage::Transform::run(snap, routed.route(), parts, ctx),
        _ => portcullis_core::Flow::Skip,
    }
}

fn benches(c: &mut Criterion) {
    let clock = SystemClock::process();
    let snap = snapshot();
    c.bench_function("route_lookup_param_exact_host", |b| {
        b.iter(|| snap.table.lookup(black_box(Some("api.example.com")), &http::Method::GET, black_box("/v1/orders/42")))
    });
    c.bench_function("route_lookup_catch_all", |b| {
        b.iter(|| snap.table.lookup(black_box(None), &http::Method::GET, black_box("/static/js/app.js")))
    });
    let downstream = Downstream { peer: ([127, 0, 0, 1], 40000).into(), https: false, listener: "l".into(), tls: None };
    let template = request();
    c.bench_function("pipeline_intake_and_stages", |b| {
        b.iter_batched(
            || copy(&template),
            |mut parts| {
                let mut ctx = pipeline::intake(&snap, &parts, &downstream, Now::read(&clock));
                let decision =
                    pipeline::on_request(&snap, &portcullis_core::stage::AuthSources::default(), &mut parts, &mut ctx);
                let flow = forward(&snap, decision, &mut parts, &ctx);
                black_box((flow, parts))
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

const JWT_CONFIG: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
auth:
  corp: { type: jwt, issuer: "https://idp.example.com", audiences: [api], algorithms: [RS256], forward_claims: { email: X-Email } }
policies:
  read: { scopes: [orders.read] }
upstreams: { up: { targets: ["http://127.0.0.1:9000"] } }
routes:
  - { name: orders, match: { host: api.example.com, path: "/v1/orders/{id}", methods: [GET] }, upstream: up, auth: { any: [corp] }, policy: read, rewrite: { path: "/orders/{id}" } }
"#;

/// Test-only key (the e2e IdP fixture).
const RSA_PEM: &str = include_str!("../../portcullis/tests/e2e/fixtures/idp-rsa1.pem");

struct NoEvents;
impl portcullis_auth::jwt::RefreshEvents for NoEvents {
    fn refreshed(&self, _: &str, _: &'static str) {}
}

fn jwt_benches(c: &mut Criterion) {
    use std::sync::Arc;

    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    use portcullis_auth::jwt::{JwtProvider, StaticJwksSource};
    use portcullis_core::snapshot::ProviderKind;

    let loaded = portcullis_config::load_str(JWT_CONFIG, "bench.yaml", Path::new("/tmp"), None);
    let snap = portcullis_core::compile(&loaded.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap_or_else(|e| panic!("{e}"));
    jwk.common.key_id = Some("k1".into());
    let jwks = bytes::Bytes::from(serde_json::json!({ "keys": [jwk] }).to_string());
    let ProviderKind::Jwt(spec) = &snap.providers[0].kind else { panic!("a jwt provider") };
    let provider =
        JwtProvider::new(spec.settings.clone(), Arc::new(StaticJwksSource(jwks.clone())), Arc::new(NoEvents));
    provider.load_jwks(jwks).unwrap_or_else(|e| panic!("{e}"));
    let live = vec![Some(provider)];
    let sources = portcullis_core::stage::AuthSources { jwt: &live, keys: None };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({
        "iss": "https://idp.example.com", "aud": "api", "sub": "alice", "email": "alice@example.com",
        "scope": "orders.read", "exp": 4_000_000_000u64
    });
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"));
    let mut template = request();
    template.headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap_or_else(|e| panic!("{e}")),
    );
    let downstream = Downstream { peer: ([127, 0, 0, 1], 40000).into(), https: false, listener: "l".into(), tls: None };
    let clock = SystemClock::process();
    c.bench_function("pipeline_with_jwt_auth_and_scope_policy_cached", |b| {
        b.iter_batched(
            || copy(&template),
            |mut parts| {
                let mut ctx = pipeline::intake(&snap, &parts, &downstream, Now::read(&clock));
                let decision = pipeline::on_request(&snap, &sources, &mut parts, &mut ctx);
                let flow = forward(&snap, decision, &mut parts, &ctx);
                assert!(matches!(flow, portcullis_core::Flow::Continue));
                black_box((flow, parts))
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

/// The bench config with the `orders` route under a CORS policy (two exact origins and a
/// label wildcard, credentials, exposed headers): what a browser-facing API has.
fn cors_config() -> String {
    CONFIG.replace("rewrite: { path: \"/orders/{id}\" } }", "rewrite: { path: \"/orders/{id}\" }, cors: portal }")
        + r#"cors:
  portal:
    origins: ["https://portal.example.com", "https://admin.example.com", "https://*.apps.example.com"]
    methods: [GET, POST, PUT]
    headers: [Authorization, Content-Type]
    credentials: true
    expose_headers: [X-Order-Version]
    max_age: 10m
"#
}

/// The upstream's answer as the response phases get it.
fn upstream_head() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static("512"));
    h.insert(http::header::DATE, http::HeaderValue::from_static("Mon, 07 Dec 2026 08:00:00 GMT"));
    h.insert(http::header::SERVER, http::HeaderValue::from_static("orders/1.0"));
    h
}

/// One actual request through the request phases, the transform and the response-side work
/// the pipeline does for every forwarded answer (hop-by-hop strip, `X-Request-Id`, and — on
/// a CORS route — the policy's headers), without sockets.
fn actual_request(
    snap: &portcullis_core::Snapshot,
    template: &http::request::Parts,
    response: &http::HeaderMap,
    downstream: &Downstream,
    clock: &SystemClock,
) -> (http::HeaderMap, portcullis_core::Flow) {
    let mut parts = copy(template);
    let mut ctx = pipeline::intake(snap, &parts, downstream, Now::read(clock));
    let decision = pipeline::on_request(snap, &portcullis_core::stage::AuthSources::default(), &mut parts, &mut ctx);
    let flow = forward(snap, decision, &mut parts, &ctx);
    let mut headers = response.clone();
    portcullis_core::headers::strip_hop_by_hop(&mut headers);
    headers.insert(portcullis_core::headers::X_REQUEST_ID, ctx.request_id.clone());
    if let (Some(policy), portcullis_core::cors::CorsOutcome::Allowed(origin)) =
        (ctx.route.as_ref().and_then(|r| r.cors.as_ref()), &ctx.cors)
    {
        policy.annotate(&mut headers, Some(origin), true);
    }
    (headers, flow)
}

/// CORS on an actual request against the same request without it: the plain route and no
/// `Origin`, then the CORS route with an allowed `Origin` (matched by the label wildcard, the
/// last pattern tried).
fn cors_benches(c: &mut Criterion) {
    let clock = SystemClock::process();
    let downstream = Downstream { peer: ([127, 0, 0, 1], 40000).into(), https: false, listener: "l".into(), tls: None };
    let response = upstream_head();
    let plain = snapshot();
    let loaded = portcullis_config::load_str(&cors_config(), "bench.yaml", Path::new("/tmp"), None);
    let with_cors =
        portcullis_core::compile(&loaded.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let template = request();
    let mut from_app = request();
    from_app.headers.insert(http::header::ORIGIN, http::HeaderValue::from_static("https://x1.apps.example.com"));
    // Both must forward, and only the second carry the policy's headers.
    let (h, flow) = actual_request(&plain, &template, &response, &downstream, &clock);
    assert!(matches!(flow, portcullis_core::Flow::Continue) && !h.contains_key("access-control-allow-origin"));
    let (h, flow) = actual_request(&with_cors, &from_app, &response, &downstream, &clock);
    assert!(
        matches!(flow, portcullis_core::Flow::Continue)
            && h["access-control-allow-origin"] == "https://x1.apps.example.com"
    );
    let mut group = c.benchmark_group("cors_actual_request");
    group.bench_function("plain_route_no_origin", |b| {
        b.iter(|| black_box(actual_request(&plain, black_box(&template), &response, &downstream, &clock)))
    });
    group.bench_function("cors_route_allowed_origin", |b| {
        b.iter(|| black_box(actual_request(&with_cors, black_box(&from_app), &response, &downstream, &clock)))
    });
    group.bench_function("cors_route_no_origin", |b| {
        b.iter(|| black_box(actual_request(&with_cors, black_box(&template), &response, &downstream, &clock)))
    });
    group.finish();
}

criterion_group!(pipeline_benches, benches, jwt_benches, cors_benches);
criterion_main!(pipeline_benches);
