//! Distinguished names as RFC 4514 writes them, for `consumers.*.mtls_subject` against the
//! subject of a verified client certificate (rendered by the listener, escaping per §2.4).
//!
//! A name is a sequence of RDNs separated by unescaped `,`; an RDN is a *set* of
//! `type=value` attributes joined by unescaped `+`. So `CN=admin+O=Acme` (one RDN) is not
//! `CN=admin,O=Acme` (two), while `O=Acme+CN=admin` is the same RDN in another order. Values
//! compare after unescaping (`\,` and `\2c` are the same comma, and never a separator);
//! attribute types compare without case; unescaped spaces around `,`, `+` and `=` are not
//! part of the name.

/// A parsed distinguished name. Equality is RFC 4514 equality as described above (values
/// compared exactly, byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName(Vec<Vec<Attribute>>);

/// `(TYPE, value)`: the type upper-cased, the value unescaped (a `#hex` value kept as
/// lower-case text).
type Attribute = (String, Vec<u8>);

impl DistinguishedName {
    /// `None` for text that is not a distinguished name: an attribute without `=` or type, a
    /// dangling `\`, or an escape that is neither a special character nor two hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut at = 0;
        loop {
            let (attribute, next, separator) = attribute(bytes, at)?;
            rdn.push(attribute);
            at = next;
            if separator != Some(b'+') {
                rdn.sort_unstable();
                rdns.push(std::mem::take(&mut rdn));
            }
            if separator.is_none() {
                return Some(Self(rdns));
            }
        }
    }
}

/// One `type=value` from `at`: the attribute, where the next one starts, and the separator
/// that ended it (`,`, `+`, or `None` at the end).
fn attribute(bytes: &[u8], at: usize) -> Option<(Attribute, usize, Option<u8>)> {
    let equals = at + bytes.get(at..)?.iter().position(|b| *b == b'=')?;
    let kind = std::str::from_utf8(&bytes[at..equals]).ok()?.trim();
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return None;
    }
    let mut i = equals + 1;
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    let hex_form = bytes.get(i) == Some(&b'#');
    let mut value = Vec::new();
    // The value's length up to its last byte that is not an unescaped space.
    let mut significant = 0;
    let separator = loop {
        match bytes.get(i) {
            None => break None,
            Some(&b) if b == b',' || b == b'+' => break Some(b),
            Some(b'\\') => {
                let (byte, used) = unescape(bytes.get(i + 1..)?)?;
                value.push(byte);
                significant = value.len();
                i += used;
            }
            Some(&b) => {
                value.push(b);
                if b != b' ' {
                    significant = value.len();
                }
            }
        }
        i += 1;
    };
    value.truncate(significant);
    if hex_form {
        value.make_ascii_lowercase();
    }
    Some(((kind.to_ascii_uppercase(), value), i + 1, separator))
}

/// The byte an escape stands for and how many bytes after the `\` it took: `\,` (any
/// character RFC 4514 may escape) or `\2c` (a hex pair).
fn unescape(rest: &[u8]) -> Option<(u8, usize)> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    match rest {
        [high, low, ..] if hex(*high).is_some() && hex(*low).is_some() => Some((hex(*high)? << 4 | hex(*low)?, 2)),
        [b, ..] if b" \"#+,;<=>\\".contains(b) => Some((*b, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::DistinguishedName;

    fn same(a: &str, b: &str) -> bool {
        match (DistinguishedName::parse(a), DistinguishedName::parse(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    #[test]
    fn a_multi_valued_rdn_is_not_two_rdns() {
        assert!(!same("CN=admin+O=Acme", "CN=admin,O=Acme"));
        assert!(!same("CN=admin+O=Acme", "O=Acme,CN=admin"));
        assert!(same("CN=admin+O=Acme", "O=Acme + CN=admin"));
        assert!(!same("CN=admin,O=Acme", "O=Acme,CN=admin"), "RDN order is part of the name");
    }

    #[test]
    fn escaped_separators_are_value_characters() {
        assert!(!same("CN=a\\,O=Acme", "CN=a,O=Acme"));
        assert!(!same("CN=a\\+O=Acme", "CN=a+O=Acme"));
        assert!(same("CN=a\\,O=Acme", "CN=a\\2cO=Acme"));
        assert!(same("CN=a\\2CO=Acme", "cn=a\\,O=Acme"));
        assert!(same("CN=Acme\\, Inc.,O=x", "CN = Acme\\, Inc. , O = x"));
        assert!(same("CN=\\ lead\\#\\;x\\<\\>\\\"\\\\\\=", "CN=\\20lead#;x<>\"\\\\="));
        assert!(!same("CN=\\ x", "CN=x"), "an escaped leading space is part of the value");
        assert!(same("CN=x\\ ", "CN=x\\20 "));
        assert!(same("CN=caf\\c3\\a9", "CN=café"));
        assert!(!same("CN=Admin", "CN=admin"), "values compare exactly");
        assert!(same("UID=#04024869", "uid=#04024869"));
    }

    #[test]
    fn text_that_is_no_name_matches_nothing() {
        for bad in ["", "CN", "=x", "CN=a,", "CN=a\\", "CN=a\\zz", "C N=a", "CN=a,,O=b"] {
            assert!(DistinguishedName::parse(bad).is_none(), "{bad:?}");
        }
    }
}
