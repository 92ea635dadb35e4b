//! The built-in rules: a stable numeric id each (numbered as the OWASP CRS rule that looks for
//! the same thing, so one exclusion covers both when CRS is loaded too), the family that
//! switches it on, and the severity it adds to the request's anomaly score.

use std::fmt;

/// A rule's stable id, as logged, counted and named in exclusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The built-in families of `waf.rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Sqli,
    Xss,
    PathTraversal,
    CommandInjection,
    Protocol,
}

impl Family {
    pub const ALL: [Family; 5] =
        [Family::Sqli, Family::Xss, Family::PathTraversal, Family::CommandInjection, Family::Protocol];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqli => "sqli",
            Self::Xss => "xss",
            Self::PathTraversal => "path_traversal",
            Self::CommandInjection => "command_injection",
            Self::Protocol => "protocol",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of families (a bit each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Families(u8);

impl Families {
    pub fn all() -> Self {
        Family::ALL.iter().copied().collect()
    }

    pub fn contains(self, family: Family) -> bool {
        self.0 & family.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Family> for Families {
    fn from_iter<I: IntoIterator<Item = Family>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, f| bits | f.bit()))
    }
}

/// CRS severities and the anomaly points each adds (CRS `tx.*_anomaly_score` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub fn points(self) -> u32 {
        match self {
            Self::Critical => 5,
            Self::Error => 4,
            Self::Warning => 3,
            Self::Notice => 2,
        }
    }
}

/// One built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: RuleId,
    /// `None`: not a family's (applies whenever the WAF looks, such as the oversize rule).
    pub family: Option<Family>,
    pub severity: Severity,
    pub title: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $family:expr, $severity:ident, $title:literal;)*) => {
        $(pub const $name: RuleId = RuleId($id);)*
        /// Every built-in rule.
        pub const RULES: &[Rule] = &[
            $(Rule { id: $name, family: $family, severity: Severity::$severity, title: $title },)*
        ];
    };
}

rules! {
    SQLI_LIBINJECTION = 942100, Some(Family::Sqli), Critical, "SQL injection (libinjection fingerprint)";
    SQLI_QUOTE_TERMINATOR = 942440, Some(Family::Sqli), Critical, "SQL injection (quote closed, then a comment or a stacked statement)";
    XSS_LIBINJECTION = 941100, Some(Family::Xss), Critical, "cross-site scripting (libinjection)";
    XSS_SCRIPT_TAG = 941110, Some(Family::Xss), Critical, "cross-site scripting (script tag)";
    XSS_SCRIPT_URI = 941170, Some(Family::Xss), Critical, "cross-site scripting (javascript: or vbscript: URI with code)";
    PATH_TRAVERSAL = 930100, Some(Family::PathTraversal), Critical, "path traversal (dot-dot segment, any encoding)";
    OS_FILE_ACCESS = 930120, Some(Family::PathTraversal), Critical, "OS file or scheme access";
    UNIX_COMMAND = 932100, Some(Family::CommandInjection), Critical, "Unix command injection";
    WINDOWS_COMMAND = 932110, Some(Family::CommandInjection), Critical, "Windows command injection";
    SHELL_PATH = 932160, Some(Family::CommandInjection), Critical, "Unix shell or system binary path";
    NUL_BYTE = 920270, Some(Family::Protocol), Critical, "NUL byte in the request";
    CONTROL_CHAR = 920271, Some(Family::Protocol), Warning, "control character in the request";
    HEADER_INJECTION = 921160, Some(Family::Protocol), Critical, "header injection (CR/LF and a header name)";
    BODY_ON_GET = 920170, Some(Family::Protocol), Warning, "GET or HEAD request with a body";
    BAD_URL_ENCODING = 920220, Some(Family::Protocol), Warning, "invalid URL encoding";
    UNICODE_ABUSE = 920260, Some(Family::Protocol), Warning, "full-width Unicode (%u) encoding";
    OVERSIZE = 920390, None, Critical, "body beyond inspect_body_bytes (waf.oversize: block)";
    ENCODED_BODY = 920599, None, Critical, "inspected body kind in a content coding the WAF does not decode (Content-Encoding)";
}

/// The built-in rule with this id.
pub fn rule(id: RuleId) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_each_family_has_rules() {
        let mut ids: Vec<u32> = RULES.iter().map(|r| r.id.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for family in Family::ALL {
            assert!(RULES.iter().any(|r| r.family == Some(family)), "{}", family.as_str());
        }
    }

    #[test]
    fn family_sets_hold_what_was_put_in() {
        let set: Families = [Family::Sqli, Family::Protocol].into_iter().collect();
        assert!(set.contains(Family::Sqli) && set.contains(Family::Protocol));
        assert!(!set.contains(Family::Xss));
        assert!(Families::default().is_empty());
    }
}
