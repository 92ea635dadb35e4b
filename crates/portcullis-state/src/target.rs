//! Where the limiter's connections go and how they are opened: the URL is parsed by the
//! `redis` crate (the same syntax and checks as [`crate::client`], which `validate` and the
//! response cache use), then this crate connects over TCP, TLS (rustls) or a Unix socket and
//! sends `AUTH` and `SELECT` as the URL says.

use std::sync::Arc;

use redis::ConnectionAddr;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::resp;

/// A connected byte stream: TCP, TLS over TCP, or a Unix socket.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// How to reach the server and log in. Holds the password: never printed.
pub(crate) struct Target {
    addr: ConnectionAddr,
    /// For `rediss://`: the client config (CA of `state.redis_ca` or the system's roots), or
    /// why there is none (then every connection attempt fails, as a bad certificate would).
    tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    username: Option<String>,
    password: Option<String>,
    db: i64,
}

/// Why a connection could not be opened (only the fact is used; it is not logged).
#[derive(Debug)]
pub(crate) struct ConnectError;

impl From<std::io::Error> for ConnectError {
    fn from(_: std::io::Error) -> Self {
        ConnectError
    }
}

impl Target {
    /// From a client the `redis` crate built from the URL (and checked).
    pub(crate) fn new(client: &redis::Client, ca_pem: Option<&[u8]>) -> Self {
        let info = client.get_connection_info();
        let settings = info.redis_settings();
        let addr = info.addr().clone();
        let tls = matches!(addr, ConnectionAddr::TcpTls { .. }).then(|| tls_config(ca_pem));
        Self {
            addr,
            tls,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
        }
    }

    /// Opens a stream (the caller bounds the time).
    pub(crate) async fn connect(&self) -> Result<Box<dyn Io>, ConnectError> {
        match &self.addr {
            ConnectionAddr::Tcp(host, port) => Ok(Box::new(tcp(host, *port).await?)),
            ConnectionAddr::TcpTls { host, port, insecure, .. } => {
                // `#insecure` (no certificate check) fails as it did with the `redis` crate
                // built without its insecure feature: the certificate is always checked.
                let (Some(Ok(config)), false) = (&self.tls, insecure) else {
                    return Err(ConnectError);
                };
                let name = ServerName::try_from(host.clone()).map_err(|_| ConnectError)?;
                let stream = tcp(host, *port).await?;
                let tls = tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream).await?;
                Ok(Box::new(tls))
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
            #[allow(unreachable_patterns)]
            _ => Err(ConnectError),
        }
    }

    /// Writes the commands a fresh connection sends first (`AUTH`, `SELECT`); returns how many.
    pub(crate) fn handshake(&self, buf: &mut Vec<u8>) -> usize {
        let mut commands = 0;
        if let Some(password) = &self.password {
            match &self.username {
                Some(user) => {
                    resp::array_header(buf, 3);
                    resp::bulk(buf, b"AUTH");
                    resp::bulk(buf, user.as_bytes());
                }
                None => {
                    resp::array_header(buf, 2);
                    resp::bulk(buf, b"AUTH");
                }
            }
            resp::bulk(buf, password.as_bytes());
            commands += 1;
        }
        if self.db != 0 {
            resp::array_header(buf, 2);
            resp::bulk(buf, b"SELECT");
            resp::bulk(buf, self.db.to_string().as_bytes());
            commands += 1;
        }
        commands
    }
}

async fn tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    // Batches are written whole: Nagle would only hold a lone decision back.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The rustls client config: the PEM CAs given, or else the system's roots.
fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|e| format!("state.redis_ca: {e}"))?).map_err(|e| e.to_string())?;
            }
        }
        None => {
            // Certificates the platform store holds but rustls cannot use are skipped.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
