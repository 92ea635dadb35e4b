//! Compile: the validated surface [`Document`] becomes the runtime [`Snapshot`], with every
//! cross-reference and value checked. All problems are collected and returned together, each
//! placed at its key path and line:column; sections this build parses but does not enforce
//! become warnings.

mod routes;
mod sections;
mod upstreams;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderName;
use ipnet::IpNet;
use portcullis_config::surface::{AuthProvider, Document};
use portcullis_config::{Diagnostic, Diagnostics, KeyPath, Loaded};

use crate::headers::IDENTITY_HEADERS;
use crate::snapshot::{self, IpRules, Limits, ListenerSpec, LogSink, Snapshot};

/// Collects diagnostics while compiling.
pub(crate) struct Compiler<'a> {
    pub(crate) loaded: &'a Loaded,
    pub(crate) doc: &'a Document,
    errors: Diagnostics,
    warnings: Vec<Diagnostic>,
}

impl<'a> Compiler<'a> {
    pub(crate) fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(self.loaded.locations.diagnostic(path, message));
    }

    pub(crate) fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.warnings.push(self.loaded.locations.diagnostic(path, message));
    }
}

/// Root key paths.
pub(crate) fn at(key: &str) -> KeyPath {
    KeyPath::root().key(key)
}

/// Compiles a loaded document into a snapshot, or returns every error found.
pub fn compile(loaded: &Loaded) -> Result<Snapshot, Diagnostics> {
    let doc = &loaded.document;
    let mut c = Compiler { loaded, doc, errors: Diagnostics::default(), warnings: Vec::new() };
    let listeners = listeners(&mut c);
    sections::admin(&mut c);
    let limits = limits(&mut c);
    let trusted_proxies = sections::cidrs(&mut c, &at("trusted_proxies"), &doc.trusted_proxies);
    let ip_rules = ip_rules(&mut c);
    let access_log = access_log(&mut c);
    sections::auth(&mut c);
    sections::consumers_and_plans(&mut c);
    sections::policies_waf_cors(&mut c);
    let upstreams = upstreams::compile(&mut c);
    let (routes, table) = routes::compile(&mut c, &limits, &upstreams);
    if !c.errors.is_empty() {
        let mut errors = c.errors;
        errors.sort();
        return Err(errors);
    }
    Ok(Snapshot {
        hash: fnv_hex(loaded.value.to_string().as_bytes()),
        loaded_at: SystemTime::now(),
        stage: loaded.stage.clone(),
        listeners,
        limits,
        trusted_proxies,
        ip_rules,
        shutdown_grace: doc.shutdown_grace.map_or(snapshot::DEFAULT_SHUTDOWN_GRACE, |d| d.0),
        upstreams,
        routes,
        table,
        identity_headers: identity_headers(doc),
        access_log,
        sample_ratio: doc.tracing.as_ref().and_then(|t| t.sample_ratio).unwrap_or(0.0),
        warnings: c.warnings,
        document: loaded.value.clone(),
    })
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
        if l.tls.is_some() {
            c.error(&path.key("tls"), "TLS listeners are not available in this build yet");
        }
        out.push(ListenerSpec { name: Arc::from(l.name.as_str()), bind, http2: l.http2, tls: None });
    }
    out
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

fn access_log(c: &mut Compiler<'_>) -> LogSink {
    let Some(sink) = &c.doc.logging.access else { return LogSink::Stdout };
    match sink.path.0.as_str() {
        "off" => LogSink::Off,
        "stdout" => LogSink::Stdout,
        "stderr" => LogSink::Stderr,
        "" => {
            c.error(&at("logging").key("access").key("path"), "must be stdout, stderr, off or a file");
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

fn fnv_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests;
