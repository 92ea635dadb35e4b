//! The response cache (SPEC §3 "Caching"): MISS then HIT with one upstream request, TTL expiry,
//! upstream `no-store`/`private`/non-200/`Set-Cookie` not stored, query order ignored, HEAD
//! served from the GET entry, credentials the gateway did not check bypassing, large bodies
//! streamed but not stored, purge through the admin API and the metric; with `state.redis`,
//! entries shared by two gateways (with a TTL in Redis, purged for both at once) and a Redis
//! that stops turning lookups into misses until it returns.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use crate::kit::{Backend, Recorded, TestGateway, client, get, scratch_dir, send};
use crate::rate_limits::{OwnRedis, redis_url, unique};
use crate::reload::{TOKEN, metric, write_config};

const BIG: usize = 2 * 1024 * 1024;

fn answer(r: &Recorded) -> Response<Full<Bytes>> {
    let path = r.uri.split('?').next().unwrap_or_default().to_owned();
    let body = if path == "/big" { Bytes::from(vec![b'x'; BIG]) } else { Bytes::from(format!("n{path}")) };
    let mut resp = Response::new(Full::new(body));
    let headers = resp.headers_mut();
    match path.as_str() {
        "/no-store" => drop(headers.insert("cache-control", "no-store".parse().expect("value"))),
        "/private" => drop(headers.insert("cache-control", "private, max-age=60".parse().expect("value"))),
        "/cookie" => drop(headers.insert("set-cookie", "s=1".parse().expect("value"))),
        "/missing" => *resp.status_mut() = StatusCode::NOT_FOUND,
        _ => {}
    }
    resp
}

async fn start(backend: &Backend) -> TestGateway {
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }}, audit: {{ path: audit.jsonl }} }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: short, match: {{ path: /short }}, upstream: b, auth: none, cache: {{ ttl: 1s }} }}
  - {{ name: shared, match: {{ path: "/shared/{{*rest}}" }}, upstream: b, auth: none, cache: {{ ttl: 60s, shared: true }} }}
  - {{ name: c, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none, cache: {{ ttl: 60s }} }}
"#,
        backend.url()
    );
    let path = write_config(&scratch_dir(), &yaml);
    TestGateway::from_file(&path).await.with_admin().await
}

/// The public name every request is sent with, as a load balancer in front of several
/// instances passes it on: the host as sent is part of the cache key, and the test gateways
/// listen on ports of their own.
const HOST: (&str, &str) = ("host", "api.test");

async fn x_cache(gw: &TestGateway, path: &str) -> String {
    get(&gw.url(path), &[HOST]).await.header("x-cache").unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_get_is_a_hit_the_backend_sees_once_whatever_the_query_order() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    let first = get(&gw.url("/a?x=1&y=2"), &[]).await;
    assert_eq!((first.status, first.header("x-cache")), (StatusCode::OK, Some("MISS")));
    let hit = get(&gw.url("/a?y=2&x=1"), &[]).await;
    assert_eq!((hit.status, hit.header("x-cache"), hit.text()), (StatusCode::OK, Some("HIT"), "n/a".into()));
    assert!(hit.header("age").is_some_and(|a| a.parse::<u64>().is_ok()), "{:?}", hit.headers);
    let head = Request::head(gw.url("/a?x=1&y=2")).body(Full::new(Bytes::new())).expect("request");
    let head = send(&client(), head).await;
    assert_eq!((head.header("x-cache"), head.header("content-length")), (Some("HIT"), Some("3")));
    assert_eq!(b.count(), 1, "one upstream request for all three");
    assert_eq!(x_cache(&gw, "/a?x=2").await, "MISS", "another query is another entry");
    assert_eq!(metric(&gw, r#"portcullis_cache_requests_total{route="c",result="hit"}"#).await, Some(2.0));
    assert_eq!(metric(&gw, r#"portcullis_cache_requests_total{route="c",result="miss"}"#).await, Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_the_route_ttl() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    assert_eq!(x_cache(&gw, "/short").await, "MISS");
    assert_eq!(x_cache(&gw, "/short").await, "HIT");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(x_cache(&gw, "/short").await, "MISS");
    assert_eq!(b.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_private_set_cookie_and_non_200_answers_are_not_stored() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    for path in ["/no-store", "/private", "/cookie", "/missing"] {
        assert_eq!(x_cache(&gw, path).await, "MISS", "{path}");
        assert_eq!(x_cache(&gw, path).await, "MISS", "{path} again");
    }
    assert_eq!(b.count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_gateway_did_not_check_and_no_cache_requests_bypass() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    // Anonymous requests share the entry on both kinds of route (no consumer to tell apart)…
    for path in ["/p", "/shared/p"] {
        assert_eq!(x_cache(&gw, path).await, "MISS");
        assert_eq!(x_cache(&gw, path).await, "HIT");
    }
    // …but a credential the upstream may answer for is never served a stored answer.
    for path in ["/p", "/shared/p"] {
        let r = get(&gw.url(path), &[("authorization", "Bearer someone")]).await;
        assert_eq!(r.header("x-cache"), Some("BYPASS"), "{path}");
        let r = get(&gw.url(path), &[("cache-control", "no-cache")]).await;
        assert_eq!(r.header("x-cache"), Some("BYPASS"), "{path}");
    }
    assert_eq!(b.count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_whole_and_is_not_stored() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    for _ in 0..2 {
        let r = get(&gw.url("/big"), &[]).await;
        assert_eq!((r.header("x-cache"), r.body.len()), (Some("MISS"), BIG));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_by_route_and_path_prefix_through_the_admin_api() {
    let b = Backend::start(answer).await;
    let gw = start(&b).await;
    for path in ["/v1/a", "/v1/b", "/v2/a", "/shared/x"] {
        assert_eq!(x_cache(&gw, path).await, "MISS");
    }
    let purge = |body: &'static str| {
        let req = Request::post(gw.admin_url("/cache/purge"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request");
        async { send(&client(), req).await }
    };
    let unauthenticated = Request::post(gw.admin_url("/cache/purge")).body(Full::new(Bytes::new())).expect("req");
    assert_eq!(send(&client(), unauthenticated).await.status, StatusCode::UNAUTHORIZED);
    let r = purge(r#"{"route": "c", "path_prefix": "/v1/"}"#).await;
    assert_eq!((r.status, r.json()["purged"].as_u64()), (StatusCode::OK, Some(2)), "{}", r.text());
    assert_eq!(x_cache(&gw, "/v1/a").await, "MISS");
    assert_eq!(x_cache(&gw, "/v2/a").await, "HIT");
    assert_eq!(purge(r#"{"route": "shared"}"#).await.json()["purged"].as_u64(), Some(1));
    assert_eq!(x_cache(&gw, "/shared/x").await, "MISS");
    assert_eq!(purge("").await.json()["purged"].as_u64(), Some(3), "everything");
    let audit = std::fs::read_to_string(gw.dir.join("audit.jsonl")).unwrap_or_default();
    assert_eq!(audit.matches("\"cache.purge\"").count(), 3, "{audit}");
}

/// A gateway caching route `route` (every path, 60 s) in the Redis at `redis`.
async fn start_on_redis(backend: &Backend, route: &str, redis: &str) -> TestGateway {
    let yaml = format!(
        r#"version: 1
listeners: [{{ name: main, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:1", token: "{TOKEN}" }}
logging: {{ access: {{ path: off }}, audit: {{ path: audit.jsonl }} }}
state: {{ redis: "{redis}" }}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: {route}, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none, cache: {{ ttl: 60s }} }}
"#,
        backend.url()
    );
    let path = write_config(&scratch_dir(), &yaml);
    TestGateway::from_file(&path).await.with_admin().await
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "--raw"])
        .args(args)
        .output()
        .expect("redis-cli must be installed for the Redis cache tests");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Redis keys of `route`'s entries.
fn entry_keys(url: &str, route: &str) -> Vec<String> {
    let pattern = format!("portcullis:cache:{}:{route}:*", route.len());
    let mut keys: Vec<String> = redis_cli(url, &["--scan", "--pattern", &pattern]).lines().map(str::to_owned).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Waits for the background store: `route` has `n` entries in Redis.
async fn wait_for_entries(url: &str, route: &str, n: usize) -> Vec<String> {
    crate::kit::eventually(&format!("{n} entries of {route} in Redis"), || async {
        let keys = entry_keys(url, route);
        (keys.len() == n).then_some(keys)
    })
    .await
}

async fn purge(gw: &TestGateway, body: String) -> crate::kit::Reply {
    let req = Request::post(gw.admin_url("/cache/purge"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    send(&client(), req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_an_answer_cached_through_one_gateway_is_a_hit_on_another_until_purged() {
    let url = redis_url();
    let route = unique("rcache");
    let b = Backend::start(answer).await;
    let (gw_a, gw_b) = (start_on_redis(&b, &route, &url).await, start_on_redis(&b, &route, &url).await);
    assert_eq!(x_cache(&gw_a, "/v1/a?y=2&x=1").await, "MISS");
    let keys = wait_for_entries(&url, &route, 1).await;
    let pttl: i64 = redis_cli(&url, &["PTTL", &keys[0]]).trim().parse().unwrap_or(-3);
    assert!((1..=60_000).contains(&pttl), "every entry expires with the route's TTL: PTTL {pttl}");

    let hit = get(&gw_b.url("/v1/a?x=1&y=2"), &[HOST]).await;
    assert_eq!((hit.status, hit.header("x-cache"), hit.text()), (StatusCode::OK, Some("HIT"), "n/v1/a".into()));
    assert!(hit.header("age").is_some_and(|a| a.parse::<u64>().is_ok_and(|s| s <= 60)), "{:?}", hit.headers);
    let head =
        Request::head(gw_b.url("/v1/a?x=1&y=2")).header(HOST.0, HOST.1).body(Full::new(Bytes::new())).expect("request");
    let head = send(&client(), head).await;
    assert_eq!((head.header("x-cache"), head.header("content-length")), (Some("HIT"), Some("6")));
    assert_eq!(b.count(), 1, "one upstream request for both gateways");
    let series = format!(r#"portcullis_cache_requests_total{{route="{route}",result="hit"}}"#);
    assert_eq!(metric(&gw_b, &series).await, Some(2.0));

    // Not stored in Redis either: no-store and Set-Cookie answers.
    for path in ["/no-store", "/cookie"] {
        assert_eq!(x_cache(&gw_a, path).await, "MISS");
        assert_eq!(x_cache(&gw_b, path).await, "MISS", "{path}");
    }

    // A purge through A is seen by B: by path prefix, then the whole route.
    assert_eq!(x_cache(&gw_a, "/v2/a").await, "MISS");
    wait_for_entries(&url, &route, 2).await;
    let r = purge(&gw_a, format!(r#"{{"route": "{route}", "path_prefix": "/v1/"}}"#)).await;
    assert_eq!((r.status, r.json()["purged"].as_u64()), (StatusCode::OK, Some(1)), "{}", r.text());
    assert_eq!(x_cache(&gw_b, "/v1/a?x=1&y=2").await, "MISS", "purged on A, gone on B");
    assert_eq!(x_cache(&gw_b, "/v2/a").await, "HIT", "outside the prefix");
    wait_for_entries(&url, &route, 2).await;
    let r = purge(&gw_b, format!(r#"{{"route": "{route}"}}"#)).await;
    assert_eq!(r.json()["purged"].as_u64(), Some(2), "{}", r.text());
    assert_eq!(x_cache(&gw_a, "/v2/a").await, "MISS");
    gw_a.shutdown().await;
    gw_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_lookups_miss_requests_succeed_and_caching_resumes_when_it_returns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let b = Backend::start(answer).await;
    let gw = start_on_redis(&b, "own", &url).await;
    let hit_within = |what: &'static str, limit: Duration| {
        let gw = &gw;
        async move {
            let deadline = std::time::Instant::now() + limit;
            while x_cache(gw, "/x").await != "HIT" {
                assert!(std::time::Instant::now() < deadline, "{what}: never a HIT");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The connection is made lazily, and a first failed attempt backs off for a second.
    hit_within("Redis up", Duration::from_secs(5)).await;
    redis.kill();
    let before = b.count();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = get(&gw.url("/x"), &[]).await;
        assert_eq!((r.status, r.header("x-cache"), r.text()), (StatusCode::OK, Some("MISS"), "n/x".into()));
        assert!(started.elapsed() < Duration::from_secs(1), "a dead Redis never holds a request up");
    }
    assert_eq!(b.count(), before + 5, "every request went to the upstream");
    let r = purge(&gw, r#"{"route": "own"}"#.to_owned()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "a purge that could not run says so");
    let _redis = OwnRedis::start(port);
    hit_within("Redis back", Duration::from_secs(8)).await;
    gw.shutdown().await;
}
