//! The decision trace on the wire: a refusal names the phase and the policy, limit or
//! provider that refused — in the problem document's `decided_by` and in the access log's —
//! and a forwarded request has none.

use http::StatusCode;

use crate::access_log::wait_for_lines;
use crate::kit::{Backend, TestGateway, get};

fn config(backend: &str) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: l, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
auth:
  partners: {{ type: api_key, header: X-Api-Key }}
policies:
  admins_only: {{ expr: "request.headers['x-role'] == 'admin'" }}
rate_limits:
  one_only: {{ rate: 1/m, burst: 1, key: client_ip }}
upstreams:
  up: {{ targets: ["{backend}"] }}
routes:
  - {{ name: guarded, match: {{ path: /guarded }}, upstream: up, auth: none, policy: admins_only }}
  - {{ name: limited, match: {{ path: /limited }}, upstream: up, auth: none, rate_limits: [one_only] }}
  - {{ name: keyed, match: {{ path: /keyed }}, upstream: up, auth: {{ any: [partners] }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_the_policy_limit_or_provider_that_decided_it() {
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&backend.url())).await;

    let policy = get(&gw.url("/guarded"), &[("x-role", "guest")]).await;
    assert_eq!(policy.status, StatusCode::FORBIDDEN);
    assert_eq!(policy.json()["decided_by"], "authorize:admins_only", "{}", policy.text());
    assert!(policy.json()["detail"].as_str().is_some_and(|d| d.contains("admins_only")), "{}", policy.text());

    assert_eq!(get(&gw.url("/limited"), &[]).await.status, StatusCode::OK);
    let limit = get(&gw.url("/limited"), &[]).await;
    assert_eq!(limit.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limit.json()["decided_by"], "rate_limit:one_only", "{}", limit.text());

    let key = get(&gw.url("/keyed"), &[("x-api-key", "pcl_not_a_key")]).await;
    assert_eq!(key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(key.json()["decided_by"], "authenticate:partners", "{}", key.text());

    let admitted = get(&gw.url("/guarded"), &[("x-role", "admin")]).await;
    assert_eq!(admitted.status, StatusCode::OK);

    // Lines are written as answers finish, which need not be the order requests were sent in.
    let lines = wait_for_lines(&gw, 5).await;
    let mut decided: Vec<(String, serde_json::Value)> = lines
        .iter()
        .map(|l| {
            let v = serde_json::from_str::<serde_json::Value>(l).unwrap_or_default();
            (v["path"].as_str().unwrap_or_default().to_owned(), v["decided_by"].clone())
        })
        .collect();
    decided.sort_by_key(|(path, by)| (path.clone(), by.to_string()));
    let expected = [
        ("/guarded", serde_json::json!("authorize:admins_only")),
        ("/guarded", serde_json::Value::Null),
        ("/keyed", serde_json::json!("authenticate:partners")),
        ("/limited", serde_json::json!("rate_limit:one_only")),
        ("/limited", serde_json::Value::Null),
    ]
    .map(|(p, v)| (p.to_owned(), v));
    assert_eq!(decided, expected, "{lines:#?}");
    assert_eq!(backend.count(), 2, "only the admitted requests reached the backend");
    gw.shutdown().await;
}
