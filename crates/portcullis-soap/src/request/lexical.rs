//! JSON scalars to XSD lexical forms, and XML escaping.
//!
//! Values are accepted the way a gateway receives them: a JSON number, boolean or string, or
//! a string holding a number or boolean (path and query parameters are always strings). What
//! is written is checked against the XSD type's lexical space, so a bad value is the
//! client's 400 rather than the backend's fault.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Number, Value};

use crate::schema::{Builtin, ValueKind};

/// The text to write for `value` as `builtin`, or what was expected instead.
pub(crate) fn lexical<'v>(builtin: &Builtin, value: &'v Value) -> Result<Cow<'v, str>, String> {
    let expected = || match builtin.kind {
        ValueKind::String => format!("a string (xs:{})", builtin.name),
        ValueKind::Boolean => "a boolean (xs:boolean)".to_owned(),
        ValueKind::Integer(_) => format!("an integer (xs:{})", builtin.name),
        ValueKind::Decimal | ValueKind::Float => format!("a number (xs:{})", builtin.name),
    };
    let text = match (builtin.kind, value) {
        (ValueKind::String, Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
        (ValueKind::String, Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        (ValueKind::String, Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        (ValueKind::Boolean, Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        (ValueKind::Boolean, Value::String(s)) => {
            matches!(s.trim(), "true" | "false" | "1" | "0").then(|| Cow::Borrowed(s.trim()))
        }
        (ValueKind::Integer(range), Value::Number(n)) => {
            integer_number(n).filter(|t| in_range(t, range)).map(Cow::Owned)
        }
        (ValueKind::Integer(range), Value::String(s)) => {
            let t = s.trim();
            (is_integer(t) && in_range(t, range)).then_some(Cow::Borrowed(t))
        }
        (ValueKind::Decimal, Value::Number(n)) => Some(Cow::Owned(decimal_number(n))),
        (ValueKind::Decimal, Value::String(s)) => is_decimal(s.trim()).then(|| Cow::Borrowed(s.trim())),
        (ValueKind::Float, Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        (ValueKind::Float, Value::String(s)) => is_double(s.trim()).then(|| Cow::Borrowed(s.trim())),
        _ => None,
    };
    text.ok_or_else(expected)
}

/// An integral JSON number as integer text (`3.0` is accepted as `3`).
fn integer_number(n: &Number) -> Option<String> {
    if let Some(i) = n.as_i64() {
        return Some(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.to_string());
    }
    let f = n.as_f64()?;
    // Beyond 2^53 an f64 no longer holds every integer; refuse rather than send a neighbour.
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).then(|| format!("{f:.0}"))
}

/// `Display` for f64 never uses an exponent, which xs:decimal does not allow.
fn decimal_number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => format!("{f}"),
        (None, None, None) => n.to_string(),
    }
}

fn in_range(text: &str, range: Option<(i128, i128)>) -> bool {
    let Some((min, max)) = range else { return true };
    text.parse::<i128>().is_ok_and(|v| (min..=max).contains(&v))
}

pub(crate) fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac)
}

pub(crate) fn is_double(text: &str) -> bool {
    if matches!(text, "INF" | "+INF" | "-INF" | "NaN") {
        return true;
    }
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    is_decimal(mantissa) && exponent.is_none_or(is_integer)
}

/// Whether `c` may appear in an XML 1.0 document at all (even as a character reference).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content; `Err` if it holds a character XML cannot carry.
pub(crate) fn escape_text(out: &mut String, text: &str) -> Result<(), char> {
    escape(out, text, false)
}

/// Appends `text` escaped for a double-quoted attribute value.
pub(crate) fn escape_attribute(out: &mut String, text: &str) -> Result<(), char> {
    escape(out, text, true)
}

fn escape(out: &mut String, text: &str, attribute: bool) -> Result<(), char> {
    out.reserve(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A literal CR would be normalised away by the receiving parser.
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' | '\n' if attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if is_xml_char(c) => out.push(c),
            c => return Err(c),
        }
    }
    Ok(())
}
