//! JWT bearer tokens verified against an IdP's JWKS (SPEC §3 "Authentication details").
//!
//! A [`JwtProvider`] is one `type: jwt` entry of the config. Requests call
//! [`JwtProvider::verify`], which is synchronous and does no I/O: it reads the current key set
//! from an `ArcSwap` snapshot and a cache of tokens already verified. Keys arrive from a
//! [`JwksSource`] — [`HttpJwksSource`] in the gateway, [`StaticJwksSource`] offline — fetched
//! by the background task of [`JwtProvider::spawn_refresh`] and, when a token names a `kid` we
//! do not know, by [`JwtProvider::refetch_for_unknown_kid`]:
//!
//! ```text
//! verify ──► UnknownKid or NoKeys ──► may_refetch()? ──► refetch_for_unknown_kid().await
//!                                                          ──► verify again (once)
//! ```
//!
//! When `may_refetch()` is false the error stands (`invalid_token`): at most one refetch per
//! 30 s per provider, so made-up `kid`s cannot turn into a flood of requests to the IdP.
//! Header parameters that point at keys (`jku`, `x5u`, `jwk`, `x5c`) are ignored: keys only
//! ever come from the configured JWKS.
//!
//! A fetch that fails, or brings a document with no usable key, never replaces the keys in use:
//! while the IdP is down the last good keys keep serving.

mod cache;
mod error;
mod fetch;
mod http;
mod keys;
mod refresh;
mod verify;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

pub use error::{FetchError, JwtError, TokenFault};
pub use fetch::{FETCH_TIMEOUT, FetchFuture, Fetched, HttpJwksSource, JwksSource, StaticJwksSource};
pub use jsonwebtoken::Algorithm;
pub use refresh::{DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH, REFETCH_INTERVAL, RefreshEvents};
pub use verify::MAX_TOKEN_BYTES;

use cache::{Entry, VerifiedCache};
use keys::KeySet;

/// What a provider checks; equal settings across a config reload keep the provider (and its
/// keys and cache).
#[derive(Clone, Debug, PartialEq)]
pub struct JwtSettings {
    /// The provider's name in the config, for logs and metrics.
    pub provider: Arc<str>,
    /// `iss` must equal this.
    pub issuer: String,
    /// `None`: OIDC discovery from `issuer`.
    pub jwks_uri: Option<String>,
    /// PEM bundle trusted for the IdP; `None`: the system roots.
    pub ca: Option<PathBuf>,
    /// `aud` must contain one of these; empty: `aud` is not required.
    pub audiences: Vec<String>,
    /// The allow-list; HS* is refused even when listed, and `none` cannot be listed.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Slack for `exp` and `nbf`, in whole seconds.
    pub leeway: Duration,
}

/// A token that passed: its claims and the parts of them the gateway uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub subject: Option<String>,
    /// `exp`, in unix seconds (always present: a token without `exp` is refused).
    pub expires_at: Option<u64>,
    /// From `scope` (space separated) and `scp` (a string or an array).
    pub scopes: Vec<String>,
}

/// The keys in use and a number that changes whenever they do (it invalidates cached tokens).
struct Current {
    generation: u64,
    keys: KeySet,
    /// The document they came from, to tell a refresh that changed nothing.
    jwks: bytes::Bytes,
}

/// One JWT auth provider. Used as `Arc<JwtProvider>`.
pub struct JwtProvider {
    settings: JwtSettings,
    source: Arc<dyn JwksSource>,
    events: Arc<dyn RefreshEvents>,
    current: ArcSwap<Current>,
    cache: VerifiedCache,
    refetch: refresh::RefetchState,
}

impl std::fmt::Debug for JwtProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtProvider").field("settings", &self.settings).field("source", &self.source).finish()
    }
}

impl JwtProvider {
    /// A provider with no keys yet: call [`spawn_refresh`](Self::spawn_refresh) (or await
    /// [`refetch_for_unknown_kid`](Self::refetch_for_unknown_kid)) to fetch them.
    pub fn new(settings: JwtSettings, source: Arc<dyn JwksSource>, events: Arc<dyn RefreshEvents>) -> Arc<Self> {
        Self::build(settings, source, events, REFETCH_INTERVAL)
    }

    fn build(
        settings: JwtSettings,
        source: Arc<dyn JwksSource>,
        events: Arc<dyn RefreshEvents>,
        refetch_interval: Duration,
    ) -> Arc<Self> {
        let empty = Current { generation: 0, keys: KeySet::default(), jwks: bytes::Bytes::new() };
        Arc::new(Self {
            settings,
            source,
            events,
            current: ArcSwap::from_pointee(empty),
            cache: VerifiedCache::new(),
            refetch: refresh::RefetchState::new(refetch_interval),
        })
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Verifies a bearer token at `now` (Unix seconds: the request's clock, so `explain` and
    /// `test` judge a case at the time it names): synchronous, never blocks, no I/O. A token
    /// verified before against the same keys comes from the cache (its expiry checked again).
    pub fn verify(&self, token: &str, now: u64) -> Result<Arc<Verified>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        let current = self.current.load();
        let key = self.cache.key(token);
        if let Some(hit) = self.cache.get(key, token, now, current.generation) {
            return Ok(hit);
        }
        let verified = Arc::new(verify::verify(&self.settings, &current.keys, token, now)?);
        let exp = verified.expires_at.unwrap_or(0);
        let entry = Entry {
            token: Arc::from(token),
            verified: Arc::clone(&verified),
            valid_until: exp.saturating_add(self.settings.leeway.as_secs()),
            generation: current.generation,
        };
        self.cache.insert(key, entry);
        Ok(verified)
    }

    /// Installs a JWKS document now, without a fetch: for `portcullis explain`/`test`, whose
    /// case files supply the keys and which have no runtime to fetch with. A document with no
    /// usable key is refused and the keys in use stay. Returns how many keys are now in use.
    pub fn load_jwks(&self, jwks: bytes::Bytes) -> Result<usize, FetchError> {
        let keys = KeySet::parse(&jwks).map_err(FetchError::Jwks)?;
        let count = keys.keys.len();
        self.install(jwks, keys);
        Ok(count)
    }

    /// How many usable keys are in use.
    pub fn key_count(&self) -> usize {
        self.current.load().keys.keys.len()
    }

    /// Installs a freshly parsed key set unless it is the document already in use.
    fn install(&self, jwks: bytes::Bytes, keys: KeySet) {
        let old = self.current.load();
        if old.jwks == jwks {
            return;
        }
        let generation = old.generation.wrapping_add(1);
        self.current.store(Arc::new(Current { generation, keys, jwks }));
    }
}
