//! The body of the `policy` fuzz target, shared with the stable test that replays it
//! (`crates/portcullis-auth/tests/fuzz_bodies.rs`), so CI runs it without nightly.
//!
//! Any text as a policy's CEL expression: `Policy::compile` returns a diagnostic or a policy,
//! and a policy is evaluated against a fixed request with JWT claims and against the same
//! request made anonymously. Never a panic, and the same decision every time it is asked.

use std::sync::LazyLock;

use portcullis_auth::policy::{Decision, Policy, PolicyInput};
use serde_json::{Map, Value, json};

/// Inputs past this are not tried: the compiler refuses expressions over 4 KiB unparsed, and
/// a little past the limit is enough to reach that refusal.
const MAX_INPUT: usize = 5 * 1024;

static HEADERS: LazyLock<http::HeaderMap> = LazyLock::new(|| {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("authorization", "Bearer secret"),
        ("cookie", "session=secret"),
        ("x-tenant", "acme"),
        ("accept", "application/json"),
    ] {
        headers.append(http::HeaderName::from_static(name), http::HeaderValue::from_static(value));
    }
    headers
});

static CLAIMS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let claims = json!({
        "iss": "https://idp.fuzz/tenant", "sub": "alice", "aud": ["api://orders", "api://admin"],
        "exp": 4_102_444_800_u64, "scope": "orders:read orders:write", "roles": ["admin", "ops"],
        "email_verified": true, "tenant": { "id": 7, "name": "acme" }, "ratio": 0.5, "nothing": null,
    });
    match claims {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
});

static SCOPES: LazyLock<Vec<String>> = LazyLock::new(|| vec!["orders:read".to_owned(), "orders:write".to_owned()]);

fn input(claims: Option<&'static Map<String, Value>>) -> PolicyInput<'static> {
    PolicyInput {
        method: "POST",
        path: "/v1/orders/42",
        host: Some("api.example.com"),
        query: Some("limit=10&sort=desc&limit=20"),
        headers: &HEADERS,
        client_ip: std::net::IpAddr::from([203, 0, 113, 9]),
        claims,
        scopes: if claims.is_some() { &SCOPES } else { &[] },
        consumer: claims.map(|_| "alice"),
        plan: claims.map(|_| "gold"),
        provider: claims.map(|_| "corp"),
        route: "orders",
    }
}

pub(crate) fn run(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let expr = String::from_utf8_lossy(data);
    let Ok(policy) = Policy::compile("fuzz", Vec::new(), Vec::new(), Some(&expr)) else { return };
    for claims in [Some(&*CLAIMS), None] {
        let input = input(claims);
        let decision = policy.evaluate(&input);
        // No scopes are required, so the only refusal a CEL policy gives is `Forbidden`.
        assert!(matches!(decision, Decision::Allow | Decision::Forbidden), "{decision:?} for {expr:?}");
        assert_eq!(policy.evaluate(&input), decision, "a second evaluation of {expr:?} changed its mind");
    }
}
