//! A test identity provider: OIDC discovery and a JWKS on 127.0.0.1 (whose key set can be
//! swapped and whose availability can be switched off), plus token minting with the fixture
//! keys in `fixtures/`. It counts JWKS fetches, so tests can prove refetch limits.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const RSA1: &str = include_str!("fixtures/idp-rsa1.pem");
pub const RSA1_PUBLIC: &str = include_str!("fixtures/idp-rsa1.pub.pem");
pub const RSA2: &str = include_str!("fixtures/idp-rsa2.pem");
pub const EC1: &str = include_str!("fixtures/idp-ec1.pem");

/// A signing key with its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
}

impl SigningKey {
    pub fn rsa(kid: &str, pem: &str) -> Self {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA fixture");
        Self { kid: kid.to_owned(), alg: Algorithm::RS256, key }
    }

    pub fn ec(kid: &str, pem: &str) -> Self {
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC fixture");
        Self { kid: kid.to_owned(), alg: Algorithm::ES256, key }
    }

    /// The public JWK (with `kid`, `alg` and `use: sig`).
    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.clone());
        let mut v = serde_json::to_value(jwk).expect("jwk json");
        v["use"] = json!("sig");
        v
    }

    /// A token with these claims, signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }

    /// A token with a custom header.
    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key).expect("sign")
    }
}

struct State {
    jwks: Mutex<String>,
    fetches: AtomicUsize,
    down: AtomicBool,
    issuer: Mutex<String>,
}

/// The IdP; its server stops when dropped.
pub struct Idp {
    pub addr: SocketAddr,
    pub issuer: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    /// Serves `keys` as its JWKS, with `Cache-Control: max-age=300`.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind idp");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}");
        let state = Arc::new(State {
            jwks: Mutex::new(String::new()),
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            issuer: Mutex::new(issuer.clone()),
        });
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let idp = Self { addr, issuer, state, task };
        idp.set_keys(keys);
        idp
    }

    /// Replaces the published key set (a rotation at the IdP).
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        let set = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        // Parses as jsonwebtoken's own type: the document is a well-formed JWKS.
        let _: JwkSet = serde_json::from_value(set.clone()).expect("valid JWKS");
        *self.state.jwks.lock().expect("lock") = set.to_string();
    }

    /// Publishes text that is not a JWKS.
    pub fn set_raw_jwks(&self, text: &str) {
        *self.state.jwks.lock().expect("lock") = text.to_owned();
    }

    /// Makes the discovery document name another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.issuer.lock().expect("lock") = issuer.to_owned();
    }

    /// `true`: every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// JWKS documents served so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// Standard claims for `sub`: this issuer, audience `api://orders`, valid for an hour.
    pub fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({ "iss": self.issuer, "aud": "api://orders", "sub": sub, "iat": now, "exp": now + 3600, "jti": jti() })
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A unique id, so two tokens with the same claims differ (no verified-token cache hit).
pub fn jti() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if state.down.load(Ordering::SeqCst) {
        return respond(StatusCode::SERVICE_UNAVAILABLE, "down".into(), None);
    }
    match req.uri().path() {
        "/.well-known/openid-configuration" => {
            let issuer = state.issuer.lock().expect("lock").clone();
            let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
            let doc = json!({ "issuer": issuer, "jwks_uri": format!("http://{host}/jwks") });
            respond(StatusCode::OK, doc.to_string(), None)
        }
        "/jwks" => {
            state.fetches.fetch_add(1, Ordering::SeqCst);
            respond(StatusCode::OK, state.jwks.lock().expect("lock").clone(), Some("max-age=300"))
        }
        _ => respond(StatusCode::NOT_FOUND, String::new(), None),
    }
}

fn respond(status: StatusCode, body: String, cache: Option<&'static str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    if let Some(cache) = cache {
        r.headers_mut().insert("cache-control", http::HeaderValue::from_static(cache));
    }
    r
}

/// base64url without padding (for hand-made tokens such as `alg: none`).
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An unsigned token: `{"alg":"none"}` with `claims`.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}
