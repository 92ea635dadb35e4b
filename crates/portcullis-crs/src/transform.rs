//! The transformation functions (`t:`) CRS uses, with ModSecurity's semantics.

use base64::Engine as _;

/// One `t:` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transform {
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    ReplaceNulls,
    ReplaceComments,
    RemoveComments,
    RemoveCommentsChar,
    NormalizePath,
    NormalizePathWin,
    Utf8ToUnicode,
    Base64Decode,
    Base64DecodeExt,
    HexEncode,
    HexDecode,
    SqlHexDecode,
    Length,
    Sha1,
    Md5,
    Trim,
    TrimLeft,
    TrimRight,
    EscapeSeqDecode,
}

impl Transform {
    /// The function for a `t:` name; `None` for `t:none` is handled by the caller.
    pub(crate) fn from_name(name: &str) -> Option<Transform> {
        Some(match name.to_ascii_lowercase().as_str() {
            "lowercase" => Transform::Lowercase,
            "uppercase" => Transform::Uppercase,
            "urldecode" => Transform::UrlDecode,
            "urldecodeuni" => Transform::UrlDecodeUni,
            "htmlentitydecode" => Transform::HtmlEntityDecode,
            "jsdecode" => Transform::JsDecode,
            "cssdecode" => Transform::CssDecode,
            "cmdline" => Transform::CmdLine,
            "compresswhitespace" => Transform::CompressWhitespace,
            "removewhitespace" => Transform::RemoveWhitespace,
            "removenulls" => Transform::RemoveNulls,
            "replacenulls" => Transform::ReplaceNulls,
            "replacecomments" => Transform::ReplaceComments,
            "removecomments" => Transform::RemoveComments,
            "removecommentschar" => Transform::RemoveCommentsChar,
            "normalisepath" | "normalizepath" => Transform::NormalizePath,
            "normalisepathwin" | "normalizepathwin" => Transform::NormalizePathWin,
            "utf8tounicode" => Transform::Utf8ToUnicode,
            "base64decode" => Transform::Base64Decode,
            "base64decodeext" => Transform::Base64DecodeExt,
            "hexencode" => Transform::HexEncode,
            "hexdecode" => Transform::HexDecode,
            "sqlhexdecode" => Transform::SqlHexDecode,
            "length" => Transform::Length,
            "sha1" => Transform::Sha1,
            "md5" => Transform::Md5,
            "trim" => Transform::Trim,
            "trimleft" => Transform::TrimLeft,
            "trimright" => Transform::TrimRight,
            "escapeseqdecode" => Transform::EscapeSeqDecode,
            _ => return None,
        })
    }

    /// Applies the function. Input and output are bytes, as in ModSecurity.
    pub(crate) fn apply(self, v: &[u8]) -> Vec<u8> {
        match self {
            Transform::Lowercase => v.to_ascii_lowercase(),
            Transform::Uppercase => v.to_ascii_uppercase(),
            Transform::UrlDecode => url_decode(v, false),
            Transform::UrlDecodeUni => url_decode(v, true),
            Transform::HtmlEntityDecode => html_entity_decode(v),
            Transform::JsDecode => js_decode(v),
            Transform::CssDecode => css_decode(v),
            Transform::CmdLine => cmd_line(v),
            Transform::CompressWhitespace => compress_whitespace(v),
            Transform::RemoveWhitespace => v.iter().copied().filter(|b| !is_space(*b)).collect(),
            Transform::RemoveNulls => v.iter().copied().filter(|b| *b != 0).collect(),
            Transform::ReplaceNulls => v.iter().map(|b| if *b == 0 { b' ' } else { *b }).collect(),
            Transform::ReplaceComments => replace_comments(v),
            Transform::RemoveComments => remove_comments(v),
            Transform::RemoveCommentsChar => remove_comments_char(v),
            Transform::NormalizePath => normalize_path(v, false),
            Transform::NormalizePathWin => normalize_path(v, true),
            Transform::Utf8ToUnicode => utf8_to_unicode(v),
            Transform::Base64Decode => base64_decode(v, false),
            Transform::Base64DecodeExt => base64_decode(v, true),
            Transform::HexEncode => hex_encode(v),
            Transform::HexDecode => hex_decode(v),
            Transform::SqlHexDecode => sql_hex_decode(v),
            Transform::Length => v.len().to_string().into_bytes(),
            Transform::Sha1 => digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, v),
            Transform::Md5 => md5(v),
            Transform::Trim => trim(v, true, true),
            Transform::TrimLeft => trim(v, true, false),
            Transform::TrimRight => trim(v, false, true),
            Transform::EscapeSeqDecode => escape_seq_decode(v),
        }
    }

    /// The function's output, or `None` when it would return its input unchanged. A cheap
    /// scan decides that for the decoders CRS chains most (a value with no `%` or `+` is left
    /// as it is by URL decoding, one with no `&` by HTML entity decoding...), so that a request
    /// of plain values costs no copies; the other functions are applied and compared.
    pub(crate) fn apply_if_changed(self, v: &[u8]) -> Option<Vec<u8>> {
        let unchanged = match self {
            Transform::Lowercase => !v.iter().any(u8::is_ascii_uppercase),
            Transform::Uppercase => !v.iter().any(u8::is_ascii_lowercase),
            Transform::UrlDecode | Transform::UrlDecodeUni => !v.iter().any(|b| *b == b'%' || *b == b'+'),
            Transform::HtmlEntityDecode => !v.contains(&b'&'),
            Transform::JsDecode | Transform::CssDecode | Transform::EscapeSeqDecode => !v.contains(&b'\\'),
            Transform::RemoveNulls | Transform::ReplaceNulls => !v.contains(&0),
            Transform::RemoveWhitespace => !v.iter().any(|b| is_space(*b)),
            Transform::CompressWhitespace => {
                !v.iter().any(|b| (is_space(*b) && *b != b' ') || *b == 0xa0) && !v.windows(2).any(|w| w == b"  ")
            }
            Transform::ReplaceComments => !v.windows(2).any(|w| w == b"/*"),
            Transform::Utf8ToUnicode => v.is_ascii(),
            Transform::SqlHexDecode => !v.windows(2).any(|w| w[0] == b'0' && (w[1] | 0x20) == b'x'),
            Transform::NormalizePath => path_is_normal(v),
            Transform::NormalizePathWin => !v.contains(&b'\\') && path_is_normal(v),
            Transform::CmdLine => {
                !v.iter().any(|b| b.is_ascii_uppercase() || matches!(b, b'"' | b'\'' | b'\\' | b'^' | b',' | b';'))
                    && !v.iter().any(|b| is_space(*b) && *b != b' ')
                    && !v.windows(2).any(|w| w[0] == b' ' && matches!(w[1], b' ' | b'/' | b'('))
            }
            _ => false,
        };
        if unchanged {
            return None;
        }
        let out = self.apply(v);
        (out != v).then_some(out)
    }
}

/// Which of the bytes that transformations act on a value holds, one bit per class, so that
/// [`Transform::unchanged_for`] can tell from one pass over a value which functions leave it
/// as it is.
pub(crate) fn byte_mask(v: &[u8]) -> u32 {
    v.iter().fold(0, |m, b| m | BYTE_CLASS[usize::from(*b)])
}

const UPPER: u32 = 1;
const LOWER: u32 = 1 << 1;
const PERCENT_PLUS: u32 = 1 << 2;
const AMP: u32 = 1 << 3;
const BACKSLASH: u32 = 1 << 4;
const NUL: u32 = 1 << 5;
const SPACE: u32 = 1 << 6;
/// Tab, line feed, vertical tab, form feed, carriage return.
const CTL_SPACE: u32 = 1 << 7;
const NBSP: u32 = 1 << 8;
const HIGH: u32 = 1 << 9;
const DOT: u32 = 1 << 10;
const SLASH: u32 = 1 << 11;
/// `"`, `'`, `^`, `,`, `;`: what cmdLine removes or turns into a space.
const CMD: u32 = 1 << 12;
const STAR: u32 = 1 << 13;
const LT: u32 = 1 << 14;
const DASH: u32 = 1 << 15;
const HASH: u32 = 1 << 16;
const ZERO: u32 = 1 << 17;

const BYTE_CLASS: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'%' | b'+' => PERCENT_PLUS,
            b'&' => AMP,
            b'\\' => BACKSLASH,
            0 => NUL,
            b' ' => SPACE,
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => CTL_SPACE,
            0xa0 => NBSP | HIGH,
            0x80..=0xff => HIGH,
            b'.' => DOT,
            b'/' => SLASH,
            b'"' | b'\'' | b'^' | b',' | b';' => CMD,
            b'*' => STAR,
            b'<' => LT,
            b'-' => DASH,
            b'#' => HASH,
            b'0' => ZERO,
            _ => 0,
        };
        i += 1;
    }
    t
};

impl Transform {
    /// Whether the function surely leaves a value holding only the byte classes of `mask`
    /// (from [`byte_mask`]) unchanged; `false` when that takes a closer look.
    pub(crate) fn unchanged_for(self, mask: u32) -> bool {
        let none = |bits: u32| mask & bits == 0;
        match self {
            Transform::Lowercase => none(UPPER),
            Transform::Uppercase => none(LOWER),
            Transform::UrlDecode | Transform::UrlDecodeUni => none(PERCENT_PLUS),
            Transform::HtmlEntityDecode => none(AMP),
            Transform::JsDecode | Transform::CssDecode | Transform::EscapeSeqDecode => none(BACKSLASH),
            Transform::RemoveNulls | Transform::ReplaceNulls => none(NUL),
            Transform::RemoveWhitespace | Transform::Trim | Transform::TrimLeft | Transform::TrimRight => {
                none(SPACE | CTL_SPACE)
            }
            Transform::CompressWhitespace => none(SPACE | CTL_SPACE | NBSP),
            Transform::Utf8ToUnicode => none(HIGH),
            Transform::NormalizePath => none(DOT | SLASH),
            Transform::NormalizePathWin => none(DOT | SLASH | BACKSLASH),
            Transform::CmdLine => none(UPPER | BACKSLASH | SPACE | CTL_SPACE | CMD),
            Transform::ReplaceComments => none(SLASH),
            Transform::RemoveComments => none(SLASH | LT | DASH | HASH),
            Transform::RemoveCommentsChar => none(SLASH | STAR | DASH | LT | HASH),
            Transform::SqlHexDecode => none(ZERO),
            _ => false,
        }
    }
}

/// Whether normalizePath returns `v` as it is: no `.` or `..` segment, and no empty one but
/// where a leading or trailing `/` puts it.
fn path_is_normal(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let n = v.split(|b| *b == b'/').count();
    v.split(|b| *b == b'/').enumerate().all(|(i, seg)| match seg {
        b"." | b".." => false,
        b"" => i == 0 || i == n - 1,
        _ => true,
    })
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_hex(b: u8) -> bool {
    hex_val(b).is_some()
}

fn hex2(a: u8, b: u8) -> u8 {
    (hex_val(a).unwrap_or(0) << 4) | hex_val(b).unwrap_or(0)
}

/// `%XX` and `+`; with `uni`, also `%uXXXX` (the low byte, full-width ASCII mapped back).
/// Invalid encodings are kept as they are.
pub(crate) fn url_decode(v: &[u8], uni: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b == b'%' {
            if uni
                && i + 5 < v.len()
                && (v[i + 1] == b'u' || v[i + 1] == b'U')
                && v[i + 2..i + 6].iter().all(|c| is_hex(*c))
            {
                let hi = hex2(v[i + 2], v[i + 3]);
                let lo = hex2(v[i + 4], v[i + 5]);
                // Full-width forms U+FF01..U+FF5E are the ASCII range shifted.
                let decoded = if hi == 0xff && (0x01..=0x5e).contains(&lo) { lo + 0x20 } else { lo };
                out.push(decoded);
                i += 6;
                continue;
            }
            if i + 2 < v.len() && is_hex(v[i + 1]) && is_hex(v[i + 2]) {
                out.push(hex2(v[i + 1], v[i + 2]));
                i += 3;
                continue;
            }
            out.push(b);
        } else if b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    // ModSecurity keeps only the low byte of a numeric entity; a valid code point above
    // 0xff is written as UTF-8 here so that text in other scripts stays readable.
    if cp < 0x100 {
        out.push(cp as u8);
    } else if let Some(c) = char::from_u32(cp) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

fn html_entity_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'&' {
            let rest = &v[i + 1..];
            if rest.first() == Some(&b'#') {
                let (hex, start) = match rest.get(1) {
                    Some(b'x') | Some(b'X') => (true, 2),
                    _ => (false, 1),
                };
                let mut j = start;
                let mut cp: u32 = 0;
                while j < rest.len() && j - start < 8 {
                    let d = rest[j];
                    let val = if hex {
                        hex_val(d).map(u32::from)
                    } else if d.is_ascii_digit() {
                        Some(u32::from(d - b'0'))
                    } else {
                        None
                    };
                    match val {
                        Some(x) => cp = cp.saturating_mul(if hex { 16 } else { 10 }).saturating_add(x),
                        None => break,
                    }
                    j += 1;
                }
                if j > start {
                    push_char(&mut out, cp);
                    i += 1 + j;
                    if v.get(i) == Some(&b';') {
                        i += 1;
                    }
                    continue;
                }
            } else {
                let names: [(&[u8], u8); 6] =
                    [(b"quot", b'"'), (b"amp", b'&'), (b"lt", b'<'), (b"gt", b'>'), (b"nbsp", 0xa0), (b"apos", b'\'')];
                let mut done = false;
                for (name, ch) in names {
                    if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
                        out.push(ch);
                        i += 1 + name.len();
                        if v.get(i) == Some(&b';') {
                            i += 1;
                        }
                        done = true;
                        break;
                    }
                }
                if done {
                    continue;
                }
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn js_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            let n = v[i + 1];
            if (n == b'u' || n == b'U') && i + 5 < v.len() && v[i + 2..i + 6].iter().all(|c| is_hex(*c)) {
                let hi = hex2(v[i + 2], v[i + 3]);
                let lo = hex2(v[i + 4], v[i + 5]);
                out.push(if hi == 0xff && (0x01..=0x5e).contains(&lo) { lo + 0x20 } else { lo });
                i += 6;
                continue;
            }
            if (n == b'x' || n == b'X') && i + 3 < v.len() && is_hex(v[i + 2]) && is_hex(v[i + 3]) {
                out.push(hex2(v[i + 2], v[i + 3]));
                i += 4;
                continue;
            }
            if (b'0'..=b'7').contains(&n) {
                let mut j = i + 1;
                let mut val: u32 = 0;
                while j < v.len() && j < i + 4 && (b'0'..=b'7').contains(&v[j]) {
                    val = val * 8 + u32::from(v[j] - b'0');
                    j += 1;
                }
                out.push((val & 0xff) as u8);
                i = j;
                continue;
            }
            out.push(match n {
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                other => other,
            });
            i += 2;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn css_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            let mut j = i + 1;
            while j < v.len() && j < i + 7 && is_hex(v[j]) {
                j += 1;
            }
            if j > i + 1 {
                let digits = &v[i + 1..j];
                let lo = if digits.len() >= 2 {
                    hex2(digits[digits.len() - 2], digits[digits.len() - 1])
                } else {
                    hex2(b'0', digits[0])
                };
                // Full-width ASCII (FF01..FF5E) maps back as in ModSecurity.
                let full = digits.len() >= 4
                    && digits[digits.len() - 4..digits.len() - 2].eq_ignore_ascii_case(b"ff")
                    && (0x01..=0x5e).contains(&lo);
                out.push(if full { lo + 0x20 } else { lo });
                i = j;
                if v.get(i) == Some(&b' ') {
                    i += 1;
                }
                continue;
            }
            if v[i + 1] == b'\n' {
                i += 2;
                continue;
            }
            out.push(v[i + 1]);
            i += 2;
            continue;
        }
        if v[i] == b'\\' {
            i += 1;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn cmd_line(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v {
        match b {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b';' | 0x0b | 0x0c => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(b);
            }
            other => {
                space = false;
                out.push(other.to_ascii_lowercase());
            }
        }
    }
    out
}

fn compress_whitespace(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v {
        if is_space(b) || b == 0xa0 {
            if !space {
                out.push(b' ');
                space = true;
            }
        } else {
            space = false;
            out.push(b);
        }
    }
    out
}

fn replace_comments(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            match v[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => i = v.len(),
            }
            out.push(b' ');
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn remove_comments(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            match v[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => i = v.len(),
            }
            continue;
        }
        if v[i..].starts_with(b"<!--") {
            match v[i + 4..].windows(3).position(|w| w == b"-->") {
                Some(p) => i = i + 4 + p + 3,
                None => i = v.len(),
            }
            continue;
        }
        if v[i..].starts_with(b"--") || v[i] == b'#' {
            break;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn remove_comments_char(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i..].starts_with(b"/*") || v[i..].starts_with(b"*/") || v[i..].starts_with(b"--") {
            i += 2;
            continue;
        }
        if v[i..].starts_with(b"<!--") {
            i += 4;
            continue;
        }
        if v[i..].starts_with(b"-->") {
            i += 3;
            continue;
        }
        if v[i] == b'#' {
            i += 1;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn normalize_path(v: &[u8], win: bool) -> Vec<u8> {
    let v: Vec<u8> = if win { v.iter().map(|b| if *b == b'\\' { b'/' } else { *b }).collect() } else { v.to_vec() };
    let absolute = v.first() == Some(&b'/');
    let trailing = v.last() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in v.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(v.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    out
}

fn utf8_to_unicode(v: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(v);
    let mut out = Vec::with_capacity(v.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            out.extend_from_slice(format!("%u{:04x}", c as u32).as_bytes());
        }
    }
    out
}

fn base64_decode(v: &[u8], ext: bool) -> Vec<u8> {
    let clean: Vec<u8> = v
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || (!ext && *b == b'='))
        .take_while(|b| *b != b'=')
        .collect();
    let cut = clean.len() - clean.len() % 4 + if clean.len() % 4 >= 2 { clean.len() % 4 } else { 0 };
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean[..cut.min(clean.len())]).unwrap_or_default()
}

fn hex_encode(v: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(v.len() * 2);
    for &b in v {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out
}

fn hex_decode(v: &[u8]) -> Vec<u8> {
    v.chunks(2).filter(|c| c.len() == 2 && is_hex(c[0]) && is_hex(c[1])).map(|c| hex2(c[0], c[1])).collect()
}

fn sql_hex_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'0'
            && matches!(v.get(i + 1), Some(b'x') | Some(b'X'))
            && v.get(i + 2).is_some_and(|b| is_hex(*b))
            && v.get(i + 3).is_some_and(|b| is_hex(*b))
        {
            i += 2;
            while i + 1 < v.len() && is_hex(v[i]) && is_hex(v[i + 1]) {
                out.push(hex2(v[i], v[i + 1]));
                i += 2;
            }
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn digest(alg: &'static ring::digest::Algorithm, v: &[u8]) -> Vec<u8> {
    ring::digest::digest(alg, v).as_ref().to_vec()
}

/// MD5 (RFC 1321), only for `t:md5`; not used for anything that needs to be secure.
fn md5(input: &[u8]) -> Vec<u8> {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64).map(|i: u32| ((f64::from(i) + 1.0).sin().abs() * 4_294_967_296.0) as u32).collect();
    let (mut a0, mut b0, mut c0, mut d0) = (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0].iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn trim(v: &[u8], left: bool, right: bool) -> Vec<u8> {
    let mut s = 0;
    let mut e = v.len();
    if left {
        while s < e && is_space(v[s]) {
            s += 1;
        }
    }
    if right {
        while e > s && is_space(v[e - 1]) {
            e -= 1;
        }
    }
    v[s..e].to_vec()
}

fn escape_seq_decode(v: &[u8]) -> Vec<u8> {
    // ANSI C escapes; the same decoder as JavaScript's without \u.
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() && !matches!(v[i + 1], b'u' | b'U') {
            let dec = js_decode(&v[i..(i + 4).min(v.len())]);
            let consumed = if matches!(v[i + 1], b'x' | b'X') && i + 3 < v.len() && is_hex(v[i + 2]) && is_hex(v[i + 3])
            {
                4
            } else if (b'0'..=b'7').contains(&v[i + 1]) {
                1 + v[i + 1..].iter().take(3).take_while(|b| (b'0'..=b'7').contains(*b)).count()
            } else {
                2
            };
            out.push(dec.first().copied().unwrap_or(v[i + 1]));
            i += consumed;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, input: &str) -> String {
        let f = Transform::from_name(name).expect("known");
        String::from_utf8_lossy(&f.apply(input.as_bytes())).into_owned()
    }

    #[test]
    fn decodes_as_modsecurity() {
        assert_eq!(t("urlDecodeUni", "a%27b+c%u0041%uff1c%zz%"), "a'b cA<%zz%");
        assert_eq!(t("urlDecode", "%2e%2E/x"), "../x");
        assert_eq!(t("htmlEntityDecode", "&lt;script&gt;&#x41;&#66;&quot;x"), "<script>AB\"x");
        assert_eq!(t("jsDecode", "\\u003cscript\\x3e\\n"), "<script>\n");
        assert_eq!(t("cssDecode", "\\6a avascript"), "javascript");
        assert_eq!(t("cmdLine", "C^at  \"/etc/passwd\";X"), "cat/etc/passwd x");
        assert_eq!(t("compressWhitespace", "a \t\n b"), "a b");
        assert_eq!(t("removeWhitespace", "a b\tc"), "abc");
        assert_eq!(t("replaceComments", "un/**/ion/* x"), "un ion ");
        assert_eq!(t("normalizePath", "/a/./b/../../../etc//passwd"), "/etc/passwd");
        assert_eq!(t("normalizePathWin", "a\\..\\..\\win.ini"), "../win.ini");
        assert_eq!(t("utf8toUnicode", "aé"), "a%u00e9");
        assert_eq!(t("base64Decode", "PHNjcmlwdD4="), "<script>");
        assert_eq!(t("hexEncode", "AZ"), "415a");
        assert_eq!(t("length", "four"), "4");
        assert_eq!(t("lowercase", "SeLeCT"), "select");
        assert_eq!(hex_encode(&md5(b"abc")), b"900150983cd24fb0d6963f7d28e17f72".to_vec());
        assert_eq!(Transform::Sha1.apply(b"abc").len(), 20);
    }

    const ALL: [Transform; 30] = [
        Transform::Lowercase,
        Transform::Uppercase,
        Transform::UrlDecode,
        Transform::UrlDecodeUni,
        Transform::HtmlEntityDecode,
        Transform::JsDecode,
        Transform::CssDecode,
        Transform::CmdLine,
        Transform::CompressWhitespace,
        Transform::RemoveWhitespace,
        Transform::RemoveNulls,
        Transform::ReplaceNulls,
        Transform::ReplaceComments,
        Transform::RemoveComments,
        Transform::RemoveCommentsChar,
        Transform::NormalizePath,
        Transform::NormalizePathWin,
        Transform::Utf8ToUnicode,
        Transform::Base64Decode,
        Transform::Base64DecodeExt,
        Transform::HexEncode,
        Transform::HexDecode,
        Transform::SqlHexDecode,
        Transform::Length,
        Transform::Sha1,
        Transform::Md5,
        Transform::Trim,
        Transform::TrimLeft,
        Transform::TrimRight,
        Transform::EscapeSeqDecode,
    ];

    #[test]
    fn the_shortcuts_agree_with_the_functions() {
        // Pseudo-random values over the bytes the functions act on, and ordinary text: the
        // byte-class shortcut and apply_if_changed must say "unchanged" only when apply does.
        let alphabet: &[u8] = b"aZ09 ./\\%+&;#-*<>'\"^,()!x\t\n\r\x0b\x0c\0\xa0\xc3\xa9u{}=:";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut values: Vec<Vec<u8>> = ["plain text", "a/b/c", "/a/b/", "Widget number 7", "x.y", "a//b", "/*c*/"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 9) as usize;
            let mut v = Vec::with_capacity(len);
            let mut x = seed;
            for _ in 0..len {
                v.push(alphabet[(x % alphabet.len() as u64) as usize]);
                x /= alphabet.len() as u64;
                if x == 0 {
                    x = seed.rotate_left(17) | 1;
                }
            }
            values.push(v);
        }
        for v in &values {
            let mask = byte_mask(v);
            for f in ALL {
                let out = f.apply(v);
                if f.unchanged_for(mask) {
                    assert_eq!(out, *v, "{f:?} on {:?}", String::from_utf8_lossy(v));
                }
                let expect = (out != *v).then_some(out);
                assert_eq!(f.apply_if_changed(v), expect, "{f:?} on {:?}", String::from_utf8_lossy(v));
            }
        }
    }
}
