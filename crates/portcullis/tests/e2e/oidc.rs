//! A real OpenID provider for the JWT tests: `oidc-provider` (Node, from the npm registry; an
//! authorization server this project did not write), run by `scripts/oidc-provider/server.mjs`.
//!
//! [`OidcProvider::start`] installs it when missing (`scripts/oidc-provider.sh`, into
//! `<target>/oidc-provider`) and starts it on an ephemeral port; with `CI=true` a failure to set
//! it up fails the test, elsewhere (no node, no network) the test says SKIPPED and passes.
//!
//! What the provider serves (see `server.mjs`): issuer `http://127.0.0.1:PORT`, discovery at
//! `{issuer}/.well-known/openid-configuration`, one client ([`CLIENT_ID`] / [`CLIENT_SECRET`],
//! `client_credentials` only) whose access tokens for [`RESOURCE`] are RS256 (or ES256) JWTs
//! with `aud` = [`RESOURCE`], `sub` = `client_id` = [`CLIENT_ID`] and `scope` the requested
//! subset of [`SCOPES`], valid for an hour.
//!
//! ```ignore
//! let Some(idp) = OidcProvider::start() else { return };  // SKIPPED outside CI
//! let token = idp.client_credentials_token("orders.read").await;
//! // providers: { corp: { issuer: idp.issuer, audience: oidc::RESOURCE, … } }
//! ```

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;

use crate::kit::{client, get, send};

/// The one client the provider knows.
pub(crate) const CLIENT_ID: &str = "portcullis-test";
pub(crate) const CLIENT_SECRET: &str = "portcullis-test-secret";
/// The resource indicator (RFC 8707) the access tokens are for, and their `aud`.
pub(crate) const RESOURCE: &str = "urn:portcullis:orders";
/// The scopes the client may ask for.
pub(crate) const SCOPES: [&str; 2] = ["orders.read", "orders.write"];

/// How long node may take to start and print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running oidc-provider, killed when dropped.
pub(crate) struct OidcProvider {
    /// `http://127.0.0.1:PORT`, no trailing slash: the `iss` of its tokens.
    pub issuer: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Access token signing algorithms the provider can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessTokenAlg {
    /// RSA key, kid `rs256-1` (the default).
    Rs256,
    /// P-256 key, kid `es256-1`.
    Es256,
}

impl OidcProvider {
    /// Starts a provider signing access tokens with RS256; `None` (after printing SKIPPED)
    /// when it cannot be set up outside CI.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with(AccessTokenAlg::Rs256)
    }

    /// Starts a provider signing access tokens with `alg`. Both keys are in its JWKS either way.
    pub(crate) fn start_with(alg: AccessTokenAlg) -> Option<Self> {
        let dir = install_dir()?;
        let alg = match alg {
            AccessTokenAlg::Rs256 => "RS256",
            AccessTokenAlg::Es256 => "ES256",
        };
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .arg("0")
            .env("ACCESS_TOKEN_ALG", alg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("oidc-provider stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Owned before the wait so that a timeout still kills node.
        let mut provider = Self { issuer: String::new(), child };
        let line = rx.recv_timeout(START_TIMEOUT).expect("oidc-provider did not print its address in time; run `node <target>/oidc-provider/server.mjs 0` by hand to see why");
        let issuer = line.trim().strip_prefix("listening ").expect(&line);
        provider.issuer = issuer.to_owned();
        Some(provider)
    }

    /// `{issuer}/jwks`, where the provider publishes its signing keys (also its discovery
    /// document's `jwks_uri`).
    pub(crate) fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// A fresh access token (a JWT) for [`RESOURCE`] with the space-separated `scope`, from the
    /// client credentials grant (`POST {issuer}/token`, HTTP Basic client authentication).
    /// Panics unless the provider answers 200 with an `access_token`.
    pub(crate) async fn client_credentials_token(&self, scope: &str) -> String {
        let body =
            format!("grant_type=client_credentials&scope={}&resource={}", form_encode(scope), form_encode(RESOURCE));
        let basic = base64_encode(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
        let req = Request::post(format!("{}/token", self.issuer))
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .expect("token request");
        let reply = send(&client(), req).await;
        assert_eq!(reply.status, StatusCode::OK, "token endpoint: {}", reply.text());
        let token = reply.json()["access_token"].as_str().map(str::to_owned);
        token.unwrap_or_else(|| panic!("no access_token: {}", reply.text()))
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/oidc-provider` (the test binary is `<target>/debug/deps/e2e-…`), installed if
/// needed; `None` (outside CI) when it cannot be.
fn install_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe.ancestors().nth(3).map_or_else(|| repo().join("target"), PathBuf::from);
    let dir = target.join("oidc-provider");
    let status = Command::new("bash").arg(repo().join("scripts/oidc-provider.sh")).arg(&dir).status();
    if !matches!(&status, Ok(s) if s.success()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: could not set up oidc-provider: {status:?}");
        eprintln!(
            "SKIPPED: could not set up oidc-provider ({status:?}); run scripts/oidc-provider.sh (needs node and npm)"
        );
        return None;
    }
    Some(dir)
}

/// `application/x-www-form-urlencoded` for a value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (for HTTP Basic).
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (JWT segments); `None` on a character outside the alphabet.
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'-' => 62,
            b'_' => 63,
            _ => B64.iter().position(|&x| x == c).filter(|&p| p < 62)? as u32,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// A JWT segment decoded as JSON.
pub(crate) fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWT segment");
    let bytes = base64url_decode(part).expect("base64url JWT segment");
    serde_json::from_slice(&bytes).expect("JSON JWT segment")
}

async fn check_tokens_signed_with_published_key(alg: AccessTokenAlg, want_alg: &str) {
    let Some(idp) = OidcProvider::start_with(alg) else { return };
    let discovery = get(&format!("{}/.well-known/openid-configuration", idp.issuer), &[]).await;
    assert_eq!(discovery.status, StatusCode::OK, "{}", discovery.text());
    let discovery = discovery.json();
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    assert_eq!(jwks_uri, idp.jwks_uri());
    let jwks = get(jwks_uri, &[]).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let jwks = jwks.json();
    let keys = jwks["keys"].as_array().expect("JWKS keys");
    assert!(keys.iter().all(|k| k.get("d").is_none()), "no private key material in the JWKS");

    let token = idp.client_credentials_token("orders.read orders.write").await;
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    let head = jwt_part(&token, 0);
    assert_eq!(head["alg"], want_alg);
    let kid = head["kid"].as_str().expect("kid in the JWT header");
    let key = keys.iter().find(|k| k["kid"] == kid).expect("the kid is in the JWKS");
    assert_eq!(key["alg"], want_alg);
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["scope"], "orders.read orders.write");
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
}

#[tokio::test]
async fn provider_issues_rs256_access_tokens_with_a_kid_in_its_jwks() {
    check_tokens_signed_with_published_key(AccessTokenAlg::Rs256, "RS256").await;
}

#[tokio::test]
async fn provider_issues_es256_access_tokens_with_a_kid_in_its_jwks() {
    check_tokens_signed_with_published_key(AccessTokenAlg::Es256, "ES256").await;
}

#[test]
fn base64_helpers_round_trip() {
    assert_eq!(base64_encode(b"portcullis-test:s"), "cG9ydGN1bGxpcy10ZXN0OnM=");
    assert_eq!(base64_encode(b"ab"), "YWI=");
    assert_eq!(base64url_decode("eyJhbGciOiJSUzI1NiJ9").as_deref(), Some(&br#"{"alg":"RS256"}"#[..]));
    assert_eq!(base64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
}

/// The gateway against the real provider: it discovers the JWKS from the issuer, accepts the
/// provider's client-credentials access tokens (RS256 and ES256), and a policy sees their
/// scopes; a token for another scope set is refused with `insufficient_scope`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_accepts_tokens_issued_by_a_real_openid_provider() {
    for alg in [AccessTokenAlg::Rs256, AccessTokenAlg::Es256] {
        let Some(idp) = OidcProvider::start_with(alg) else { return };
        let backend = crate::kit::Backend::ok().await;
        let config = format!(
            r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: off }} }}
auth:
  idp:
    type: jwt
    issuer: "{issuer}"
    audiences: ["{RESOURCE}"]
    algorithms: [RS256, ES256]
    forward_claims: {{ client_id: X-Client-Id }}
policies:
  writer: {{ scopes: [orders.write] }}
upstreams:
  b: {{ targets: ["{backend}"] }}
routes:
  - {{ name: read, match: {{ path: /orders }}, upstream: b, auth: {{ any: [idp] }} }}
  - {{ name: write, match: {{ path: /orders/new }}, upstream: b, auth: {{ any: [idp] }}, policy: writer }}
"#,
            issuer = idp.issuer,
            backend = backend.url()
        );
        let gw = crate::kit::TestGateway::start(&config).await;
        let token = idp.client_credentials_token("orders.read").await;
        let auth = format!("Bearer {token}");
        let r = get(&gw.url("/orders"), &[("authorization", &auth)]).await;
        assert_eq!(r.status, StatusCode::OK, "{alg:?}: {r:?}");
        let seen = &backend.requests()[0].headers;
        assert_eq!(seen["x-consumer"], CLIENT_ID, "the token's sub");
        assert_eq!(seen["x-client-id"], CLIENT_ID);
        let r = get(&gw.url("/orders/new"), &[("authorization", &auth)]).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "insufficient_scope".to_owned()), "{alg:?}");
        let writer = idp.client_credentials_token("orders.read orders.write").await;
        let r = get(&gw.url("/orders/new"), &[("authorization", &format!("Bearer {writer}"))]).await;
        assert_eq!(r.status, StatusCode::OK, "{alg:?}: {r:?}");
        // A token the provider never issued (signature bytes changed) is refused.
        let mut forged = token.clone();
        forged.truncate(forged.len() - 4);
        forged.push_str("AAAA");
        let r = get(&gw.url("/orders"), &[("authorization", &format!("Bearer {forged}"))]).await;
        assert_eq!(r.code(), "invalid_token");
        assert_eq!(backend.count(), 2);
    }
}
