//! The effective config as it may be shown (`GET /config`): every secret replaced by
//! [`REDACTED`].
//!
//! What counts as a secret, from the most to the least certain:
//! - every value that came through a `${env:…}` or `${file:…}` reference: that is how
//!   secrets are meant to reach the file, and a reference does not say which ones are;
//! - fields that hold credentials by their nature: admin tokens, API key digests
//!   (`consumers.*.keys`), upstream header values that carry credentials, any key whose name
//!   says secret, password, token, salt, pepper or private key;
//! - the password (and any `password=` query value) of a URL (`postgres://u:pw@…`);
//! - any text holding a PEM private key.
//!
//! The `stages` overlays are dropped: the stage in force is already merged in, and the
//! others may hold literal secrets of other environments.

use std::collections::HashSet;

use serde_json::Value;

use crate::KeyPath;

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Key names whose value is a credential wherever they appear.
const SECRET_KEYS: &[&str] =
    &["token", "secret", "password", "passwd", "salt", "pepper", "private_key", "client_secret", "keys"];

/// Header names whose value is a credential (compared without case).
const SECRET_HEADER_WORDS: &[&str] = &["authorization", "cookie", "token", "secret", "key", "password", "auth"];

/// `value` with every secret replaced; `hidden` holds the JSON pointers of values that came
/// through a reference.
pub fn redact(value: &Value, hidden: &HashSet<String>) -> Value {
    let mut out = value.clone();
    if let Value::Object(map) = &mut out {
        map.remove("stages");
    }
    walk(&mut out, &KeyPath::root(), hidden, false);
    out
}

fn walk(value: &mut Value, path: &KeyPath, hidden: &HashSet<String>, secret: bool) {
    match value {
        Value::String(text) => {
            if secret || hidden.contains(path.pointer()) || text.contains("PRIVATE KEY") {
                *text = REDACTED.to_owned();
            } else if let Some(shown) = without_url_password(text) {
                *text = shown;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), hidden, secret);
            }
        }
        Value::Object(map) => {
            let headers = path.pointer().ends_with("/set");
            for (key, child) in map.iter_mut() {
                let secret = secret || is_secret_key(key) || (headers && is_secret_header(key));
                walk(child, &path.key(key), hidden, secret);
            }
        }
        // Numbers and booleans carry no secret of their own; a referenced one is still shown
        // redacted, since its text came from the environment.
        Value::Number(_) | Value::Bool(_) | Value::Null => {
            if hidden.contains(path.pointer()) {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&key.as_str()) || ["secret", "password", "private_key"].iter().any(|w| key.contains(w))
}

fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADER_WORDS.iter().any(|w| name.contains(w))
}

/// `text` with the password of a `scheme://user:password@host` URL, and the values of
/// `password=` style query parameters, redacted; `None` when there is none.
fn without_url_password(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let mut out = format!("{scheme}://");
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut changed = false;
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            out.push_str(&format!("{user}:{REDACTED}@{host}"));
            changed = true;
        }
        _ => out.push_str(authority),
    }
    let (before_query, query) = tail.split_once('?').map_or((tail, None), |(b, q)| (b, Some(q)));
    out.push_str(before_query);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) || k.eq_ignore_ascii_case("sslpassword") => {
                    changed = true;
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(value: &Value, hidden: &[&str]) -> String {
        let hidden = hidden.iter().map(|s| (*s).to_owned()).collect();
        redact(value, &hidden).to_string()
    }

    #[test]
    fn credentials_by_field_are_redacted() {
        let doc = json!({
            "admin": {"bind": "127.0.0.1:9901", "token": "adm1n", "tokens": [{"name": "ops", "token": "0ps"}]},
            "consumers": {"acme": {"plan": "gold", "keys": ["sha256:abcdef"]}},
            "routes": [{"name": "r", "headers": {"request": {"set": {"Authorization": "Bearer up", "X-Tenant": "t1"}}}}],
            "auth": {"idp": {"client_secret": "cs"}},
        });
        let text = shown(&doc, &[]);
        for secret in ["adm1n", "0ps", "sha256:abcdef", "Bearer up", "cs"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for kept in ["127.0.0.1:9901", "ops", "gold", "t1"] {
            assert!(text.contains(kept), "{kept} missing from {text}");
        }
    }

    #[test]
    fn url_passwords_referenced_values_pem_and_stages_are_redacted() {
        let doc = json!({
            "state": {"database": "postgres://app:pw1@db:5432/gw?sslmode=require&password=pw2", "redis": "redis://:pw3@r:6379"},
            "upstreams": {"b": {"targets": ["http://10.0.0.1:80"]}},
            "listeners": [{"bind": "from-env", "tls": {"inline": "-----BEGIN PRIVATE KEY-----x"}}],
            "stages": {"prod": {"admin": {"bind": "literal-stage-secret"}}},
        });
        let text = shown(&doc, &["/listeners/0/bind"]);
        for secret in ["pw1", "pw2", "pw3", "from-env", "BEGIN PRIVATE", "literal-stage-secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("postgres://app:<redacted>@db:5432/gw?sslmode=require&password=<redacted>"), "{text}");
        assert!(text.contains("redis://:<redacted>@r:6379"), "{text}");
        assert!(text.contains("http://10.0.0.1:80"), "{text}");
    }
}
