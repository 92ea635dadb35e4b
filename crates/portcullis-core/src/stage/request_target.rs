//! The request-target and the host it names, checked before anything reads them (SPEC §3:
//! malformed → 400). A backend or a cache that parses these differently from the gateway
//! would route, or key, the same request another way:
//! - the target's form fits the method (RFC 9112 §3.2): origin form (`/path`) or absolute
//!   form (`http://host/path`) for every method, `*` only for `OPTIONS`, an authority
//!   (`host:port`) only for `CONNECT` — which the gateway does not tunnel (405);
//! - every `%` starts two hex digits, and the path's percent-decoded bytes are UTF-8
//!   (overlong forms such as `%c0%ae` are how `.` and `/` are smuggled past a check);
//! - `Host` and the URI's authority are `host[:port]` — no userinfo (RFC 9110 §4.2.4), no
//!   `/`, `\`, spaces or control bytes, at most one port, of digits — and on HTTP/2
//!   `:authority` and `Host` name the same host (RFC 9113 §8.3.1). Both end up in routing
//!   and in `X-Forwarded-Host`.

use std::net::Ipv6Addr;

use http::header::{ALLOW, HOST};
use http::request::Parts;
use http::{HeaderValue, Method, Version};

use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};

pub struct RequestTarget;

impl RequestTarget {
    /// The phase's name in the decision trace.
    pub const NAME: &'static str = "request_target";

    pub fn run(parts: &Parts) -> Flow {
        let form = match target_form(parts) {
            Ok(form) => form,
            Err(why) => return Problem::new(ErrorCode::BadRequest, why).into(),
        };
        if let Err(why) = percent_encoding(parts).and_then(|()| hosts(parts)) {
            return Problem::new(ErrorCode::BadRequest, why).into();
        }
        if form == Form::Authority {
            // A gateway is no tunnel: nothing on the far side of CONNECT is a route.
            return Problem::new(ErrorCode::MethodNotAllowed, "this gateway does not tunnel CONNECT requests")
                .with_header(ALLOW, HeaderValue::from_static(""))
                .into();
        }
        Flow::Continue
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `/path?query`, or `http://host/path?query` (HTTP/2 requests always look like this).
    Origin,
    /// `*`, only with `OPTIONS`.
    Asterisk,
    /// `host:port`, only with `CONNECT`.
    Authority,
}

fn target_form(parts: &Parts) -> Result<Form, &'static str> {
    let uri = &parts.uri;
    let connect = parts.method == Method::CONNECT;
    let target = uri.path_and_query().map_or("", |pq| pq.as_str());
    if target == "*" {
        return if parts.method == Method::OPTIONS {
            Ok(Form::Asterisk)
        } else {
            Err("the request-target `*` is only for OPTIONS")
        };
    }
    let form = match (uri.scheme_str(), uri.authority()) {
        (None, Some(_)) if target.is_empty() => Form::Authority,
        (None, None) if target.starts_with('/') => Form::Origin,
        (Some("http" | "https"), Some(a)) if !a.as_str().is_empty() => Form::Origin,
        _ => return Err("the request-target is neither a path nor an absolute http(s) URI"),
    };
    match (form, connect) {
        (Form::Authority, false) => Err("a request-target without a path is only for CONNECT"),
        (Form::Origin, true) => Err("CONNECT takes a host:port request-target"),
        _ => Ok(form),
    }
}

/// Every `%` starts two hex digits (path and query), and the path decodes to UTF-8. One pass,
/// and none at all for the usual target without `%`.
fn percent_encoding(parts: &Parts) -> Result<(), &'static str> {
    let Some(pq) = parts.uri.path_and_query() else { return Ok(()) };
    let target = pq.as_str().as_bytes();
    if !target.contains(&b'%') {
        return Ok(());
    }
    let path_end = target.len() - pq.query().map_or(0, |q| q.len() + 1);
    let mut utf8 = Utf8::default();
    let mut i = 0;
    while i < target.len() {
        let mut byte = target[i];
        if byte == b'%' {
            byte = match (target.get(i + 1).copied().and_then(hex), target.get(i + 2).copied().and_then(hex)) {
                (Some(high), Some(low)) => high << 4 | low,
                _ => return Err("a `%` in the request-target is not followed by two hex digits"),
            };
            i += 2;
        }
        if i < path_end && !utf8.feed(byte) {
            return Err("the path's percent-decoded bytes are not UTF-8");
        }
        i += 1;
    }
    if utf8.need > 0 {
        return Err("the path's percent-decoded bytes are not UTF-8");
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A UTF-8 validator fed one byte at a time (RFC 3629 §4: no overlong forms, no surrogates,
/// nothing past U+10FFFF), so decoded bytes need no buffer.
#[derive(Debug, Default)]
struct Utf8 {
    /// Continuation bytes still expected.
    need: u8,
    /// The range the next continuation byte must fall in (narrower after some lead bytes).
    low: u8,
    high: u8,
}

impl Utf8 {
    fn feed(&mut self, b: u8) -> bool {
        if self.need > 0 {
            if b < self.low || b > self.high {
                return false;
            }
            self.need -= 1;
            (self.low, self.high) = (0x80, 0xBF);
            return true;
        }
        (self.need, self.low, self.high) = match b {
            0x00..=0x7F => return true,
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return false,
        };
        true
    }
}

/// `Host` and the URI's authority are plain `host[:port]`; on HTTP/2 they agree.
fn hosts(parts: &Parts) -> Result<(), &'static str> {
    let authority = parts.uri.authority().map(http::uri::Authority::as_str);
    if let Some(authority) = authority
        && !is_host_port(authority.as_bytes())
    {
        return Err("the request-target's authority is not host[:port] (userinfo is refused)");
    }
    let Some(host) = parts.headers.get(HOST) else { return Ok(()) };
    if !is_host_port(host.as_bytes()) {
        return Err("the Host header is not host[:port]");
    }
    if parts.version == Version::HTTP_2
        && let Some(authority) = authority
        && !authority.as_bytes().eq_ignore_ascii_case(host.as_bytes())
    {
        return Err(":authority and Host name different hosts");
    }
    Ok(())
}

/// `uri-host [":" port]` of RFC 9110 §7.2, stricter where nothing legitimate goes: a name
/// of letters, digits, `-`, `.`, `_` and `~` (RFC 3986's unreserved set; no sub-delimiters
/// or percent-encoding), or a bracketed IPv6 address; a port of digits up to 65535. Empty is allowed
/// (an HTTP/1.1 `Host` may be empty when the target has no authority).
fn is_host_port(s: &[u8]) -> bool {
    let (host_ok, rest) = match s.first() {
        Some(b'[') => match s.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = std::str::from_utf8(&s[1..close]).ok().and_then(|t| t.parse::<Ipv6Addr>().ok());
                (literal.is_some(), &s[close + 1..])
            }
            None => (false, &s[..0]),
        },
        _ => {
            let end = s.iter().position(|&b| b == b':').unwrap_or(s.len());
            let name = &s[..end];
            (name.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')), &s[end..])
        }
    };
    host_ok
        && match rest.split_first() {
            None => true,
            Some((b':', port)) => {
                port.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(port).ok().and_then(|p| p.parse::<u16>().ok()).is_some()
            }
            Some(_) => false,
        }
}

#[cfg(test)]
mod tests;
