//! Downstream TLS: each listener's certificates, chosen by SNI against their subject
//! alternative names (the first is the default), client certificates (mTLS) verified against
//! the listener's `client_ca`, and what a handshake established for later stages.
//!
//! A [`ListenerTls`] is built with the [`crate::Runtime`] of one config, from the files
//! [`crate::files::load_files`] read for that load: a certificate rotation is a reload, and
//! new handshakes pick up the runtime that is current when they start. Session tickets and the session cache survive reloads,
//! so resumption keeps working across a rotation; they are shared only by listeners that
//! verify clients the same way (see [`Resumption`]).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use portcullis_core::snapshot::ListenerTlsSpec;
use portcullis_core::{ClientCert, TlsInfo};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;
use tokio_rustls::TlsAcceptor;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::files::ListenerFiles;

/// Below this much validity left, loading a certificate logs a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Resumption cache entries per listener (a few hundred bytes each).
const SESSION_CACHE: usize = 4096;

/// The TLS side of one listener under one config.
pub struct ListenerTls {
    pub acceptor: TlsAcceptor,
    pub certificates: Vec<CertificateInfo>,
    /// Keeps the resumption state shared while a config uses it.
    _resumption: Arc<Resumption>,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls").field("certificates", &self.certificates).finish_non_exhaustive()
    }
}

/// What the admin API and the expiry metric show of a served certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// The first DNS subject alternative name (else the subject's CN, else the file name).
    pub name: String,
    pub sans: Vec<String>,
    pub not_after: SystemTime,
    pub file: PathBuf,
    /// The serial number, lower-case hex without leading zeros (as `openssl x509 -serial`
    /// prints it, in lower case).
    pub serial: String,
    /// SHA-256 of the DER certificate, lower-case hex pairs joined by `:`.
    pub sha256: String,
}

impl CertificateInfo {
    /// Seconds of validity left (negative once expired).
    pub fn seconds_left(&self, now: SystemTime) -> f64 {
        match self.not_after.duration_since(now) {
            Ok(left) => left.as_secs_f64(),
            Err(past) => -past.duration().as_secs_f64(),
        }
    }
}

/// Builds the listener's acceptor from its certificates, keys and client CA, read and
/// checked by [`crate::files::load_files`]. `h2`: offer ALPN `h2` besides `http/1.1`.
pub(crate) fn build(spec: &ListenerTlsSpec, files: &ListenerFiles, h2: bool) -> io::Result<ListenerTls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut entries = Vec::with_capacity(files.certificates.len());
    let mut certificates = Vec::with_capacity(files.certificates.len());
    for (certified, info) in &files.certificates {
        let names = info.sans.iter().filter_map(|s| s.strip_prefix("DNS:")).map(str::to_ascii_lowercase).collect();
        entries.push((names, certified.clone()));
        certificates.push(info.clone());
    }
    if entries.is_empty() || entries.len() != spec.certificates.len() {
        return Err(invalid("a TLS listener needs every certificate it names loaded".into()));
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        if spec.allow_tls12 { &[&rustls::version::TLS13, &rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| invalid(format!("TLS versions: {e}")))?;
    let (builder, trust) = match (&spec.client_ca, &files.client_ca) {
        (Some(ca), Some(roots)) => {
            let trust = ClientTrust::Verified { roots: roots_digest(roots), required: spec.client_cert_required };
            let verifier = client_verifier(ca, roots.clone(), spec.client_cert_required, provider)?;
            (builder.with_client_cert_verifier(verifier), trust)
        }
        (Some(ca), None) => return Err(invalid(format!("{}: the client CA was not loaded", ca.display()))),
        (None, _) => (builder.with_no_client_auth(), ClientTrust::Anyone),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver { entries }));
    config.alpn_protocols = if h2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    let resumption = Resumption::for_trust(trust);
    config.session_storage = resumption.sessions.clone();
    if let Some(ticketer) = &resumption.ticketer {
        config.ticketer = ticketer.clone();
    }
    Ok(ListenerTls { acceptor: TlsAcceptor::from(Arc::new(config)), certificates, _resumption: resumption })
}

/// How a listener verifies clients; sessions resume only between listeners (and configs)
/// that agree on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientTrust {
    /// No client certificates asked for.
    Anyone,
    /// Client certificates verified against these CA certificates (a SHA-256 of them).
    Verified { roots: Vec<u8>, required: bool },
}

/// Session tickets and the session-ID cache, kept across reloads for listeners of one
/// [`ClientTrust`]. rustls does not verify the client again when a session resumes, so a
/// ticket issued where no certificate was asked for (another listener, or before a reload
/// that set `client_cert: required` or changed `client_ca`) must not decrypt here: it then
/// falls back to a full handshake, with the certificate check.
struct Resumption {
    ticketer: Option<Arc<dyn ProducesTickets>>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl Resumption {
    fn for_trust(trust: ClientTrust) -> Arc<Self> {
        static SHARED: OnceLock<Mutex<HashMap<ClientTrust, Weak<Resumption>>>> = OnceLock::new();
        let mut shared = SHARED.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
        // A state no config holds any more (a replaced client CA) is dropped.
        shared.retain(|_, state| state.strong_count() > 0);
        if let Some(state) = shared.get(&trust).and_then(Weak::upgrade) {
            return state;
        }
        let state = Arc::new(Self {
            ticketer: rustls::crypto::ring::Ticketer::new().ok(),
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE),
        });
        shared.insert(trust, Arc::downgrade(&state));
        state
    }
}

fn roots_digest(roots: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for root in roots {
        digest.update(&(root.len() as u64).to_be_bytes());
        digest.update(root.as_ref());
    }
    digest.finish().as_ref().to_vec()
}

fn client_verifier(
    ca: &Path,
    certs: Vec<CertificateDer<'static>>,
    required: bool,
    provider: Arc<CryptoProvider>,
) -> io::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| invalid(format!("{}: not a usable CA certificate ({e})", ca.display())))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required { builder } else { builder.allow_unauthenticated() };
    builder.build().map_err(|e| invalid(format!("{}: {e}", ca.display())))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Name, SANs and expiry of a leaf certificate.
pub(crate) fn describe(der: &[u8], file: &Path) -> io::Result<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| invalid(format!("{}: not an X.509 certificate ({e})", file.display())))?;
    let sans = subject_alt_names(&cert);
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    let name = sans
        .iter()
        .find_map(|s| s.strip_prefix("DNS:"))
        .map(str::to_owned)
        .or(cn)
        .unwrap_or_else(|| file.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned()));
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    Ok(CertificateInfo {
        name,
        sans,
        not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(not_after),
        file: file.to_path_buf(),
        serial: format!("{:x}", cert.serial),
        sha256: colon_hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
    })
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// SANs as `DNS:name`, `IP:addr`, `URI:uri`, `email:addr`.
fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return Vec::new() };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
            GeneralName::URI(u) => Some(format!("URI:{u}")),
            GeneralName::RFC822Name(e) => Some(format!("email:{e}")),
            GeneralName::IPAddress(bytes) => ip_text(bytes).map(|ip| format!("IP:{ip}")),
            _ => None,
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Picks the certificate whose SANs name the requested host (exact, then a one-label
/// wildcard); without SNI or a match, the first certificate.
#[derive(Debug)]
struct SniResolver {
    entries: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(host) = server_name {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            if let Some((_, key)) = self.entries.iter().find(|(names, _)| names.contains(&host)) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = host.split_once('.') {
                let found = self
                    .entries
                    .iter()
                    .find(|(names, _)| names.iter().any(|n| n.strip_prefix("*.").is_some_and(|rest| rest == parent)));
                if let Some((_, key)) = found {
                    return Some(key.clone());
                }
            }
        }
        self.entries.first().map(|(_, key)| key.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// What later stages may know of a finished handshake.
pub fn session_info(conn: &ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    let client_cert = conn.peer_certificates().and_then(|chain| chain.first()).and_then(|leaf| {
        let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
        Some(ClientCert { subject: rfc4514(&cert), sans: subject_alt_names(&cert) })
    });
    TlsInfo { version, server_name: conn.server_name().map(str::to_owned), client_cert }
}

/// The subject as an RFC 4514 string: RDNs last-to-first, `CN=acme-billing,O=Acme`.
fn rfc4514(cert: &X509Certificate<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut parts = Vec::new();
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type();
                let key = match x509_parser::objects::oid2sn(oid, registry) {
                    Ok("commonName") | Ok("CN") => "CN".to_owned(),
                    Ok(sn) => short_name(sn).unwrap_or(sn).to_owned(),
                    Err(_) => oid.to_id_string(),
                };
                let value = attr.as_str().map_or_else(|_| hex_value(attr.as_slice()), escape_dn_value);
                format!("{key}={value}")
            })
            .collect();
        parts.push(attrs.join("+"));
    }
    parts.join(",")
}

fn short_name(sn: &str) -> Option<&'static str> {
    Some(match sn {
        "organizationName" | "O" => "O",
        "organizationalUnitName" | "OU" => "OU",
        "countryName" | "C" => "C",
        "localityName" | "L" => "L",
        "stateOrProvinceName" | "ST" => "ST",
        "streetAddress" => "STREET",
        "domainComponent" | "DC" => "DC",
        "userId" | "UID" => "UID",
        _ => return None,
    })
}

fn hex_value(bytes: &[u8]) -> String {
    let mut out = String::from("#");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// RFC 4514 §2.4 escaping.
fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, ch) in value.chars().enumerate() {
        let special = matches!(ch, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if special {
            out.push('\\');
        }
        if ch == '\0' {
            out.push_str("\\00");
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests;
