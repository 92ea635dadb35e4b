//! `explain` and `test` agree with `run`: one case file is run offline (`portcullis test`, the
//! stand-in upstream) and sent to a running gateway in front of a recording backend and a
//! real JWKS server, and every case's expectations must hold on both. A config change that
//! opens a hole fails the same file with a readable diff.

use std::path::Path;
use std::process::Command;

use http::Request;
use http_body_util::Full;
use portcullis_offline::cases::{self, Observed, TokenSpec};
use portcullis_offline::{Upstreamed, header_arg};
use serde_json::{Value, json};

use crate::access_log::wait_for_lines;
use crate::idp::{Idp, RSA1, SigningKey};
use crate::kit::{Backend, TestGateway, client, scratch_dir, send};

/// The config both sides run; `{issuer}`, `{jwks}` and `{backend}` are filled in.
const CONFIG: &str = r#"version: 1
listeners: [{ name: public, bind: "@LISTEN@" }]
logging: { access: { path: "@DIR@/access.jsonl" } }
auth:
  corp: { type: jwt, issuer: "{issuer}", jwks_uri: "{jwks}", audiences: ["api://orders"], algorithms: [RS256], forward_claims: { email: X-User-Email } }
  partners: { type: api_key, header: X-Api-Key }
consumers:
  acme: { plan: gold, keys: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"] }
plans:
  gold: { rate: 100/s, burst: 50 }
policies:
  orders_read: { scopes: [orders.read] }
  admins: { expr: "request.headers['x-role'] == 'admin'" }
rate_limits:
  per_ip: { rate: 100/s, burst: 50, key: client_ip }
upstreams:
  orders: { targets: ["{backend}"] }
  hello: { mock: { status: 200, headers: { content-type: application/json }, body: '{"hello":"world"}' } }
routes:
  - { name: list-orders, match: { host: api.example.com, path: /v1/orders, methods: [GET] }, upstream: orders, rewrite: { path: /orders }, auth: { any: [corp] }, policy: orders_read, rate_limits: [per_ip] }
  - { name: partner-items, match: { host: api.example.com, path: "/v1/items/{id}", methods: [GET] }, upstream: orders, rewrite: { path: "/items/{id}" }, auth: { any: [partners] } }
  - { name: admin, match: { path: "/admin/{*rest}" }, upstream: orders, auth: none, policy: admins }
  - { name: hello, match: { path: /hello, methods: [GET] }, upstream: hello, auth: none }
  - { name: public, match: { path: "/public/{*rest}" }, upstream: orders, auth: none }
"#;

/// The cases: literal tokens (the same bytes go to both sides), the request id set so the
/// running gateway's log and backend can be matched to each.
fn case_file(idp: &Idp, key: &SigningKey, key_path: &Path) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = |extra: Value| {
        let mut c = idp.claims("alice");
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    };
    let reader = key.sign(&claims(json!({ "scope": "orders.read", "email": "alice@example.com" })));
    let no_scope = key.sign(&claims(json!({ "scope": "profile" })));
    let expired = key.sign(&claims(json!({ "scope": "orders.read", "exp": now - 3600 })));
    let forged = {
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(claims(json!({ "scope": "orders.read" })).to_string().as_bytes());
        format!("{header}.{body}.")
    };
    format!(
        r#"keys:
  corp: {{ private_key: "{key}", kid: {kid} }}
cases:
  - name: a reader lists orders, rewritten, with identity headers
    request: {{ url: "http://api.example.com/v1/orders?page=2", client_ip: 127.0.0.1, headers: {{ x-request-id: c1 }}, token: "{reader}" }}
    expect: {{ status: 200, code: null, consumer: alice, decided_by: null, route: list-orders,
              headers: {{ ratelimit-limit: "50" }},
              upstream: {{ path: "/orders?page=2", headers: {{ x-consumer: alice, x-auth-provider: corp, x-user-email: alice@example.com }} }} }}
  - name: a token without the scope is refused by the policy
    request: {{ url: "http://api.example.com/v1/orders", client_ip: 127.0.0.1, headers: {{ x-request-id: c2 }}, token: "{no_scope}" }}
    expect: {{ status: 403, code: insufficient_scope, upstream: null, decided_by: "authorize:orders_read" }}
  - name: an expired token is refused
    request: {{ url: "http://api.example.com/v1/orders", client_ip: 127.0.0.1, headers: {{ x-request-id: c3 }}, token: "{expired}" }}
    expect: {{ status: 401, code: token_expired, upstream: null, decided_by: "authenticate:corp" }}
  - name: an alg none token is refused
    request: {{ url: "http://api.example.com/v1/orders", client_ip: 127.0.0.1, headers: {{ x-request-id: c4 }}, token: "{forged}" }}
    expect: {{ status: 401, code: invalid_token, upstream: null }}
  - name: a partner key reaches the item route as its consumer
    request: {{ url: "http://api.example.com/v1/items/7", client_ip: 127.0.0.1, headers: {{ x-request-id: c5, x-api-key: test }} }}
    expect: {{ status: 200, consumer: acme, upstream: {{ path: /items/7, headers: {{ x-consumer: acme, x-api-key: null }} }} }}
  - name: an unknown key is refused
    request: {{ url: "http://api.example.com/v1/items/7", client_ip: 127.0.0.1, headers: {{ x-request-id: c6, x-api-key: nope }} }}
    expect: {{ status: 401, code: invalid_api_key, upstream: null, decided_by: "authenticate:partners" }}
  - name: the admin policy refuses a guest
    request: {{ url: "http://api.example.com/admin/users", client_ip: 127.0.0.1, headers: {{ x-request-id: c7, x-role: guest }} }}
    expect: {{ status: 403, code: forbidden, upstream: null, decided_by: "authorize:admins" }}
  - name: the mock upstream answers
    request: {{ url: "http://api.example.com/hello", client_ip: 127.0.0.1, headers: {{ x-request-id: c8 }} }}
    expect: {{ status: 200, body: '{{"hello":"world"}}', upstream: null, decided_by: "upstream:hello" }}
  - name: an unknown path has no route
    request: {{ url: "http://api.example.com/nope", client_ip: 127.0.0.1, headers: {{ x-request-id: c9 }} }}
    expect: {{ status: 404, code: no_route, decided_by: route }}
  - name: a method the route does not take is 405
    request: {{ method: DELETE, url: "http://api.example.com/v1/orders", client_ip: 127.0.0.1, headers: {{ x-request-id: c10 }} }}
    expect: {{ status: 405, code: method_not_allowed, headers: {{ allow: "GET, HEAD" }} }}
  - name: forged identity and poisoning headers never reach the backend
    request: {{ url: "http://api.example.com/public/x", client_ip: 127.0.0.1, headers: {{ x-request-id: c11, x-consumer: admin, x-real-ip: 10.0.0.1, x-forwarded-scheme: https }} }}
    expect: {{ status: 200, consumer: null, upstream: {{ path: /public/x, headers: {{ x-consumer: null, x-real-ip: null, x-forwarded-scheme: null, x-forwarded-for: 127.0.0.1 }} }} }}
  - name: a matrix parameter is refused
    request: {{ url: "http://api.example.com/public;jsessionid=1/x", client_ip: 127.0.0.1, headers: {{ x-request-id: c12 }} }}
    expect: {{ status: 400, code: bad_request, upstream: null, decided_by: "route:path" }}
"#,
        key = key_path.display(),
        kid = key.kid,
    )
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn portcullis(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).output().expect("runs portcullis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Sends a case's request to the running gateway and observes what came of it there: the
/// answer, what the backend received, and the access log's route, consumer and decided_by.
async fn observe_live(gw: &TestGateway, backend: &Backend, case: &cases::Case, index: usize) -> Observed {
    let token = match &case.request.token {
        Some(TokenSpec::Literal(token)) => Some((token.clone(), cases::TokenPlace::Header)),
        _ => None,
    };
    let request = case.request.build(token).expect("a case request");
    let url = request.url.clone();
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(gw.url(url.path_and_query().map_or("/", |pq| pq.as_str())));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let host = url.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
    let live = builder.header("host", host).body(Full::new(request.body.clone())).expect("request");
    let reply = send(&client(), live).await;
    let request_id = request.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let seen = backend
        .requests()
        .into_iter()
        .find(|r| r.headers.get("x-request-id").is_some_and(|v| v == request_id.as_str()));
    let lines = wait_for_lines(gw, index + 1).await;
    let line: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no access-log line for {request_id}"));
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Observed {
        status: reply.status,
        headers: reply.headers.clone(),
        body: reply.body.clone(),
        upstream: seen.map(|r| Upstreamed {
            upstream: "orders".into(),
            target: backend.url().into(),
            method: r.method.parse().unwrap_or_default(),
            path_and_query: r.uri.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        }),
        route: text(&line["route"]),
        consumer: text(&line["consumer"]),
        decided_by: text(&line["decided_by"]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_test_and_run_agree_on_every_case_and_a_config_change_shows_as_a_diff() {
    let key = SigningKey::rsa("k1", RSA1);
    let idp = Idp::start(&[&key]).await;
    let backend = Backend::ok().await;
    let dir = scratch_dir();
    let config =
        CONFIG.replace("{issuer}", &idp.issuer).replace("{jwks}", &idp.jwks_uri()).replace("{backend}", &backend.url());
    let key_path = dir.join("corp.pem");
    std::fs::write(&key_path, RSA1).expect("key");
    let cases_path = dir.join("cases.yaml");
    std::fs::write(&cases_path, case_file(&idp, &key, &key_path)).expect("cases");

    // Offline: the CLI, as CI runs it (the listener's address is the file's own business).
    let config_path = dir.join("gateway.yaml");
    std::fs::write(
        &config_path,
        config.replace("@LISTEN@", "127.0.0.1:0").replace("@DIR@", &dir.display().to_string()),
    )
    .expect("config");
    let junit = dir.join("junit.xml");
    let (code, out) = portcullis(&[
        "test",
        "-c",
        config_path.to_str().unwrap_or_default(),
        "--junit",
        junit.to_str().unwrap_or_default(),
        cases_path.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("12 passed, 0 failed"), "{out}");
    let report = std::fs::read_to_string(&junit).expect("junit report");
    assert!(report.contains("tests=\"12\" failures=\"0\""), "{report}");

    // Live: the same expectations on a running gateway.
    let gw = TestGateway::start_in(&config, dir.clone()).await;
    let file = cases::read(&cases_path).expect("the case file");
    for (i, case) in file.cases.iter().enumerate() {
        let observed = observe_live(&gw, &backend, case, i).await;
        let mismatches = cases::check(&case.expect, &observed).expect("known expectations");
        assert!(mismatches.is_empty(), "`{}` differs on the running gateway: {mismatches:#?}", case.name);
    }
    gw.shutdown().await;

    // A config change that opens a hole: the policy is gone from the route.
    let opened = std::fs::read_to_string(&config_path).expect("config").replace(", policy: orders_read", "");
    std::fs::write(&config_path, opened).expect("config");
    let (code, out) =
        portcullis(&["test", "-c", config_path.to_str().unwrap_or_default(), cases_path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  a token without the scope is refused by the policy"), "{out}");
    assert!(out.contains("status:\n          expected: 403\n          actual:   200"), "{out}");
    assert!(out.contains("11 passed, 1 failed"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_every_phase_the_decider_and_what_the_upstream_would_receive() {
    let dir = scratch_dir();
    let config = dir.join("gateway.yaml");
    let text = CONFIG
        .replace("{issuer}", "https://login.example.com/t")
        .replace("{jwks}", "https://login.example.com/keys")
        .replace("{backend}", "http://10.0.1.10:8080")
        .replace("@LISTEN@", "127.0.0.1:0")
        .replace("@DIR@", &dir.display().to_string());
    std::fs::write(&config, text).expect("config");
    let c = config.to_str().unwrap_or_default();
    let (code, out) = portcullis(&[
        "explain",
        "-c",
        c,
        "--token-claims",
        r#"{"sub":"alice","scope":"orders.read","email":"a@example.com"}"#,
        "GET",
        "http://api.example.com/v1/orders",
    ]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "route                pass     list-orders",
        "authenticate         pass",
        "consumer:   alice (via corp)",
        "limit:      per_ip (bucket ip:203.0.113.1)",
        "the upstream `orders` would receive (target http://10.0.1.10:8080):\n  GET /orders",
        "x-user-email: a@example.com",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    let (code, out) =
        portcullis(&["explain", "-c", c, "--json", "-H", "X-Role: guest", "GET", "http://api.example.com/admin/x"]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["decided_by"], "authorize:admins");
    assert_eq!(report["response"]["status"], 403);
    assert_eq!(report["response"]["body"]["code"], "forbidden");
    assert!(report["upstream"].is_null());
    let phases: Vec<&str> =
        report["phases"].as_array().into_iter().flatten().filter_map(|p| p["phase"].as_str()).collect();
    assert_eq!(
        phases,
        [
            "request_limits",
            "request_target",
            "strip_identity",
            "ip_filter",
            "route",
            "route_limits",
            "strip_hop_by_hop",
            "cors",
            "waf",
            "authenticate",
            "authorize",
            "response_transform"
        ],
        "the phases after the refusal never ran"
    );
    assert_eq!(report["phases"][7]["verdict"], "skip", "a route without a CORS policy");
    assert_eq!(report["phases"][8]["verdict"], "skip", "a config without a `waf` section");
    assert_eq!(report["phases"][11]["verdict"], "skip", "a refusal gets no route response headers");
    let (code, out) = portcullis(&["explain", "-c", c, "GET", "/relative"]);
    assert_eq!(code, 1, "a relative URL is refused: {out}");
    assert!(header_arg("no colon").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
