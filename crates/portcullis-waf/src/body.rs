//! Request bodies the WAF reads, by content type: form fields, JSON keys and string leaves
//! (each with its JSON Pointer, for exclusions), multipart field values and file names, XML
//! text and attribute values, plain text. A body cut at `inspect_body_bytes` (or malformed)
//! is still read as far as it goes: JSON falls back to its string literals, XML to its
//! events up to the cut.

use http::HeaderMap;
use quick_xml::events::Event;

use crate::Pass;
use crate::detect::Place;
use crate::exclusion::Target;

/// The body kinds the WAF reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Form,
    Json,
    /// With its boundary.
    Multipart(String),
    Xml,
    Text,
}

/// The kind of a request's body, from its `Content-Type`; `None`: not read.
pub(crate) fn kind(headers: &HeaderMap) -> Option<Kind> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let mut params = value.split(';');
    let essence = params.next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Some(Kind::Form),
        "application/json" => Some(Kind::Json),
        "multipart/form-data" => params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
            .map(|(_, b)| Kind::Multipart(b.trim().trim_matches('"').to_owned()))
            .filter(|k| !matches!(k, Kind::Multipart(b) if b.is_empty())),
        "application/xml" | "text/xml" => Some(Kind::Xml),
        e if e.ends_with("+json") => Some(Kind::Json),
        e if e.ends_with("+xml") => Some(Kind::Xml),
        e if e.starts_with("text/") => Some(Kind::Text),
        _ => None,
    }
}

pub(crate) fn inspect(kind: Kind, body: &[u8], pass: &mut Pass<'_>) {
    match kind {
        Kind::Form => pass.fields(body, Place::Body),
        Kind::Json => json(body, pass),
        Kind::Multipart(boundary) => multipart(body, &boundary, pass),
        Kind::Xml => xml(body, pass),
        Kind::Text => pass.value(Target::Body, body, false, Place::Body),
    }
}

fn json(body: &[u8], pass: &mut Pass<'_>) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut pointer = String::new();
            walk(&value, &mut pointer, pass);
        }
        Err(_) => json_strings(body, pass),
    }
}

/// Every key and string leaf, with its JSON Pointer (serde_json bounds the nesting at 128).
fn walk(value: &serde_json::Value, pointer: &mut String, pass: &mut Pass<'_>) {
    use serde_json::Value;
    match value {
        Value::String(s) => pass.value(Target::Json(pointer), s.as_bytes(), false, Place::Body),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer, pass);
                pointer.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                pass.value(Target::Json(pointer), key.as_bytes(), false, Place::Body);
                walk(item, pointer, pass);
                pointer.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The string literals of JSON that does not parse (cut at the inspection limit, or broken):
/// escapes are undone by the decoding's JavaScript step.
fn json_strings(body: &[u8], pass: &mut Pass<'_>) {
    let mut i = 0;
    while let Some(start) = body[i..].iter().position(|&b| b == b'"').map(|p| p + i + 1) {
        let mut end = start;
        while end < body.len() && body[end] != b'"' {
            end += if body[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(body.len());
        pass.value(Target::Body, &body[start..end], false, Place::Body);
        i = (end + 1).min(body.len());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// multipart/form-data: each part's field value (files: their name; text files: content too).
fn multipart(body: &[u8], boundary: &str, pass: &mut Pass<'_>) {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut rest = match find(body, &delimiter) {
        Some(p) => &body[p + delimiter.len()..],
        None => return pass.value(Target::Body, body, false, Place::Body),
    };
    while !rest.starts_with(b"--") && !rest.is_empty() {
        let (part, next) = match find(rest, &delimiter) {
            Some(p) => (&rest[..p], &rest[p + delimiter.len()..]),
            None => (rest, &[][..]),
        };
        one_part(part, pass);
        rest = next;
    }
}

fn one_part(part: &[u8], pass: &mut Pass<'_>) {
    let part = part.strip_prefix(b"\r\n").or_else(|| part.strip_prefix(b"\n")).unwrap_or(part);
    let (head, content) = match find(part, b"\r\n\r\n") {
        Some(p) => (&part[..p], &part[p + 4..]),
        None => match find(part, b"\n\n") {
            Some(p) => (&part[..p], &part[p + 2..]),
            None => (part, &[][..]),
        },
    };
    let content = content.strip_suffix(b"\r\n").or_else(|| content.strip_suffix(b"\n")).unwrap_or(content);
    let head = String::from_utf8_lossy(head);
    let mut name = String::new();
    let mut filename = None;
    let mut text_file = true;
    for line in head.lines() {
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        if key.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                if let Some((k, v)) = param.split_once('=') {
                    let v = v.trim().trim_matches('"').to_owned();
                    match k.trim().to_ascii_lowercase().as_str() {
                        "name" => name = v,
                        "filename" => filename = Some(v),
                        _ => {}
                    }
                }
            }
        } else if key.trim().eq_ignore_ascii_case("content-type") {
            let t = value.trim().to_ascii_lowercase();
            text_file = t.starts_with("text/") || t.contains("json") || t.contains("xml");
        }
    }
    pass.value(Target::ArgName(&name), name.as_bytes(), false, Place::Body);
    if let Some(filename) = &filename {
        pass.value(Target::Arg(&name), filename.as_bytes(), false, Place::Body);
    }
    if filename.is_none() || text_file {
        pass.value(Target::Arg(&name), content, false, Place::Body);
    }
}

/// XML text, CDATA and attribute values; no DTD or entity processing (references such as
/// `&lt;` are kept in the text and decoded by the decoding step, never expanded from a DTD).
/// The text between two tags is read as one value, however the parser splits it.
fn xml(body: &[u8], pass: &mut Pass<'_>) {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut text: Vec<u8> = Vec::new();
    loop {
        let event = reader.read_event();
        match &event {
            Ok(Event::Text(t)) => text.extend_from_slice(AsRef::<str>::as_ref(t).as_bytes()),
            Ok(Event::CData(t)) => text.extend_from_slice(AsRef::<str>::as_ref(t).as_bytes()),
            Ok(Event::GeneralRef(r)) => {
                text.push(b'&');
                text.extend_from_slice(AsRef::<str>::as_ref(r).as_bytes());
                text.push(b';');
            }
            _ => {
                if !text.trim_ascii().is_empty() {
                    pass.value(Target::Xml, text.trim_ascii(), false, Place::Body);
                }
                text.clear();
            }
        }
        match event {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                for attr in e.attributes().flatten() {
                    pass.value(Target::Xml, attr.value.as_bytes(), false, Place::Body);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => {
                // Malformed from here: what is left is read as text.
                let at = usize::try_from(reader.buffer_position()).unwrap_or(body.len()).min(body.len());
                pass.value(Target::Body, &body[at..], false, Place::Body);
                break;
            }
        }
    }
}
