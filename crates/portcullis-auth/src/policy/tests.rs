use std::net::Ipv4Addr;

use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

/// Owned request parts that a test tweaks before borrowing them as a `PolicyInput`.
struct Req {
    method: &'static str,
    query: Option<&'static str>,
    headers: HeaderMap,
    claims: Option<serde_json::Map<String, Json>>,
    scopes: Vec<String>,
    consumer: Option<&'static str>,
    plan: Option<&'static str>,
    provider: Option<&'static str>,
}

impl Req {
    fn new() -> Req {
        Req {
            method: "GET",
            query: None,
            headers: HeaderMap::new(),
            claims: None,
            scopes: Vec::new(),
            consumer: None,
            plan: None,
            provider: None,
        }
    }

    fn claims(mut self, claims: Json) -> Req {
        let Json::Object(map) = claims else { panic!("claims must be an object") };
        self.claims = Some(map);
        self
    }

    fn scopes(mut self, scopes: &[&str]) -> Req {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Req {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn input(&self) -> PolicyInput<'_> {
        PolicyInput {
            method: self.method,
            path: "/v1/orders",
            host: Some("api.example.com"),
            query: self.query,
            headers: &self.headers,
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            claims: self.claims.as_ref(),
            scopes: &self.scopes,
            consumer: self.consumer,
            plan: self.plan,
            provider: self.provider,
            route: "list-orders",
        }
    }
}

fn scopes_policy(scopes: &[&str]) -> Policy {
    let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    Policy::compile("p", scopes, Vec::new(), None).expect("compiles")
}

fn claim_policy(claim: &str, values: Vec<Json>) -> Policy {
    Policy::compile("p", Vec::new(), vec![(claim.to_owned(), values)], None).expect("compiles")
}

fn cel(expr: &str) -> Policy {
    Policy::compile("p", Vec::new(), Vec::new(), Some(expr)).expect("compiles")
}

fn decide(policy: &Policy, req: &Req) -> Decision {
    policy.evaluate(&req.input())
}

#[test]
fn granted_scopes_allow() {
    let policy = scopes_policy(&["orders.read", "orders.write"]);
    // The authentication stage extracts both `scope: "a b"` and `scp: [a, b]` into one list.
    let req = Req::new().scopes(&["profile", "orders.write", "orders.read"]);
    assert_eq!(decide(&policy, &req), Decision::Allow);
}

#[test]
fn scope_string_and_scp_array_both_grant() {
    let policy = scopes_policy(&["orders.read"]);
    let from = |claims: Json| {
        let Json::Object(map) = claims else { panic!("object") };
        Req::new().scopes(&granted_scopes(&map).iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(decide(&policy, &from(json!({"scope": "openid orders.read"}))), Decision::Allow);
    assert_eq!(decide(&policy, &from(json!({"scp": ["orders.read"]}))), Decision::Allow);
    assert_eq!(decide(&policy, &from(json!({"scp": "profile orders.read"}))), Decision::Allow);
    let missing = Decision::InsufficientScope { missing: "orders.read".into() };
    assert_eq!(decide(&policy, &from(json!({"scope": "orders.write"}))), missing);
    assert_eq!(decide(&policy, &from(json!({"scp": ["orders.write"]}))), missing);
    assert_eq!(decide(&policy, &from(json!({"scope": ["orders.read"]}))), Decision::Allow);
    assert_eq!(decide(&policy, &from(json!({"scope": 7}))), missing);
}

#[test]
fn missing_scope_is_insufficient_scope_naming_the_first_missing() {
    let policy = scopes_policy(&["orders.read", "orders.write", "orders.admin"]);
    let req = Req::new().scopes(&["orders.read"]);
    assert_eq!(decide(&policy, &req), Decision::InsufficientScope { missing: "orders.write".into() });
    assert_eq!(decide(&policy, &Req::new()), Decision::InsufficientScope { missing: "orders.read".into() });
}

#[test]
fn scope_check_is_exact_not_a_prefix() {
    let policy = scopes_policy(&["orders.read"]);
    let req = Req::new().scopes(&["orders.readonly", "orders"]);
    assert_eq!(decide(&policy, &req), Decision::InsufficientScope { missing: "orders.read".into() });
}

#[test]
fn claim_equal_to_an_accepted_value_allows() {
    let policy = claim_policy("tid", vec![json!("acme"), json!("globex")]);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"tid": "globex"}))), Decision::Allow);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"tid": "initech"}))), Decision::Forbidden);
}

#[test]
fn array_claim_containing_an_accepted_value_allows() {
    let policy = claim_policy("groups", vec![json!("ops-admins")]);
    let member = Req::new().claims(json!({"groups": ["dev", "ops-admins"]}));
    assert_eq!(decide(&policy, &member), Decision::Allow);
    let other = Req::new().claims(json!({"groups": ["dev"]}));
    assert_eq!(decide(&policy, &other), Decision::Forbidden);
}

#[test]
fn absent_claim_or_other_type_or_no_token_is_forbidden() {
    let policy = claim_policy("level", vec![json!(3)]);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"level": 3}))), Decision::Allow);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"level": "3"}))), Decision::Forbidden);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"level": {"n": 3}}))), Decision::Forbidden);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"other": 3}))), Decision::Forbidden);
    assert_eq!(decide(&policy, &Req::new()), Decision::Forbidden);
}

#[test]
fn scopes_are_checked_before_claims() {
    let policy = Policy::compile("p", vec!["orders.read".into()], vec![("sub".into(), vec![json!("alice")])], None)
        .expect("compiles");
    let req = Req::new().claims(json!({"sub": "bob"}));
    assert_eq!(decide(&policy, &req), Decision::InsufficientScope { missing: "orders.read".into() });
}

#[test]
fn spec_example_gold_reads() {
    let policy = cel("consumer.plan == 'gold' && request.method in ['GET', 'HEAD']");
    let mut req = Req::new();
    req.consumer = Some("acme");
    req.plan = Some("gold");
    assert_eq!(decide(&policy, &req), Decision::Allow);
    req.method = "HEAD";
    assert_eq!(decide(&policy, &req), Decision::Allow);
    req.method = "POST";
    assert_eq!(decide(&policy, &req), Decision::Forbidden);
    req.method = "GET";
    req.plan = Some("bronze");
    assert_eq!(decide(&policy, &req), Decision::Forbidden);
}

#[test]
fn no_consumer_makes_plan_comparison_false_not_an_error() {
    // `!(…)` turns a false comparison into Allow, so an evaluation error (Forbidden) shows.
    let policy = cel("!(consumer.plan == 'gold') && consumer.name == null");
    assert_eq!(decide(&policy, &Req::new()), Decision::Allow);
}

#[test]
fn claims_membership_and_equality() {
    let policy = cel("'ops' in claims.groups && claims.sub == 'alice'");
    let alice = Req::new().claims(json!({"sub": "alice", "groups": ["dev", "ops"]}));
    assert_eq!(decide(&policy, &alice), Decision::Allow);
    let bob = Req::new().claims(json!({"sub": "bob", "groups": ["ops"]}));
    assert_eq!(decide(&policy, &bob), Decision::Forbidden);
    let not_ops = Req::new().claims(json!({"sub": "alice", "groups": ["dev"]}));
    assert_eq!(decide(&policy, &not_ops), Decision::Forbidden);
}

#[test]
fn token_is_the_same_map_as_claims() {
    let policy = cel("token.sub == 'alice' && token == claims");
    assert_eq!(decide(&policy, &Req::new().claims(json!({"sub": "alice"}))), Decision::Allow);
}

#[test]
fn header_compared_with_a_claim() {
    let policy = cel("request.headers['x-tenant'] == claims.tid");
    let same = Req::new().header("x-tenant", "acme").claims(json!({"tid": "acme"}));
    assert_eq!(decide(&policy, &same), Decision::Allow);
    let other = Req::new().header("x-tenant", "globex").claims(json!({"tid": "acme"}));
    assert_eq!(decide(&policy, &other), Decision::Forbidden);
}

#[test]
fn headers_keep_the_first_value_under_a_lowercase_name() {
    let policy = cel("request.headers['x-tenant'] == 'acme'");
    let req = Req::new().header("X-Tenant", "acme").header("x-tenant", "globex");
    assert_eq!(decide(&policy, &req), Decision::Allow);
}

#[test]
fn credential_headers_are_not_visible() {
    let req = Req::new()
        .header("authorization", "Bearer secret")
        .header("cookie", "session=secret")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-visible", "yes");
    for name in ["authorization", "cookie", "proxy-authorization"] {
        let policy = cel(&format!("!('{name}' in request.headers)"));
        assert_eq!(decide(&policy, &req), Decision::Allow, "{name} must be hidden");
        // Reading it directly is a missing key: an error, so Forbidden.
        let read = cel(&format!("request.headers['{name}'] != ''"));
        assert_eq!(decide(&read, &req), Decision::Forbidden, "{name} must be hidden");
    }
    assert_eq!(decide(&cel("request.headers['x-visible'] == 'yes'"), &req), Decision::Allow);
    assert_eq!(decide(&cel("size(request.headers) == 1"), &req), Decision::Allow);
}

#[test]
fn query_is_percent_decoded_first_value() {
    let policy = cel("request.query['q'] == 'a b/c' && request.query.tag == 'x'");
    let mut req = Req::new();
    req.query = Some("q=a%20b%2Fc&tag=x&tag=y");
    assert_eq!(decide(&policy, &req), Decision::Allow);
}

#[test]
fn request_route_and_provider_fields() {
    let policy = cel("request.path == '/v1/orders' && request.host == 'api.example.com' \
         && request.client_ip == '192.0.2.7' && route.name == 'list-orders' && provider == 'corp'");
    let mut req = Req::new();
    req.provider = Some("corp");
    assert_eq!(decide(&policy, &req), Decision::Allow);
    req.provider = None;
    assert_eq!(decide(&policy, &req), Decision::Forbidden);
    assert_eq!(decide(&cel("provider == null && size(claims) == 0"), &req), Decision::Allow);
}

#[test]
fn request_used_whole_has_every_field() {
    let mut req = Req::new().header("x-a", "1");
    req.query = Some("a=1");
    let whole = cel("size(request) == 6 && request.headers['x-a'] == '1' && request['query'].a == '1'");
    assert_eq!(decide(&whole, &req), Decision::Allow);
    let fields = cel("[request][0].method == 'GET' && request.client_ip.startsWith('192.')");
    assert_eq!(decide(&fields, &req), Decision::Allow);
    let has = cel("has(request.host) && !has(request.nope) && 'method' in request");
    assert_eq!(decide(&has, &req), Decision::Allow);
}

#[test]
fn non_boolean_result_is_forbidden() {
    for expr in ["'yes'", "1", "request.method", "claims", "null"] {
        assert_eq!(decide(&cel(expr), &Req::new()), Decision::Forbidden, "{expr}");
    }
}

#[test]
fn evaluation_error_is_forbidden() {
    // A missing key, a type mismatch and a division by zero all fail closed.
    for expr in ["claims.sub == 'alice'", "request.method > 1", "1 / 0 == 1", "request.nope == 1"] {
        assert_eq!(decide(&cel(expr), &Req::new()), Decision::Forbidden, "{expr}");
    }
}

#[test]
fn bad_cel_is_a_policy_error_with_its_position() {
    let err = Policy::compile("gold", Vec::new(), Vec::new(), Some("consumer.plan ==")).expect_err("bad");
    assert!(err.message.contains("policy `gold`"), "{}", err.message);
    assert_eq!((err.line, err.column), (Some(1), Some(17)));
    let err = Policy::compile("gold", Vec::new(), Vec::new(), Some("true &&\n  (1 +)")).expect_err("bad");
    assert_eq!((err.line, err.column), (Some(2), Some(7)));
}

#[test]
fn policies_that_could_never_or_always_match_do_not_compile() {
    assert!(Policy::compile("p", vec!["a b".into()], Vec::new(), None).is_err());
    assert!(Policy::compile("p", vec![String::new()], Vec::new(), None).is_err());
    assert!(Policy::compile("p", Vec::new(), vec![("sub".into(), Vec::new())], None).is_err());
    assert!(Policy::compile("p", Vec::new(), Vec::new(), None).is_err());
}

#[test]
fn policy_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}
    assert_send_sync::<Policy>();
}

#[test]
fn unknown_variable_is_a_policy_error_but_comprehension_names_are_not() {
    let err = Policy::compile("p", Vec::new(), Vec::new(), Some("reqeust.method == 'GET'")).expect_err("typo");
    assert!(err.message.contains("`reqeust`"), "{}", err.message);
    let policy = cel("claims.groups.exists(g, g == 'ops') && claims.groups.all(x, type(x) == string)");
    assert_eq!(decide(&policy, &Req::new().claims(json!({"groups": ["ops", "dev"]}))), Decision::Allow);
    assert_eq!(decide(&policy, &Req::new().claims(json!({"groups": ["dev"]}))), Decision::Forbidden);
}

#[test]
fn overlong_or_deeply_nested_expressions_do_not_compile() {
    // Unchecked, 20 000 terms overflow the stack in the CEL parser and abort the process.
    let long = format!("1{} == 1", " + 1".repeat(20_000));
    let err = Policy::compile("p", Vec::new(), Vec::new(), Some(&long)).expect_err("too long");
    assert!(err.message.contains("4096"), "{}", err.message);
    let deep = format!("1{} == 1", " + 1".repeat(200));
    let err = Policy::compile("p", Vec::new(), Vec::new(), Some(&deep)).expect_err("too deep");
    assert!(err.message.contains("nested"), "{}", err.message);
    // Within both limits, the worst cases at the length limit compile (or fail to parse) cleanly.
    let nots = format!("{}true", "!".repeat(4000));
    assert!(Policy::compile("p", Vec::new(), Vec::new(), Some(&nots)).is_ok());
    let lists = format!("{}1{} == 1", "[".repeat(2000), "]".repeat(2000));
    assert!(Policy::compile("p", Vec::new(), Vec::new(), Some(&lists)).is_err());
    let ands = format!("true{}", " && true".repeat(60));
    assert_eq!(decide(&cel(&ands), &Req::new()), Decision::Allow);
}
