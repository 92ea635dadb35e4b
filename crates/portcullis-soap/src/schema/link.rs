//! Links raw schema declarations into the [`Types`] arena.
//!
//! Ids are handed out first (every named type, every global element's anonymous type), so
//! content can refer to any of them regardless of declaration order or recursion. Only
//! derivation (`extension`, `simpleContent`, restrictions of simple types) needs the base's
//! *content*, so those bases are linked on demand, and a derivation cycle is an error.

use std::collections::HashMap;

use crate::names::{QName, XSD};
use crate::schema::read::{
    Compositor, Raw, RawComplex, RawContent, RawElement, RawGroup, RawParticle, RawSimple, RawSimpleBase, RawType,
    RawTypeRef,
};
use crate::schema::{
    AttrField, Builtin, Choice, ComplexTy, Field, GlobalElement, STRING, SimpleTy, Ty, TypeId, Types, builtin_names,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    InProgress,
    Done,
}

struct Linker<'r> {
    raw: &'r Raw,
    types: Types,
    any: TypeId,
    by_name: HashMap<&'r QName, (&'r RawType, State)>,
    /// Named types being linked right now (derivation chains recurse; keep the stack small).
    depth: usize,
}

/// Longer derivation chains than this are refused rather than risking the stack.
const MAX_DERIVATION_DEPTH: usize = 64;

/// Links every type and global element of `raw`.
pub(crate) fn link(raw: &Raw) -> Types {
    let mut linker = Linker { raw, types: Types::default(), any: 0, by_name: HashMap::new(), depth: 0 };
    linker.any = linker.alloc(Ty::Any);
    linker.types.any = linker.any;
    for name in builtin_names() {
        if let Some(builtin) = Builtin::from_xsd(&QName::new(XSD, name)) {
            let id = linker.alloc(Ty::Simple(SimpleTy { builtin, enumeration: Vec::new(), list: false }));
            linker.types.builtins.insert(builtin.name, id);
        }
    }
    for (name, ty) in &raw.types {
        if let Some(&id) = linker.types.named.get(name) {
            linker.types.tys[id] = Ty::Broken(format!("type `{}` is defined twice", name.local));
            continue;
        }
        let id = linker.alloc(Ty::Any);
        linker.types.named.insert(name.clone(), id);
        linker.by_name.insert(name, (ty, State::Pending));
    }
    let pending = linker.global_elements();
    for (name, _) in &raw.types {
        linker.ensure(name);
    }
    for (id, ty) in pending {
        let linked = linker.fill(ty);
        linker.types.tys[id] = linked;
    }
    linker.name_defs();
    linker.types
}

impl<'r> Linker<'r> {
    fn alloc(&mut self, ty: Ty) -> TypeId {
        self.types.tys.push(ty);
        self.types.tys.len() - 1
    }

    /// Registers every global element; returns the anonymous types still to fill.
    fn global_elements(&mut self) -> Vec<(TypeId, &'r RawType)> {
        let mut pending = Vec::new();
        for el in &self.raw.elements {
            let ty = match &el.ty {
                RawTypeRef::Anonymous(ty) => {
                    let id = self.alloc(Ty::Any);
                    pending.push((id, &**ty));
                    id
                }
                other => self.type_ref(other),
            };
            let previous = self.types.elements.insert(el.name.clone(), GlobalElement { ty, nillable: el.nillable });
            if previous.is_some() {
                let id = self.alloc(Ty::Broken(format!("element `{}` is defined twice", el.name.local)));
                self.types.elements.insert(el.name.clone(), GlobalElement { ty: id, nillable: el.nillable });
            }
        }
        pending
    }

    /// The id of a named type, its content linked.
    fn ensure(&mut self, name: &QName) -> TypeId {
        let Some(&id) = self.types.named.get(name) else { return self.resolve(name) };
        let Some(&(raw, state)) = self.by_name.get(name) else { return id };
        match state {
            State::Done => {}
            State::InProgress => {
                self.types.tys[id] = Ty::Broken(format!("type `{}` derives from itself", name.local));
            }
            State::Pending if self.depth >= MAX_DERIVATION_DEPTH => {
                let message = format!("type `{}` derives through more than {MAX_DERIVATION_DEPTH} types", name.local);
                return self.alloc(Ty::Broken(message));
            }
            State::Pending => {
                self.set_state(name, State::InProgress);
                self.depth += 1;
                let linked = self.fill(raw);
                self.depth -= 1;
                if !matches!(self.types.tys[id], Ty::Broken(_)) {
                    self.types.tys[id] = linked;
                }
                self.set_state(name, State::Done);
            }
        }
        id
    }

    fn set_state(&mut self, name: &QName, state: State) {
        if let Some(entry) = self.by_name.get_mut(name) {
            entry.1 = state;
        }
    }

    /// The id a type name refers to, without linking its content.
    fn resolve(&mut self, name: &QName) -> TypeId {
        if name.namespace == XSD {
            if name.local == "anyType" {
                return self.any;
            }
            if let Some(&id) = self.types.builtins.get(name.local.as_str()) {
                return id;
            }
            return self.alloc(Ty::Broken(format!("the XSD type `{}` is not supported", name.local)));
        }
        if let Some(&id) = self.types.named.get(name) {
            return id;
        }
        let message = match self.raw.externals.iter().find(|(ns, _)| *ns == name.namespace) {
            Some((_, location)) => format!(
                "type `{name}` is defined in `{location}`, outside this WSDL file; use a single-file WSDL (e.g. WCF ?singleWsdl)"
            ),
            None => format!("type `{name}` is not defined in this WSDL"),
        };
        self.alloc(Ty::Broken(message))
    }

    fn type_ref(&mut self, ty: &RawTypeRef) -> TypeId {
        match ty {
            RawTypeRef::Named(name) => self.resolve(name),
            RawTypeRef::Anonymous(raw) => {
                let linked = self.fill(raw);
                self.alloc(linked)
            }
            RawTypeRef::Untyped => self.any,
            RawTypeRef::Broken(message) => self.alloc(Ty::Broken(message.clone())),
        }
    }

    fn fill(&mut self, raw: &RawType) -> Ty {
        match raw {
            RawType::Simple(simple) => match self.simple(simple, 0) {
                Ok(simple) => Ty::Simple(simple),
                Err(message) => Ty::Broken(message),
            },
            RawType::Complex(complex) => match self.complex(complex) {
                Ok(complex) => Ty::Complex(complex),
                Err(message) => Ty::Broken(message),
            },
        }
    }

    fn simple(&mut self, raw: &RawSimple, depth: usize) -> Result<SimpleTy, String> {
        if let Some(message) = &raw.unsupported {
            return Err(message.clone());
        }
        let enumeration = raw.enumeration.clone();
        let base = match &raw.base {
            RawSimpleBase::List => {
                let builtin = STRING;
                return Ok(SimpleTy { builtin, enumeration, list: true });
            }
            RawSimpleBase::Anonymous(inner) if depth < 16 => self.simple(inner, depth + 1)?,
            RawSimpleBase::Anonymous(_) => return Err("simple types nested too deep".to_owned()),
            RawSimpleBase::Named(name) => {
                let id = self.ensure(name);
                match &self.types.tys[id] {
                    Ty::Simple(base) => base.clone(),
                    Ty::Any => SimpleTy { builtin: STRING, ..Default::default() },
                    Ty::Complex(_) => {
                        return Err(format!("a simpleType restricting the complex type `{}`", name.local));
                    }
                    Ty::Broken(message) => return Err(message.clone()),
                }
            }
        };
        let enumeration = if enumeration.is_empty() { base.enumeration } else { enumeration };
        Ok(SimpleTy { builtin: base.builtin, enumeration, list: base.list })
    }

    fn complex(&mut self, raw: &RawComplex) -> Result<ComplexTy, String> {
        if let Some(message) = &raw.unsupported {
            return Err(message.clone());
        }
        let mut ty = ComplexTy { name: raw.name.clone(), ..ComplexTy::default() };
        match &raw.content {
            RawContent::Empty => {}
            RawContent::Group(group) => self.flatten(group, &mut ty, false, None, &raw.label)?,
            RawContent::Extension { base, group } => {
                self.inherit(base, &mut ty, &raw.label)?;
                if let Some(group) = group {
                    self.flatten(group, &mut ty, false, None, &raw.label)?;
                }
            }
            RawContent::Simple { base } => self.inherit(base, &mut ty, &raw.label)?,
        }
        for attr in &raw.attributes {
            let id = self.type_ref(&attr.ty);
            match &self.types.tys[id] {
                Ty::Complex(_) => {
                    return Err(format!("attribute `{}` of {} has a complex type", attr.name.local, raw.label));
                }
                Ty::Broken(message) => return Err(message.clone()),
                Ty::Simple(_) | Ty::Any => {}
            }
            ty.attributes.push(AttrField { name: attr.name.clone(), ty: id, required: attr.required });
        }
        if let Some(dup) =
            ty.fields.iter().enumerate().find(|(i, f)| ty.fields[..*i].iter().any(|g| g.name.local == f.name.local))
        {
            return Err(format!("element name `{}` appears twice in {}", dup.1.name.local, raw.label));
        }
        Ok(ty)
    }

    /// Copies the base's content into `ty` (extension or simple content).
    fn inherit(&mut self, base: &QName, ty: &mut ComplexTy, label: &str) -> Result<(), String> {
        let id = self.ensure(base);
        match &self.types.tys[id] {
            Ty::Complex(b) => {
                ty.fields.clone_from(&b.fields);
                ty.attributes.clone_from(&b.attributes);
                ty.choices.clone_from(&b.choices);
                ty.text = b.text;
            }
            Ty::Simple(_) => ty.text = Some(id),
            Ty::Any => {}
            Ty::Broken(message) => return Err(format!("{label} derives from `{}`: {message}", base.local)),
        }
        Ok(())
    }

    fn flatten(
        &mut self,
        group: &RawGroup,
        ty: &mut ComplexTy,
        optional: bool,
        choice: Option<usize>,
        label: &str,
    ) -> Result<(), String> {
        let kind = match group.kind {
            Compositor::Sequence => "xs:sequence",
            Compositor::All => "xs:all",
            Compositor::Choice => "xs:choice",
        };
        if group.max.is_repeated() {
            return Err(format!("a repeating {kind} (maxOccurs > 1) in {label} is not supported"));
        }
        let optional = optional || group.min == 0;
        let choice = match group.kind {
            Compositor::Choice if choice.is_some() => {
                return Err(format!("a nested xs:choice in {label} is not supported"));
            }
            Compositor::Choice => {
                ty.choices.push(Choice { required: !optional });
                Some(ty.choices.len() - 1)
            }
            Compositor::Sequence | Compositor::All => choice,
        };
        for item in &group.items {
            let field = match item {
                RawParticle::Element(el) => self.field(el, optional, choice),
                RawParticle::Ref { name, min, max } => {
                    let Some(global) = self.types.elements.get(name).copied() else {
                        return Err(format!("element reference `{name}` in {label} is not defined"));
                    };
                    let min = if optional || choice.is_some() { 0 } else { *min };
                    Field { name: name.clone(), ty: global.ty, min, max: *max, nillable: global.nillable, choice }
                }
                RawParticle::Group(_) if choice.is_some() => {
                    return Err(format!("a group inside xs:choice in {label} is not supported"));
                }
                RawParticle::Group(inner) => {
                    self.flatten(inner, ty, optional, choice, label)?;
                    continue;
                }
            };
            ty.fields.push(field);
        }
        Ok(())
    }

    fn field(&mut self, el: &RawElement, optional: bool, choice: Option<usize>) -> Field {
        let ty = self.type_ref(&el.ty);
        let min = if optional || choice.is_some() { 0 } else { el.min };
        Field { name: el.name.clone(), ty, min, max: el.max, nillable: el.nillable, choice }
    }

    /// `$defs` names: the local name, suffixed on collisions, in a deterministic order.
    fn name_defs(&mut self) {
        let mut candidates: Vec<(&QName, TypeId)> = Vec::new();
        for (name, &id) in &self.types.named {
            candidates.push((name, id));
        }
        for (name, el) in &self.types.elements {
            if !self.types.named.values().any(|&id| id == el.ty) {
                candidates.push((name, el.ty));
            }
        }
        candidates.retain(|(_, id)| matches!(self.types.tys.get(*id), Some(Ty::Complex(_))));
        candidates.sort_by(|a, b| (&a.0.local, &a.0.namespace, a.1).cmp(&(&b.0.local, &b.0.namespace, b.1)));
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut names = HashMap::new();
        for (name, id) in candidates {
            if names.contains_key(&id) {
                continue;
            }
            let count = taken.entry(name.local.clone()).or_insert(0);
            *count += 1;
            let def = if *count == 1 { name.local.clone() } else { format!("{}_{}", name.local, count) };
            names.insert(id, def);
        }
        self.types.def_names = names;
    }
}

impl Default for SimpleTy {
    fn default() -> Self {
        Self { builtin: STRING, enumeration: Vec::new(), list: false }
    }
}
