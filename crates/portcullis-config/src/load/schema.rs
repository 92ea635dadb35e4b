//! Checking the merged document against the JSON Schema of [`Document`](crate::Document), and
//! turning the validator's errors into messages a person can act on.
//!
//! The validator reports every error at once, each with the JSON pointer of the offending node.
//! Two kinds need work to read well: an unknown key names the key (and the closest allowed
//! one), and the `anyOf` / `oneOf` of optional fields and untagged enums, which say only "not
//! valid under any of the schemas", are narrowed to the branch the user evidently meant or, when
//! none stands out, summarised from the schema ("must be `none`, {any: [...]} or {all: [...]}").

mod describe;

use std::collections::HashSet;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use crate::{Diagnostic, KeyPath, Locations};

pub(super) use describe::kind_of;
use describe::{literal, one_of, quote, unknown_key};

/// The schema, kept to look up allowed keys and descriptions for messages.
pub(super) static SCHEMA: LazyLock<Value> = LazyLock::new(super::json_schema);

/// Compiled once: reloads and the admin API validate often. Compiling our own schema cannot
/// fail short of a bug, which is then reported as a diagnostic rather than a panic.
static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| jsonschema::draft202012::new(&SCHEMA).map_err(|e| e.to_string()));

/// schemars marks fixed-width integers with `format: uint32` (an annotation the validator
/// ignores) but states no `maximum`; adding it keeps "schema-valid means it deserializes" true,
/// so a too-large number is reported at its key instead of failing later without a place.
pub(super) fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let limit = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(u64::from(u8::MAX)),
                Some("uint16") => Some(u64::from(u16::MAX)),
                Some("uint32") => Some(u64::from(u32::MAX)),
                _ => None,
            };
            if let Some(limit) = limit {
                map.entry("maximum").or_insert(Value::from(limit));
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// What validation needs to know about the document besides its value.
pub(super) struct Context<'a> {
    pub(super) locations: &'a Locations,
    /// Pointers already reported by an earlier step; errors at or under them are dropped.
    pub(super) quiet: &'a [String],
    /// Pointers whose value was resolved from a reference and must not be quoted.
    pub(super) hidden: &'a HashSet<String>,
}

/// Every schema error in `value`, as diagnostics.
pub(super) fn validate(value: &Value, context: &Context<'_>) -> Vec<Diagnostic> {
    let validator = match &*VALIDATOR {
        Ok(validator) => validator,
        Err(e) => {
            let message = format!("internal error: the config schema does not compile: {e}");
            return vec![context.locations.diagnostic(&KeyPath::root(), message)];
        }
    };
    let mut explainer = Explainer { hidden: context.hidden, findings: Vec::new() };
    for error in validator.iter_errors(value) {
        explainer.explain(&error);
    }
    explainer
        .findings
        .into_iter()
        .filter(|f| !context.quiet.iter().any(|q| super::is_within(&f.pointer, q)))
        .map(|f| context.locations.diagnostic(&KeyPath::from_pointer(&f.pointer), f.message))
        .collect()
}

/// One problem: where and what.
struct Finding {
    pointer: String,
    message: String,
}

struct Explainer<'a> {
    hidden: &'a HashSet<String>,
    findings: Vec<Finding>,
}

impl Explainer<'_> {
    fn push(&mut self, pointer: String, message: String) {
        // Branches of an `anyOf` can report the same problem twice.
        if !self.findings.iter().any(|f| f.pointer == pointer && f.message == message) {
            self.findings.push(Finding { pointer, message });
        }
    }

    fn explain_all(&mut self, errors: &[ValidationError<'_>]) {
        for error in errors {
            self.explain(error);
        }
    }

    fn explain(&mut self, error: &ValidationError<'_>) {
        let at = error.instance_path().as_str();
        match error.kind() {
            Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
                // Placed at the key itself: that is the line to fix.
                for key in unexpected {
                    let message = unknown_key(&SCHEMA, key, error.schema_path().as_str());
                    self.push(child(at, key), message);
                }
            }
            Kind::Required { property } => {
                let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
                self.push(child(at, &name), format!("missing required key `{name}`"));
            }
            Kind::AnyOf { context } | Kind::OneOfNotValid { context } => self.alternatives(error, context),
            _ => {
                let message = self.message(error);
                self.push(at.to_owned(), message);
            }
        }
    }

    fn message(&self, error: &ValidationError<'_>) -> String {
        let got = self.got(error);
        match error.kind() {
            Kind::Type { kind } => format!("expected {}{got}{}", type_names(kind), boolean_hint(kind, error)),
            Kind::Enum { options } => {
                let options: Vec<String> =
                    options.as_array().map(|o| o.iter().map(literal).collect()).unwrap_or_default();
                format!("must be {}{got}", one_of(&options))
            }
            Kind::Constant { expected_value } => {
                format!("must be {}{got}", literal(expected_value))
            }
            Kind::Pattern { pattern } => {
                format!("expected {}{got}", self.pattern_description(error, pattern))
            }
            Kind::Minimum { limit } => format!("must be at least {limit}{got}"),
            Kind::Maximum { limit } => format!("must be at most {limit}{got}"),
            Kind::ExclusiveMinimum { limit } => format!("must be more than {limit}{got}"),
            Kind::ExclusiveMaximum { limit } => format!("must be less than {limit}{got}"),
            // The masked form never quotes the value, which may be a resolved secret.
            _ => error.masked().to_string(),
        }
    }

    /// The value types describe themselves ("a duration such as 250ms, …"); use that.
    fn pattern_description(&self, error: &ValidationError<'_>, pattern: &str) -> String {
        let keyword = error.schema_path().as_str();
        let parent = keyword.rsplit_once('/').map_or("", |(parent, _)| parent);
        match SCHEMA.pointer(parent).and_then(|s| s.get("description")).and_then(Value::as_str) {
            Some(description) => description.trim_end_matches('.').to_owned(),
            None => format!("text matching `{pattern}`"),
        }
    }

    /// ", got `VALUE`" — or nothing when the value came from a reference.
    fn got(&self, error: &ValidationError<'_>) -> String {
        if self.hidden.contains(error.instance_path().as_str()) {
            return String::new();
        }
        let shown = match error.instance().as_ref() {
            Value::Null => "nothing".to_owned(),
            Value::Array(_) => "a list".to_owned(),
            Value::Object(_) => "a mapping".to_owned(),
            Value::String(s) => format!("`{}`", quote(s)),
            other => format!("`{other}`"),
        };
        format!(", got {shown}")
    }

    /// An `anyOf` / `oneOf` failed: find the branch the user meant, else summarise them all.
    fn alternatives(&mut self, error: &ValidationError<'_>, context: &[Vec<ValidationError<'static>>]) {
        let at = error.instance_path().as_str();
        let real: Vec<&[ValidationError<'static>]> =
            context.iter().map(Vec::as_slice).filter(|b| !is_null_branch(b)).collect();
        // An optional field (`anyOf: [T, null]`): the value is not null, so T is meant.
        if let [only] = real.as_slice() {
            return self.explain_all(only);
        }
        // A branch whose top-level type does not fit the value is not the one meant.
        let viable: Vec<&[ValidationError<'static>]> = real
            .into_iter()
            .filter(|b| !b.iter().any(|e| e.instance_path().as_str() == at && matches!(e.kind(), Kind::Type { .. })))
            .collect();
        if let Some(finding) = self.tag_mismatch(&viable) {
            return self.push(finding.pointer, finding.message);
        }
        match best(&viable, at) {
            Some(branch) if !only_value_errors(branch, at) => self.explain_all(branch),
            _ => {
                let forms = describe::alternatives(&SCHEMA, error.schema_path().as_str());
                let message = format!("must be {}{}", one_of(&forms), self.got(error));
                self.push(at.to_owned(), message);
            }
        }
    }

    /// Internally tagged enums (`auth.*.type`): when every branch refuses the tag, say which
    /// tags exist, at the tag.
    fn tag_mismatch(&self, viable: &[&[ValidationError<'static>]]) -> Option<Finding> {
        if viable.len() < 2 {
            return None;
        }
        let tags: Vec<&ValidationError<'static>> = viable
            .iter()
            .map(|b| b.iter().find(|e| matches!(e.kind(), Kind::Constant { .. })))
            .collect::<Option<_>>()?;
        let pointer = tags.first()?.instance_path().as_str();
        if tags.iter().any(|e| e.instance_path().as_str() != pointer) {
            return None;
        }
        let expected: Vec<String> = tags
            .iter()
            .filter_map(|e| match e.kind() {
                Kind::Constant { expected_value } => Some(literal(expected_value)),
                _ => None,
            })
            .collect();
        let message = format!("must be {}{}", one_of(&expected), self.got(tags.first()?));
        Some(Finding { pointer: pointer.to_owned(), message })
    }
}

/// The branch with the fewest tag mismatches, then the fewest problems at the value itself,
/// then the fewest problems overall; `None` on a tie (the user's intent is unclear).
fn best<'b>(branches: &[&'b [ValidationError<'static>]], at: &str) -> Option<&'b [ValidationError<'static>]> {
    let rank = |b: &[ValidationError<'static>]| {
        let tags = b.iter().filter(|e| matches!(e.kind(), Kind::Constant { .. })).count();
        let here = b.iter().filter(|e| e.instance_path().as_str() == at).count();
        (tags, here, b.len())
    };
    let mut ranked: Vec<_> = branches.iter().map(|b| (rank(b), *b)).collect();
    ranked.sort_by_key(|(r, _)| *r);
    match ranked.as_slice() {
        [(first, b), (second, _), ..] if first < second => Some(b),
        [(_, b)] => Some(b),
        _ => None,
    }
}

/// Whether a branch only dislikes the value itself (a wrong word, a number out of range):
/// then the alternatives say more than the branch does.
fn only_value_errors(branch: &[ValidationError<'static>], at: &str) -> bool {
    branch.iter().all(|e| {
        e.instance_path().as_str() == at
            && !matches!(
                e.kind(),
                Kind::Required { .. }
                    | Kind::AdditionalProperties { .. }
                    | Kind::AnyOf { .. }
                    | Kind::OneOfNotValid { .. }
            )
    })
}

fn is_null_branch(branch: &[ValidationError<'static>]) -> bool {
    matches!(branch, [e] if matches!(e.kind(), Kind::Type { kind: TypeKind::Single(JsonType::Null) }))
}

/// YAML 1.1 wrote booleans as `yes`/`no`/`on`/`off`/`y`/`n`; YAML 1.2, which the config
/// follows, reads those as text. Where a boolean is wanted, say what to write instead.
fn boolean_hint(kind: &TypeKind, error: &ValidationError<'_>) -> &'static str {
    let wants_boolean = match kind {
        TypeKind::Single(t) => *t == JsonType::Boolean,
        TypeKind::Multiple(set) => set.iter().any(|t| t == JsonType::Boolean),
    };
    let yaml11 = |s: &str| ["yes", "no", "on", "off", "y", "n"].iter().any(|w| s.eq_ignore_ascii_case(w));
    match error.instance().as_ref() {
        Value::String(s) if wants_boolean && yaml11(s) => " (`yes`, `no`, `on` and `off` are text in YAML 1.2)",
        _ => "",
    }
}

fn type_names(kind: &TypeKind) -> String {
    let types: Vec<JsonType> = match kind {
        TypeKind::Single(t) => vec![*t],
        TypeKind::Multiple(set) => set.iter().collect(),
    };
    // "or nothing" is what every optional field would say; it helps nobody.
    let wanted: Vec<JsonType> = types.iter().copied().filter(|t| *t != JsonType::Null).collect();
    let names: Vec<String> =
        if wanted.is_empty() { types } else { wanted }.into_iter().map(|t| describe::type_name(t).to_owned()).collect();
    one_of(&names)
}

/// `at` with `key` appended, escaped as a JSON pointer segment.
fn child(at: &str, key: &str) -> String {
    KeyPath::from_pointer(at).key(key).pointer().to_owned()
}
