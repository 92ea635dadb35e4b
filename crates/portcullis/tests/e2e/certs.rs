//! Generated certificates and TLS clients for the tests: a throwaway rcgen CA per test, leaf
//! certificates (server or client, chosen subject, SANs and expiry), rustls configs for
//! backends and clients, and an HTTPS connection to the gateway that reports what the
//! handshake gave (peer certificate, ALPN, version).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::kit::{Reply, WAIT};

/// A throwaway certificate authority.
pub(crate) struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) ca_pem: String,
}

/// A leaf certificate and its key, PEM, and the certificate's DER (to compare with what a
/// peer presented).
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: CertificateDer<'static>,
}

/// What a leaf certificate says beyond its names.
pub(crate) struct LeafSpec<'a> {
    pub(crate) names: &'a [&'a str],
    pub(crate) client: bool,
    /// Subject attributes in DER order (most significant first: `O` before `CN`).
    pub(crate) subject: &'a [(DnType, &'a str)],
    pub(crate) not_after: Option<SystemTime>,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let ca_pem = params.self_signed(&key).expect("CA cert").pem();
        Self { issuer: Issuer::new(params, key), ca_pem }
    }

    /// A server (or, with `client`, client) certificate for `names` (DNS names or IPs).
    pub(crate) fn leaf(&self, names: &[&str], client: bool) -> Leaf {
        self.issue(&LeafSpec { names, client, subject: &[(DnType::CommonName, "portcullis-test")], not_after: None })
    }

    pub(crate) fn issue(&self, spec: &LeafSpec<'_>) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = spec.names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        // rcgen starts with a default CN; replace it so the subject has exactly this order.
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in spec.subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params.extended_key_usages =
            vec![if spec.client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
        if let Some(at) = spec.not_after {
            let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970");
            params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    pub(crate) fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA cert");
        }
        roots
    }

    /// Writes the CA certificate to `dir/name`.
    pub(crate) fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).expect("write CA");
        path
    }
}

impl Leaf {
    /// Writes `dir/{stem}.pem` and `dir/{stem}-key.pem`.
    pub(crate) fn write(&self, dir: &Path, stem: &str) {
        std::fs::write(dir.join(format!("{stem}.pem")), &self.cert_pem).expect("write cert");
        std::fs::write(dir.join(format!("{stem}-key.pem")), &self.key_pem).expect("write key");
    }
}

/// A point in time `days` from now (whole seconds, as certificates carry them).
pub(crate) fn days_from_now(days: u64) -> SystemTime {
    let at = SystemTime::now() + Duration::from_secs(days * 86_400);
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A backend's rustls config: `leaf` as its certificate, ALPN h2 and http/1.1, and client
/// certificates from `client_ca` required when given.
pub(crate) fn server_config(leaf: &Leaf, client_ca: Option<&Pki>) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes()).collect::<Result<_, _>>().expect("chain");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().expect("v");
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider()).build().expect("verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).expect("server cert");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// How a test client connects.
pub(crate) struct ClientOptions<'a> {
    /// `None`: accept any server certificate (to look at which one was served).
    pub(crate) trust: Option<&'a Pki>,
    pub(crate) client_cert: Option<&'a Leaf>,
    pub(crate) versions: &'a [&'static rustls::SupportedProtocolVersion],
    pub(crate) alpn: &'a [&'a [u8]],
    pub(crate) sni: bool,
    /// Keep sessions to resume later handshakes made with the same config.
    pub(crate) resumption: bool,
}

impl Default for ClientOptions<'_> {
    fn default() -> Self {
        Self {
            trust: None,
            client_cert: None,
            versions: rustls::ALL_VERSIONS,
            alpn: &[b"http/1.1"],
            sni: true,
            resumption: false,
        }
    }
}

/// A client config; unless asked for, session resumption is off, so every handshake shows
/// the certificate the server picks now.
pub(crate) fn client_config(options: &ClientOptions<'_>) -> Arc<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_protocol_versions(options.versions).expect("versions");
    let builder = match options.trust {
        Some(pki) => builder.with_root_certificates(pki.roots()),
        None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider()))),
    };
    let mut config = match options.client_cert {
        Some(leaf) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes()).collect::<Result<_, _>>().expect("chain");
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
            builder.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_sni = options.sni;
    if !options.resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// Accepts any server certificate (signatures are still checked), so a test can see which
/// certificate was served even when it does not name the requested host.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One HTTPS connection to the gateway, HTTP/2 when ALPN chose `h2`.
pub(crate) struct HttpsConn {
    sender: Sender,
    host: String,
    /// The leaf certificate the server presented.
    pub(crate) peer_cert: Option<CertificateDer<'static>>,
    pub(crate) alpn: Option<Vec<u8>>,
    pub(crate) version: Option<rustls::ProtocolVersion>,
    /// The handshake resumed an earlier session.
    pub(crate) resumed: bool,
}

impl HttpsConn {
    /// Connects and completes the TLS handshake (bounded by [`WAIT`]). `host` is the SNI (when
    /// the config sends it), the name verified, and the `Host` of requests.
    pub(crate) async fn connect(addr: SocketAddr, host: &str, config: Arc<ClientConfig>) -> Result<Self, String> {
        let connect = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("server name: {e}"))?;
            let tls = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
            let session = tls.get_ref().1;
            let peer_cert = session.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
            let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
            let version = session.protocol_version();
            let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            let io = TokioIo::new(tls);
            let sender = if alpn.as_deref() == Some(b"h2") {
                let (sender, conn) =
                    http2::handshake(TokioExecutor::new(), io).await.map_err(|e| format!("h2 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H2(sender)
            } else {
                let (sender, conn) = http1::handshake(io).await.map_err(|e| format!("h1 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H1(sender)
            };
            Ok(Self { sender, host: host.to_owned(), peer_cert, alpn, version, resumed })
        };
        tokio::time::timeout(WAIT, connect).await.map_err(|_| "connect timed out".to_owned())?
    }

    /// GET `path` on this connection and read the whole response (bounded by [`WAIT`]).
    pub(crate) async fn get(&mut self, path: &str) -> Result<Reply, String> {
        let fetch = async {
            let response = match &mut self.sender {
                Sender::H1(s) => {
                    s.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                    let req = Request::get(path).header("host", &self.host).body(Full::default()).expect("request");
                    s.send_request(req).await
                }
                Sender::H2(s) => {
                    s.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                    let uri = format!("https://{}{path}", self.host);
                    s.send_request(Request::get(uri).body(Full::default()).expect("request")).await
                }
            }
            .map_err(|e| format!("request: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok(Reply { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(WAIT, fetch).await.map_err(|_| "request timed out".to_owned())?
    }
}

/// Connects, GETs `path` on a fresh connection, and closes it.
pub(crate) async fn https_get(
    addr: SocketAddr,
    host: &str,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<Reply, String> {
    HttpsConn::connect(addr, host, config).await?.get(path).await
}
