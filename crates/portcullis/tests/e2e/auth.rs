//! Authentication and authorization through the gateway (SPEC §3): JWT against the test
//! IdP's JWKS (discovery, rotation, refetch limits, IdP outages), API keys, `any`/`all`,
//! the identity headers, the login redirect, policies, and the auth metrics. Every refusal
//! is checked for its status, code and `WWW-Authenticate`, and for the upstream seeing
//! nothing.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::idp::{self, EC1, Idp, RSA1, RSA1_PUBLIC, RSA2, SigningKey};
use crate::kit::{Backend, Reply, TestGateway, get};

/// The stored form of the API key `pcl_test_acme_key`.
fn acme_key_stored() -> String {
    portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(b"pcl_test_acme_key"))
}

fn config(idp: &Idp, backend: &Backend) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
limits: {{ max_header_bytes: 65536 }}
auth:
  corp:
    type: jwt
    issuer: "{issuer}"
    audiences: ["api://orders"]
    algorithms: [RS256, ES256]
    leeway: 5s
    forward_claims: {{ email: X-User-Email, tid: X-Tenant }}
  web:
    type: jwt
    issuer: "{issuer}"
    jwks_uri: "{jwks}"
    audiences: ["api://orders"]
    algorithms: [RS256]
    token_from: [cookie:session, query:access_token]
    login_url: "https://login.example.com/authorize?client_id=abc"
  partners:
    type: api_key
    header: X-Api-Key
consumers:
  acme: {{ plan: gold, keys: ["{key}"] }}
plans:
  gold: {{ rate: 100/s }}
policies:
  read: {{ scopes: [orders.read] }}
  admins: {{ claims: {{ groups: ["ops-admins"] }} }}
  gold_reads: {{ expr: "consumer.plan == 'gold' && request.method in ['GET', 'HEAD']" }}
upstreams:
  b: {{ targets: ["{backend}"] }}
routes:
  - {{ name: jwt, match: {{ path: /jwt }}, upstream: b, auth: {{ any: [corp] }} }}
  - {{ name: web, match: {{ path: /web }}, upstream: b, auth: {{ any: [web] }} }}
  - {{ name: key, match: {{ path: /key }}, upstream: b, auth: {{ any: [partners] }} }}
  - {{ name: either, match: {{ path: /either }}, upstream: b, auth: {{ any: [corp, partners] }} }}
  - {{ name: both, match: {{ path: /both }}, upstream: b, auth: {{ all: [corp, partners] }} }}
  - {{ name: both-cached, match: {{ path: /both-cached }}, upstream: b, auth: {{ all: [corp, partners] }}, cache: {{ ttl: 30s }} }}
  - {{ name: scoped, match: {{ path: /scoped }}, upstream: b, auth: {{ any: [corp] }}, policy: read }}
  - {{ name: admins, match: {{ path: /admins }}, upstream: b, auth: {{ any: [corp] }}, policy: admins }}
  - {{ name: gold, match: {{ path: /gold }}, upstream: b, auth: {{ any: [partners, corp] }}, policy: gold_reads }}
  - {{ name: open, match: {{ path: /open }}, upstream: b, auth: none }}
"#,
        issuer = idp.issuer,
        jwks = idp.jwks_uri(),
        key = acme_key_stored(),
        backend = backend.url()
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 401 with `code`, a Bearer challenge, and nothing forwarded.
fn assert_refused(r: &Reply, code: &str, backend: &Backend, before: usize) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.code(), code, "{r:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer realm=\"portcullis\""), "{challenge}");
    if code != "missing_credentials" {
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    assert_eq!(backend.count(), before, "the upstream saw a refused request");
}

struct Setup {
    idp: Idp,
    backend: Backend,
    gw: TestGateway,
    rsa1: SigningKey,
}

async fn setup() -> Setup {
    let rsa1 = SigningKey::rsa("k1", RSA1);
    let ec1 = SigningKey::ec("e1", EC1);
    let idp = Idp::start(&[&rsa1, &ec1]).await;
    let backend = Backend::ok().await;
    let gw = TestGateway::start(&config(&idp, &backend)).await;
    Setup { idp, backend, gw, rsa1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_rs256_and_es256_tokens_pass_with_gateway_identity_headers_only() {
    let s = setup().await;
    let mut claims = s.idp.claims("alice");
    claims["email"] = json!("alice@example.com");
    claims["tid"] = json!(42);
    let token = s.rsa1.sign(&claims);
    let r = get(
        &s.gw.url("/jwt"),
        &[
            ("authorization", &bearer(&token)),
            ("x-consumer", "admin"),
            ("x-auth-provider", "forged"),
            ("x-user-email", "boss@example.com"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = &s.backend.requests()[0].headers;
    assert_eq!(seen["x-consumer"], "alice", "the JWT sub is the consumer");
    assert_eq!(seen["x-auth-subject"], "alice");
    assert_eq!(seen["x-auth-provider"], "corp");
    assert_eq!(seen["x-user-email"], "alice@example.com");
    assert_eq!(seen["x-tenant"], "42");
    assert_eq!(seen.get_all("x-consumer").iter().count(), 1);

    let ec = SigningKey::ec("e1", EC1);
    let r = get(&s.gw.url("/jwt"), &[("authorization", &bearer(&ec.sign(&s.idp.claims("bob"))))]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.backend.requests()[1].headers["x-consumer"], "bob");

    // A client's `Connection` list names headers to drop at this hop; it must not drop the
    // identity the gateway sets (the backend would see an authenticated request with none).
    let listed = "keep-alive, x-consumer, x-auth-subject, x-auth-provider, x-user-email, x-tenant";
    let r = get(&s.gw.url("/jwt"), &[("authorization", &bearer(&token)), ("connection", listed)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = &s.backend.requests()[2].headers;
    for (name, value) in
        [("x-consumer", "alice"), ("x-auth-subject", "alice"), ("x-auth-provider", "corp"), ("x-tenant", "42")]
    {
        assert_eq!(seen.get(name).map(|v| v.to_str().unwrap_or("?")), Some(value), "{name}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asserted_consumer_never_reaches_the_backend() {
    let s = setup().await;
    for path in ["/open", "/jwt"] {
        let _ =
            get(&s.gw.url(path), &[("x-consumer", "admin"), ("x_consumer", "admin"), ("x-auth-subject", "root")]).await;
    }
    assert_eq!(s.backend.count(), 1, "only the public route forwards");
    let seen = &s.backend.requests()[0].headers;
    assert!(seen.get("x-consumer").is_none() && seen.get("x_consumer").is_none(), "{seen:?}");
    assert!(seen.get("x-auth-subject").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_the_right_code_and_challenge() {
    let s = setup().await;
    let now = idp::now();
    let url = s.gw.url("/jwt");
    let rsa1 = &s.rsa1;
    let claims = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = s.idp.claims("mallory");
        f(&mut c);
        c
    };
    let r = get(&url, &[]).await;
    assert_refused(&r, "missing_credentials", &s.backend, 0);
    assert!(!r.header("www-authenticate").unwrap_or_default().contains("error="), "RFC 6750 §3.1: no error code");

    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", rsa1.sign(&claims(&|c| c["exp"] = json!(now - 120))), "token_expired"),
        ("not yet valid", rsa1.sign(&claims(&|c| c["nbf"] = json!(now + 600))), "invalid_token"),
        ("wrong issuer", rsa1.sign(&claims(&|c| c["iss"] = json!("https://evil.example.com"))), "invalid_token"),
        ("wrong audience", rsa1.sign(&claims(&|c| c["aud"] = json!("api://other"))), "invalid_token"),
        ("string exp", rsa1.sign(&claims(&|c| c["exp"] = json!((now + 3600).to_string()))), "invalid_token"),
        ("alg none", idp::unsigned("k1", &claims(&|_| {})), "invalid_token"),
        ("garbage", "not.a.token".to_owned(), "invalid_token"),
    ];
    for (what, token, code) in cases {
        let r = get(&url, &[("authorization", &bearer(&token))]).await;
        assert_refused(&r, code, &s.backend, 0);
        assert!(!r.text().contains(&token), "{what}: the detail echoes the token");
    }

    // HS256 "signed" with the RSA public key as the HMAC secret: the key-confusion attack.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hmac = EncodingKey::from_secret(RSA1_PUBLIC.as_bytes()).expect("hmac key");
    let forged = jsonwebtoken::encode(&header, &claims(&|_| {}), &hmac).expect("sign");
    assert_refused(&get(&url, &[("authorization", &bearer(&forged))]).await, "invalid_token", &s.backend, 0);

    // An unknown critical header extension.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    header.crit = Some(vec!["exp-ext".into()]);
    let crit = s.rsa1.sign_with(&header, &claims(&|_| {}));
    assert_refused(&get(&url, &[("authorization", &bearer(&crit))]).await, "invalid_token", &s.backend, 0);

    // Over 16 KiB.
    let big = s.rsa1.sign(&claims(&|c| c["pad"] = json!("x".repeat(17 * 1024))));
    assert_refused(&get(&url, &[("authorization", &bearer(&big))]).await, "invalid_token", &s.backend, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_works_without_restart_and_unknown_kids_refetch_once() {
    let s = setup().await;
    let url = s.gw.url("/jwt");
    let ok = get(&url, &[("authorization", &bearer(&s.rsa1.sign(&s.idp.claims("a"))))]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let fetched = s.idp.fetches();
    assert!(fetched >= 1);

    // The IdP rotates to a new key: the first token signed with it makes the gateway refetch.
    let rsa2 = SigningKey::rsa("k2", RSA2);
    s.idp.set_keys(&[&s.rsa1, &rsa2]);
    let r = get(&url, &[("authorization", &bearer(&rsa2.sign(&s.idp.claims("b"))))]).await;
    assert_eq!(r.status, 200, "new kid after rotation: {r:?}");
    assert_eq!(s.idp.fetches(), fetched + 1);

    // A flood of tokens with unknown kids within 30 s refetches nothing more.
    let stranger = SigningKey::rsa("k3", RSA2);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (url, token) = (url.clone(), stranger.sign(&s.idp.claims("x")));
        tasks.push(tokio::spawn(async move { get(&url, &[("authorization", &bearer(&token))]).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 401);
    }
    assert_eq!(s.idp.fetches(), fetched + 1, "an unknown kid refetches at most once per 30 s");
    assert_eq!(s.backend.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_makes_one_refetch() {
    let s = setup().await;
    // Let the start-up fetch finish first.
    let ok = get(&s.gw.url("/jwt"), &[("authorization", &bearer(&s.rsa1.sign(&s.idp.claims("a"))))]).await;
    assert_eq!(ok.status, 200);
    let before = s.idp.fetches();
    let stranger = SigningKey::rsa("unknown", RSA2);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, token) = (s.gw.url("/jwt"), stranger.sign(&s.idp.claims("x")));
        tasks.push(tokio::spawn(async move { get(&url, &[("authorization", &bearer(&token))]).await }));
    }
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_token".to_owned()));
    }
    assert_eq!(s.idp.fetches(), before + 1, "50 concurrent unknown kids, one JWKS fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_keys_keep_working_while_the_idp_is_down_or_broken() {
    let s = setup().await;
    let url = s.gw.url("/jwt");
    assert_eq!(get(&url, &[("authorization", &bearer(&s.rsa1.sign(&s.idp.claims("a"))))]).await.status, 200);
    s.idp.set_raw_jwks("{ this is not a JWKS");
    s.idp.set_down(true);
    // Unknown kid while down: one failed refetch, and the known key still verifies after it.
    let stranger = SigningKey::rsa("k9", RSA2);
    assert_eq!(get(&url, &[("authorization", &bearer(&stranger.sign(&s.idp.claims("x"))))]).await.status, 401);
    for sub in ["b", "c", "d"] {
        let r = get(&url, &[("authorization", &bearer(&s.rsa1.sign(&s.idp.claims(sub))))]).await;
        assert_eq!(r.status, 200, "IdP down, known key: {r:?}");
    }
    drop(s.idp);
    let r = get(
        &url,
        &[(
            "authorization",
            &bearer(&s.rsa1.sign(&json!({
                "iss": "placeholder"
            }))),
        )],
    )
    .await;
    assert_eq!(r.status, 401, "still judged, not waved through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_identify_their_consumer_and_never_reach_the_backend() {
    let s = setup().await;
    let r = get(&s.gw.url("/key"), &[("x-api-key", "pcl_test_acme_key"), ("x-consumer", "admin")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = &s.backend.requests()[0].headers;
    assert_eq!(seen["x-consumer"], "acme");
    assert_eq!(seen["x-auth-provider"], "partners");
    assert!(seen.get("x-api-key").is_none(), "the key header is removed before forwarding");

    let r = get(&s.gw.url("/key"), &[("x-api-key", "pcl_wrong")]).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_api_key".to_owned()));
    assert!(r.header("www-authenticate").unwrap_or_default().starts_with("ApiKey"), "{r:?}");
    let r = get(&s.gw.url("/key"), &[]).await;
    assert_eq!(r.code(), "missing_credentials");
    // A public route never forwards an API key either.
    let _ = get(&s.gw.url("/open"), &[("x-api-key", "pcl_test_acme_key")]).await;
    assert!(s.backend.requests()[1].headers.get("x-api-key").is_none());
    assert_eq!(s.backend.count(), 2);
}

/// `header: X-Api-Key` is named so in the challenge, not as the lowercase `x-api-key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_challenge_names_the_header_as_configured() {
    let s = setup().await;
    for key in [None, Some("pcl_wrong")] {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let r = get(&s.gw.url("/key"), &headers).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.header("www-authenticate"), Some("ApiKey realm=\"portcullis\", header=\"X-Api-Key\""), "{r:?}");
    }
    assert_eq!(s.backend.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_of_takes_either_and_all_of_needs_both() {
    let s = setup().await;
    let token = s.rsa1.sign(&s.idp.claims("alice"));
    let auth = bearer(&token);
    assert_eq!(get(&s.gw.url("/either"), &[("authorization", &auth)]).await.status, 200);
    assert_eq!(get(&s.gw.url("/either"), &[("x-api-key", "pcl_test_acme_key")]).await.status, 200);
    let r = get(&s.gw.url("/either"), &[]).await;
    assert_eq!(r.code(), "missing_credentials");
    assert_eq!(r.headers.get_all("www-authenticate").iter().count(), 2, "one challenge per provider");
    // A bad key with a good token still passes `any`; a bad token alone names its error.
    assert_eq!(get(&s.gw.url("/either"), &[("authorization", "Bearer x.y.z")]).await.code(), "invalid_token");

    assert_eq!(get(&s.gw.url("/both"), &[("authorization", &auth)]).await.code(), "missing_credentials");
    assert_eq!(get(&s.gw.url("/both"), &[("x-api-key", "pcl_test_acme_key")]).await.code(), "missing_credentials");
    let before = s.backend.count();
    let r = get(&s.gw.url("/both"), &[("authorization", &auth), ("x-api-key", "pcl_test_acme_key")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = &s.backend.requests()[before].headers;
    assert_eq!(seen["x-consumer"], "acme", "the key's owner is the consumer");
    assert_eq!(seen["x-auth-subject"], "alice", "the token's subject");

    // Users sharing one partner key are one consumer, yet each is answered for itself: an
    // answer cached for alice is never served to bob.
    let bob = bearer(&s.rsa1.sign(&s.idp.claims("bob")));
    let cached = |auth: String| {
        let url = s.gw.url("/both-cached");
        async move {
            let r = get(&url, &[("authorization", &auth), ("x-api-key", "pcl_test_acme_key")]).await;
            assert_eq!(r.status, 200, "{r:?}");
            r.header("x-cache").unwrap_or_default().to_owned()
        }
    };
    assert_eq!(cached(auth.clone()).await, "MISS");
    assert_eq!(cached(bob.clone()).await, "MISS", "bob must not get alice's answer");
    assert_eq!(cached(auth.clone()).await, "HIT");
    assert_eq!(cached(bob).await, "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_sent_to_login_and_tokens_are_read_from_cookies_and_queries() {
    let s = setup().await;
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    let r = get(&s.gw.url("/web?x=1"), &[("accept", html)]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap_or_default();
    let back = format!("return_to=http%3A%2F%2F{}%2Fweb%3Fx%3D1", s.gw.addr).replace(':', "%3A");
    assert!(location.starts_with("https://login.example.com/authorize?client_id=abc&return_to="), "{location}");
    assert!(location.ends_with(&back), "{location} vs {back}");
    let r = get(&s.gw.url("/web"), &[("accept", "application/json")]).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "missing_credentials".to_owned()));

    let token = s.rsa1.sign(&s.idp.claims("alice"));
    let cookie = format!("theme=dark; session={token}");
    assert_eq!(get(&s.gw.url("/web"), &[("cookie", &cookie), ("accept", html)]).await.status, 200);
    assert_eq!(get(&s.gw.url(&format!("/web?access_token={token}")), &[]).await.status, 200);
    // The web provider reads no Authorization header.
    assert_eq!(get(&s.gw.url("/web"), &[("authorization", &bearer(&token))]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_check_scopes_claims_and_expressions() {
    let s = setup().await;
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = s.idp.claims("alice");
        f(&mut c);
        bearer(&s.rsa1.sign(&c))
    };
    let url = s.gw.url("/scoped");
    assert_eq!(get(&url, &[("authorization", &with(&|c| c["scope"] = json!("orders.read other")))]).await.status, 200);
    assert_eq!(get(&url, &[("authorization", &with(&|c| c["scp"] = json!(["orders.read"])))]).await.status, 200);
    let r = get(&url, &[("authorization", &with(&|c| c["scope"] = json!("orders.write")))]).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope".to_owned()));
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"orders.read\""),
        "{challenge}"
    );

    let url = s.gw.url("/admins");
    let r = get(&url, &[("authorization", &with(&|c| c["groups"] = json!(["devs", "ops-admins"])))]).await;
    assert_eq!(r.status, 200);
    let r = get(&url, &[("authorization", &with(&|c| c["groups"] = json!(["devs"])))]).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden".to_owned()));
    let r = get(&url, &[("authorization", &with(&|c| c["groups"] = json!("ops-admins-not")))]).await;
    assert_eq!(r.code(), "forbidden");

    // CEL: the acme consumer (plan gold, by API key) may read; a JWT user without a plan may not.
    let url = s.gw.url("/gold");
    assert_eq!(get(&url, &[("x-api-key", "pcl_test_acme_key")]).await.status, 200);
    let r = get(&url, &[("authorization", &with(&|_| {}))]).await;
    assert_eq!(r.code(), "forbidden");
    let post = crate::kit::send(
        &crate::kit::client(),
        http::Request::post(&url)
            .header("x-api-key", "pcl_test_acme_key")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request"),
    )
    .await;
    assert_eq!(post.code(), "forbidden", "gold_reads allows reads only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_and_jwks_refreshes_are_counted() {
    let s = setup().await;
    let gw = s.gw;
    let ok = get(&gw.url("/jwt"), &[("authorization", &bearer(&s.rsa1.sign(&s.idp.claims("a"))))]).await;
    assert_eq!(ok.status, 200);
    let _ = get(&gw.url("/jwt"), &[("authorization", "Bearer junk")]).await;
    let _ = get(&gw.url("/key"), &[("x-api-key", "nope")]).await;
    let text = gw.handle.metrics().render(&*gw.handle.current());
    assert!(text.contains("portcullis_auth_failures_total{provider=\"corp\",code=\"invalid_token\"} 1"), "{text}");
    assert!(text.contains("portcullis_auth_failures_total{provider=\"partners\",code=\"invalid_api_key\"} 1"));
    assert!(text.contains("portcullis_jwks_refresh_total{provider=\"corp\",result=\"ok\"}"), "{text}");
    assert!(!text.contains("pcl_"), "no key material in metrics");
}
