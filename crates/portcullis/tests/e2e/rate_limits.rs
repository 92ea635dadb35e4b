//! Rate limits: GCRA burst then steady rate, the `RateLimit-*` headers, keys kept apart,
//! several limits on one route, and — with `state.redis` — one limit shared by three gateways.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::kit::{Backend, TestGateway, get};

fn config(backend: &str, limits: &str, route_limits: &str, state: &str) -> String {
    format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"@LISTEN@\" }}]\nlogging: {{ access: {{ path: off }} }}\n{state}\
         upstreams:\n  up: {{ targets: [\"{backend}\"] }}\nrate_limits:\n{limits}\
         routes:\n  - {{ name: r, match: {{ path: \"/{{*rest}}\" }}, upstream: up, auth: none, rate_limits: [{route_limits}] }}\n  \
         - {{ name: free, match: {{ path: /free }}, upstream: up, auth: none }}\n"
    )
}

/// A name no other test (or earlier run against the shared Redis) uses.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_passes_at_once_then_the_steady_rate_with_ratelimit_headers() {
    let b = Backend::ok().await;
    let yaml = config(&b.url(), "  tight: { rate: 5/s, burst: 3, key: client_ip }\n", "tight", "");
    let gw = TestGateway::start(&yaml).await;
    for remaining in ["2", "1", "0"] {
        let r = get(&gw.url("/x"), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
        assert!(r.header("ratelimit-reset").is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s <= 1)));
    }
    let refused = get(&gw.url("/x"), &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code(), "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    assert_eq!(b.count(), 3, "the refused request never reached the backend");
    // Unlimited routes are untouched.
    assert_eq!(get(&gw.url("/free"), &[]).await.status, StatusCode::OK);

    // Steady: one request per 200 ms passes. Hammer for ~1.2 s and count.
    let started = Instant::now();
    let mut passed = 0u32;
    while started.elapsed() < Duration::from_millis(1200) {
        if get(&gw.url("/x"), &[]).await.status == StatusCode::OK {
            passed += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let expected = elapsed * 5.0;
    assert!(
        f64::from(passed) >= expected - 2.0 && f64::from(passed) <= expected + 2.0,
        "{passed} passed in {elapsed:.2}s at 5/s"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_isolated_and_the_tightest_of_several_limits_is_reported() {
    let b = Backend::ok().await;
    let limits = "  per_client: { rate: 1/m, burst: 2, key: \"header:X-Client\" }\n  \
                  whole: { rate: 1/m, burst: 10, key: route }\n";
    let gw = TestGateway::start(&config(&b.url(), limits, "per_client, whole", "")).await;
    for _ in 0..2 {
        let r = get(&gw.url("/x"), &[("x-client", "noisy")]).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = get(&gw.url("/x"), &[("x-client", "noisy")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the noisy client is limited");
    // Another client is not, and its headers are those of the tightest limit (per_client).
    let r = get(&gw.url("/x"), &[("x-client", "quiet")]).await;
    assert_eq!(r.status, StatusCode::OK, "one noisy client does not limit another");
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
    assert_eq!(r.header("ratelimit-remaining"), Some("1"));
    // The refused request took nothing from the route-wide limit: 3 admitted so far, 7 left.
    let metrics = gw.handle.metrics().render(&*gw.handle.current());
    assert!(metrics.contains(r#"portcullis_rate_limited_total{route="r",limit="per_client"} 1"#), "{metrics}");
    for i in 0..7 {
        let r = get(&gw.url("/x"), &[("x-client", &format!("c{i}"))]).await;
        assert_eq!(r.status, StatusCode::OK, "route budget request {i}");
    }
    let r = get(&gw.url("/x"), &[("x-client", "fresh")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the route-wide limit is spent");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_buckets_of_unchanged_limits() {
    let b = Backend::ok().await;
    let dir = crate::kit::scratch_dir();
    let path = dir.join("gw.yaml");
    let yaml = config(&b.url(), "  one: { rate: 1/m, burst: 1, key: client_ip }\n", "one", "")
        .replace("@LISTEN@", "127.0.0.1:0");
    std::fs::write(&path, &yaml).expect("write config");
    let gw = TestGateway::from_file(&path).await;
    assert_eq!(get(&gw.url("/x"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/x"), &[]).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Change something else (a new route) and reload: the spent bucket stays spent.
    std::fs::write(&path, yaml.replace("name: free", "name: free2")).expect("rewrite");
    gw.reloader().reload(portcullis_proxy::reload::Trigger::Admin("test".to_owned())).await.expect("reload");
    assert_eq!(get(&gw.url("/x"), &[]).await.status, StatusCode::TOO_MANY_REQUESTS);
    gw.shutdown().await;
}

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_sharing_redis_admit_the_limit_in_total() {
    let b = Backend::ok().await;
    let name = unique("shared");
    let limits = format!("  {name}: {{ rate: 100/m, burst: 100, key: route }}\n");
    let state = format!("state: {{ redis: \"{}\", on_redis_error: deny }}\n", redis_url());
    let yaml = config(&b.url(), &limits, &name, &state);
    let gateways = [TestGateway::start(&yaml).await, TestGateway::start(&yaml).await, TestGateway::start(&yaml).await];
    let urls: Vec<String> = gateways.iter().map(|g| g.url("/x")).collect();
    let mut clients = Vec::new();
    for c in 0..6 {
        let url = urls[c % 3].clone();
        clients.push(tokio::spawn(async move {
            let mut admitted = 0u32;
            for _ in 0..50 {
                if get(&url, &[]).await.status == StatusCode::OK {
                    admitted += 1;
                }
            }
            admitted
        }));
    }
    let mut total = 0;
    for c in clients {
        total += c.await.expect("client task");
    }
    assert!((95..=105).contains(&total), "admitted {total} of 300 against a shared limit of 100");
    for g in gateways {
        g.shutdown().await;
    }
}

/// A `redis-server` of the test's own on a free port (the machine's Redis is never stopped).
pub(crate) struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub(crate) fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed to test on_redis_error");
        let own = Self { port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !own.answers() {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        own
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_on_redis_error_mode_degrades_when_redis_stops_and_recovers_when_it_returns() {
    let b = Backend::ok().await;
    for mode in ["deny", "allow", "local"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let mut redis = OwnRedis::start(port);
        let name = unique(mode);
        let limits = format!("  {name}: {{ rate: 1/m, burst: 3, key: \"header:X-K\" }}\n");
        let state = format!("state: {{ redis: \"redis://127.0.0.1:{port}\", on_redis_error: {mode} }}\n");
        let gw = TestGateway::start(&config(&b.url(), &limits, &name, &state)).await;
        let statuses = |n: usize, key: String| {
            let url = gw.url("/x");
            async move {
                let mut out = Vec::new();
                for _ in 0..n {
                    let started = Instant::now();
                    out.push(get(&url, &[("x-k", &key)]).await.status.as_u16());
                    assert!(started.elapsed() < Duration::from_secs(2), "a decision must never hang");
                }
                out
            }
        };
        // Until the first connection to Redis is up, decisions may be degraded: warm up on
        // throw-away keys until one behaves like a counted bucket.
        let deadline = Instant::now() + Duration::from_secs(5);
        for round in 0.. {
            if statuses(4, format!("warm{round}")).await == [200, 200, 200, 429] {
                break;
            }
            assert!(Instant::now() < deadline, "{mode}: Redis never answered");
        }
        assert_eq!(statuses(4, "main".into()).await, [200, 200, 200, 429], "{mode}: the shared counter in Redis");
        redis.kill();
        let down = statuses(4, "main".into()).await;
        let expected: &[u16] = match mode {
            "deny" => &[429, 429, 429, 429],
            "allow" => &[200, 200, 200, 200],
            // Per-instance counters: a fresh local bucket of the same burst.
            _ => &[200, 200, 200, 429],
        };
        assert_eq!(down, expected, "{mode}: with Redis down");
        let text = gw.handle.metrics().render(&*gw.handle.current());
        let errors = text.lines().find_map(|l| l.strip_prefix(r#"portcullis_state_errors_total{store="redis"} "#));
        assert!(
            errors.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0),
            "{mode}: Redis errors counted:\n{text}"
        );
        let _redis = OwnRedis::start(port);
        // Back on Redis (empty again, as it keeps nothing): deny and local admit once more,
        // allow starts counting and refuses the fourth.
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let s = statuses(4, "main".into()).await;
            let back = match mode {
                "allow" => s.contains(&429),
                _ => s.contains(&200),
            };
            if back {
                break;
            }
            assert!(Instant::now() < deadline, "{mode}: decisions never went back to Redis: {s:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        gw.shutdown().await;
    }
}

/// A `redis-server` of the test's own speaking only TLS on `port`, with `leaf` as its
/// certificate (clients are not asked for one).
fn start_tls_redis(port: u16, dir: &std::path::Path, leaf: &crate::certs::Leaf) -> OwnRedis {
    leaf.write(dir, "redis");
    let file = |name: &str| dir.join(name).display().to_string();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-cert-file", &file("redis.pem"), "--tls-key-file", &file("redis-key.pem")])
        .args(["--tls-auth-clients", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (built with TLS) must be installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server on {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    OwnRedis { port, child: Some(child) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_through_a_tls_redis_whose_certificate_is_checked() {
    let b = Backend::ok().await;
    let dir = crate::kit::scratch_dir();
    let pki = crate::certs::Pki::new("redis test CA");
    let ca = pki.write_ca(&dir, "redis-ca.pem");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let _redis = start_tls_redis(port, &dir, &pki.leaf(&["127.0.0.1"], false));
    let name = unique("tls");
    let limits = format!("  {name}: {{ rate: 1/m, burst: 3, key: \"header:X-K\" }}\n");
    // `allow`: were TLS to fail, every request would pass and the counts below could not hold.
    let state = format!(
        "state: {{ redis: \"rediss://127.0.0.1:{port}\", redis_ca: \"{}\", on_redis_error: allow }}\n",
        ca.display()
    );
    let first = TestGateway::start(&config(&b.url(), &limits, &name, &state)).await;
    let second = TestGateway::start(&config(&b.url(), &limits, &name, &state)).await;
    let status = async |gw: &TestGateway, key: &str| get(&gw.url("/x"), &[("x-k", key)]).await.status.as_u16();
    // The first connections (TLS handshakes) may take a moment: warm up on throw-away keys.
    let deadline = Instant::now() + Duration::from_secs(5);
    for round in 0.. {
        let key = format!("warm{round}");
        let mut seen = Vec::new();
        for gw in [&first, &second] {
            for _ in 0..4 {
                seen.push(status(gw, &key).await);
            }
        }
        if seen == [200, 200, 200, 429, 429, 429, 429, 429] {
            break;
        }
        assert!(Instant::now() < deadline, "the limit never counted through the TLS Redis: {seen:?}");
    }
    // One bucket for both gateways: two through the first, then the second gets one more.
    assert_eq!([status(&first, "main").await, status(&first, "main").await], [200, 200]);
    assert_eq!([status(&second, "main").await, status(&second, "main").await], [200, 429]);

    // Without the CA the server's certificate is not trusted: with `deny`, nothing passes.
    let untrusted = format!("state: {{ redis: \"rediss://127.0.0.1:{port}\", on_redis_error: deny }}\n");
    let third = TestGateway::start(&config(&b.url(), &limits, &name, &untrusted)).await;
    let until = Instant::now() + Duration::from_secs(1);
    let mut round = 0;
    while Instant::now() < until {
        assert_eq!(
            status(&third, &format!("fresh{round}")).await,
            429,
            "a Redis with an untrusted certificate was used"
        );
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for gw in [first, second, third] {
        gw.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
