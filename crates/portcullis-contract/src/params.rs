//! Parameters as OpenAPI serialises them (`style`, `explode`), read back from the request's
//! strings and coerced to the types their schema allows, so `?limit=5` validates as the
//! integer 5 and `?ids=1,2` (form, not exploded) as `[1, 2]`.

use serde_json::{Map, Number, Value};

/// Where a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    Header,
    Cookie,
}

impl In {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "path" => Self::Path,
            "query" => Self::Query,
            "header" => Self::Header,
            "cookie" => Self::Cookie,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Header => "header",
            Self::Cookie => "cookie",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    /// The style written, else the default of the parameter's place.
    pub(crate) fn parse(text: Option<&str>, place: In) -> Option<Self> {
        Some(match text {
            None => match place {
                In::Path | In::Header => Self::Simple,
                In::Query | In::Cookie => Self::Form,
            },
            Some("simple") => Self::Simple,
            Some("label") => Self::Label,
            Some("matrix") => Self::Matrix,
            Some("form") => Self::Form,
            Some("spaceDelimited") => Self::SpaceDelimited,
            Some("pipeDelimited") => Self::PipeDelimited,
            Some("deepObject") => Self::DeepObject,
            Some(_) => return None,
        })
    }
}

/// The JSON types a schema's `type` allows (all, when it says nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Types {
    pub(crate) integer: bool,
    pub(crate) number: bool,
    pub(crate) boolean: bool,
    pub(crate) null: bool,
    pub(crate) array: bool,
    pub(crate) object: bool,
}

impl Types {
    pub(crate) fn of(schema: &Value) -> Self {
        let names: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Self { integer: true, number: true, boolean: true, null: false, array: false, object: false },
        };
        let has = |n: &str| names.contains(&n);
        Self {
            integer: has("integer"),
            number: has("number"),
            boolean: has("boolean"),
            null: has("null"),
            array: has("array"),
            object: has("object"),
        }
    }

    /// A string read as the first type it fits; text stays text.
    pub(crate) fn coerce(self, text: &str) -> Value {
        if (self.integer || self.number)
            && let Ok(i) = text.parse::<i64>()
        {
            return Value::Number(i.into());
        }
        // An integer past i64 is still an integer (as JSON numbers are read, as a float).
        let digits = text.strip_prefix('-').unwrap_or(text);
        let big_integer = self.integer && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if (self.number || big_integer)
            && let Some(n) = text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64)
        {
            return Value::Number(n);
        }
        if self.boolean && (text == "true" || text == "false") {
            return Value::Bool(text == "true");
        }
        if self.null && text == "null" {
            return Value::Null;
        }
        Value::String(text.to_owned())
    }
}

/// What the parameter's schema is shaped like, for reading it back from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    Primitive(Types),
    Array(Types),
    /// An object and the types of its named properties (others: as text or number).
    Object(Vec<(String, Types)>),
}

impl Shape {
    pub(crate) fn of(schema: &Value) -> Self {
        let types = Types::of(schema);
        if types.array && !types.object {
            let items = schema.get("items").map_or_else(Types::default, Types::of);
            return Self::Array(items);
        }
        if types.object {
            let props = schema
                .get("properties")
                .and_then(Value::as_object)
                .map_or_else(Vec::new, |p| p.iter().map(|(name, s)| (name.clone(), Types::of(s))).collect());
            return Self::Object(props);
        }
        Self::Primitive(types)
    }

    fn property(&self, name: &str) -> Types {
        match self {
            Self::Object(props) => props
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Types { integer: true, number: true, boolean: true, ..Types::default() }, |(_, t)| *t),
            _ => Types::default(),
        }
    }
}

/// One declared parameter's reading rules.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub(crate) name: String,
    pub(crate) place: In,
    pub(crate) style: Style,
    pub(crate) explode: bool,
    pub(crate) shape: Shape,
}

impl Reader {
    /// A path, header or cookie parameter's value from its one string.
    pub(crate) fn read_text(&self, raw: &str) -> Value {
        let text = match self.style {
            Style::Label => raw.strip_prefix('.').unwrap_or(raw),
            Style::Matrix => {
                let prefix = format!(";{}=", self.name);
                raw.strip_prefix(prefix.as_str()).unwrap_or(raw)
            }
            _ => raw,
        };
        let separator = match self.style {
            Style::Label if self.explode => '.',
            Style::Matrix if self.explode => ';',
            _ => ',',
        };
        match &self.shape {
            Shape::Primitive(t) => t.coerce(text),
            Shape::Array(items) => {
                let parts = split(text, separator);
                let strip = |p: &str| match self.style {
                    Style::Matrix if self.explode => {
                        p.strip_prefix(&format!("{}=", self.name)).map(str::to_owned).unwrap_or_else(|| p.to_owned())
                    }
                    _ => p.to_owned(),
                };
                Value::Array(parts.iter().map(|p| items.coerce(&strip(p))).collect())
            }
            Shape::Object(_) if self.explode => {
                let pairs = split(text, separator).into_iter().filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.to_owned(), v.to_owned()))
                });
                self.object(pairs)
            }
            Shape::Object(_) => {
                let parts = split(text, ',');
                self.object(parts.chunks(2).filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone()))))
            }
        }
    }

    /// Whether the query gives this parameter more often than its style reads: one pair,
    /// except for an exploded form array or object and a `deepObject`. Backends disagree on
    /// which of several they read (Flask and Go the first, Django and PHP the last), so a
    /// check of one of them proves nothing about the other.
    pub(crate) fn repeated_in(&self, query: &[(String, String)]) -> bool {
        let many = match (&self.shape, self.style) {
            (Shape::Object(_), Style::DeepObject) => true,
            (Shape::Array(_) | Shape::Object(_), Style::Form) => self.explode,
            _ => false,
        };
        !many && query.iter().filter(|(k, _)| *k == self.name).nth(1).is_some()
    }

    /// An undeclared name of the query that PHP or Express (`qs`) file under this parameter's
    /// name: `limit[]` and `limit[x]` (arrays and objects there), `max.price` and `max price`
    /// (PHP reads `.` and spaces as `_`). The check never reads such a pair as this parameter,
    /// the backend does. A `deepObject` parameter's own `name[key]` pairs are its syntax.
    pub(crate) fn aliased_in<'q>(&self, query: &'q [(String, String)], declared: &[&str]) -> Option<&'q str> {
        if self.style == Style::DeepObject {
            return None;
        }
        query
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !declared.contains(k))
            .find(|k| backend_names(k).contains(&self.name))
    }

    /// A query parameter from every pair of the query; `None` when it is absent.
    pub(crate) fn read_query(&self, query: &[(String, String)], declared: &[&str]) -> Option<Value> {
        let mine = || query.iter().filter(|(k, _)| *k == self.name).map(|(_, v)| v.as_str());
        match (&self.shape, self.style) {
            (Shape::Object(_), Style::DeepObject) => {
                let prefix = format!("{}[", self.name);
                let pairs: Vec<(String, String)> = query
                    .iter()
                    .filter_map(|(k, v)| {
                        let inner = k.strip_prefix(prefix.as_str())?.strip_suffix(']')?;
                        Some((inner.to_owned(), v.clone()))
                    })
                    .collect();
                (!pairs.is_empty()).then(|| self.object(pairs.into_iter()))
            }
            (Shape::Object(_), Style::Form) if self.explode => {
                // Every pair no other parameter declares belongs to the object.
                let pairs: Vec<(String, String)> =
                    query.iter().filter(|(k, _)| !declared.contains(&k.as_str())).cloned().collect();
                (!pairs.is_empty()).then(|| self.object(pairs.into_iter()))
            }
            (Shape::Array(items), _) if self.explode && self.style == Style::Form => {
                let values: Vec<Value> = mine().map(|v| items.coerce(v)).collect();
                (!values.is_empty()).then_some(Value::Array(values))
            }
            (Shape::Array(items), style) => {
                let separator = match style {
                    Style::SpaceDelimited => ' ',
                    Style::PipeDelimited => '|',
                    _ => ',',
                };
                let first = mine().next()?;
                Some(Value::Array(split(first, separator).iter().map(|p| items.coerce(p)).collect()))
            }
            // A single value given more than once is read as the list it is, which its
            // schema then refuses (never silently the first one).
            _ => {
                let values: Vec<Value> = mine().map(|v| self.read_text(v)).collect();
                match values.len() {
                    0 => None,
                    1 => values.into_iter().next(),
                    _ => Some(Value::Array(values)),
                }
            }
        }
    }

    fn object(&self, pairs: impl Iterator<Item = (String, String)>) -> Value {
        let mut map = Map::new();
        for (k, v) in pairs {
            let value = self.shape.property(&k).coerce(&v);
            map.insert(k, value);
        }
        Value::Object(map)
    }
}

fn split(text: &str, separator: char) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(separator).map(|s| s.trim().to_owned()).collect()
}

/// `a=1; b=2` → the cookie pairs.
/// The names PHP and Express (`qs`) may file the query name `name` under, when they differ
/// from it: the part before a `[` (PHP and `qs` arrays and objects), and, PHP's reading, the
/// name (or that part) with leading spaces dropped and `.`, ` ` and an unclosed `[` as `_`.
fn backend_names(name: &str) -> Vec<String> {
    let php = |text: &str| -> String {
        text.trim_start_matches(' ').chars().map(|c| if matches!(c, '.' | ' ' | '[') { '_' } else { c }).collect()
    };
    let mut names = Vec::new();
    if let Some((base, rest)) = name.split_once('[') {
        names.push(base.to_owned());
        names.push(php(base));
        if !rest.contains(']') {
            names.push(php(name));
        }
    } else {
        names.push(php(name));
    }
    names.retain(|n| !n.is_empty() && n != name);
    names
}

pub(crate) fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader(place: In, style: Option<&str>, explode: Option<bool>, schema: Value) -> Reader {
        let style = Style::parse(style, place).unwrap_or(Style::Simple);
        Reader {
            name: "p".into(),
            place,
            style,
            explode: explode.unwrap_or(style == Style::Form),
            shape: Shape::of(&schema),
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn primitives_are_coerced_by_their_schema_type() {
        let r = reader(In::Query, None, None, json!({ "type": "integer" }));
        assert_eq!(r.read_query(&query(&[("p", "5")]), &[]), Some(json!(5)));
        assert_eq!(r.read_query(&query(&[("p", "five")]), &[]), Some(json!("five")));
        let r = reader(In::Header, None, None, json!({ "type": ["boolean", "null"] }));
        assert_eq!(r.read_text("true"), json!(true));
        assert_eq!(r.read_text("null"), json!(null));
        let r = reader(In::Query, None, None, json!({ "type": "number" }));
        assert_eq!(r.read_query(&query(&[("p", "2.5")]), &[]), Some(json!(2.5)));
    }

    #[test]
    fn arrays_follow_style_and_explode() {
        let schema = json!({ "type": "array", "items": { "type": "integer" } });
        let exploded = reader(In::Query, None, None, schema.clone());
        assert_eq!(exploded.read_query(&query(&[("p", "1"), ("x", "9"), ("p", "2")]), &[]), Some(json!([1, 2])));
        let joined = reader(In::Query, None, Some(false), schema.clone());
        assert_eq!(joined.read_query(&query(&[("p", "1,2")]), &[]), Some(json!([1, 2])));
        let piped = reader(In::Query, Some("pipeDelimited"), Some(false), schema.clone());
        assert_eq!(piped.read_query(&query(&[("p", "1|2")]), &[]), Some(json!([1, 2])));
        let label = reader(In::Path, Some("label"), Some(true), schema.clone());
        assert_eq!(label.read_text(".3.4"), json!([3, 4]));
        let matrix = reader(In::Path, Some("matrix"), Some(true), schema);
        assert_eq!(matrix.read_text(";p=3;p=4"), json!([3, 4]));
    }

    #[test]
    fn objects_from_deep_object_form_and_simple() {
        let schema =
            json!({ "type": "object", "properties": { "min": { "type": "integer" }, "q": { "type": "string" } } });
        let deep = reader(In::Query, Some("deepObject"), Some(true), schema.clone());
        assert_eq!(
            deep.read_query(&query(&[("p[min]", "3"), ("p[q]", "7"), ("other", "x")]), &[]),
            Some(json!({ "min": 3, "q": "7" }))
        );
        let form = reader(In::Query, None, None, schema.clone());
        assert_eq!(form.read_query(&query(&[("min", "1"), ("limit", "2")]), &["limit"]), Some(json!({ "min": 1 })));
        let simple = reader(In::Header, None, Some(true), schema.clone());
        assert_eq!(simple.read_text("min=2,q=x"), json!({ "min": 2, "q": "x" }));
        let flat = reader(In::Path, None, None, schema);
        assert_eq!(flat.read_text("min,2"), json!({ "min": 2 }));
    }

    #[test]
    fn cookie_pairs_are_split_and_trimmed() {
        let pairs: Vec<_> = cookies("a=1; b=\"two\";c").collect();
        assert_eq!(pairs, vec![("a", "1"), ("b", "two")]);
    }
}
