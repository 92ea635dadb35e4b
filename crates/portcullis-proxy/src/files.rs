//! The files a config names for TLS — listener certificates, keys and client CAs, upstream CAs
//! and client certificates, `state.redis_ca`, JWT providers' `ca` — read and parsed in one
//! pure step, [`load_files`], that `validate`, `run` and every reload share.
//!
//! Each file is read once, through the load's [`portcullis_config::Contents`] (so the config
//! hash covers the very bytes served), and parsed here: PEM chains, private keys, whether a
//! key belongs to its certificate, CA bundles. Every problem is reported, not the first, each
//! at the YAML key that names the file (`file:line:col: listeners[0].tls.certificates[1].key:
//! …`); a message names the file, never its content. Nothing is started: no socket, no
//! connection. [`crate::Runtime::new`] builds acceptors and pools from the [`LoadedFiles`]
//! returned, never from disk, so what `validate` checked is what `run` serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use portcullis_config::surface::{self, AuthProvider};
use portcullis_config::{Diagnostic, Diagnostics, KeyPath, Loaded};
use portcullis_core::Snapshot;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{self, CertificateInfo};

/// The parsed TLS material of one load, by the names the config gives.
#[derive(Debug, Default)]
pub struct LoadedFiles {
    listeners: BTreeMap<String, ListenerFiles>,
    upstreams: BTreeMap<String, UpstreamFiles>,
    redis_ca: Option<Arc<[u8]>>,
    /// The `ca` of each JWT provider that has one, by provider name.
    jwt_ca: BTreeMap<String, RootCertStore>,
}

impl LoadedFiles {
    /// The material of listener `name`; `None` for a plain-HTTP one.
    pub(crate) fn listener(&self, name: &str) -> Option<&ListenerFiles> {
        self.listeners.get(name)
    }

    /// The material of upstream `name`; `None` when no target uses TLS.
    pub(crate) fn upstream(&self, name: &str) -> Option<&UpstreamFiles> {
        self.upstreams.get(name)
    }

    /// The PEM of `state.redis_ca`, checked to hold certificates.
    pub fn redis_ca(&self) -> Option<&[u8]> {
        self.redis_ca.as_deref()
    }

    /// The trust anchors of JWT provider `name`'s `ca`.
    pub(crate) fn jwt_ca(&self, name: &str) -> Option<&RootCertStore> {
        self.jwt_ca.get(name)
    }
}

/// A TLS listener's certificates (each with its key, checked to fit) and client CAs.
#[derive(Debug)]
pub(crate) struct ListenerFiles {
    pub(crate) certificates: Vec<(Arc<CertifiedKey>, CertificateInfo)>,
    pub(crate) client_ca: Option<Vec<CertificateDer<'static>>>,
}

/// What an upstream's TLS trusts and presents.
#[derive(Debug)]
pub(crate) struct UpstreamFiles {
    /// `tls.ca`, else the system's roots.
    pub(crate) roots: Arc<RootCertStore>,
    /// `tls.client_cert` with `tls.client_key`, checked to fit.
    pub(crate) client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// What [`load_files`] found: the material (partial when there are errors), every error and
/// the warnings (a certificate that has expired or expires within
/// [`tls::EXPIRY_WARNING`]), each at the key naming the file.
#[derive(Debug, Default)]
pub struct FileReport {
    pub files: LoadedFiles,
    pub errors: Diagnostics,
    pub warnings: Vec<Diagnostic>,
}

impl FileReport {
    /// The material, or every error.
    ///
    /// # Errors
    /// Any file that did not load.
    pub fn into_result(self) -> Result<LoadedFiles, Diagnostics> {
        if self.errors.is_empty() { Ok(self.files) } else { Err(self.errors) }
    }
}

/// Reads and parses every TLS file `loaded` names (a partial document from
/// `portcullis_config::check` too: the parts left out for their shape are not read). `now`
/// dates the expiry warnings. Pure: reads files, starts nothing.
pub fn load_files(loaded: &Loaded, now: SystemTime) -> FileReport {
    let mut reader = Reader {
        loaded,
        now,
        provider: Arc::new(rustls::crypto::ring::default_provider()),
        system_roots: None,
        report: FileReport::default(),
    };
    let doc = &loaded.document;
    for (i, listener) in doc.listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        let files = reader.listener(&KeyPath::root().key("listeners").index(i).key("tls"), tls);
        reader.report.files.listeners.insert(listener.name.clone(), files);
    }
    for (name, upstream) in &doc.upstreams {
        let path = KeyPath::root().key("upstreams").key(name);
        if let Some(files) = reader.upstream(&path, upstream) {
            reader.report.files.upstreams.insert(name.clone(), files);
        }
    }
    if let Some(written) = doc.state.redis_ca.as_deref() {
        let path = KeyPath::root().key("state").key("redis_ca");
        reader.report.files.redis_ca = reader.certificates(&path, written).map(|(bytes, _)| bytes);
    }
    for (name, provider) in &doc.auth {
        if let AuthProvider::Jwt(jwt) = provider
            && let Some(written) = jwt.ca.as_deref()
        {
            let path = KeyPath::root().key("auth").key(name).key("ca");
            if let Some((_, certs)) = reader.certificates(&path, written)
                && let Some(roots) = reader.roots(&path, written, certs)
            {
                reader.report.files.jwt_ca.insert(name.clone(), roots);
            }
        }
    }
    reader.report.errors.sort();
    reader.report
}

/// Compiles `loaded` and loads its files: what [`crate::Runtime::new`] takes, or every error
/// of both steps (a file error is reported even when the compile fails elsewhere).
///
/// # Errors
/// Every problem of the compile and of the files, sorted top to bottom.
pub fn prepare(loaded: &Loaded) -> Result<(Snapshot, LoadedFiles), Diagnostics> {
    let report = load_files(loaded, SystemTime::now());
    match (portcullis_core::compile(loaded), report.into_result()) {
        (Ok(snapshot), Ok(files)) => Ok((snapshot, files)),
        (compiled, files) => {
            let mut errors = compiled.err().unwrap_or_default();
            errors.0.extend(files.err().unwrap_or_default().0);
            errors.sort();
            Err(errors)
        }
    }
}

struct Reader<'a> {
    loaded: &'a Loaded,
    now: SystemTime,
    provider: Arc<CryptoProvider>,
    /// Loaded once per load, when an upstream without `tls.ca` needs them.
    system_roots: Option<Result<Arc<RootCertStore>, String>>,
    report: FileReport,
}

impl Reader<'_> {
    fn error(&mut self, path: &KeyPath, message: String) {
        self.report.errors.push(self.loaded.locations.diagnostic(path, message));
    }

    fn warn(&mut self, path: &KeyPath, message: String) {
        self.report.warnings.push(self.loaded.locations.diagnostic(path, message));
    }

    /// The bytes of the file written as `written` at `path`. A blank name is the compile
    /// step's error, not read here.
    fn bytes(&mut self, path: &KeyPath, written: &str) -> Option<Arc<[u8]>> {
        if written.trim().is_empty() {
            return None;
        }
        let file = self.loaded.resolve_path(written);
        match self.loaded.contents.read(&file) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.error(path, format!("cannot read `{written}` ({}): {e}", file.display()));
                None
            }
        }
    }

    /// A PEM file of one or more certificates: its bytes and the certificates.
    fn certificates(&mut self, path: &KeyPath, written: &str) -> Option<(Arc<[u8]>, Vec<CertificateDer<'static>>)> {
        let bytes = self.bytes(path, written)?;
        match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Some((bytes, certs)),
            Ok(_) => {
                self.error(path, format!("`{written}` holds no PEM certificate"));
                None
            }
            Err(e) => {
                self.error(path, format!("`{written}` is not valid PEM ({e})"));
                None
            }
        }
    }

    /// A PEM private key (PKCS#8, PKCS#1 or SEC1). The parser's own error is not shown: it
    /// could quote the key.
    fn private_key(&mut self, path: &KeyPath, written: &str) -> Option<PrivateKeyDer<'static>> {
        let bytes = self.bytes(path, written)?;
        match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(key) => Some(key),
            Err(_) => {
                self.error(path, format!("`{written}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"));
                None
            }
        }
    }

    /// A CA bundle as trust anchors.
    fn roots(&mut self, path: &KeyPath, written: &str, certs: Vec<CertificateDer<'static>>) -> Option<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            if let Err(e) = roots.add(cert) {
                self.error(path, format!("`{written}` holds a certificate that is not a usable CA ({e})"));
                return None;
            }
        }
        Some(roots)
    }

    fn listener(&mut self, path: &KeyPath, tls: &surface::ListenerTls) -> ListenerFiles {
        let mut certificates = Vec::with_capacity(tls.certificates.len());
        for (j, pair) in tls.certificates.iter().enumerate() {
            let at = path.key("certificates").index(j);
            if let Some(served) = self.served(&at, pair) {
                certificates.push(served);
            }
        }
        let client_ca = tls.client_ca.as_deref().and_then(|written| {
            let at = path.key("client_ca");
            let (_, certs) = self.certificates(&at, written)?;
            self.roots(&at, written, certs.clone()).map(|_| certs)
        });
        ListenerFiles { certificates, client_ca }
    }

    /// One `{ cert, key }` of a listener: both read (each error reported), then checked to fit.
    fn served(
        &mut self,
        at: &KeyPath,
        pair: &surface::CertificatePair,
    ) -> Option<(Arc<CertifiedKey>, CertificateInfo)> {
        let chain = self.certificates(&at.key("cert"), &pair.cert);
        let key = self.private_key(&at.key("key"), &pair.key);
        let ((_, chain), key) = (chain?, key?);
        let certified = match CertifiedKey::from_der(chain, key, &self.provider) {
            Ok(certified) => certified,
            Err(e) => {
                let message = format!("`{}` is not a usable key for `{}` ({e})", pair.key, pair.cert);
                self.error(&at.key("key"), message);
                return None;
            }
        };
        let leaf = certified.cert.first().map_or(&[][..], |c| c.as_ref());
        let info = match tls::describe(leaf, &self.loaded.resolve_path(&pair.cert)) {
            Ok(info) => info,
            Err(e) => {
                self.error(&at.key("cert"), format!("`{}`: {e}", pair.cert));
                return None;
            }
        };
        self.expiry(&at.key("cert"), &pair.cert, &info);
        Some((Arc::new(certified), info))
    }

    fn expiry(&mut self, path: &KeyPath, written: &str, info: &CertificateInfo) {
        let left = info.seconds_left(self.now);
        let days = (left.abs() / 86_400.0).floor();
        if left < 0.0 {
            self.warn(path, format!("`{written}` ({}) expired {days} day(s) ago", info.name));
        } else if left < tls::EXPIRY_WARNING.as_secs_f64() {
            self.warn(path, format!("`{written}` ({}) expires in {days} day(s)", info.name));
        }
    }

    /// An upstream whose targets use TLS: its trust anchors and client certificate.
    fn upstream(&mut self, path: &KeyPath, upstream: &surface::Upstream) -> Option<UpstreamFiles> {
        let https = |t: &String| t.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        let tls = upstream.tls.as_ref();
        if upstream.mock.is_some() || (tls.is_none() && !upstream.targets.iter().any(https)) {
            return None;
        }
        let path = path.key("tls");
        // Both halves are checked whatever the other gives: every error, not the first.
        let roots = match tls.and_then(|t| t.ca.as_deref()) {
            Some(written) => self
                .certificates(&path.key("ca"), written)
                .and_then(|(_, certs)| self.roots(&path.key("ca"), written, certs))
                .map(Arc::new),
            None => self.system_roots(&path),
        };
        // One of `client_cert` and `client_key` without the other is the compile step's error.
        let client = match tls.and_then(|t| t.client_cert.as_deref().zip(t.client_key.as_deref())) {
            Some((cert, key)) => self.client_identity(&path, cert, key).map(Some),
            None => Some(None),
        };
        Some(UpstreamFiles { roots: roots?, client: client? })
    }

    fn client_identity(
        &mut self,
        path: &KeyPath,
        cert: &str,
        key: &str,
    ) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = self.certificates(&path.key("client_cert"), cert);
        let private = self.private_key(&path.key("client_key"), key);
        let ((_, chain), private) = (chain?, private?);
        if let Err(e) = CertifiedKey::from_der(chain.clone(), private.clone_key(), &self.provider) {
            self.error(&path.key("client_key"), format!("`{key}` is not a usable key for `{cert}` ({e})"));
            return None;
        }
        Some((chain, private))
    }

    fn system_roots(&mut self, path: &KeyPath) -> Option<Arc<RootCertStore>> {
        let roots = self.system_roots.get_or_insert_with(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system root certificates could be loaded; set tls.ca to a CA bundle".to_owned());
            }
            Ok(Arc::new(roots))
        });
        match roots.clone() {
            Ok(roots) => Some(roots),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
