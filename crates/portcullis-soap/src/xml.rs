//! A small, hostile-input-safe XML tree built on quick-xml's pull parser.
//!
//! Everything this crate reads (WSDL files, SOAP responses) goes through [`parse`], which
//! refuses what makes XML dangerous instead of configuring it away: any `<!DOCTYPE>` is an
//! error (so no internal or external entity can be declared: no XXE, no billion laughs), only
//! the five predefined entities and numeric character references are expanded, and the size,
//! the nesting depth and the number of nodes are capped before memory is spent on them.
//! Input must be UTF-8 (or ASCII); another declared encoding is an error, never a guess.
//!
//! Namespaces are resolved while parsing. Each element keeps its in-scope bindings so that
//! QName-valued attributes and text (`type="tns:Contact"`, `<faultcode>soap:Client`) can be
//! resolved later against the scope they were written in.

use std::rc::Rc;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use crate::names::{QName, XML};

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests;

/// Bounds applied to every XML document this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Documents longer than this are refused before parsing starts.
    pub max_bytes: usize,
    /// Deepest element nesting accepted (the envelope counts).
    pub max_depth: usize,
    /// Most elements plus attributes accepted in one document; bounds the tree's memory,
    /// which is a small multiple of this number whatever the document looks like.
    pub max_nodes: usize,
}

impl Limits {
    /// The gateway's default body limit (SPEC §2 `max_body_bytes`).
    pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// Real SOAP messages nest a dozen levels; 64 leaves room and keeps recursion shallow.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// About 25 MiB of tree at most.
    pub const DEFAULT_MAX_NODES: usize = 200_000;

    /// The defaults with another byte cap (typically the route's body limit).
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Self { max_bytes, ..Self::default() }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_nodes: Self::DEFAULT_MAX_NODES,
        }
    }
}

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the XML document is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the XML document nests elements deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the XML document has more than {limit} elements and attributes")]
    TooManyNodes { limit: usize },
    #[error("the XML document has a DTD (<!DOCTYPE>), which is refused: no DTD or entity processing is done")]
    Dtd,
    #[error(
        "the XML document uses the entity `&{0};`; only &lt; &gt; &amp; &apos; &quot; and character references exist"
    )]
    UnknownEntity(String),
    #[error("the XML document is not UTF-8: {0}")]
    Encoding(String),
    #[error("the XML document uses the namespace prefix `{0}` without declaring it")]
    UnboundPrefix(String),
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("the XML document has no root element")]
    NoRoot,
}

/// The namespace bindings in scope at an element: its own declarations, then its parent's.
#[derive(Debug)]
pub(crate) struct Scope {
    parent: Option<Rc<Scope>>,
    bindings: Vec<(Box<str>, Rc<str>)>,
}

impl Scope {
    /// The namespace bound to `prefix` (`""` for the default namespace); `None` if unbound.
    fn resolve(&self, prefix: &str) -> Option<Rc<str>> {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some((_, ns)) = s.bindings.iter().rev().find(|(p, _)| &**p == prefix) {
                return Some(ns.clone());
            }
            scope = s.parent.as_deref();
        }
        None
    }
}

/// One element: resolved name, attributes (namespace declarations removed), its direct text
/// (all text and CDATA pieces concatenated; mixed content order is not kept) and children.
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) ns: Rc<str>,
    pub(crate) local: Box<str>,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
    scope: Rc<Scope>,
}

#[derive(Debug)]
pub(crate) struct Attribute {
    pub(crate) ns: Rc<str>,
    pub(crate) local: Box<str>,
    pub(crate) value: String,
}

impl Element {
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        &*self.ns == ns && &*self.local == local
    }

    pub(crate) fn qname(&self) -> QName {
        QName::new(&*self.ns, &*self.local)
    }

    /// Child elements in `ns` named `local`.
    pub(crate) fn children_named<'a, 'n>(
        &'a self,
        ns: &'n str,
        local: &'n str,
    ) -> impl Iterator<Item = &'a Element> + 'n
    where
        'a: 'n,
    {
        self.children.iter().filter(move |c| c.is(ns, local))
    }

    pub(crate) fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// An attribute in no namespace (the usual case for WSDL and XSD attributes).
    pub(crate) fn attr(&self, local: &str) -> Option<&str> {
        self.attr_ns("", local)
    }

    pub(crate) fn attr_ns(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs.iter().find(|a| &*a.ns == ns && &*a.local == local).map(|a| a.value.as_str())
    }

    /// Resolves a QName written in this element's scope (`tns:Contact`, or `Contact` in the
    /// default namespace), as XSD and SOAP do for QName-valued attributes and text.
    pub(crate) fn resolve_qname(&self, value: &str) -> Result<QName, XmlError> {
        let value = value.trim();
        let (prefix, local) = value.split_once(':').unwrap_or(("", value));
        let ns = self.scope.resolve(prefix);
        match ns {
            Some(ns) => Ok(QName::new(&*ns, local)),
            None if prefix.is_empty() => Ok(QName::new("", local)),
            None => Err(XmlError::UnboundPrefix(prefix.to_owned())),
        }
    }
}

/// Parses `input` into a tree, or refuses it (see the module docs for what is refused).
pub(crate) fn parse(input: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::TooLarge { limit: limits.max_bytes });
    }
    let input = strip_bom(input)?;
    let mut reader = Reader::from_reader(input);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut tree = TreeBuilder::new(limits);
    loop {
        let event = reader.read_event().map_err(|e| malformed(reader.error_position(), &e))?;
        let at = reader.buffer_position();
        match event {
            Event::Start(start) => tree.open(&start, at)?,
            Event::Empty(start) => {
                tree.open(&start, at)?;
                tree.close(at)?;
            }
            Event::End(_) => tree.close(at)?,
            Event::Text(text) => tree.text(&text.xml10_content(), at)?,
            Event::CData(data) => tree.text(&data.xml10_content(), at)?,
            Event::GeneralRef(reference) => tree.text(&expand_reference(&reference)?, at)?,
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Decl(decl) => check_declaration(&decl)?,
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => return tree.finish(at),
        }
    }
}

fn strip_bom(input: &[u8]) -> Result<&[u8], XmlError> {
    if let Some(rest) = input.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(rest);
    }
    if input.starts_with(b"\xFE\xFF") || input.starts_with(b"\xFF\xFE") {
        return Err(XmlError::Encoding("UTF-16 byte order mark".to_owned()));
    }
    Ok(input)
}

fn check_declaration(decl: &BytesDecl<'_>) -> Result<(), XmlError> {
    let Some(encoding) = decl.encoding() else { return Ok(()) };
    let encoding = encoding.map_err(|e| malformed(0, &e))?;
    let name = encoding.to_ascii_lowercase();
    if matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
        Ok(())
    } else {
        Err(XmlError::Encoding(format!("declared encoding `{encoding}`")))
    }
}

/// `&lt;` and friends and `&#...;`; any other name could only come from a DTD, which is refused.
fn expand_reference(reference: &BytesRef<'_>) -> Result<String, XmlError> {
    if let Some(ch) = reference.resolve_char_ref().map_err(|e| malformed(0, &e))? {
        return Ok(ch.to_string());
    }
    let name: &str = reference;
    resolve_xml_entity(name).map(str::to_owned).ok_or_else(|| XmlError::UnknownEntity(name.to_owned()))
}

fn malformed(position: u64, error: &dyn std::fmt::Display) -> XmlError {
    let message = error.to_string();
    if let Some(name) = message.split("unrecognized entity `").nth(1).and_then(|rest| rest.split('`').next()) {
        return XmlError::UnknownEntity(name.to_owned());
    }
    XmlError::Malformed { position, message }
}

/// Builds the tree from events, enforcing depth, node count and a single root.
struct TreeBuilder<'l> {
    limits: &'l Limits,
    stack: Vec<Element>,
    root: Option<Element>,
    nodes: usize,
    top: Rc<Scope>,
    no_ns: Rc<str>,
}

impl<'l> TreeBuilder<'l> {
    fn new(limits: &'l Limits) -> Self {
        let top = Rc::new(Scope { parent: None, bindings: vec![("xml".into(), Rc::from(XML))] });
        Self { limits, stack: Vec::new(), root: None, nodes: 0, top, no_ns: Rc::from("") }
    }

    fn count(&mut self, n: usize) -> Result<(), XmlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(XmlError::TooManyNodes { limit: self.limits.max_nodes });
        }
        Ok(())
    }

    fn open(&mut self, start: &BytesStart<'_>, at: u64) -> Result<(), XmlError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlError::TooDeep { limit: self.limits.max_depth });
        }
        if self.stack.is_empty() && self.root.is_some() {
            return Err(XmlError::Malformed { position: at, message: "a second root element".to_owned() });
        }
        let parent = self.stack.last().map_or(&self.top, |e| &e.scope).clone();
        let mut declarations = Vec::new();
        let mut raw = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| malformed(at, &e))?;
            let value = attr
                .normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_xml_entity)
                .map_err(|e| malformed(at, &e))?
                .into_owned();
            let key = attr.key.into_inner();
            if key == "xmlns" {
                declarations.push((Box::from(""), Rc::from(value.as_str())));
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                if value.is_empty() {
                    return Err(XmlError::Malformed {
                        position: at,
                        message: format!("prefix `{prefix}` bound to \"\""),
                    });
                }
                declarations.push((Box::from(prefix), Rc::from(value.as_str())));
            } else {
                raw.push((key.to_owned(), value));
            }
        }
        self.count(1 + raw.len())?;
        let scope = if declarations.is_empty() {
            parent
        } else {
            Rc::new(Scope { parent: Some(parent), bindings: declarations })
        };
        let (ns, local) = self.resolve(&scope, start.name().into_inner(), true)?;
        let mut attrs = Vec::with_capacity(raw.len());
        for (key, value) in raw {
            let (ns, local) = self.resolve(&scope, &key, false)?;
            attrs.push(Attribute { ns, local, value });
        }
        self.stack.push(Element { ns, local, attrs, text: String::new(), children: Vec::new(), scope });
        Ok(())
    }

    /// Element names take the default namespace when unprefixed; attribute names do not.
    fn resolve(&self, scope: &Scope, name: &str, element: bool) -> Result<(Rc<str>, Box<str>), XmlError> {
        match name.split_once(':') {
            Some((prefix, local)) => {
                let ns = scope.resolve(prefix).ok_or_else(|| XmlError::UnboundPrefix(prefix.to_owned()))?;
                Ok((ns, local.into()))
            }
            None if element => Ok((scope.resolve("").unwrap_or_else(|| self.no_ns.clone()), name.into())),
            None => Ok((self.no_ns.clone(), name.into())),
        }
    }

    fn close(&mut self, at: u64) -> Result<(), XmlError> {
        let element = self.stack.pop().ok_or_else(|| XmlError::Malformed {
            position: at,
            message: "an end tag without a start tag".to_owned(),
        })?;
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
        Ok(())
    }

    fn text(&mut self, text: &str, at: u64) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            Some(element) => element.text.push_str(text),
            None if text.trim_matches(is_xml_space).is_empty() => {}
            None => {
                return Err(XmlError::Malformed { position: at, message: "text outside the root element".to_owned() });
            }
        }
        Ok(())
    }

    fn finish(self, at: u64) -> Result<Element, XmlError> {
        if let Some(open) = self.stack.last() {
            return Err(XmlError::Malformed {
                position: at,
                message: format!("element <{}> is not closed", open.local),
            });
        }
        self.root.ok_or(XmlError::NoRoot)
    }
}

/// XML's whitespace: space, tab, CR and LF (not Unicode's wider set).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}
