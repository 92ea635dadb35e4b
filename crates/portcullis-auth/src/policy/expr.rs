//! The CEL part of a policy: the program, parsed once, and the variables it is given.
//!
//! Building the context is the cost of a CEL policy, so at compile time the expression is
//! searched for what it reads: only the named top-level variables are built, and for
//! `request` only the fields read as `request.NAME` or `request['NAME']` (any other use of
//! `request` builds all of them). The SPEC example reads `request.method` and so copies no
//! header.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Ast, IdedExpr, LiteralValue, operators};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::Val as CelVal;
use cel::{Context, Env, Program, Value};
use serde_json::Value as Json;

use super::{PolicyError, PolicyInput};

/// Request headers a policy must never read: they carry credentials.
const HIDDEN_HEADERS: [http::HeaderName; 3] =
    [http::header::AUTHORIZATION, http::header::COOKIE, http::header::PROXY_AUTHORIZATION];

/// The variables a policy is given, then the CEL type names an expression may also name
/// (`type(x) == string`).
const VARIABLES: [&str; 16] = [
    "request",
    "claims",
    "token",
    "consumer",
    "route",
    "provider",
    "bool",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The fields of the `request` variable, in [`RequestFields`] bit order.
const REQUEST_FIELDS: [&str; 6] = ["method", "path", "host", "query", "headers", "client_ip"];

/// Longer expressions are refused before parsing: the parser and the interpreter recurse, and
/// a long enough chain (`1 + 1 + …`, some 20 000 terms) overflows the stack, which would abort
/// the gateway at config load or, worse, at evaluation. A policy is a line, not a program.
const MAX_EXPR_BYTES: usize = 4096;

/// Deeper syntax trees are refused at compile time, so evaluation recursion stays bounded.
const MAX_EXPR_DEPTH: usize = 100;

/// CEL's standard library, built once and shared by every policy (and every reload).
static STDLIB: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A CEL value that borrows the request's strings instead of copying them.
type Val<'a> = Box<dyn CelVal + 'a>;

/// A parsed CEL expression and the top-level variables it reads.
pub(super) struct Expr {
    source: String,
    program: Program,
    env: Arc<Env>,
    uses: Uses,
}

/// Which variables to build: the rest of the context is never allocated.
#[derive(Debug, Clone, Copy)]
struct Uses {
    request: RequestFields,
    claims: bool,
    token: bool,
    consumer: bool,
    route: bool,
    provider: bool,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr").field("source", &self.source).field("uses", &self.uses).finish()
    }
}

impl Expr {
    pub(super) fn compile(policy: &str, source: &str) -> Result<Expr, PolicyError> {
        if source.len() > MAX_EXPR_BYTES {
            return Err(PolicyError::new(format!(
                "policy `{policy}`: CEL expression is {} bytes, more than the {MAX_EXPR_BYTES} allowed",
                source.len()
            )));
        }
        let env = Arc::clone(&STDLIB);
        let program = env.compile(source).map_err(|errors| parse_error(policy, &errors))?;
        let reads = Reads::of(program.expression()).map_err(|TooDeep| {
            PolicyError::new(format!(
                "policy `{policy}`: CEL expression is nested more than {MAX_EXPR_DEPTH} levels deep"
            ))
        })?;
        let refs = program.references();
        let mut free = refs.variables();
        free.sort_unstable();
        let unknown = free.into_iter().find(|v| !VARIABLES.contains(v) && !reads.bound.contains(*v));
        if let Some(name) = unknown {
            return Err(PolicyError::new(format!(
                "policy `{policy}`: CEL expression reads `{name}`, which is not one of {}",
                VARIABLES[..6].join(", ")
            )));
        }
        let uses = Uses {
            request: reads.request,
            claims: refs.has_variable("claims"),
            token: refs.has_variable("token"),
            consumer: refs.has_variable("consumer"),
            route: refs.has_variable("route"),
            provider: refs.has_variable("provider"),
        };
        Ok(Expr { source: source.to_owned(), program, env, uses })
    }

    /// True only for a boolean `true`; any other value or an error refuses (fail closed).
    pub(super) fn allows(&self, input: &PolicyInput<'_>) -> bool {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        let uses = self.uses;
        if uses.request.any() {
            ctx.add_variable_as_val("request", request_val(input, uses.request));
        }
        if uses.claims || uses.token {
            let claims = input.claims.map_or_else(|| map([]), json_object);
            if uses.token {
                ctx.add_variable_as_val("token", claims.clone_as_boxed());
            }
            ctx.add_variable_as_val("claims", claims);
        }
        if uses.consumer {
            ctx.add_variable_as_val(
                "consumer",
                map([("name", opt_str(input.consumer)), ("plan", opt_str(input.plan))]),
            );
        }
        if uses.route {
            ctx.add_variable_as_val("route", map([("name", string(input.route))]));
        }
        if uses.provider {
            ctx.add_variable_as_val("provider", opt_str(input.provider));
        }
        matches!(self.program.execute(&ctx), Ok(Value::Bool(true)))
    }
}

fn parse_error(policy: &str, errors: &cel::ParseErrors) -> PolicyError {
    let first = errors.errors.first();
    // The parser's line and column are both 1-based (checked in the tests); a position it
    // could not place is not passed on.
    let position = first.map(|e| e.pos).filter(|&(line, column)| line >= 1 && column >= 1);
    let message = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
    PolicyError {
        message: format!("policy `{policy}`: CEL expression does not parse: {message}"),
        line: position.and_then(|(line, _)| usize::try_from(line).ok()),
        column: position.and_then(|(_, column)| usize::try_from(column).ok()),
    }
}

/// The `request` map with the `fields` the expression reads.
fn request_val<'a>(input: &PolicyInput<'a>, fields: RequestFields) -> Val<'a> {
    let mut out = HashMap::with_capacity(REQUEST_FIELDS.len());
    for (bit, name) in REQUEST_FIELDS.iter().enumerate() {
        if !fields.has(bit) {
            continue;
        }
        let value = match bit {
            0 => string(input.method),
            1 => string(input.path),
            2 => opt_str(input.host),
            3 => input.query.map_or_else(|| map([]), query_val),
            4 => headers_val(input.headers),
            _ => Box::new(CelString::from(input.client_ip.to_string())),
        };
        out.insert(CelMapKey::from(*name), value);
    }
    Box::new(CelMap::from(out))
}

/// Which fields of `request` an expression reads, one bit per [`REQUEST_FIELDS`] entry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RequestFields(u8);

impl RequestFields {
    const ALL: RequestFields = RequestFields((1 << REQUEST_FIELDS.len()) - 1);

    fn any(self) -> bool {
        self.0 != 0
    }

    fn has(self, bit: usize) -> bool {
        self.0 & (1 << bit) != 0
    }

    fn mark(&mut self, field: &str) {
        // A field `request` does not have is left out: reading it is an error either way.
        if let Some(bit) = REQUEST_FIELDS.iter().position(|f| *f == field) {
            self.0 |= 1 << bit;
        }
    }
}

/// What an expression reads: the fields of `request`, and the names its comprehensions
/// (`exists`, `all`, `map`, …) bind, which are not free variables.
#[derive(Debug, Default)]
struct Reads {
    request: RequestFields,
    bound: HashSet<String>,
}

impl Reads {
    /// Walks `expr`, or gives up with `TooDeep` past [`MAX_EXPR_DEPTH`].
    fn of(expr: &IdedExpr) -> Result<Reads, TooDeep> {
        let mut reads = Reads::default();
        reads.visit(expr, 0)?;
        Ok(reads)
    }

    fn visit(&mut self, node: &IdedExpr, depth: usize) -> Result<(), TooDeep> {
        if depth > MAX_EXPR_DEPTH {
            return Err(TooDeep);
        }
        let next = depth + 1;
        match &node.expr {
            Ast::Select(select) if is_request(&select.operand) => self.request.mark(&select.field),
            Ast::Call(call)
                if call.func_name == operators::INDEX && call.args.len() == 2 && is_request(&call.args[0]) =>
            {
                match &call.args[1].expr {
                    Ast::Literal(LiteralValue::String(field)) => self.request.mark(field.inner()),
                    _ => {
                        self.request = RequestFields::ALL;
                        self.visit(&call.args[1], next)?;
                    }
                }
            }
            Ast::Ident(name) if name == "request" => self.request = RequestFields::ALL,
            Ast::Ident(_) | Ast::Literal(_) | Ast::Unspecified => {}
            Ast::Select(select) => self.visit(&select.operand, next)?,
            Ast::Call(call) => {
                for child in call.target.iter().map(|t| &**t).chain(&call.args) {
                    self.visit(child, next)?;
                }
            }
            Ast::List(list) => {
                for child in &list.elements {
                    self.visit(child, next)?;
                }
            }
            Ast::Map(map) => {
                for entry in &map.entries {
                    self.visit_entry(&entry.expr, next)?;
                }
            }
            Ast::Struct(s) => {
                for entry in &s.entries {
                    self.visit_entry(&entry.expr, next)?;
                }
            }
            Ast::Comprehension(c) => {
                self.bound.extend([&c.iter_var, &c.accu_var].into_iter().chain(&c.iter_var2).cloned());
                for part in [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.visit(part, next)?;
                }
            }
        }
        Ok(())
    }

    fn visit_entry(&mut self, entry: &EntryExpr, depth: usize) -> Result<(), TooDeep> {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value, depth),
            EntryExpr::MapEntry(entry) => {
                self.visit(&entry.key, depth)?;
                self.visit(&entry.value, depth)
            }
        }
    }
}

/// An expression nested deeper than [`MAX_EXPR_DEPTH`].
#[derive(Debug)]
struct TooDeep;

fn is_request(node: &IdedExpr) -> bool {
    matches!(&node.expr, Ast::Ident(name) if name == "request")
}

/// Percent-decoded (and `+` as space) query parameters, the first value of each name.
fn query_val(query: &str) -> Val<'_> {
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value: Val<'_> = Box::new(CelString::from(value));
        params.entry(CelMapKey::String(CelString::from(name))).or_insert(value);
    }
    Box::new(CelMap::from(params))
}

/// Header names are already lowercase in `HeaderMap`; each keeps its first value.
fn headers_val(headers: &http::HeaderMap) -> Val<'_> {
    let mut out = HashMap::with_capacity(headers.keys_len());
    for name in headers.keys().filter(|name| !HIDDEN_HEADERS.contains(name)) {
        if let Some(value) = headers.get(name) {
            let value = match value.to_str() {
                Ok(text) => CelString::from(text),
                Err(_) => CelString::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            };
            out.insert(CelMapKey::from(name.as_str()), Box::new(value) as Val<'_>);
        }
    }
    Box::new(CelMap::from(out))
}

fn json_object(object: &serde_json::Map<String, Json>) -> Val<'_> {
    let entries = object.iter().map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v))).collect::<HashMap<_, _>>();
    Box::new(CelMap::from(entries))
}

fn json_val(value: &Json) -> Val<'_> {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => string(s),
        Json::Array(items) => Box::new(CelList::from(items.iter().map(json_val).collect::<Vec<_>>())),
        Json::Object(object) => json_object(object),
    }
}

fn map<'a, const N: usize>(entries: [(&'static str, Val<'a>); N]) -> Val<'a> {
    let entries = entries.into_iter().map(|(k, v)| (CelMapKey::from(k), v)).collect::<HashMap<_, _>>();
    Box::new(CelMap::from(entries))
}

fn string(text: &str) -> Val<'_> {
    Box::new(CelString::from(text))
}

fn opt_str(text: Option<&str>) -> Val<'_> {
    text.map_or_else(|| Box::new(CelNull) as Val<'_>, string)
}
