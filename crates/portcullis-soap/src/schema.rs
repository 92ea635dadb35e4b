//! The XSD types of a WSDL, linked into an arena the mappings walk.
//!
//! [`read`] turns each `<xsd:schema>` of `<wsdl:types>` into raw declarations with every
//! QName resolved; [`link`] turns those into [`Types`]: one [`Ty`] per type, with nested
//! sequences, `all`, extensions and element references flattened into a field list per
//! complex type. Types refer to each other by [`TypeId`], so recursive types are fine.
//!
//! A construct this crate does not map (a repeating sequence, `xs:any`, a group reference, a
//! type defined in a file that is not embedded) makes that one type [`Ty::Broken`] with a
//! message naming the construct and the type; operations that reach such a type are
//! reported unsupported, the rest of the WSDL stays usable.

use std::collections::HashMap;

use crate::names::QName;

pub(crate) mod link;
pub(crate) mod read;

/// Index of a type in [`Types::tys`].
pub(crate) type TypeId = usize;

/// All types of one WSDL, plus its global elements.
#[derive(Debug, Default)]
pub(crate) struct Types {
    pub(crate) tys: Vec<Ty>,
    pub(crate) elements: HashMap<QName, GlobalElement>,
    pub(crate) named: HashMap<QName, TypeId>,
    /// The one [`Ty::Any`].
    pub(crate) any: TypeId,
    /// Every built-in simple type by local name, so `xsi:type="xsd:int"` always resolves.
    pub(crate) builtins: HashMap<&'static str, TypeId>,
    /// Stable names for JSON Schema `$defs`, one per named complex type and per global
    /// element with an anonymous complex type.
    pub(crate) def_names: HashMap<TypeId, String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct GlobalElement {
    pub(crate) ty: TypeId,
    pub(crate) nillable: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Ty {
    Simple(SimpleTy),
    Complex(ComplexTy),
    /// `xs:anyType` (or an element without a type): mapped without schema knowledge.
    Any,
    /// Not mappable; the message names the construct and where it is.
    Broken(String),
}

impl Types {
    pub(crate) fn get(&self, id: TypeId) -> &Ty {
        self.tys.get(id).unwrap_or(&Ty::Any)
    }

    /// The first unsupported construct reachable from `id`, if any.
    pub(crate) fn first_broken(&self, id: TypeId) -> Option<&str> {
        let mut seen = vec![false; self.tys.len()];
        let mut todo = vec![id];
        while let Some(id) = todo.pop() {
            match seen.get_mut(id) {
                Some(s) if !*s => *s = true,
                _ => continue,
            }
            match self.get(id) {
                Ty::Broken(message) => return Some(message),
                Ty::Complex(c) => {
                    todo.extend(c.fields.iter().map(|f| f.ty));
                    todo.extend(c.attributes.iter().map(|a| a.ty));
                    todo.extend(c.text);
                }
                Ty::Simple(_) | Ty::Any => {}
            }
        }
        None
    }

    /// The type `xsi:type="..."` names, when it is known here.
    pub(crate) fn by_name(&self, name: &QName) -> Option<TypeId> {
        if name.is(crate::names::XSD, "anyType") {
            return Some(self.any);
        }
        self.named.get(name).copied().or_else(|| {
            let builtin = Builtin::from_xsd(name)?;
            self.builtins.get(builtin.name).copied()
        })
    }
}

/// A simple type: its built-in base (restrictions of restrictions are followed to it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SimpleTy {
    pub(crate) builtin: Builtin,
    /// `xs:enumeration` facets, kept for JSON Schema; values are not checked against them.
    pub(crate) enumeration: Vec<String>,
    /// `xs:list` (and `xs:union`): carried as its text.
    pub(crate) list: bool,
}

/// A built-in XSD type: its local name (for JSON Schema formats) and how values map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Builtin {
    pub(crate) name: &'static str,
    pub(crate) kind: ValueKind,
}

/// `xs:string`, for values whose type says nothing more.
pub(crate) const STRING: Builtin = Builtin { name: "string", kind: ValueKind::String };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    String,
    Boolean,
    /// An integer type, with its inclusive value range when bounded.
    Integer(Option<(i128, i128)>),
    Decimal,
    Float,
}

const INTEGERS: &[(&str, Option<(i128, i128)>)] = &[
    ("integer", None),
    ("long", Some((i64::MIN as i128, i64::MAX as i128))),
    ("int", Some((i32::MIN as i128, i32::MAX as i128))),
    ("short", Some((i16::MIN as i128, i16::MAX as i128))),
    ("byte", Some((i8::MIN as i128, i8::MAX as i128))),
    ("unsignedLong", Some((0, u64::MAX as i128))),
    ("unsignedInt", Some((0, u32::MAX as i128))),
    ("unsignedShort", Some((0, u16::MAX as i128))),
    ("unsignedByte", Some((0, u8::MAX as i128))),
    ("nonNegativeInteger", Some((0, i128::MAX))),
    ("positiveInteger", Some((1, i128::MAX))),
    ("nonPositiveInteger", Some((i128::MIN, 0))),
    ("negativeInteger", Some((i128::MIN, -1))),
];

const STRINGS: &[&str] = &[
    "string",
    "normalizedString",
    "token",
    "language",
    "Name",
    "NCName",
    "NMTOKEN",
    "NMTOKENS",
    "ID",
    "IDREF",
    "IDREFS",
    "ENTITY",
    "ENTITIES",
    "anyURI",
    "QName",
    "NOTATION",
    "date",
    "dateTime",
    "dateTimeStamp",
    "time",
    "duration",
    "dayTimeDuration",
    "yearMonthDuration",
    "gYear",
    "gYearMonth",
    "gMonth",
    "gMonthDay",
    "gDay",
    "base64Binary",
    "hexBinary",
    "anySimpleType",
    "anyAtomicType",
];

impl Builtin {
    /// The built-in type `name` denotes, if it is one (`anyType` is not: it is [`Ty::Any`]).
    pub(crate) fn from_xsd(name: &QName) -> Option<Self> {
        if name.namespace != crate::names::XSD {
            return None;
        }
        let local = name.local.as_str();
        let kind = match local {
            "boolean" => ValueKind::Boolean,
            "decimal" => ValueKind::Decimal,
            "float" | "double" => ValueKind::Float,
            _ => match INTEGERS.iter().find(|(n, _)| *n == local) {
                Some((_, range)) => ValueKind::Integer(*range),
                None if STRINGS.contains(&local) => ValueKind::String,
                None => return None,
            },
        };
        let name = static_name(local)?;
        Some(Self { name, kind })
    }
}

/// Every built-in's local name.
pub(crate) fn builtin_names() -> impl Iterator<Item = &'static str> {
    const OTHERS: &[&str] = &["boolean", "decimal", "float", "double"];
    OTHERS.iter().copied().chain(INTEGERS.iter().map(|(n, _)| *n)).chain(STRINGS.iter().copied())
}

/// The `'static` spelling of a built-in's name, so [`Builtin`] stays `Copy`.
fn static_name(local: &str) -> Option<&'static str> {
    builtin_names().find(|n| *n == local)
}

/// A complex type with its content flattened.
#[derive(Debug, Clone, Default)]
pub(crate) struct ComplexTy {
    /// For diagnostics and JSON Schema titles; `None` for anonymous types.
    pub(crate) name: Option<QName>,
    /// Child elements in schema order.
    pub(crate) fields: Vec<Field>,
    pub(crate) attributes: Vec<AttrField>,
    /// The type of the element's text (`xs:simpleContent`).
    pub(crate) text: Option<TypeId>,
    /// `xs:choice` groups; a field names its group by index.
    pub(crate) choices: Vec<Choice>,
}

impl ComplexTy {
    /// The field whose element has this local name. Keys are local names (SPEC §6), and a
    /// type with two fields of the same local name is refused when linking.
    pub(crate) fn field(&self, local: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.local == local)
    }

    pub(crate) fn attribute(&self, local: &str) -> Option<&AttrField> {
        self.attributes.iter().find(|a| a.name.local == local)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// Namespace-qualified or not, as the schema's form rules say.
    pub(crate) name: QName,
    pub(crate) ty: TypeId,
    pub(crate) min: u32,
    pub(crate) max: MaxOccurs,
    pub(crate) nillable: bool,
    pub(crate) choice: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxOccurs {
    Bounded(u32),
    Unbounded,
}

impl MaxOccurs {
    pub(crate) fn is_repeated(self) -> bool {
        !matches!(self, Self::Bounded(0 | 1))
    }

    pub(crate) fn allows(self, count: usize) -> bool {
        match self {
            Self::Bounded(max) => count <= max as usize,
            Self::Unbounded => true,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AttrField {
    pub(crate) name: QName,
    pub(crate) ty: TypeId,
    pub(crate) required: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    /// One of the alternatives must be present.
    pub(crate) required: bool,
}
