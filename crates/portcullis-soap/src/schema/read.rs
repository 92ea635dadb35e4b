//! Reads `<xsd:schema>` elements into raw declarations, QNames resolved in their own scope.
//!
//! Nothing is looked up here: references stay names until [`super::link`]. A construct that
//! is not mapped is recorded on the type being read (the first one wins) instead of failing
//! the whole WSDL.

use crate::names::{QName, XSD};
use crate::schema::MaxOccurs;
use crate::xml::Element;

/// Every schema embedded in one WSDL.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub(crate) types: Vec<(QName, RawType)>,
    pub(crate) elements: Vec<RawElement>,
    /// `xsd:import`/`xsd:include` of documents outside the WSDL file, as `namespace → location`.
    pub(crate) externals: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum RawType {
    Complex(RawComplex),
    Simple(RawSimple),
}

#[derive(Debug)]
pub(crate) struct RawComplex {
    /// How diagnostics name this type: "complexType `Contact`".
    pub(crate) label: String,
    pub(crate) name: Option<QName>,
    pub(crate) content: RawContent,
    pub(crate) attributes: Vec<RawAttr>,
    pub(crate) unsupported: Option<String>,
}

#[derive(Debug)]
pub(crate) enum RawContent {
    Empty,
    Group(RawGroup),
    /// `complexContent/extension`: the base's fields, then these.
    Extension {
        base: QName,
        group: Option<RawGroup>,
    },
    /// `simpleContent`: text of the base type (a simple type, or a complex one with simple content).
    Simple {
        base: QName,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compositor {
    Sequence,
    All,
    Choice,
}

#[derive(Debug)]
pub(crate) struct RawGroup {
    pub(crate) kind: Compositor,
    pub(crate) min: u32,
    pub(crate) max: MaxOccurs,
    pub(crate) items: Vec<RawParticle>,
}

#[derive(Debug)]
pub(crate) enum RawParticle {
    Element(RawElement),
    Ref { name: QName, min: u32, max: MaxOccurs },
    Group(RawGroup),
}

#[derive(Debug)]
pub(crate) struct RawElement {
    pub(crate) name: QName,
    pub(crate) ty: RawTypeRef,
    pub(crate) min: u32,
    pub(crate) max: MaxOccurs,
    pub(crate) nillable: bool,
}

#[derive(Debug)]
pub(crate) enum RawTypeRef {
    Named(QName),
    Anonymous(Box<RawType>),
    /// No `type` and no inline type: `xs:anyType`.
    Untyped,
    /// The declaration itself could not be read (the message says why).
    Broken(String),
}

#[derive(Debug)]
pub(crate) struct RawAttr {
    pub(crate) name: QName,
    pub(crate) ty: RawTypeRef,
    pub(crate) required: bool,
}

#[derive(Debug)]
pub(crate) struct RawSimple {
    pub(crate) base: RawSimpleBase,
    pub(crate) enumeration: Vec<String>,
    pub(crate) unsupported: Option<String>,
}

#[derive(Debug)]
pub(crate) enum RawSimpleBase {
    Named(QName),
    Anonymous(Box<RawSimple>),
    /// `xs:list` or `xs:union`: carried as text.
    List,
}

/// The per-schema defaults that decide how local names are qualified.
struct SchemaCtx {
    tns: String,
    elements_qualified: bool,
    attributes_qualified: bool,
}

/// Reads one `<xsd:schema>` into `raw`.
pub(crate) fn schema(el: &Element, raw: &mut Raw) {
    let ctx = SchemaCtx {
        tns: el.attr("targetNamespace").unwrap_or_default().to_owned(),
        elements_qualified: el.attr("elementFormDefault") == Some("qualified"),
        attributes_qualified: el.attr("attributeFormDefault") == Some("qualified"),
    };
    for child in el.children.iter().filter(|c| &*c.ns == XSD) {
        let name = child.attr("name").map(|n| QName::new(&ctx.tns, n));
        match (&*child.local, name) {
            ("element", Some(name)) => {
                let mut reader = TypeReader::new(&ctx, format!("element `{}`", name.local));
                let ty = reader.type_ref(child);
                let ty = reader.finish_ref(ty);
                raw.elements.push(RawElement {
                    name,
                    ty,
                    min: 1,
                    max: MaxOccurs::Bounded(1),
                    nillable: nillable(child),
                });
            }
            ("complexType", Some(name)) => {
                let label = format!("complexType `{}`", name.local);
                let ty = TypeReader::new(&ctx, label).complex(child, Some(name.clone()));
                raw.types.push((name, RawType::Complex(ty)));
            }
            ("simpleType", Some(name)) => {
                let ty = TypeReader::new(&ctx, format!("simpleType `{}`", name.local)).simple(child);
                raw.types.push((name, RawType::Simple(ty)));
            }
            ("import" | "include" | "redefine" | "override", _) => {
                if let Some(location) = child.attr("schemaLocation") {
                    let ns = child.attr("namespace").unwrap_or(&ctx.tns).to_owned();
                    raw.externals.push((ns, location.to_owned()));
                }
            }
            _ => {}
        }
    }
}

fn nillable(el: &Element) -> bool {
    matches!(el.attr("nillable"), Some("true" | "1"))
}

/// Reads the declarations of one top-level type, noting the first unsupported construct.
struct TypeReader<'c> {
    ctx: &'c SchemaCtx,
    label: String,
    unsupported: Option<String>,
}

impl<'c> TypeReader<'c> {
    fn new(ctx: &'c SchemaCtx, label: String) -> Self {
        Self { ctx, label, unsupported: None }
    }

    fn unsupported(&mut self, what: impl std::fmt::Display) {
        if self.unsupported.is_none() {
            self.unsupported = Some(format!("{what} in {} is not supported", self.label));
        }
    }

    fn qname(&mut self, el: &Element, attr: &str) -> Option<QName> {
        let value = el.attr(attr)?;
        match el.resolve_qname(value) {
            Ok(name) => Some(name),
            Err(e) => {
                self.unsupported(format_args!("{attr}=\"{value}\" ({e})"));
                None
            }
        }
    }

    fn occurs(&mut self, el: &Element) -> (u32, MaxOccurs) {
        let min = match el.attr("minOccurs").map(str::parse::<u32>) {
            None => 1,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                self.unsupported("an invalid minOccurs");
                1
            }
        };
        let max = match el.attr("maxOccurs") {
            None => MaxOccurs::Bounded(1),
            Some("unbounded") => MaxOccurs::Unbounded,
            Some(n) => n.parse().map(MaxOccurs::Bounded).unwrap_or_else(|_| {
                self.unsupported("an invalid maxOccurs");
                MaxOccurs::Bounded(1)
            }),
        };
        (min, max)
    }

    /// `type="..."`, an inline complexType/simpleType, or neither.
    fn type_ref(&mut self, el: &Element) -> RawTypeRef {
        if let Some(name) = self.qname(el, "type") {
            return RawTypeRef::Named(name);
        }
        for child in el.children.iter().filter(|c| &*c.ns == XSD) {
            match &*child.local {
                "complexType" => return RawTypeRef::Anonymous(Box::new(RawType::Complex(self.complex(child, None)))),
                "simpleType" => return RawTypeRef::Anonymous(Box::new(RawType::Simple(self.simple(child)))),
                _ => {}
            }
        }
        RawTypeRef::Untyped
    }

    /// Attaches an unsupported construct met while reading a global element's own
    /// declaration to its anonymous type, where linking will find it.
    fn finish_ref(mut self, ty: RawTypeRef) -> RawTypeRef {
        match self.unsupported.take() {
            Some(message) => RawTypeRef::Broken(message),
            None => ty,
        }
    }

    fn complex(&mut self, el: &Element, name: Option<QName>) -> RawComplex {
        let outer = self.unsupported.take();
        let mut content = RawContent::Empty;
        let mut attributes = Vec::new();
        for child in el.children.iter().filter(|c| &*c.ns == XSD) {
            match &*child.local {
                "sequence" | "all" | "choice" => content = RawContent::Group(self.group(child)),
                "group" => self.unsupported("an xs:group reference"),
                "complexContent" => content = self.complex_content(child, &mut attributes),
                "simpleContent" => content = self.simple_content(child, &mut attributes),
                "attribute" => self.attribute(child, &mut attributes),
                "attributeGroup" | "anyAttribute" | "annotation" | "assert" | "openContent" => {}
                other => self.unsupported(format_args!("xs:{other}")),
            }
        }
        let unsupported = std::mem::replace(&mut self.unsupported, outer);
        RawComplex { label: self.label.clone(), name, content, attributes, unsupported }
    }

    fn complex_content(&mut self, el: &Element, attributes: &mut Vec<RawAttr>) -> RawContent {
        let Some(derivation) = el.children.iter().find(|c| c.is(XSD, "extension") || c.is(XSD, "restriction")) else {
            return RawContent::Empty;
        };
        let base = self.qname(derivation, "base");
        let mut group = None;
        for child in derivation.children.iter().filter(|c| &*c.ns == XSD) {
            match &*child.local {
                "sequence" | "all" | "choice" => group = Some(self.group(child)),
                "attribute" => self.attribute(child, attributes),
                "group" => self.unsupported("an xs:group reference"),
                _ => {}
            }
        }
        match base {
            Some(base) if base.local == "Array" && base.namespace.contains("soap/encoding") => {
                self.unsupported("a SOAP-encoded array (soapenc:Array)");
                RawContent::Empty
            }
            // A restriction restates the whole content model, so its own group is the content.
            Some(_) if derivation.local.as_ref() == "restriction" => group.map_or(RawContent::Empty, RawContent::Group),
            Some(base) => RawContent::Extension { base, group },
            None => {
                self.unsupported("an xs:extension without a base");
                RawContent::Empty
            }
        }
    }

    fn simple_content(&mut self, el: &Element, attributes: &mut Vec<RawAttr>) -> RawContent {
        let Some(derivation) = el.children.iter().find(|c| c.is(XSD, "extension") || c.is(XSD, "restriction")) else {
            return RawContent::Empty;
        };
        for child in derivation.children_named(XSD, "attribute") {
            self.attribute(child, attributes);
        }
        match self.qname(derivation, "base") {
            Some(base) => RawContent::Simple { base },
            None => {
                self.unsupported("xs:simpleContent without a base");
                RawContent::Empty
            }
        }
    }

    fn group(&mut self, el: &Element) -> RawGroup {
        let kind = match &*el.local {
            "all" => Compositor::All,
            "choice" => Compositor::Choice,
            _ => Compositor::Sequence,
        };
        let (min, max) = self.occurs(el);
        let mut items = Vec::new();
        for child in el.children.iter().filter(|c| &*c.ns == XSD) {
            match &*child.local {
                "element" => {
                    if let Some(particle) = self.element(child) {
                        items.push(particle);
                    }
                }
                "sequence" | "choice" | "all" => items.push(RawParticle::Group(self.group(child))),
                "any" => self.unsupported("xs:any (an element of any type)"),
                "group" => self.unsupported("an xs:group reference"),
                _ => {}
            }
        }
        RawGroup { kind, min, max, items }
    }

    fn element(&mut self, el: &Element) -> Option<RawParticle> {
        let (min, max) = self.occurs(el);
        if el.attr("ref").is_some() {
            let name = self.qname(el, "ref")?;
            return Some(RawParticle::Ref { name, min, max });
        }
        let Some(local) = el.attr("name") else {
            self.unsupported("an xs:element with neither name nor ref");
            return None;
        };
        let qualified = match el.attr("form") {
            Some(form) => form == "qualified",
            None => self.ctx.elements_qualified,
        };
        let ns = if qualified { self.ctx.tns.as_str() } else { "" };
        let ty = self.type_ref(el);
        Some(RawParticle::Element(RawElement { name: QName::new(ns, local), ty, min, max, nillable: nillable(el) }))
    }

    /// Attribute references and groups are skipped: responses keep every attribute anyway,
    /// and a request naming one gets an "unknown field" error.
    fn attribute(&mut self, el: &Element, out: &mut Vec<RawAttr>) {
        let Some(local) = el.attr("name") else { return };
        let use_ = el.attr("use").unwrap_or("optional");
        if use_ == "prohibited" {
            return;
        }
        let qualified = match el.attr("form") {
            Some(form) => form == "qualified",
            None => self.ctx.attributes_qualified,
        };
        let ns = if qualified { self.ctx.tns.as_str() } else { "" };
        let ty = self.type_ref(el);
        out.push(RawAttr { name: QName::new(ns, local), ty, required: use_ == "required" });
    }

    fn simple(&mut self, el: &Element) -> RawSimple {
        let outer = self.unsupported.take();
        let mut base = RawSimpleBase::Named(QName::new(XSD, "string"));
        let mut enumeration = Vec::new();
        for child in el.children.iter().filter(|c| &*c.ns == XSD) {
            match &*child.local {
                "restriction" => {
                    base = match self.qname(child, "base") {
                        Some(name) => RawSimpleBase::Named(name),
                        None => match child.child(XSD, "simpleType") {
                            Some(inner) => RawSimpleBase::Anonymous(Box::new(self.simple(inner))),
                            None => RawSimpleBase::Named(QName::new(XSD, "string")),
                        },
                    };
                    let values = child.children_named(XSD, "enumeration").filter_map(|e| e.attr("value"));
                    enumeration.extend(values.map(str::to_owned));
                }
                "list" | "union" => base = RawSimpleBase::List,
                _ => {}
            }
        }
        let unsupported = std::mem::replace(&mut self.unsupported, outer);
        RawSimple { base, enumeration, unsupported }
    }
}
