//! Compile: the validated surface [`Document`] becomes the runtime [`Snapshot`], with every
//! cross-reference and value checked. All problems are collected and returned together, each
//! placed at its key path and line:column; sections this build parses but does not enforce
//! become warnings.

mod contract;
mod cors;
mod identity;
mod routes;
mod sections;
mod soap;
mod telemetry;
mod upstreams;
mod variants;
mod waf;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderName;
use ipnet::IpNet;
use portcullis_config::surface::{self, AuthProvider, Document};
use portcullis_config::{Diagnostic, Diagnostics, KeyPath, Loaded};

use crate::headers::IDENTITY_HEADERS;
use crate::snapshot::{self, IpRules, Limits, ListenerSpec, ListenerTlsSpec, LogSink, Snapshot};

/// Collects diagnostics while compiling.
pub(crate) struct Compiler<'a> {
    pub(crate) loaded: &'a Loaded,
    pub(crate) doc: &'a Document,
    errors: Diagnostics,
    warnings: Vec<Diagnostic>,
    documents: contract::Documents,
}

impl<'a> Compiler<'a> {
    pub(crate) fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(self.loaded.locations.diagnostic(path, message));
    }

    pub(crate) fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.warnings.push(self.loaded.locations.diagnostic(path, message));
    }

    /// Checks that `name`, written at `path`, names an entry of `section` (`defined` is that
    /// section of the document): else an error "unknown `what`", with the nearest defined name
    /// when one is close. An entry left out of a partial document for its shape counts as
    /// defined (`portcullis validate` reports its own errors).
    pub(crate) fn reference<V>(
        &mut self,
        path: &KeyPath,
        what: &str,
        section: &str,
        name: &str,
        defined: &std::collections::BTreeMap<String, V>,
    ) {
        if defined.contains_key(name) || self.loaded.broken.contains(section, name) {
            return;
        }
        let names = defined.keys().map(String::as_str);
        let message = portcullis_config::unknown_name(what, name, names);
        self.error(path, message);
    }
}

/// Root key paths.
pub(crate) fn at(key: &str) -> KeyPath {
    KeyPath::root().key(key)
}

/// Compiles a loaded document into a snapshot, or returns every error found.
pub fn compile(loaded: &Loaded) -> Result<Snapshot, Diagnostics> {
    let doc = &loaded.document;
    let mut c = Compiler {
        loaded,
        doc,
        errors: Diagnostics::default(),
        warnings: Vec::new(),
        documents: contract::Documents::default(),
    };
    let listeners = listeners(&mut c);
    let admin = sections::admin(&mut c);
    let limits = limits(&mut c);
    let trusted_proxies = sections::cidrs(&mut c, &at("trusted_proxies"), &doc.trusted_proxies);
    let trusted_proxy_headers = trusted_proxy_headers(&mut c);
    let ip_rules = ip_rules(&mut c);
    let access_log = log_sink(&mut c, "access");
    let audit_log = log_sink(&mut c, "audit");
    sections::auth(&mut c);
    sections::consumers_and_plans(&mut c);
    let plans = sections::plans(&mut c);
    let rate_limits = sections::rate_limits(&mut c);
    let state = sections::state(&mut c);
    sections::policies_waf_cors(&mut c);
    let (waf, crs) = waf::compile(&mut c);
    let providers = identity::providers(&mut c);
    let (consumers, config_keys) = identity::consumers(&mut c);
    let policies = identity::policies(&mut c);
    let otlp_traces_url = telemetry::otlp_traces_url(&mut c);
    let upstreams = upstreams::compile(&mut c);
    let cors = cors::compile(&mut c);
    let (routes, table) = routes::compile(&mut c, &limits, &upstreams, &cors);
    if c.errors.is_empty() {
        variants::warn(&mut c, &routes, &table);
    }
    if !c.errors.is_empty() {
        let mut errors = c.errors;
        errors.sort();
        return Err(errors);
    }
    let mut watch = watched_files(loaded, &listeners, &upstreams, &state);
    // The CRS rule files: an edited rule or setup file reloads like an edited config.
    if let Some(crs) = &crs {
        watch.extend(crs.rules.files().iter().cloned());
        watch.sort();
        watch.dedup();
    }
    Ok(Snapshot {
        hash: config_hash(&loaded.value, &watch, &loaded.contents),
        shown: portcullis_config::redact::redact(&loaded.value, &loaded.referenced),
        loaded_at: SystemTime::now(),
        stage: loaded.stage.clone(),
        limits,
        trusted_proxies,
        trusted_proxy_headers,
        ip_rules,
        waf,
        crs,
        shutdown_grace: doc.shutdown_grace.map_or(snapshot::DEFAULT_SHUTDOWN_GRACE, |d| d.0),
        upstreams,
        routes,
        table,
        identity_headers: identity_headers(doc),
        access_log,
        audit_log,
        sample_ratio: doc.tracing.as_ref().and_then(|t| t.sample_ratio).unwrap_or(0.0),
        otlp_traces_url,
        warnings: c.warnings,
        document: loaded.value.clone(),
        watch,
        admin,
        rate_limits,
        state,
        key_headers: identity::key_headers(&providers),
        token_places: identity::token_places(&providers),
        providers,
        consumers,
        config_keys,
        plans,
        policies,
        listeners,
    })
}

/// `trusted_proxy_headers`: header names, each once.
fn trusted_proxy_headers(c: &mut Compiler<'_>) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = Vec::with_capacity(c.doc.trusted_proxy_headers.len());
    for (i, name) in c.doc.trusted_proxy_headers.iter().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) if !out.contains(&header) => out.push(header),
            Ok(_) => {}
            Err(_) => c.error(&at("trusted_proxy_headers").index(i), format!("`{name}` is not a header name")),
        }
    }
    out
}

/// What `portcullis keys` reads of a config: the database, the audit log and the plans.
#[derive(Debug)]
pub struct StoreAccess {
    /// As [`snapshot::StateSpec::database`]: relative paths made absolute.
    pub database: String,
    pub audit_log: LogSink,
    pub plans: Vec<snapshot::PlanSpec>,
}

/// Compiles `state`, `logging.audit` and `plans` alone, with the checks [`compile`] makes of
/// them, for a document loaded with only those parts (`portcullis_config::load_parts`).
pub fn compile_store_access(loaded: &Loaded) -> Result<StoreAccess, Diagnostics> {
    let doc = &loaded.document;
    let mut c = Compiler {
        loaded,
        doc,
        errors: Diagnostics::default(),
        warnings: Vec::new(),
        documents: contract::Documents::default(),
    };
    let audit_log = log_sink(&mut c, "audit");
    sections::consumers_and_plans(&mut c);
    let plans = sections::plans(&mut c);
    let state = sections::state(&mut c);
    if !c.errors.is_empty() {
        let mut errors = c.errors;
        errors.sort();
        return Err(errors);
    }
    Ok(StoreAccess { database: state.database, audit_log, plans })
}

fn listeners(c: &mut Compiler<'_>) -> Vec<ListenerSpec> {
    let mut out = Vec::new();
    if c.doc.listeners.is_empty() {
        c.error(&at("listeners"), "at least one listener is needed");
    }
    for (i, l) in c.doc.listeners.iter().enumerate() {
        let path = at("listeners").index(i);
        if c.doc.listeners[..i].iter().any(|o| o.name == l.name) {
            c.error(&path.key("name"), format!("listener name `{}` is used twice", l.name));
        }
        let Ok(bind) = l.bind.parse::<SocketAddr>() else {
            c.error(&path.key("bind"), format!("`{}` is not IP:PORT", l.bind));
            continue;
        };
        if c.doc.listeners[..i].iter().any(|o| o.bind == l.bind) {
            c.error(&path.key("bind"), format!("`{}` is bound by another listener", l.bind));
        }
        let tls = l.tls.as_ref().map(|t| listener_tls(c, &path.key("tls"), t));
        out.push(ListenerSpec { name: Arc::from(l.name.as_str()), bind, http2: l.http2, tls });
    }
    out
}

fn listener_tls(c: &mut Compiler<'_>, path: &KeyPath, t: &surface::ListenerTls) -> ListenerTlsSpec {
    if t.certificates.is_empty() {
        c.error(&path.key("certificates"), "a TLS listener needs at least one certificate");
    }
    if t.client_cert.is_some() && t.client_ca.is_none() {
        c.error(&path.key("client_cert"), "`client_cert` needs `client_ca` (the CA that signs client certificates)");
    }
    let certificates = t.certificates.iter().map(|p| (c.loaded.resolve_path(&p.cert), c.loaded.resolve_path(&p.key)));
    ListenerTlsSpec {
        certificates: certificates.collect(),
        allow_tls12: t.min_version != Some(surface::TlsVersion::V1_3),
        client_ca: t.client_ca.as_deref().map(|p| c.loaded.resolve_path(p)),
        client_cert_required: t.client_cert == Some(surface::ClientCertMode::Required),
    }
}

/// Every file a reload must watch: `${file:}` references, all TLS material and WSDLs.
fn watched_files(
    loaded: &Loaded,
    listeners: &[ListenerSpec],
    upstreams: &[snapshot::UpstreamSpec],
    state: &snapshot::StateSpec,
) -> Vec<PathBuf> {
    let mut files = loaded.files.clone();
    // The contracts' documents: a changed schema reloads like a changed config.
    files.extend(loaded.document.openapi.iter().map(|s| loaded.resolve_path(&s.file)));
    files.extend(loaded.document.routes.iter().filter_map(|r| r.validate.as_ref()).map(|v| match v {
        surface::RouteValidate::Operation(o) => loaded.resolve_path(&o.openapi),
        surface::RouteValidate::Schema(s) => loaded.resolve_path(&s.schema),
    }));
    files.extend(state.redis_ca.iter().cloned());
    for provider in loaded.document.auth.values() {
        if let AuthProvider::Jwt(jwt) = provider {
            files.extend(jwt.ca.as_deref().map(|p| loaded.resolve_path(p)));
        }
    }
    files.extend(upstreams.iter().filter_map(|up| up.soap.as_ref()).map(|s| s.wsdl_file.clone()));
    for up in upstreams {
        let snapshot::UpstreamKind::Targets(targets) = &up.kind else { continue };
        let tls = &targets.tls;
        files.extend(tls.ca.iter().cloned());
        files.extend(tls.client_cert.iter().flat_map(|c| [c.cert.clone(), c.key.clone()]));
    }
    for tls in listeners.iter().filter_map(|l| l.tls.as_ref()) {
        for (cert, key) in &tls.certificates {
            files.extend([cert.clone(), key.clone()]);
        }
        files.extend(tls.client_ca.iter().cloned());
    }
    files.sort();
    files.dedup();
    files
}

fn limits(c: &mut Compiler<'_>) -> Limits {
    let l = &c.doc.limits;
    let d = Limits::default();
    let limits = Limits {
        max_header_bytes: l.max_header_bytes.map_or(d.max_header_bytes, |b| b.0),
        max_uri_bytes: l.max_uri_bytes.map_or(d.max_uri_bytes, |b| b.0),
        max_body_bytes: l.max_body_bytes.map_or(d.max_body_bytes, |b| b.0),
        header_read_timeout: l.header_read_timeout.map_or(d.header_read_timeout, |t| t.0),
        idle_timeout: l.idle_timeout.map_or(d.idle_timeout, |t| t.0),
        max_connections: l.max_connections.unwrap_or(d.max_connections),
    };
    let path = at("limits");
    if limits.max_header_bytes < 1024 {
        c.error(&path.key("max_header_bytes"), "must be at least 1024");
    }
    if limits.max_uri_bytes < 64 {
        c.error(&path.key("max_uri_bytes"), "must be at least 64");
    }
    if limits.header_read_timeout.is_zero() {
        c.error(&path.key("header_read_timeout"), "must be more than 0");
    }
    if limits.idle_timeout.is_zero() {
        c.error(&path.key("idle_timeout"), "must be more than 0");
    }
    if limits.max_connections == 0 {
        c.error(&path.key("max_connections"), "must be at least 1");
    }
    limits
}

/// `logging.access` (default stdout) or `logging.audit` (default off).
fn log_sink(c: &mut Compiler<'_>, key: &str) -> LogSink {
    let logging = &c.doc.logging;
    let (sink, default) = match key {
        "access" => (logging.access.as_ref(), LogSink::Stdout),
        _ => (logging.audit.as_ref(), LogSink::Off),
    };
    let Some(sink) = sink else { return default };
    match sink.path.0.as_str() {
        "off" => LogSink::Off,
        "stdout" => LogSink::Stdout,
        "stderr" => LogSink::Stderr,
        "" => {
            c.error(&at("logging").key(key).key("path"), "must be stdout, stderr, off or a file");
            LogSink::Off
        }
        file => LogSink::File(c.loaded.resolve_path(file)),
    }
}

fn ip_rules(c: &mut Compiler<'_>) -> IpRules {
    let Some(waf) = &c.doc.waf else { return IpRules::default() };
    let (allow, deny) = (waf.allow_ips.clone(), waf.deny_ips.clone());
    IpRules {
        allow: sections::cidrs(c, &at("waf").key("allow_ips"), &allow),
        deny: sections::cidrs(c, &at("waf").key("deny_ips"), &deny),
    }
}

fn identity_headers(doc: &Document) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = IDENTITY_HEADERS.to_vec();
    for provider in doc.auth.values() {
        if let AuthProvider::Jwt(jwt) = provider {
            for header in jwt.forward_claims.values() {
                if let Ok(name) = HeaderName::from_bytes(header.as_bytes())
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
    }
    names
}

pub(crate) fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// The config's identity (`/ready`'s `config_hash`, `GET /config`'s `hash`, a reload's
/// answer): the merged document and the content of every file it names (certificates, keys,
/// CAs, WSDLs, `${file:}` references), so a certificate-only change is a new hash. The bytes are
/// the load's own reading ([`portcullis_config::Contents`]), the same the TLS material is built
/// from. A file that cannot be read hashes as its error kind (the load that needs it fails
/// anyway).
fn config_hash(document: &serde_json::Value, files: &[PathBuf], contents: &portcullis_config::Contents) -> String {
    let mut h = Fnv::default();
    h.write(document.to_string().as_bytes());
    for file in files {
        h.write(b"\0");
        h.write(file.as_os_str().as_encoded_bytes());
        h.write(b"\0");
        match contents.read(file) {
            Ok(bytes) => h.write(&bytes),
            Err(e) => h.write(format!("<{:?}>", e.kind).as_bytes()),
        }
    }
    format!("{:016x}", h.0)
}

/// FNV-1a 64: tells configs apart, not a defence against a forger (the files are the
/// operator's own).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests;
