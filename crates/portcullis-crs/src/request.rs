//! A request taken apart into the ModSecurity collections CRS reads: arguments from the
//! query and the body (form, JSON, multipart, XML), cookies, headers and the request line.

use crate::Transaction;

/// The body processor that filled the body collections, as `REQBODY_PROCESSOR` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyProcessor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
}

impl BodyProcessor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Xml => "XML",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<BodyProcessor> {
        Some(match s.to_ascii_uppercase().as_str() {
            "URLENCODED" => BodyProcessor::UrlEncoded,
            "MULTIPART" => BodyProcessor::Multipart,
            "JSON" => BodyProcessor::Json,
            "XML" => BodyProcessor::Xml,
            _ => return None,
        })
    }

    /// The processor ModSecurity's recommended configuration picks for a Content-Type.
    pub(crate) fn for_content_type(ct: &[u8]) -> Option<BodyProcessor> {
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime == "application/x-www-form-urlencoded" {
            Some(BodyProcessor::UrlEncoded)
        } else if mime == "multipart/form-data" {
            Some(BodyProcessor::Multipart)
        } else if mime == "application/json" || mime.ends_with("+json") {
            Some(BodyProcessor::Json)
        } else if mime == "text/xml" || mime == "application/xml" || mime.ends_with("+xml") {
            Some(BodyProcessor::Xml)
        } else {
            None
        }
    }
}

pub(crate) type Pairs = Vec<(String, Vec<u8>)>;

/// The request-line and header collections, built before phase 1.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    pub(crate) args_get: Pairs,
    pub(crate) cookies: Pairs,
    pub(crate) headers: Pairs,
    pub(crate) query_string: Vec<u8>,
    pub(crate) filename: Vec<u8>,
    pub(crate) basename: Vec<u8>,
    pub(crate) uri: Vec<u8>,
    pub(crate) line: Vec<u8>,
}

/// The body collections, built between phase 1 and phase 2 with the processor phase 1 chose.
#[derive(Debug, Default)]
pub(crate) struct Body {
    pub(crate) args_post: Pairs,
    pub(crate) files: Pairs,
    pub(crate) files_names: Pairs,
    pub(crate) part_headers: Pairs,
    pub(crate) xml: Pairs,
    pub(crate) raw: Vec<u8>,
    pub(crate) files_size: usize,
    pub(crate) error: bool,
}

pub(crate) fn headers(tx: &Transaction<'_>) -> Headers {
    let (path, query) = match tx.uri.find('?') {
        Some(i) => (&tx.uri[..i], &tx.uri[i + 1..]),
        None => (tx.uri, ""),
    };
    let mut h = Headers {
        args_get: parse_urlencoded(query.as_bytes()),
        query_string: query.as_bytes().to_vec(),
        filename: path.as_bytes().to_vec(),
        basename: path.rsplit('/').next().unwrap_or("").as_bytes().to_vec(),
        uri: tx.uri.as_bytes().to_vec(),
        line: format!("{} {} {}", tx.method, tx.uri, tx.protocol).into_bytes(),
        ..Headers::default()
    };
    for (name, value) in tx.headers {
        h.headers.push(((*name).to_string(), value.to_vec()));
        if name.eq_ignore_ascii_case("cookie") {
            for part in value.split(|b| *b == b';') {
                let part = trim_ascii(part);
                if part.is_empty() {
                    continue;
                }
                match part.iter().position(|b| *b == b'=') {
                    Some(i) => {
                        h.cookies.push((String::from_utf8_lossy(&part[..i]).into_owned(), part[i + 1..].to_vec()))
                    }
                    None => h.cookies.push((String::from_utf8_lossy(part).into_owned(), Vec::new())),
                }
            }
        }
    }
    h
}

fn trim_ascii(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

/// `a=1&b=2` with `+` and `%XX` decoded, as ModSecurity fills ARGS.
pub(crate) fn parse_urlencoded(q: &[u8]) -> Pairs {
    let mut out = Vec::new();
    for part in q.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let k = crate::transform::url_decode(k, false);
        out.push((String::from_utf8_lossy(&k).into_owned(), crate::transform::url_decode(v, false)));
    }
    out
}

pub(crate) fn body(tx: &Transaction<'_>, processor: Option<BodyProcessor>) -> Body {
    let mut b = Body::default();
    let Some(raw) = tx.body else { return b };
    b.raw = raw.to_vec();
    match processor {
        Some(BodyProcessor::UrlEncoded) => b.args_post = parse_urlencoded(raw),
        Some(BodyProcessor::Json) => match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(v) => json_args("json", &v, &mut b.args_post, 0),
            Err(_) => b.error = true,
        },
        Some(BodyProcessor::Xml) => xml_text(raw, &mut b),
        Some(BodyProcessor::Multipart) => multipart(tx, raw, &mut b),
        None => {}
    }
    b
}

fn json_args(prefix: &str, v: &serde_json::Value, out: &mut Pairs, depth: usize) {
    use serde_json::Value;
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                json_args(&format!("{prefix}.{k}"), v, out, depth + 1);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                json_args(&format!("{prefix}.{i}"), v, out, depth + 1);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.as_bytes().to_vec())),
        Value::Null => out.push((prefix.to_string(), Vec::new())),
        other => out.push((prefix.to_string(), other.to_string().into_bytes())),
    }
}

fn xml_text(raw: &[u8], b: &mut Body) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(raw);
    let mut buf = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, b: &mut Body| {
        if !text.trim().is_empty() {
            b.xml.push(("/*".into(), std::mem::take(text).into_bytes()));
        }
        text.clear();
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Text(t)) => text.push_str(&t.into_inner()),
            Ok(Event::CData(t)) => text.push_str(&t.into_inner()),
            Ok(Event::GeneralRef(r)) => {
                let name = r.into_inner();
                let entity = format!("&{name};");
                match quick_xml::escape::unescape(&entity) {
                    Ok(c) => text.push_str(&c),
                    Err(_) => text.push_str(&entity),
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => flush(&mut text, b),
            Err(_) => {
                b.error = true;
                break;
            }
        }
        buf.clear();
    }
    flush(&mut text, b);
}

fn multipart(tx: &Transaction<'_>, raw: &[u8], b: &mut Body) {
    let ct = tx
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let Some(boundary) = ct.split(';').find_map(|p| {
        let p = p.trim();
        p.strip_prefix("boundary=").or_else(|| p.strip_prefix("BOUNDARY=")).map(|s| s.trim_matches('"').to_string())
    }) else {
        b.error = true;
        return;
    };
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(pos) = find(rest, &delim) {
        parts.push(&rest[..pos]);
        rest = &rest[pos + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
    }
    if parts.is_empty() {
        b.error = true;
        return;
    }
    for part in parts.into_iter().skip(1) {
        let part = part.strip_prefix(b"\r\n").or_else(|| part.strip_prefix(b"\n")).unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").or_else(|| part.strip_suffix(b"\n")).unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match find(part, b"\n\n") {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => {
                    b.error = true;
                    continue;
                }
            },
        };
        let mut name = String::new();
        let mut filename = None;
        let mut header_lines = Vec::new();
        for line in String::from_utf8_lossy(head).lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            header_lines.push(line.to_string());
            if line.to_ascii_lowercase().starts_with("content-disposition:") {
                for attr in line.split(';').skip(1) {
                    let attr = attr.trim();
                    if let Some(v) = attr.strip_prefix("name=") {
                        name = v.trim_matches('"').to_string();
                    } else if let Some(v) = attr.strip_prefix("filename=") {
                        filename = Some(v.trim_matches('"').to_string());
                    }
                }
            }
        }
        for l in header_lines {
            b.part_headers.push((name.clone(), l.into_bytes()));
        }
        match filename {
            Some(f) => {
                b.files_size += content.len();
                b.files.push((name.clone(), f.into_bytes()));
                b.files_names.push((name.clone(), name.into_bytes()));
            }
            None => b.args_post.push((name, content.to_vec())),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
