//! Policy decisions on the request path: a scope check, a claim rule, and the SPEC example CEL
//! expression (`consumer.plan == 'gold' && request.method in ['GET', 'HEAD']`), the latter with
//! a realistic set of request headers, and one expression that reads a header (the costliest
//! variable to build).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use portcullis_auth::policy::{Decision, Policy, PolicyInput};
use serde_json::json;

fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"),
        ("x-request-id", "01HZX3K4Q5R6S7T8V9W0XYZ123"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("x-tenant", "acme"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

fn bench(c: &mut Criterion) {
    let headers = headers();
    let claims = match json!({"sub": "alice", "tid": "acme", "groups": ["dev", "ops"], "scope": "orders.read"}) {
        serde_json::Value::Object(map) => map,
        _ => return,
    };
    let scopes = vec!["openid".to_owned(), "profile".to_owned(), "orders.read".to_owned()];
    let input = PolicyInput {
        method: "GET",
        path: "/v1/orders",
        host: Some("api.example.com"),
        query: Some("page=2&sort=desc"),
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        claims: Some(&claims),
        scopes: &scopes,
        consumer: Some("acme"),
        plan: Some("gold"),
        provider: Some("corp"),
        route: "list-orders",
    };
    let compile =
        |scopes: Vec<String>, claims, expr| Policy::compile("bench", scopes, claims, expr).expect("valid policy");

    let scope = compile(vec!["orders.read".to_owned()], Vec::new(), None);
    assert_eq!(scope.evaluate(&input), Decision::Allow);
    c.bench_function("policy/scope", |b| b.iter(|| black_box(scope.evaluate(black_box(&input)))));

    let claim = compile(Vec::new(), vec![("groups".to_owned(), vec![json!("ops")])], None);
    assert_eq!(claim.evaluate(&input), Decision::Allow);
    c.bench_function("policy/claim_contains", |b| b.iter(|| black_box(claim.evaluate(black_box(&input)))));

    let spec = compile(Vec::new(), Vec::new(), Some("consumer.plan == 'gold' && request.method in ['GET', 'HEAD']"));
    assert_eq!(spec.evaluate(&input), Decision::Allow);
    c.bench_function("policy/cel_spec_example", |b| b.iter(|| black_box(spec.evaluate(black_box(&input)))));

    let claims_only = compile(Vec::new(), Vec::new(), Some("'ops' in claims.groups && claims.sub == 'alice'"));
    assert_eq!(claims_only.evaluate(&input), Decision::Allow);
    c.bench_function("policy/cel_claims", |b| b.iter(|| black_box(claims_only.evaluate(black_box(&input)))));
}

fn bench_headers(c: &mut Criterion) {
    let headers = headers();
    let claims = match json!({"sub": "alice", "tid": "acme"}) {
        serde_json::Value::Object(map) => map,
        _ => return,
    };
    let input = PolicyInput {
        method: "GET",
        path: "/v1/orders",
        host: Some("api.example.com"),
        query: None,
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        claims: Some(&claims),
        scopes: &[],
        consumer: None,
        plan: None,
        provider: Some("corp"),
        route: "list-orders",
    };
    // The costliest variable: `request.headers` builds a map of every non-credential header.
    let expr = "request.headers['x-tenant'] == claims.tid";
    let policy = Policy::compile("bench", Vec::new(), Vec::new(), Some(expr)).expect("valid policy");
    assert_eq!(policy.evaluate(&input), Decision::Allow);
    c.bench_function("policy/cel_header_vs_claim", |b| b.iter(|| black_box(policy.evaluate(black_box(&input)))));
}

criterion_group!(benches, bench, bench_headers);
criterion_main!(benches);
