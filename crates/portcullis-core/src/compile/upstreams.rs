//! Compile `upstreams`: targets, balancing, protocol, timeouts, retries, health, TLS, mocks,
//! and the WSDL of a SOAP upstream (read in [`super::soap`]).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use portcullis_config::KeyPath;
use portcullis_config::surface::{RetryCondition, RetryOn, Upstream, UpstreamProtocol, UpstreamTls};

use super::{Compiler, at};
use crate::snapshot::{
    self, ActiveHealthSpec, Balance, ClientCertSpec, MockSpec, PassiveHealthSpec, Protocol, RetryPolicy, TargetSpec,
    TargetsSpec, UpstreamKind, UpstreamSpec, UpstreamTlsSpec,
};

pub(super) fn compile(c: &mut Compiler<'_>) -> Vec<UpstreamSpec> {
    let mut out = Vec::with_capacity(c.doc.upstreams.len());
    for (name, upstream) in &c.doc.upstreams {
        let path = at("upstreams").key(name);
        let kind = match (&upstream.mock, upstream.targets.is_empty()) {
            (Some(_), false) => {
                c.error(&path, "an upstream has either `mock` or `targets`, not both");
                continue;
            }
            (Some(mock), true) => {
                if upstream.tls.is_some() {
                    c.error(&path.key("tls"), "a mock upstream has no connection to secure; remove `tls`");
                }
                UpstreamKind::Mock(mock_spec(c, &path.key("mock"), mock))
            }
            (None, true) => {
                c.error(&path.key("targets"), "list at least one target (or use `mock`)");
                continue;
            }
            (None, false) => UpstreamKind::Targets(targets_spec(c, &path, upstream)),
        };
        let soap = upstream.soap.as_ref().and_then(|soap| {
            if matches!(kind, UpstreamKind::Mock(_)) {
                c.error(&path.key("soap"), "a SOAP upstream needs `targets` (the service's endpoint), not `mock`");
                return None;
            }
            super::soap::upstream(c, &path.key("soap"), soap)
        });
        out.push(UpstreamSpec { name: Arc::from(name.as_str()), kind, soap });
    }
    out
}

fn mock_spec(c: &mut Compiler<'_>, path: &KeyPath, mock: &portcullis_config::surface::Mock) -> MockSpec {
    let status = StatusCode::from_u16(mock.status).unwrap_or_else(|_| {
        c.error(&path.key("status"), "not an HTTP status");
        StatusCode::OK
    });
    let mut headers = HeaderMap::new();
    for (k, v) in &mock.headers {
        match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => c.error(&path.key("headers").key(k), "invalid header name or value"),
        }
    }
    MockSpec { status, headers, body: Bytes::from(mock.body.clone()) }
}

fn targets_spec(c: &mut Compiler<'_>, path: &KeyPath, u: &Upstream) -> TargetsSpec {
    let tls_block = u.tls.is_some();
    let targets = u
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| target(c, &path.key("targets").index(i), t, tls_block))
        .collect::<Vec<TargetSpec>>();
    if targets.iter().any(|t| t.https) && targets.iter().any(|t| !t.https) {
        // One connector and one health client per upstream: all TLS or none.
        c.error(
            &path.key("targets"),
            "mixes http:// and https:// targets; an upstream's targets all use TLS or none do",
        );
    }
    let balance = match u.balance.as_deref() {
        None | Some("round_robin") => Balance::RoundRobin,
        Some("least_requests") => Balance::LeastRequests,
        Some("hash:client_ip") => Balance::HashClientIp,
        Some(other) => match other.strip_prefix("hash:header:").map(|h| HeaderName::from_bytes(h.as_bytes())) {
            Some(Ok(name)) => Balance::HashHeader(name),
            _ => {
                c.error(&path.key("balance"), format!("unknown balance `{other}`"));
                Balance::RoundRobin
            }
        },
    };
    let protocol = match u.protocol {
        None | Some(UpstreamProtocol::Http1) => Protocol::Http1,
        Some(UpstreamProtocol::H2) => Protocol::H2,
        Some(UpstreamProtocol::Auto) => Protocol::Auto,
    };
    let timeouts = u.timeouts.clone().unwrap_or_default();
    let connect_timeout = timeouts.connect.map_or(snapshot::DEFAULT_CONNECT_TIMEOUT, |d| d.0);
    let response_timeout = timeouts.response.map_or(snapshot::DEFAULT_RESPONSE_TIMEOUT, |d| d.0);
    if connect_timeout.is_zero() || response_timeout.is_zero() {
        c.error(&path.key("timeouts"), "timeouts must be more than 0");
    }
    TargetsSpec {
        targets,
        balance,
        protocol,
        connect_timeout,
        response_timeout,
        retries: retries(u),
        active_health: active_health(c, path, u),
        passive_health: passive_health(u),
        tls: tls_spec(c, &path.key("tls"), u.tls.as_ref()),
    }
}

/// One target; `tls_block`: the upstream has `tls`, so the target is reached over TLS even
/// when written `http://` (never silently plaintext when TLS settings were given).
fn target(c: &mut Compiler<'_>, path: &KeyPath, text: &str, tls_block: bool) -> Option<TargetSpec> {
    let Ok(uri) = text.parse::<http::Uri>() else {
        c.error(path, format!("`{text}` is not a URL"));
        return None;
    };
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            c.error(path, format!("`{text}` must start with http:// or https://"));
            return None;
        }
    };
    let Some(authority) = uri.authority().cloned() else {
        c.error(path, format!("`{text}` has no host"));
        return None;
    };
    if authority.as_str().contains('@') {
        // Credentials in a target would be sent as Host and logged with the target name.
        c.error(path, "a target cannot carry user:password@; use headers.request or upstream TLS");
        return None;
    }
    // Connections go to host:port, so the scheme's default port is made explicit.
    let authority = match authority.port_u16() {
        Some(_) => authority,
        None => {
            let port = if https { 443 } else { 80 };
            match http::uri::Authority::try_from(format!("{}:{port}", authority.host())) {
                Ok(a) => a,
                Err(_) => {
                    c.error(path, format!("`{text}` has an invalid host"));
                    return None;
                }
            }
        }
    };
    if uri.query().is_some() {
        c.error(path, "a target cannot have a query string");
    }
    if tls_block && !https {
        c.warn(path, "the upstream has `tls`, so this http:// target is reached over TLS; write https:// to say so");
    }
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Some(TargetSpec { name: Arc::from(text), https: https || tls_block, authority, base_path })
}

fn retries(u: &Upstream) -> RetryPolicy {
    let Some(r) = &u.retries else { return RetryPolicy::default() };
    let mut policy = RetryPolicy { attempts: r.attempts, ..RetryPolicy::default() };
    for on in &r.on {
        match on {
            RetryOn::Condition(RetryCondition::ConnectError) => policy.on_connect_error = true,
            RetryOn::Condition(RetryCondition::Timeout) => policy.on_timeout = true,
            RetryOn::Status(code) => policy.on_status.extend(StatusCode::from_u16(*code).ok()),
        }
    }
    policy
}

fn active_health(c: &mut Compiler<'_>, path: &KeyPath, u: &Upstream) -> Option<ActiveHealthSpec> {
    let a = u.health.as_ref()?.active.as_ref()?;
    let path = path.key("health").key("active");
    if !a.path.starts_with('/') {
        c.error(&path.key("path"), "must start with `/`");
    }
    let spec = ActiveHealthSpec {
        path: a.path.clone(),
        interval: a.interval.map_or(snapshot::DEFAULT_HEALTH_INTERVAL, |d| d.0),
        timeout: a.timeout.map_or(snapshot::DEFAULT_HEALTH_TIMEOUT, |d| d.0),
        unhealthy_after: a.unhealthy_after.unwrap_or(snapshot::DEFAULT_UNHEALTHY_AFTER),
        healthy_after: a.healthy_after.unwrap_or(snapshot::DEFAULT_HEALTHY_AFTER),
    };
    if spec.interval.is_zero() || spec.timeout.is_zero() {
        c.error(&path, "interval and timeout must be more than 0");
    }
    Some(spec)
}

fn passive_health(u: &Upstream) -> PassiveHealthSpec {
    let p = u.health.as_ref().and_then(|h| h.passive.as_ref());
    PassiveHealthSpec {
        unhealthy_after: p.and_then(|p| p.unhealthy_after).unwrap_or(snapshot::DEFAULT_PASSIVE_UNHEALTHY_AFTER),
        cooldown: p.and_then(|p| p.cooldown).map_or(snapshot::DEFAULT_PASSIVE_COOLDOWN, |d| d.0),
    }
}

fn tls_spec(c: &mut Compiler<'_>, path: &KeyPath, tls: Option<&UpstreamTls>) -> UpstreamTlsSpec {
    let Some(t) = tls else { return UpstreamTlsSpec::default() };
    let ca = tls_file(c, &path.key("ca"), t.ca.as_deref());
    let cert = tls_file(c, &path.key("client_cert"), t.client_cert.as_deref());
    let key = tls_file(c, &path.key("client_key"), t.client_key.as_deref());
    let client_cert = match (cert, key, t.client_cert.is_some(), t.client_key.is_some()) {
        (Some(cert), Some(key), _, _) => Some(ClientCertSpec { cert, key }),
        (_, _, true, false) => {
            c.error(&path.key("client_cert"), "`client_cert` needs `client_key` (the certificate's private key)");
            None
        }
        (_, _, false, true) => {
            c.error(&path.key("client_key"), "`client_key` needs `client_cert` (the certificate it belongs to)");
            None
        }
        _ => None,
    };
    let server_name = t.server_name.as_ref().map(|name| {
        if !is_server_name(name) {
            c.error(&path.key("server_name"), format!("`{name}` is not a DNS name or IP address"));
        }
        name.clone()
    });
    UpstreamTlsSpec { ca, client_cert, server_name }
}

/// A configured PEM file, resolved against the config file's folder (read at run time).
fn tls_file(c: &mut Compiler<'_>, path: &KeyPath, value: Option<&str>) -> Option<PathBuf> {
    let value = value?;
    if value.trim().is_empty() {
        c.error(path, "name a PEM file");
        return None;
    }
    Some(c.loaded.resolve_path(value))
}

/// A name rustls can send as SNI and verify: an IP address or DNS labels.
fn is_server_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
