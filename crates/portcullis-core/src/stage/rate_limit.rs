//! Rate-limit keys. This stage only works out, from the request as the client sent it, which
//! bucket of each of the route's limits the request counts against; the decision itself
//! (local counters or Redis, an await) is made by the proxy right after the pipeline, before
//! anything is forwarded.

use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use http::request::Parts;

use crate::context::RequestContext;
use crate::flow::Flow;
use crate::snapshot::{LimitKey, RouteSpec, Snapshot};

/// Header values longer than this are keyed by a hash (bounded key memory).
const MAX_KEY_VALUE: usize = 128;

pub struct RateLimitKeys;

impl RateLimitKeys {
    pub fn run(snapshot: &Snapshot, route: &RouteSpec, parts: &Parts, ctx: &mut RequestContext) -> Flow {
        if route.rate_limits.is_empty() {
            return Flow::Skip;
        }
        let keys = route
            .rate_limits
            .iter()
            .map(|&i| snapshot.rate_limits.get(i).map_or_else(String::new, |l| key_of(&l.key, route, parts, ctx)))
            .collect();
        ctx.rate_keys = keys;
        Flow::Continue
    }
}

fn key_of(key: &LimitKey, route: &RouteSpec, parts: &Parts, ctx: &RequestContext) -> String {
    let by_ip = || ip_key(ctx.client_ip);
    match key {
        LimitKey::ClientIp => by_ip(),
        LimitKey::Consumer => ctx.consumer.as_ref().map_or_else(by_ip, |c| format!("c:{c}")),
        // A request without the claim (or without a token) counts by its client IP.
        LimitKey::Claim(name) => match ctx.token.as_ref().and_then(|t| t.claims.get(name)) {
            Some(serde_json::Value::String(s)) if s.len() <= MAX_KEY_VALUE => format!("cl:{name}:{s}"),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => format!("cl:{name}:{v}"),
            _ => by_ip(),
        },
        // Like a claim: a request without the header counts by its client IP, so one client
        // that leaves it out cannot use up a bucket every such client would share.
        LimitKey::Header(name) => match parts.headers.get(name) {
            Some(value) => {
                let mut out = String::from("h:");
                let bytes = value.as_bytes();
                if bytes.len() <= MAX_KEY_VALUE {
                    out.push_str(&String::from_utf8_lossy(bytes));
                } else {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    bytes.hash(&mut h);
                    let _ = write!(out, "#{:016x}", h.finish());
                }
                out
            }
            None => by_ip(),
        },
        LimitKey::Route => format!("r:{}", route.name),
    }
}

/// `ip:` and the address as `Display` writes it. IPv4, the common case, is written digit by
/// digit: `fmt` machinery for four octets cost more than the limiter decision itself.
fn ip_key(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return format!("ip:{ip}");
    };
    let mut out = String::with_capacity("ip:255.255.255.255".len());
    out.push_str("ip:");
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::{ip_key, key_of};

    #[test]
    fn a_request_without_the_keyed_header_counts_by_its_client_ip() {
        let snapshot = crate::test_support::one_route_snapshot();
        let route = snapshot.routes.first().expect("a route").clone();
        let key = crate::snapshot::LimitKey::Header(http::HeaderName::from_static("x-tenant"));
        let (mut parts, ()) = http::Request::get("/x").body(()).expect("request").into_parts();
        let mut ctx = crate::test_support::context(&snapshot, &parts, [10, 0, 0, 7], false);
        assert_eq!(key_of(&key, &route, &parts, &ctx), "ip:10.0.0.7");
        ctx.client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8));
        assert_eq!(key_of(&key, &route, &parts, &ctx), "ip:10.0.0.8", "another client, another bucket");
        parts.headers.insert("x-tenant", http::HeaderValue::from_static("t1"));
        assert_eq!(key_of(&key, &route, &parts, &ctx), "h:t1");
    }

    #[test]
    fn ip_keys_are_written_as_display_writes_the_address() {
        for octet in 0..=255u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(octet, 255 - octet, octet / 3, 10));
            assert_eq!(ip_key(ip), format!("ip:{ip}"));
        }
        for ip in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::LOCALHOST] {
            assert_eq!(ip_key(IpAddr::V4(ip)), format!("ip:{ip}"));
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_key(v6), "ip:2001:db8::1");
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(ip_key(mapped), format!("ip:{mapped}"));
    }
}
