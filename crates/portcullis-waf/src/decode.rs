//! The standard decodings, applied to every inspected value before any rule looks at it:
//! repeated URL decoding (`%XX`, IIS `%uXXXX`, `+` in query and form values), NUL removal,
//! HTML entities, JavaScript escapes (`\uXXXX`, `\xHH`), then Unicode NFKC normalisation
//! (full-width `＜` is `<`). Case folding and SQL comment removal belong to the rules that need
//! them. Each step runs only when its trigger byte is present, and a value no step changes is
//! borrowed: the common plain parameter costs one scan and no allocation.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization as _;

/// How many rounds of URL decoding: double and triple encodings are evasions; more rounds
/// than that are not needed to see them, and stop a crafted value from costing more.
pub const MAX_URL_DECODES: usize = 4;

/// A value after decoding, with what the decoding noticed on the way.
#[derive(Debug, Clone, Default)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// A NUL byte (raw or encoded) was in the value; it is removed from `text`.
    pub nul: bool,
    /// A `%` not followed by two hex digits (or `u` and four).
    pub bad_encoding: bool,
    /// IIS `%uXXXX` encoding of a full-width character (`%uFF0E`).
    pub full_width: bool,
    /// An overlong UTF-8 dot or slash (`%c0%ae`, `%c0%af`): the classic traversal evasion.
    pub overlong: bool,
}

/// Decodes one value. `plus`: `+` is a space (query and form values).
pub fn decode(raw: &[u8], plus: bool) -> Decoded<'_> {
    let mut out = Decoded::default();
    let mut bytes: Cow<'_, [u8]> = Cow::Borrowed(raw);
    for round in 0..MAX_URL_DECODES {
        let plus = plus && round == 0;
        if !(bytes.contains(&b'%') || plus && bytes.contains(&b'+')) {
            break;
        }
        match url_decode_once(&bytes, plus, &mut out) {
            Some(next) => bytes = Cow::Owned(next),
            None => break,
        }
    }
    out.overlong = has_overlong(&bytes);
    if bytes.contains(&0) {
        out.nul = true;
        bytes = Cow::Owned(bytes.iter().copied().filter(|&b| b != 0).collect());
    }
    let mut text = match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
    };
    if text.contains('&') {
        let decoded = match html_escape::decode_html_entities(&text) {
            Cow::Owned(decoded) => Some(decoded),
            Cow::Borrowed(_) => None,
        };
        if let Some(decoded) = decoded {
            text = Cow::Owned(decoded);
        }
    }
    if text.contains('\\')
        && let Some(decoded) = js_decode(&text)
    {
        text = Cow::Owned(decoded);
    }
    if !text.is_ascii() {
        let normal: String = text.nfkc().collect();
        if normal != text {
            text = Cow::Owned(normal);
        }
    }
    if text.contains('\0') {
        out.nul = true;
        text = Cow::Owned(text.replace('\0', ""));
    }
    out.text = text;
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_run(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| hex(b).map(|h| acc << 4 | u32::from(h)))
}

/// One round of URL decoding; `None` when nothing changed.
fn url_decode_once(input: &[u8], plus: bool, seen: &mut Decoded<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'+' && plus {
            out.push(b' ');
            changed = true;
            i += 1;
            continue;
        }
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        if let Some(pair) = input.get(i + 1..i + 3)
            && let Some(v) = hex_run(pair)
        {
            out.push(v as u8);
            changed = true;
            i += 3;
            continue;
        }
        if matches!(input.get(i + 1), Some(b'u' | b'U'))
            && let Some(quad) = input.get(i + 2..i + 6)
            && let Some(v) = hex_run(quad)
        {
            seen.full_width |= (0xFF00..=0xFFEF).contains(&v);
            let c = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            changed = true;
            i += 6;
            continue;
        }
        seen.bad_encoding = true;
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// Overlong UTF-8 encodings of `.` and `/` (and `\`), which lenient decoders turn into the real
/// characters.
fn has_overlong(bytes: &[u8]) -> bool {
    if bytes.is_ascii() {
        return false;
    }
    bytes.windows(2).any(|w| matches!(w, [0xC0, 0xAE | 0xAF | 0xDC] | [0xC1, 0x9C]))
        || bytes.windows(3).any(|w| matches!(w, [0xE0, 0x80, 0xAE | 0xAF]))
}

/// JavaScript escapes: `\uXXXX`, `\u{X…}`, `\xHH`; `None` when nothing changed.
fn js_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let (code, len) = match bytes.get(i + 1) {
            Some(b'u') if bytes.get(i + 2) == Some(&b'{') => {
                let end = bytes[i + 3..].iter().position(|&b| b == b'}').map(|p| i + 3 + p);
                match end.filter(|&e| e > i + 3 && e - i <= 9).and_then(|e| Some((hex_run(&bytes[i + 3..e])?, e))) {
                    Some((v, e)) => (Some(v), e + 1 - i),
                    None => (None, 1),
                }
            }
            Some(b'u') => (bytes.get(i + 2..i + 6).and_then(hex_run), 6),
            Some(b'x') => (bytes.get(i + 2..i + 4).and_then(hex_run), 4),
            _ => (None, 1),
        };
        match code.and_then(char::from_u32) {
            Some(c) => {
                out.push_str(&text[last..i]);
                out.push(c);
                i += len;
                last = i;
                changed = true;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[last..]);
    changed.then_some(out)
}

/// The value with SQL comments (`/* … */`, MySQL's `/*! … */` kept as its content) removed,
/// so `UN/**/ION SEL/**/ECT` reads `UNION SELECT`; `None` when there is no comment.
pub fn strip_sql_comments(text: &str) -> Option<String> {
    if !text.contains("/*") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..];
        let (body, after) = match inner.find("*/") {
            Some(end) => (&inner[..end], &inner[end + 2..]),
            None => (inner, ""),
        };
        // `/*!50000 UNION*/` is executed by MySQL: keep what it holds.
        if let Some(kept) = body.strip_prefix('!') {
            out.push(' ');
            out.push_str(kept.trim_start_matches(|c: char| c.is_ascii_digit()));
            out.push(' ');
        }
        rest = after;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed() {
        let d = decode(b"hello-world", true);
        assert!(matches!(d.text, Cow::Borrowed("hello-world")));
    }

    #[test]
    fn double_and_triple_encodings_are_undone() {
        assert_eq!(decode(b"%253Cscript%253E", false).text, "<script>");
        assert_eq!(decode(b"%25252e%25252e%25252f", false).text, "../");
        assert_eq!(decode(b"a+b%2Bc", true).text, "a b+c");
    }

    #[test]
    fn iis_unicode_and_overlong_forms_are_seen() {
        let d = decode(b"%uFF1Cscript%uFF1E", false);
        assert!(d.full_width);
        assert_eq!(d.text, "<script>");
        assert!(decode(b"%c0%ae%c0%ae/", false).overlong);
    }

    #[test]
    fn entities_js_escapes_and_nul_are_decoded() {
        assert_eq!(decode(b"&lt;img src=x&gt;", false).text, "<img src=x>");
        assert_eq!(decode(b"&#x3C;svg&#62;", false).text, "<svg>");
        assert_eq!(decode(br"\u003cscript\x3e", false).text, "<script>");
        let d = decode(b"a%00b", false);
        assert!(d.nul);
        assert_eq!(d.text, "ab");
    }

    #[test]
    fn bad_encoding_is_noticed_and_kept() {
        let d = decode(b"100%zz", false);
        assert!(d.bad_encoding);
        assert_eq!(d.text, "100%zz");
    }

    #[test]
    fn sql_comments_are_removed_inside_keywords() {
        assert_eq!(strip_sql_comments("UN/**/ION SEL/*x*/ECT").as_deref(), Some("UNION SELECT"));
        assert_eq!(strip_sql_comments("1 /*!50000UNION*/ SELECT").as_deref(), Some("1  UNION  SELECT"));
        assert_eq!(strip_sql_comments("a /* open"), Some("a ".to_owned()));
        assert!(strip_sql_comments("plain").is_none());
    }

    #[test]
    fn broken_escapes_do_not_panic() {
        for raw in [&b"%"[..], b"%u", b"%u12", b"\\", b"\\u{", b"\\u{}", b"\\u{110000}", b"&#xFFFFFFFF;", b"\xff\xfe%"]
        {
            let _ = decode(raw, true);
        }
    }
}
