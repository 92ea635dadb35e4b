//! The live side of authentication: one [`JwtProvider`] per `type: jwt` provider, with its
//! JWKS key set, refresh task and verified-token cache. A reload that keeps a provider's
//! verification settings keeps the provider (keys and cache survive); changed settings get a
//! fresh one, and the old one's refresh task ends when its last runtime is dropped.

use std::sync::{Arc, OnceLock};

use portcullis_auth::jwt::{HttpJwksSource, JwtProvider, RefreshEvents};
use portcullis_core::Snapshot;
use portcullis_core::snapshot::ProviderKind;
use portcullis_core::stage::AuthSources;

use portcullis_telemetry::metrics::Metrics;

/// JWKS refresh results go to the process's metrics, which a runtime learns only once the
/// gateway adopts it.
#[derive(Default)]
struct RefreshCounter {
    metrics: OnceLock<Arc<Metrics>>,
}

impl std::fmt::Debug for RefreshCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshCounter")
    }
}

impl RefreshEvents for RefreshCounter {
    fn refreshed(&self, provider: &str, result: &'static str) {
        match result {
            "ok" => tracing::debug!(provider, "JWKS refreshed"),
            _ => tracing::warn!(provider, "JWKS refresh failed; the known keys keep serving"),
        }
        if let Some(metrics) = self.metrics.get() {
            metrics.jwks_refresh(provider, result);
        }
    }
}

#[derive(Debug)]
pub struct Identity {
    /// Per entry of `snapshot.providers`.
    jwt: Vec<Option<Arc<JwtProvider>>>,
    /// Providers made for this runtime whose refresh task is not running yet.
    fresh: Vec<bool>,
    events: Arc<RefreshCounter>,
}

impl Identity {
    /// Makes a provider for each `type: jwt` entry, trusting the `ca` bundle `files` holds for
    /// it. Nothing is fetched until [`Identity::start`].
    pub fn new(snapshot: &Snapshot, files: &crate::files::LoadedFiles) -> std::io::Result<Self> {
        let events = Arc::new(RefreshCounter::default());
        let mut jwt = Vec::with_capacity(snapshot.providers.len());
        for provider in &snapshot.providers {
            jwt.push(match &provider.kind {
                ProviderKind::Jwt(spec) => {
                    let named = |e: &dyn std::fmt::Display| {
                        std::io::Error::other(format!("auth provider `{}`: {e}", provider.name))
                    };
                    let roots = match (&spec.settings.ca, files.jwt_ca(&provider.name)) {
                        (Some(_), None) => return Err(named(&"its `ca` was not loaded")),
                        (Some(_), Some(roots)) => Some(roots.clone()),
                        (None, _) => None,
                    };
                    let source = HttpJwksSource::with_roots(&spec.settings, roots).map_err(|e| named(&e))?;
                    Some(JwtProvider::new(spec.settings.clone(), Arc::new(source), events.clone()))
                }
                _ => None,
            });
        }
        let fresh = jwt.iter().map(Option::is_some).collect();
        Ok(Self { jwt, fresh, events })
    }

    /// Keeps the previous runtime's providers whose settings did not change.
    pub fn adopt(&mut self, previous: &Self) {
        for (slot, fresh) in self.jwt.iter_mut().zip(self.fresh.iter_mut()) {
            let Some(mine) = slot.as_ref() else { continue };
            let kept = previous.jwt.iter().flatten().find(|p| p.settings() == mine.settings());
            if let Some(kept) = kept {
                *slot = Some(kept.clone());
                *fresh = false;
            }
        }
    }

    /// Starts the refresh task of every provider made for this runtime (needs Tokio).
    pub fn start(&mut self, metrics: &Arc<Metrics>) {
        let _ = self.events.metrics.set(metrics.clone());
        for (slot, fresh) in self.jwt.iter().zip(self.fresh.iter_mut()) {
            if let Some(provider) = slot
                && *fresh
            {
                provider.spawn_refresh();
                *fresh = false;
            }
        }
    }

    /// What the pipeline's authentication stage reads; `keys`: the database's key index.
    pub fn sources<'a>(&'a self, keys: Option<&'a portcullis_auth::api_key::KeyIndex>) -> AuthSources<'a> {
        AuthSources { jwt: &self.jwt, keys }
    }

    /// The live JWT providers (for `/ready` and tests).
    pub fn jwt_providers(&self) -> impl Iterator<Item = &Arc<JwtProvider>> {
        self.jwt.iter().flatten()
    }
}
