//! Exclusions: a rule that must not count on some routes or for some parts of a request
//! (`{rules: ["942100"], routes: [search], targets: ["args:q", "json:/comment",
//! "headers:user-agent"]}`). Parsed and checked when the config loads; consulted only for a
//! value that matched, so they cost nothing on a clean request.

use crate::rules::RuleId;

/// Where in the request a value was found, as exclusions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The request path.
    Path,
    /// A query or form (or multipart) field's value, by name.
    Arg(&'a str),
    /// A query or form field's name.
    ArgName(&'a str),
    Cookie(&'a str),
    /// A header, by lowercase name.
    Header(&'a str),
    /// A JSON key or string leaf, by JSON Pointer (a key: the pointer of its member).
    Json(&'a str),
    /// XML text or an attribute value.
    Xml,
    /// A body that is none of the above, or could not be parsed, read as text.
    Body,
}

/// The kinds of target an exclusion can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Path,
    Args,
    ArgNames,
    Cookies,
    Headers,
    Json,
    Xml,
    Body,
}

/// One `targets` entry: a kind, and a name within it (`None`: all of that kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    kind: Kind,
    name: Option<String>,
}

/// A target text that is not one of the forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a WAF target: path, args[:NAME], args_names[:NAME], cookies[:NAME], headers[:NAME], json[:/POINTER], xml or body"
)]
pub struct BadTarget(pub String);

impl std::str::FromStr for TargetSpec {
    type Err = BadTarget;

    fn from_str(text: &str) -> Result<Self, BadTarget> {
        let bad = || BadTarget(text.to_owned());
        let (kind, name) = match text.split_once(':') {
            Some((k, n)) => (k, Some(n)),
            None => (text, None),
        };
        let kind = match kind {
            "path" => Kind::Path,
            "args" => Kind::Args,
            "args_names" => Kind::ArgNames,
            "cookies" => Kind::Cookies,
            "headers" => Kind::Headers,
            "json" => Kind::Json,
            "xml" => Kind::Xml,
            "body" => Kind::Body,
            _ => return Err(bad()),
        };
        let name = match (kind, name) {
            (_, None) => None,
            (Kind::Path | Kind::Xml | Kind::Body, Some(_)) => return Err(bad()),
            (_, Some("")) => return Err(bad()),
            (Kind::Json, Some(p)) if !p.starts_with('/') => return Err(bad()),
            (Kind::Headers, Some(h)) => Some(h.to_ascii_lowercase()),
            (_, Some(n)) => Some(n.to_owned()),
        };
        Ok(Self { kind, name })
    }
}

impl TargetSpec {
    /// The kind as written: `path`, `args`, `args_names`, `cookies`, `headers`, `json`,
    /// `xml` or `body`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Path => "path",
            Kind::Args => "args",
            Kind::ArgNames => "args_names",
            Kind::Cookies => "cookies",
            Kind::Headers => "headers",
            Kind::Json => "json",
            Kind::Xml => "xml",
            Kind::Body => "body",
        }
    }

    /// The name after the colon (a header's lowercase; a JSON Pointer); `None`: all of them.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn covers(&self, target: Target<'_>) -> bool {
        let (kind, name) = match target {
            Target::Path => (Kind::Path, None),
            Target::Arg(n) => (Kind::Args, Some(n)),
            Target::ArgName(n) => (Kind::ArgNames, Some(n)),
            Target::Cookie(n) => (Kind::Cookies, Some(n)),
            Target::Header(n) => (Kind::Headers, Some(n)),
            Target::Json(p) => (Kind::Json, Some(p)),
            Target::Xml => (Kind::Xml, None),
            Target::Body => (Kind::Body, None),
        };
        kind == self.kind
            && match (&self.name, name) {
                (None, _) => true,
                // A pointer names its subtree too: `json:/comment` covers `/comment/0`.
                (Some(want), Some(got)) if kind == Kind::Json => {
                    got == want || got.strip_prefix(want.as_str()).is_some_and(|rest| rest.starts_with('/'))
                }
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            }
    }
}

/// One exclusion, compiled. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub rules: Vec<RuleId>,
    pub routes: Vec<String>,
    pub targets: Vec<TargetSpec>,
}

impl Exclusion {
    pub(crate) fn excludes(&self, rule: RuleId, route: &str, target: Target<'_>) -> bool {
        (self.rules.is_empty() || self.rules.contains(&rule))
            && (self.routes.is_empty() || self.routes.iter().any(|r| r == route))
            && (self.targets.is_empty() || self.targets.iter().any(|t| t.covers(target)))
    }
}

/// A rule id as written in the config: a number, or a string holding one.
pub fn parse_rule_id(text: &str) -> Option<RuleId> {
    text.trim().parse::<u32>().ok().filter(|&n| n > 0).map(RuleId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TargetSpec {
        text.parse().expect("a valid target")
    }

    #[test]
    fn targets_parse_and_cover_what_they_name() {
        assert!(spec("args:q").covers(Target::Arg("q")));
        assert!(!spec("args:q").covers(Target::Arg("p")));
        assert!(spec("args").covers(Target::Arg("anything")));
        assert!(spec("headers:User-Agent").covers(Target::Header("user-agent")));
        assert!(spec("json:/comment").covers(Target::Json("/comment")));
        assert!(spec("json:/comment").covers(Target::Json("/comment/0/text")));
        assert!(!spec("json:/comment").covers(Target::Json("/comments")));
        assert!(spec("path").covers(Target::Path));
    }

    #[test]
    fn bad_targets_are_refused() {
        for bad in ["arg:q", "json:comment", "path:/x", "headers:", "", "xml:foo"] {
            assert!(bad.parse::<TargetSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_exclusion_needs_rule_route_and_target_to_agree() {
        let ex =
            Exclusion { rules: vec![RuleId(942100)], routes: vec!["search".into()], targets: vec![spec("args:q")] };
        assert!(ex.excludes(RuleId(942100), "search", Target::Arg("q")));
        assert!(!ex.excludes(RuleId(941100), "search", Target::Arg("q")));
        assert!(!ex.excludes(RuleId(942100), "orders", Target::Arg("q")));
        assert!(!ex.excludes(RuleId(942100), "search", Target::Cookie("q")));
    }

    #[test]
    fn rule_ids_are_numbers() {
        assert_eq!(parse_rule_id("942100"), Some(RuleId(942100)));
        assert_eq!(parse_rule_id("sqli"), None);
        assert_eq!(parse_rule_id("0"), None);
    }
}
