//! TLS to upstream targets. One rustls client config per upstream, built when the runtime is
//! from the files [`crate::files::load_files`] read: verification always on (the configured
//! `ca` bundle, else the system roots), the optional client certificate, and ALPN by protocol
//! (`h2` for `protocol: h2`, else `http/1.1`). The HTTP/1.1 pool calls
//! [`UpstreamTls::connect`] on each new connection; the HTTP/2 client gets the same handshake
//! through [`TlsConnect`]. Plain targets never touch this module.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Authority;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use portcullis_core::snapshot::{Protocol, UpstreamTlsSpec};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::files::UpstreamFiles;

/// The TLS side of one upstream.
#[derive(Clone)]
pub(crate) struct UpstreamTls {
    connector: TlsConnector,
    /// `tls.server_name` for every target; `None`: each target's host.
    server_name: Option<ServerName<'static>>,
    upstream: Arc<str>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// Builds the client config from the files [`crate::files::load_files`] read: the trust
    /// anchors and the client certificate.
    pub(crate) fn new(
        upstream: &str,
        spec: &UpstreamTlsSpec,
        protocol: Protocol,
        files: &UpstreamFiles,
    ) -> io::Result<Self> {
        let fail = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("upstream `{upstream}`: {what}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(format!("TLS setup: {e}")))?
            .with_root_certificates(files.roots.clone());
        let mut config = match (&spec.client_cert, &files.client) {
            (None, _) => builder.with_no_client_auth(),
            (Some(client), Some((chain, key))) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| fail(format!("tls.client_cert `{}` with tls.client_key: {e}", client.cert.display())))?,
            (Some(client), None) => {
                return Err(fail(format!("tls.client_cert `{}` was not loaded", client.cert.display())));
            }
        };
        config.alpn_protocols = match protocol {
            Protocol::H2 => vec![b"h2".to_vec()],
            // `auto` is served by the HTTP/1.1 pool in this build.
            Protocol::Http1 | Protocol::Auto => vec![b"http/1.1".to_vec()],
        };
        let server_name = match &spec.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| fail(format!("tls.server_name `{name}` is not a DNS name or IP address")))?,
            ),
            None => None,
        };
        Ok(Self { connector: TlsConnector::from(Arc::new(config)), server_name, upstream: Arc::from(upstream) })
    }

    /// The name sent as SNI and verified for a target: the override, else its host.
    pub(crate) fn server_name_for(&self, authority: &Authority) -> io::Result<ServerName<'static>> {
        self.name_for_host(authority.host())
    }

    fn name_for_host(&self, host: &str) -> io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upstream `{}`: `{host}` is not a TLS server name; set tls.server_name", self.upstream),
            )
        })
    }

    /// The handshake over a connected socket; the certificate is verified against `name`.
    pub(crate) async fn connect(&self, name: ServerName<'static>, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.connector.connect(name, tcp).await.inspect_err(|e| {
            tracing::warn!(upstream = %self.upstream, error = %e, "TLS handshake with a target failed");
        })
    }
}

/// The HTTP/2 client's connector for TLS upstreams: TCP by hyper-util's connector, then the
/// upstream's handshake, both within the connect timeout.
#[derive(Clone)]
pub(crate) struct TlsConnect {
    http: HttpConnector,
    tls: UpstreamTls,
    timeout: Duration,
}

impl TlsConnect {
    /// `http` must accept `https` URIs (`enforce_http(false)`).
    pub(crate) fn new(http: HttpConnector, tls: UpstreamTls, timeout: Duration) -> Self {
        Self { http, tls, timeout }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for TlsConnect {
    type Response = TlsIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (mut http, tls, timeout) = (self.http.clone(), self.tls.clone(), self.timeout);
        Box::pin(async move {
            let connecting = async {
                let name = tls.name_for_host(uri.host().unwrap_or_default())?;
                let tcp = http.call(uri).await?.into_inner();
                let stream = tls.connect(name, tcp).await?;
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                Ok::<_, BoxError>(TlsIo { io: TokioIo::new(stream), h2 })
            };
            tokio::time::timeout(timeout, connecting).await.map_err(|_| BoxError::from("TLS connect timed out"))?
        })
    }
}

/// A TLS connection as the HTTP/2 client sees it.
pub(crate) struct TlsIo {
    io: TokioIo<TlsStream<TcpStream>>,
    h2: bool,
}

impl Connection for TlsIo {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 { connected.negotiated_h2() } else { connected }
    }
}

impl hyper::rt::Read for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
