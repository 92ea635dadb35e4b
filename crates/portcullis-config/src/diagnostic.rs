//! Located diagnostics: a key path, where it was written, and what is wrong.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// A path into the document, kept as an RFC 6901 JSON pointer (`/routes/0/upstream`), the
/// same form the schema validator reports, and displayed as `routes[0].upstream`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    /// From a JSON pointer.
    pub fn from_pointer(pointer: &str) -> Self {
        Self(pointer.to_owned())
    }

    pub fn pointer(&self) -> &str {
        &self.0
    }

    /// This path with a map key appended.
    pub fn key(&self, key: &str) -> Self {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        Self(format!("{}/{escaped}", self.0))
    }

    /// This path with a list index appended.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}/{index}", self.0))
    }

    /// The enclosing path, `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        self.0.rfind('/').map(|at| Self(self.0[..at].to_owned()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        let mut first = true;
        for segment in self.0.split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                write!(f, "[{segment}]")?;
            } else {
                if !first {
                    f.write_str(".")?;
                }
                f.write_str(&segment)?;
            }
            first = false;
        }
        Ok(())
    }
}

/// Where each node of the (merged) document was written.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    pub(crate) file: PathBuf,
    pub(crate) nodes: HashMap<String, Location>,
}

impl Locations {
    /// The location of `path`, or of its nearest written ancestor (a missing key is reported
    /// where its parent is).
    pub fn locate(&self, path: &KeyPath) -> Option<Location> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(loc) = self.nodes.get(p.pointer()) {
                return Some(*loc);
            }
            current = p.parent();
        }
        None
    }

    /// A diagnostic at `path`.
    pub fn diagnostic(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: self.file.clone(), path: path.clone(), location: self.locate(path), message: message.into() }
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub path: KeyPath,
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        write!(f, ": {}: {}", self.path, self.message)
    }
}

/// The defined name nearest to `name` by edit distance when it is close enough to be a typo: at
/// most a third of its letters off (one at least, three at most), case aside; the first such
/// name in `defined` on a tie. Unknown keys and unknown references both use it.
pub fn nearest<'a>(name: &str, defined: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    let budget = (wanted.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in defined {
        let distance = edit_distance(&wanted, &candidate.to_lowercase());
        if distance <= budget && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// "unknown `what` `name`", with "did you mean `…`?" when a defined name is [`nearest`].
pub fn unknown_name<'a>(what: &str, name: &str, defined: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(name, defined) {
        Some(near) => format!("unknown {what} `{name}`; did you mean `{near}`?"),
        None => format!("unknown {what} `{name}`"),
    }
}

/// Every problem found, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Sorts by position so output reads top to bottom.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|d| d.location.map(|l| (l.line, l.column)).unwrap_or((usize::MAX, 0)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{nearest, unknown_name};

    #[test]
    fn a_typo_gets_the_nearest_defined_name() {
        let defined = ["partners", "public", "internal"];
        assert_eq!(nearest("partner", defined), Some("partners"));
        assert_eq!(nearest("parnters", defined), Some("partners"), "a swap is two edits of eight");
        assert_eq!(nearest("Partners", defined), Some("partners"), "case aside");
        assert_eq!(nearest("billing", defined), None, "nothing close");
        assert_eq!(nearest("x", defined), None);
        assert_eq!(nearest("anything", []), None);
        assert_eq!(
            unknown_name("auth provider", "partner", defined),
            "unknown auth provider `partner`; did you mean `partners`?"
        );
        assert_eq!(unknown_name("upstream", "nope", defined), "unknown upstream `nope`");
    }

    #[test]
    fn the_closest_of_several_wins() {
        assert_eq!(nearest("orders-v2", ["orders-v1", "orders-v2x", "order"]), Some("orders-v1"));
        assert_eq!(nearest("ordersv2", ["orders-v1", "orders-v2"]), Some("orders-v2"));
    }
}
