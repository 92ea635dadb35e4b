//! On a route with providers, the credentials the gateway did not verify stay behind (SPEC
//! §3): a bearer `Authorization` field, and every JWT provider's token cookie or token query
//! parameter, unless it is the very place an accepting provider read its token from. A backend
//! that reads claims from what it is sent then only ever reads what was checked.
//!
//! The rest is the client's and goes on untouched: other cookies and query parameters, and a
//! non-bearer `Authorization` (the gateway verifies no Basic credentials, so a request
//! carrying them bypasses the cache). The common request holds none of these places, and the
//! checks allocate nothing for it.

use std::borrow::Cow;

use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue};

use crate::flow::Flow;
use crate::problem::{ErrorCode, Problem};
use crate::snapshot::{Snapshot, TokenSource};

/// Removes what `verified` does not name. Every place is a place of the whole config, not
/// only of the route's providers: a token meant for a provider that did not decide is as
/// unchecked as a forged one.
pub(super) fn strip(snapshot: &Snapshot, verified: impl Fn(&TokenSource) -> bool, parts: &mut Parts) -> Flow {
    if !verified(&TokenSource::Header) {
        strip_bearer(&mut parts.headers);
    }
    if snapshot.token_places.is_empty() {
        return Flow::Continue;
    }
    // A name spelled otherwise than the gateway reads it (`access%5Ftoken`) is a token the
    // gateway never saw but a backend that decodes names would: it goes, verified or not.
    let doomed = |raw: &[u8], wanted: fn(&TokenSource) -> Option<&str>| {
        let name = decoded(raw);
        snapshot
            .token_places
            .iter()
            .find(|place| wanted(place).is_some_and(|n| n.as_bytes() == &*name))
            .is_some_and(|place| *name != *raw || !verified(place))
    };
    if parts.headers.contains_key(COOKIE) {
        strip_cookies(&mut parts.headers, |name| doomed(name, cookie_name));
    }
    if parts.uri.query().is_some() && !strip_query(parts, |name| doomed(name, query_name)) {
        return Problem::new(ErrorCode::BadRequest, "the request target is invalid").into();
    }
    Flow::Continue
}

fn cookie_name(place: &TokenSource) -> Option<&str> {
    match place {
        TokenSource::Cookie(name) => Some(name),
        _ => None,
    }
}

fn query_name(place: &TokenSource) -> Option<&str> {
    match place {
        TokenSource::Query(name) => Some(name),
        _ => None,
    }
}

/// `Bearer` followed by whitespace or nothing, in any case (RFC 6750 §2.1; RFC 9110 §11.1).
fn is_bearer(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"bearer")
        && bytes.get(6).is_none_or(|b| b.is_ascii_whitespace())
}

/// Removes the bearer `Authorization` fields, keeping any other scheme's.
fn strip_bearer(headers: &mut HeaderMap) {
    if !headers.get_all(AUTHORIZATION).iter().any(is_bearer) {
        return;
    }
    let kept: Vec<HeaderValue> = headers.get_all(AUTHORIZATION).iter().filter(|v| !is_bearer(v)).cloned().collect();
    headers.remove(AUTHORIZATION);
    for value in kept {
        headers.append(AUTHORIZATION, value);
    }
}

/// The name of a `name=value` pair (or of a bare `name`), without surrounding whitespace.
fn pair_name(pair: &[u8]) -> &[u8] {
    let name = pair.split(|b| *b == b'=').next().unwrap_or(pair);
    name.trim_ascii()
}

/// Removes the cookie pairs `doomed` names, keeping every other pair in its order; a field
/// left empty goes. Works on bytes: a field that is not UTF-8 is no less readable to a backend.
fn strip_cookies(headers: &mut HeaderMap, doomed: impl Fn(&[u8]) -> bool) {
    let hit = |v: &HeaderValue| v.as_bytes().split(|b| *b == b';').any(|pair| doomed(pair_name(pair)));
    if !headers.get_all(COOKIE).iter().any(hit) {
        return;
    }
    let mut kept: Vec<HeaderValue> = Vec::new();
    for value in &headers.get_all(COOKIE) {
        if !hit(value) {
            kept.push(value.clone());
            continue;
        }
        let left: Vec<&[u8]> =
            value.as_bytes().split(|b| *b == b';').map(<[u8]>::trim_ascii).filter(|p| !doomed(pair_name(p))).collect();
        if left.iter().all(|pair| pair.is_empty()) {
            continue;
        }
        if let Ok(joined) = HeaderValue::from_bytes(&left.join(&b"; "[..])) {
            kept.push(joined);
        }
    }
    headers.remove(COOKIE);
    for value in kept {
        headers.append(COOKIE, value);
    }
}

/// Removes the query parameters `doomed` names, keeping the others in their order and
/// spelling. `false`: the target could not be rebuilt (it always can: fewer pairs of a valid
/// query are a valid query).
fn strip_query(parts: &mut Parts, doomed: impl Fn(&[u8]) -> bool) -> bool {
    let Some(query) = parts.uri.query() else { return true };
    if !query.split('&').any(|pair| doomed(pair_name(pair.as_bytes()))) {
        return true;
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !doomed(pair_name(pair.as_bytes()))).collect();
    let mut target = parts.uri.path().to_owned();
    if !kept.is_empty() {
        target.push('?');
        target.push_str(&kept.join("&"));
    }
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    let Ok(path_and_query) = PathAndQuery::try_from(target) else { return false };
    uri.path_and_query = Some(path_and_query);
    match http::Uri::from_parts(uri) {
        Ok(rebuilt) => {
            parts.uri = rebuilt;
            true
        }
        Err(_) => false,
    }
}

/// A name percent-decoded (`+` as a space), as a backend decoding its query would read it;
/// borrowed when there is nothing to decode.
fn decoded(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(raw);
    }
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16)).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => match (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                (Some(high), Some(low)) => {
                    i += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            b'+' => b' ',
            other => other,
        };
        out.push(byte);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn values(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    }

    #[test]
    fn only_bearer_authorization_fields_go() {
        let mut h = headers(&[("authorization", "Basic eA=="), ("authorization", "bearer x"), ("x", "1")]);
        strip_bearer(&mut h);
        assert_eq!(values(&h, "authorization"), ["Basic eA=="]);
        let mut h = headers(&[("authorization", "Bearer"), ("authorization", "BEARER\tx")]);
        strip_bearer(&mut h);
        assert!(h.is_empty(), "{h:?}");
        let mut h = headers(&[("authorization", "Bearerish x")]);
        strip_bearer(&mut h);
        assert_eq!(values(&h, "authorization"), ["Bearerish x"]);
    }

    #[test]
    fn only_the_named_cookie_pairs_go_and_untouched_fields_keep_their_spelling() {
        let doomed = |name: &[u8]| name == b"session";
        let mut h = headers(&[("cookie", "a=1;session=x ; b=2"), ("cookie", "c=3;d=4"), ("cookie", " session =y")]);
        strip_cookies(&mut h, doomed);
        assert_eq!(values(&h, "cookie"), ["a=1; b=2", "c=3;d=4"]);
        let mut h = headers(&[("cookie", "sessionx=1; xsession=2")]);
        strip_cookies(&mut h, doomed);
        assert_eq!(values(&h, "cookie"), ["sessionx=1; xsession=2"]);
    }

    #[test]
    fn only_the_named_query_parameters_go() {
        let strip = |target: &str| {
            let mut parts = http::Request::get(target)
                .body(())
                .map(|r| r.into_parts().0)
                .unwrap_or_else(|_| http::Request::new(()).into_parts().0);
            let ok = strip_query(&mut parts, |name| &*decoded(name) == b"access_token");
            (ok, parts.uri.to_string())
        };
        assert_eq!(strip("/x?a=1&access_token=t&b&access_token"), (true, "/x?a=1&b".into()));
        assert_eq!(strip("/x?access%5Ftoken=t"), (true, "/x".into()));
        assert_eq!(strip("http://h.example/x?access_token=t&z=%zz"), (true, "http://h.example/x?z=%zz".into()));
        assert_eq!(strip("/x?access_tokens=1"), (true, "/x?access_tokens=1".into()));
    }

    #[test]
    fn names_decode_as_a_backend_would() {
        assert_eq!(&*decoded(b"a%5Fb+c%zz%4"), b"a_b c%zz%4");
        assert!(matches!(decoded(b"plain"), Cow::Borrowed(_)));
    }
}
