//! Where JWKS documents come from: a trait, so that `explain`/`test` and unit tests can supply
//! keys without a network, and the HTTP(S) implementation with OIDC discovery.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;

use super::FetchError;
use super::JwtSettings;
use super::http::{Client, Response};

/// The whole fetch (discovery included) must be done within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One fetched JWKS document.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The JWKS JSON, unparsed.
    pub jwks: Bytes,
    /// `Cache-Control: max-age`; zero for `no-cache`/`no-store`; `None` when the response says
    /// neither. The provider clamps it.
    pub max_age: Option<Duration>,
}

/// The future a [`JwksSource`] returns.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// Fetches the JWKS of one provider.
pub trait JwksSource: Send + Sync + std::fmt::Debug {
    fn fetch(&self) -> FetchFuture<'_>;
}

/// A fixed JWKS document: keys supplied by a `portcullis test` case file, or by tests.
#[derive(Debug, Clone)]
pub struct StaticJwksSource(pub Bytes);

impl JwksSource for StaticJwksSource {
    fn fetch(&self) -> FetchFuture<'_> {
        let fetched = Fetched { jwks: self.0.clone(), max_age: None };
        Box::pin(async move { Ok(fetched) })
    }
}

/// The IdP over HTTP(S): `jwks_uri` if configured, else the one named by
/// `{issuer}/.well-known/openid-configuration`, whose `issuer` must be ours. The discovered URI
/// is kept and discovery repeated only after fetching it fails.
pub struct HttpJwksSource {
    client: Client,
    issuer: String,
    configured: Option<Uri>,
    discovered: Mutex<Option<Uri>>,
}

impl std::fmt::Debug for HttpJwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpJwksSource").field("issuer", &self.issuer).field("jwks_uri", &self.configured).finish()
    }
}

impl HttpJwksSource {
    /// Reads the `ca` bundle (or the system roots) and checks the URLs.
    pub fn new(settings: &JwtSettings) -> std::io::Result<Self> {
        let client = Client::new(settings.ca.as_deref())?;
        Self::with_client(settings, client)
    }

    /// Trusts `ca_roots`, the provider's `ca` bundle as the gateway's file step read it (else
    /// the system roots), and checks the URLs; reads no file.
    pub fn with_roots(settings: &JwtSettings, ca_roots: Option<rustls::RootCertStore>) -> std::io::Result<Self> {
        Self::with_client(settings, Client::with_roots(ca_roots)?)
    }

    fn with_client(settings: &JwtSettings, client: Client) -> std::io::Result<Self> {
        let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
        let configured = match &settings.jwks_uri {
            Some(uri) => Some(super::http::checked_uri(uri).map_err(|e| invalid(e.to_string()))?),
            None => {
                super::http::checked_uri(&discovery_url(&settings.issuer)).map_err(|e| invalid(e.to_string()))?;
                None
            }
        };
        Ok(Self { client, issuer: settings.issuer.clone(), configured, discovered: Mutex::new(None) })
    }

    async fn fetch_jwks(&self) -> Result<Fetched, FetchError> {
        let uri = match &self.configured {
            Some(uri) => uri.clone(),
            None => self.jwks_uri().await?,
        };
        let fetched = self.client.get(&uri).await.and_then(into_fetched);
        if fetched.is_err() && self.configured.is_none() {
            // Perhaps the IdP moved its keys: discover again next time.
            *self.discovered.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        fetched
    }

    async fn jwks_uri(&self) -> Result<Uri, FetchError> {
        if let Some(uri) = self.discovered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            return Ok(uri);
        }
        let discovery = super::http::checked_uri(&discovery_url(&self.issuer))?;
        let response = self.client.get(&discovery).await?;
        let uri = jwks_uri_from_discovery(&self.issuer, &response.body)?;
        *self.discovered.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(uri.clone());
        Ok(uri)
    }
}

impl JwksSource for HttpJwksSource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            tokio::time::timeout(FETCH_TIMEOUT, self.fetch_jwks()).await.unwrap_or(Err(FetchError::Timeout))
        })
    }
}

fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

fn into_fetched(response: Response) -> Result<Fetched, FetchError> {
    Ok(Fetched { jwks: response.body, max_age: response.max_age })
}

/// The `jwks_uri` of an OpenID Provider Metadata document, which must name `issuer` exactly
/// (OpenID Connect Discovery 1.0 §4.3), or a document from a mix-up could hand us its keys.
pub(crate) fn jwks_uri_from_discovery(issuer: &str, body: &[u8]) -> Result<Uri, FetchError> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        issuer: String,
        jwks_uri: String,
    }
    let metadata: Metadata =
        serde_json::from_slice(body).map_err(|e| FetchError::Discovery(format!("not OpenID metadata: {e}")))?;
    if metadata.issuer != issuer {
        return Err(FetchError::Discovery(format!("it names issuer `{}`, not `{issuer}`", metadata.issuer)));
    }
    super::http::checked_uri(&metadata.jwks_uri)
}
