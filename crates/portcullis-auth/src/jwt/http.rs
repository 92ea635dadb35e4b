//! The smallest HTTP/1.1 GET the JWKS fetch needs: one connection per request (a fetch happens
//! at most every minute), TLS through rustls with ring like the upstream client, no redirects,
//! 200 only, the body capped at [`MAX_BODY_BYTES`].

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONNECTION, HOST, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::FetchError;

/// The largest JWKS or discovery document read.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) struct Client {
    tls: TlsConnector,
}

pub(crate) struct Response {
    pub(crate) body: Bytes,
    pub(crate) max_age: Option<Duration>,
}

impl Client {
    /// Trusts the PEM bundle at `ca`, else the system roots.
    pub(crate) fn new(ca: Option<&Path>) -> io::Result<Self> {
        Self::with_roots(ca.map(ca_roots).transpose()?)
    }

    /// Trusts `roots` (a `ca` bundle already read), else the system roots.
    pub(crate) fn with_roots(roots: Option<RootCertStore>) -> io::Result<Self> {
        let roots = roots.unwrap_or_else(system_roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: TlsConnector::from(Arc::new(config)) })
    }

    /// GET `uri` (already passed through [`checked_uri`]).
    pub(crate) async fn get(&self, uri: &Uri) -> Result<Response, FetchError> {
        let bad = || FetchError::BadUrl(uri.to_string());
        let authority = uri.authority().ok_or_else(bad)?;
        let https = uri.scheme_str() == Some("https");
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host, port)).await.map_err(|e| FetchError::Connect(authority.to_string(), e))?;
        if !https {
            return request(TokioIo::new(tcp), uri).await;
        }
        let name = ServerName::try_from(host.to_owned()).map_err(|_| bad())?;
        let tls = self.tls.connect(name, tcp).await.map_err(|e| FetchError::Tls(authority.to_string(), e))?;
        request(TokioIo::new(tls), uri).await
    }
}

async fn request<T>(io: TokioIo<T>, uri: &Uri) -> Result<Response, FetchError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // Driven beside the request; it ends when the response is read (`Connection: close`).
    let driver = tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let host = uri.authority().map_or("", |a| a.as_str());
    let request = Request::get(path)
        .header(HOST, host)
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, "portcullis")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| FetchError::BadUrl(uri.to_string()))?;
    let response = sender.send_request(request).await;
    let result = match response {
        Err(e) => Err(FetchError::Http(e)),
        Ok(response) if response.status() != StatusCode::OK => Err(FetchError::Status(response.status().as_u16())),
        Ok(response) => {
            let max_age = max_age(response.headers());
            match Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await {
                Ok(body) => Ok(Response { body: body.to_bytes(), max_age }),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::BodyTooLarge),
                Err(e) => Err(e.downcast::<hyper::Error>().map_or(FetchError::BodyTooLarge, |e| FetchError::Http(*e))),
            }
        }
    };
    driver.abort();
    result
}

/// `max-age` in seconds; zero for `no-cache`/`no-store` (the caller's floor then applies).
pub(crate) fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(Ok(secs)) = lower.strip_prefix("max-age=").map(|s| s.trim_matches('"').parse::<u64>()) {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

/// Parses a fetch URL: `https`, or `http` to a loopback host only.
pub(crate) fn checked_uri(raw: &str) -> Result<Uri, FetchError> {
    let bad = || FetchError::BadUrl(raw.to_owned());
    let uri: Uri = raw.parse().map_err(|_| bad())?;
    // Credentials in the URL would be sent nowhere (we set no Authorization) and logged.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad());
    }
    let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']');
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        _ => Err(bad()),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn ca_roots(path: &Path) -> io::Result<RootCertStore> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("ca `{}`: {what}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the file".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The system roots; an empty store when none are found (https then fails at the handshake,
/// which is logged with each fetch), so that a loopback-only setup needs no CA store.
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system root certificates found: https JWKS fetches will fail unless `ca` is set");
    }
    roots
}
