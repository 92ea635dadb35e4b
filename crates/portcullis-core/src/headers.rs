//! The header contract of SPEC §3: hop-by-hop stripping, `X-Forwarded-*` and the client-IP
//! rule, and the identity headers only the gateway may set.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use smallvec::SmallVec;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub const X_CONSUMER: HeaderName = HeaderName::from_static("x-consumer");
pub const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
pub const X_AUTH_PROVIDER: HeaderName = HeaderName::from_static("x-auth-provider");
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The identity headers every deployment strips from client requests; `forward_claims`
/// headers are added to these by the compiled snapshot.
pub const IDENTITY_HEADERS: [HeaderName; 3] = [X_CONSUMER, X_AUTH_SUBJECT, X_AUTH_PROVIDER];

/// Removes hop-by-hop headers: `Connection` and every header it lists, `Keep-Alive`, `TE`,
/// `Trailer`, `Transfer-Encoding`, `Upgrade` and every `Proxy-*`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Fast path: most messages carry none of these; one pass over the names is cheaper than
    // hashing every candidate.
    if !headers.keys().any(|k| is_hop_by_hop(k.as_str())) {
        return;
    }
    let listed: SmallVec<[HeaderName; 4]> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    // The fixed hop-by-hop names and every `proxy-*` one, found in one pass over the names:
    // removing each candidate by name hashed nine names per message (most carry only
    // `Connection`).
    let present: SmallVec<[HeaderName; 4]> = headers.keys().filter(|k| is_hop_by_hop(k.as_str())).cloned().collect();
    for name in present {
        headers.remove(name);
    }
}

/// Removes the headers whose name holds `_` (SPEC §3), except those in `allowed`: backends
/// behind CGI-style interfaces (PHP-FPM, WSGI, Rack) read `Content_Length` as
/// `Content-Length`. One pass over the names when none holds `_`, as in most requests.
pub fn strip_underscored(headers: &mut HeaderMap, allowed: &[HeaderName]) {
    if !headers.keys().any(|k| k.as_str().contains('_')) {
        return;
    }
    let dropped: Vec<HeaderName> =
        headers.keys().filter(|k| k.as_str().contains('_') && !allowed.contains(k)).cloned().collect();
    for name in dropped {
        headers.remove(name);
    }
}

/// Hop-by-hop headers a route lets through (SPEC §3 makes these two exceptions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopExceptions {
    /// `TE: trailers`, for an HTTP/2 upstream (gRPC needs it); any other `TE` value still goes.
    pub te_trailers: bool,
    /// A WebSocket upgrade: `Connection: upgrade` and `Upgrade: websocket` are kept.
    pub websocket: bool,
}

/// [`strip_hop_by_hop`], then the exceptions put back in their canonical form (nothing the
/// client listed beside them survives: `Upgrade: websocket, h2c` goes on as `websocket`).
pub fn strip_hop_by_hop_except(headers: &mut HeaderMap, keep: HopExceptions) {
    let te_trailers = keep.te_trailers && has_token(headers, &header::TE, "trailers");
    let websocket = keep.websocket && is_websocket_upgrade(headers);
    strip_hop_by_hop(headers);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// `Connection` lists `upgrade` and `Upgrade` names `websocket` (RFC 6455 §4.1).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade") && has_token(headers, &header::UPGRADE, "websocket")
}

/// Whether a comma-separated header lists `token` (parameters after `;` ignored).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade")
        || name.starts_with("proxy-")
}

/// The client address used by limits, the WAF and logs: the peer itself, unless the peer is
/// a trusted proxy, in which case the right-most address of `X-Forwarded-For` that is not a
/// trusted proxy (or the left-most, when all are trusted).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let hops = headers.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>();
    for value in hops.iter().rev() {
        let Ok(text) = value.to_str() else { return client };
        for hop in text.rsplit(',') {
            let Some(addr) = parse_hop(hop.trim()) else { return client };
            client = addr;
            if !is_trusted(addr, trusted) {
                return addr;
            }
        }
    }
    client
}

/// Whether `addr` (IPv4-mapped compared as IPv4) is one of `trusted`.
pub fn is_trusted(addr: IpAddr, trusted: &[IpNet]) -> bool {
    let addr = canonical(addr);
    trusted.iter().any(|net| net.contains(&addr))
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    // "[v6]:port" or "v4:port" forms some proxies write.
    hop.parse::<std::net::SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// Headers that backends read for the scheme, host, client address, original URL or method
/// (SPEC §3). Only a trusted proxy may pass them on: Rack redirects on `X-Forwarded-Scheme`,
/// IIS and Symfony route on `X-Original-URL`, allow-lists read `True-Client-IP`, frameworks
/// turn a GET into a DELETE on `X-HTTP-Method-Override` — and a cache stores the result.
/// `trusted_proxy_headers` adds to these.
pub const TRUSTED_PROXY_HEADERS: [&str; 18] = [
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-forwarded-server",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-host",
    "x-original-host",
    "x-original-url",
    "x-rewrite-url",
    "true-client-ip",
    "x-client-ip",
    "x-real-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "forwarded",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether `name` is one of [`TRUSTED_PROXY_HEADERS`]: one match on the name's bytes, so
/// the common request (none of them) costs a few length compares per header.
fn is_trusted_proxy_header(name: &str) -> bool {
    matches!(
        name,
        "x-forwarded-scheme"
            | "x-forwarded-ssl"
            | "x-forwarded-server"
            | "x-forwarded-port"
            | "x-forwarded-prefix"
            | "x-host"
            | "x-original-host"
            | "x-original-url"
            | "x-rewrite-url"
            | "true-client-ip"
            | "x-client-ip"
            | "x-real-ip"
            | "x-cluster-client-ip"
            | "cf-connecting-ip"
            | "forwarded"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
    )
}

/// Removes [`TRUSTED_PROXY_HEADERS`] and `extra` (in one pass over the names when none is
/// there, which is the common case).
fn strip_trusted_proxy_headers(headers: &mut HeaderMap, extra: &[HeaderName]) {
    let doomed = |name: &HeaderName| is_trusted_proxy_header(name.as_str()) || extra.contains(name);
    if !headers.keys().any(doomed) {
        return;
    }
    let names: Vec<HeaderName> = headers.keys().filter(|name| doomed(name)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` on a request about to go upstream. The
/// incoming `X-Forwarded-For` is kept only when the peer is a trusted proxy; from any other
/// peer, [`TRUSTED_PROXY_HEADERS`] and `extra` (`trusted_proxy_headers`) are removed.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[IpNet],
    extra: &[HeaderName],
    https: bool,
    host: Option<&HeaderValue>,
) {
    let peer = canonical(peer);
    let trusted_peer = is_trusted(peer, trusted);
    if !trusted_peer {
        strip_trusted_proxy_headers(headers, extra);
    }
    let value = if trusted_peer && headers.contains_key(&X_FORWARDED_FOR) {
        let prior: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
        HeaderValue::from_str(&format!("{}, {peer}", prior.join(", "))).ok()
    } else {
        ip_header_value(peer)
    };
    if let Some(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
    let proto = if https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    match host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

/// An address as a header value, formatted on the stack.
fn ip_header_value(addr: IpAddr) -> Option<HeaderValue> {
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{addr}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    HeaderValue::from_bytes(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn xff(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let h = xff("1.2.3.4");
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &nets(&["10.0.0.0/8"])), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_peer_yields_right_most_untrusted_hop() {
        let h = xff("6.6.6.6, 1.2.3.4, 10.0.0.7");
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])), ip("1.2.3.4"));
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let h = xff("1.2.3.4, not-an-ip");
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_for_is_replaced_for_untrusted_peers_and_appended_for_trusted() {
        let mut h = xff("6.6.6.6");
        set_forwarded(&mut h, ip("9.9.9.9"), &[], &[], false, None);
        assert_eq!(h[X_FORWARDED_FOR], "9.9.9.9");
        let mut h = xff("6.6.6.6");
        set_forwarded(&mut h, ip("10.1.1.1"), &nets(&["10.0.0.0/8"]), &[], true, None);
        assert_eq!(h[X_FORWARDED_FOR], "6.6.6.6, 10.1.1.1");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
    }

    #[test]
    fn names_with_underscores_are_dropped_unless_allowed() {
        let mut h = HeaderMap::new();
        h.insert("content_length", HeaderValue::from_static("5"));
        h.insert("transfer_encoding", HeaderValue::from_static("chunked"));
        h.insert("x_legacy_id", HeaderValue::from_static("7"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_underscored(&mut h, &[HeaderName::from_static("x_legacy_id")]);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-keep", "x_legacy_id"]);
    }

    #[test]
    fn every_listed_claim_header_and_the_extra_ones_go_unless_the_peer_is_trusted() {
        let mut sent = HeaderMap::new();
        for name in TRUSTED_PROXY_HEADERS {
            assert!(is_trusted_proxy_header(name), "{name}");
            sent.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        sent.insert("x-edge-country", HeaderValue::from_static("FR"));
        sent.insert("x-keep", HeaderValue::from_static("1"));
        let extra = [HeaderName::from_static("x-edge-country")];
        let mut h = sent.clone();
        set_forwarded(&mut h, ip("9.9.9.9"), &nets(&["10.0.0.0/8"]), &extra, false, None);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-forwarded-for", "x-forwarded-proto", "x-keep"], "{h:?}");
        let mut h = sent.clone();
        set_forwarded(&mut h, ip("10.0.0.9"), &nets(&["10.0.0.0/8"]), &extra, false, None);
        assert_eq!(h.len(), sent.len() + 2, "{h:?}");
    }

    #[test]
    fn connection_listed_and_proxy_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("proxy-foo", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn every_fixed_hop_by_hop_name_goes_with_all_its_values() {
        let mut h = HeaderMap::new();
        for name in [
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-connection",
            "proxy-authorization",
            "proxy-authenticate",
            "proxy-x",
        ] {
            h.append(name, HeaderValue::from_static("a"));
            h.append(name, HeaderValue::from_static("b"));
        }
        h.append("x-keep", HeaderValue::from_static("1"));
        h.append("x-keep", HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-keep"]);
        assert_eq!(h.get_all("x-keep").iter().count(), 2);
    }

    #[test]
    fn only_te_trailers_and_a_websocket_upgrade_survive_when_the_route_allows_them() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, x-hop"));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket, h2c"));
        h.insert(header::TE, HeaderValue::from_static("deflate, trailers"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        let mut plain = h.clone();
        strip_hop_by_hop_except(&mut plain, HopExceptions::default());
        assert!(plain.is_empty(), "{plain:?}");
        strip_hop_by_hop_except(&mut h, HopExceptions { te_trailers: true, websocket: true });
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[header::TE], "trailers");
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
    }

    #[test]
    fn an_upgrade_to_something_else_is_not_a_websocket_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop_except(&mut h, HopExceptions { te_trailers: true, websocket: true });
        assert!(h.is_empty(), "{h:?}");
    }
}
