//! Usage plans (SPEC §2 `plans`, §3): a consumer's plan applies on top of every route it
//! calls — its rate with its burst, and its quota per UTC day or month, counted on accepted
//! requests, persisted to the database so a restart does not reset it, and reported by
//! `GET /consumers/{name}/usage`. Also: a cached response is never served to another consumer.

use std::path::Path;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::kit::{Backend, TestGateway, client, eventually, get, scratch_dir, send};
use crate::reload::write_config;

const TOKEN: &str = "plans-admin-token";

fn stored(key: &str) -> String {
    portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(key.as_bytes()))
}

fn config(backend: &Backend) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }} }}
auth: {{ keys: {{ type: api_key, header: X-Api-Key }} }}
plans:
  bronze: {{ rate: 2/m, burst: 2 }}
  tiny: {{ quota: 3/day }}
  gold: {{ rate: 1000/s }}
consumers:
  slow: {{ plan: bronze, keys: ["{slow}"] }}
  capped: {{ plan: tiny, keys: ["{capped}"] }}
  rich: {{ plan: gold, keys: ["{rich}"] }}
  other: {{ plan: gold, keys: ["{other}"] }}
upstreams: {{ b: {{ targets: ["{backend}"] }} }}
routes:
  - {{ name: api, match: {{ path: /api }}, upstream: b, auth: {{ any: [keys] }} }}
  - {{ name: cached, match: {{ path: /cached }}, upstream: b, auth: {{ any: [keys] }}, cache: {{ ttl: 30s }} }}
"#,
        slow = stored("pcl_slow"),
        capped = stored("pcl_capped"),
        rich = stored("pcl_rich"),
        other = stored("pcl_other"),
        backend = backend.url()
    )
}

/// Answers with the consumer the gateway named, so a test can tell whose answer it got.
async fn backend() -> Backend {
    Backend::start(|r| {
        let who = r.headers.get("x-consumer").and_then(|v| v.to_str().ok()).unwrap_or("nobody").to_owned();
        let mut resp = Response::new(Full::new(Bytes::from(format!("for {who}"))));
        resp.headers_mut().insert("cache-control", http::HeaderValue::from_static("max-age=60"));
        resp
    })
    .await
}

async fn start(dir: &Path, backend: &Backend) -> TestGateway {
    let path = write_config(dir, &config(backend));
    TestGateway::from_file(&path).await.with_admin().await
}

async fn as_key(gw: &TestGateway, path: &str, key: &str) -> crate::kit::Reply {
    get(&gw.url(path), &[("x-api-key", key)]).await
}

async fn usage(gw: &TestGateway, name: &str) -> Value {
    let request = http::Request::get(gw.admin_url(&format!("/consumers/{name}/usage")))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let r = send(&client(), request).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plans_rate_applies_on_top_of_a_route_without_limits_per_consumer() {
    let b = backend().await;
    let gw = start(&scratch_dir(), &b).await;
    assert_eq!(as_key(&gw, "/api", "pcl_slow").await.status, 200);
    let second = as_key(&gw, "/api", "pcl_slow").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("ratelimit-limit"), Some("2"), "the plan's burst");
    let third = as_key(&gw, "/api", "pcl_slow").await;
    assert_eq!((third.status, third.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_owned()));
    assert!(third.header("retry-after").is_some());
    // Another consumer is not slowed by this one.
    for _ in 0..5 {
        assert_eq!(as_key(&gw, "/api", "pcl_rich").await.status, 200);
    }
    let text = gw.handle.metrics().render(&*gw.handle.current());
    assert!(text.contains(r#"portcullis_rate_limited_total{route="api",limit="plan:bronze"} 1"#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refuses_when_used_up_reports_usage_and_survives_a_restart() {
    let b = backend().await;
    let dir = scratch_dir();
    let gw = start(&dir, &b).await;
    for _ in 0..2 {
        assert_eq!(as_key(&gw, "/api", "pcl_capped").await.status, 200);
    }
    let u = usage(&gw, "capped").await;
    assert_eq!(u["plan"], "tiny");
    assert_eq!((u["quota"]["period"].clone(), u["quota"]["limit"].clone()), ("day".into(), 3.into()));
    assert_eq!((u["quota"]["used"].clone(), u["quota"]["remaining"].clone()), (2.into(), 1.into()));
    assert!(u["quota"]["resets_at"].as_str().is_some_and(|t| t.ends_with("T00:00:00Z")), "{u}");
    // Written to the database within 5 s, without a shutdown.
    let db = portcullis_store::Store::connect("sqlite://portcullis.db", &dir).await.expect("open the database");
    eventually("the usage row", || async {
        let rows = db.load_usage().await.unwrap_or_default();
        rows.iter().any(|(c, _, used)| c == "capped" && *used == 2).then_some(())
    })
    .await;
    gw.shutdown().await;

    let gw = start(&dir, &b).await;
    assert_eq!(usage(&gw, "capped").await["quota"]["used"], 2, "the restart kept the count");
    assert_eq!(as_key(&gw, "/api", "pcl_capped").await.status, 200);
    let refused = as_key(&gw, "/api", "pcl_capped").await;
    assert_eq!((refused.status, refused.code()), (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded".to_owned()));
    let retry: u64 = refused.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=86_400).contains(&retry), "until the next UTC midnight: {retry}");
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    assert_eq!(b.count(), 3, "the refused request never reached the backend");
    let text = gw.handle.metrics().render(&*gw.handle.current());
    assert!(text.contains(r#"portcullis_plan_requests_total{plan="tiny"} 1"#), "one admitted, one refused:\n{text}");
    let u = usage(&gw, "capped").await;
    assert_eq!((u["quota"]["used"].clone(), u["quota"]["remaining"].clone()), (3.into(), 0.into()));
    // A consumer without a quota reports none; an unknown one is 404.
    assert_eq!(usage(&gw, "rich").await["quota"], Value::Null);
    let request = http::Request::get(gw.admin_url("/consumers/ghost/usage"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(send(&client(), request).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_response_is_never_served_to_another_consumer() {
    let b = backend().await;
    let gw = start(&scratch_dir(), &b).await;
    let first = as_key(&gw, "/cached", "pcl_rich").await;
    assert_eq!((first.header("x-cache"), first.text()), (Some("MISS"), "for rich".to_owned()));
    let again = as_key(&gw, "/cached", "pcl_rich").await;
    assert_eq!((again.header("x-cache"), again.text()), (Some("HIT"), "for rich".to_owned()));
    let other = as_key(&gw, "/cached", "pcl_other").await;
    assert_eq!((other.header("x-cache"), other.text()), (Some("MISS"), "for other".to_owned()));
    let unauthenticated = get(&gw.url("/cached"), &[]).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED, "no cache answer before authentication");
    assert_eq!(b.count(), 2);
}
