//! Request paths as the route table compares them with patterns: `routing:`'s case and
//! trailing-slash rules, and the path a Tomcat or Spring backend reads once it has dropped
//! `;` parameters.

use std::borrow::Cow;

/// How paths meet patterns (`routing:`). The default compares byte for byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// `/API/Admin` matches `/api/admin` (Express, ASP.NET).
    pub case_insensitive: bool,
    /// `/users/7/` matches `/users/7` and the other way round.
    pub ignore_trailing_slash: bool,
}

impl PathOptions {
    /// A pattern as the table stores it: literal text lowercased when matching ignores case
    /// (parameter names kept as written), one trailing slash dropped when it is ignored.
    pub(super) fn pattern(self, pattern: &str) -> String {
        let mut out = String::with_capacity(pattern.len());
        let mut depth = 0usize;
        for c in pattern.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            out.push(if self.case_insensitive && depth == 0 { c.to_ascii_lowercase() } else { c });
        }
        if self.ignore_trailing_slash && out.len() > 1 && out.ends_with('/') {
            out.pop();
        }
        out
    }

    /// A request path as it is looked up: borrowed when nothing changes (always, with the
    /// defaults). The result is the original up to ASCII case, possibly one byte shorter, so
    /// a parameter matched in it maps back to the original bytes by offset.
    pub(super) fn path(self, path: &str) -> Cow<'_, str> {
        let path = match path.strip_suffix('/') {
            Some(shorter) if self.ignore_trailing_slash && !shorter.is_empty() => shorter,
            _ => path,
        };
        if self.case_insensitive && path.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(path.to_ascii_lowercase())
        } else {
            Cow::Borrowed(path)
        }
    }
}

/// `value`, a slice of `looked_up` (the normalised path), as the same bytes of `original`:
/// a parameter keeps the case the client sent.
pub(super) fn original_slice<'a>(original: &'a str, looked_up: &str, value: &str) -> Option<&'a str> {
    let offset = (value.as_ptr() as usize).checked_sub(looked_up.as_ptr() as usize)?;
    original.get(offset..offset.checked_add(value.len())?)
}

/// The path with every segment's `;` parameters removed, as Tomcat and Spring read it
/// (`/a;jsessionid=1/b;v=2` → `/a/b`); `None` when that leaves an empty segment inside the
/// path (`/a/;x/b` would become `/a//b`).
pub(super) fn strip_matrix(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut segments = path.split('/').peekable();
    let mut first = true;
    while let Some(segment) = segments.next() {
        let kept = segment.split(';').next().unwrap_or_default();
        if !first {
            if kept.is_empty() && segments.peek().is_some() {
                return None;
            }
            out.push('/');
        }
        first = false;
        out.push_str(kept);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_fold_literals_but_keep_parameter_names() {
        let o = PathOptions { case_insensitive: true, ignore_trailing_slash: true };
        assert_eq!(o.pattern("/API/Users/{userId}/"), "/api/users/{userId}");
        assert_eq!(o.pattern("/"), "/");
        assert_eq!(PathOptions::default().pattern("/A/"), "/A/");
    }

    #[test]
    fn paths_are_borrowed_unless_a_rule_changes_them() {
        let strict = PathOptions::default();
        assert!(matches!(strict.path("/A/b/"), Cow::Borrowed("/A/b/")));
        let o = PathOptions { case_insensitive: true, ignore_trailing_slash: true };
        assert_eq!(o.path("/A/b/"), "/a/b");
        assert!(matches!(o.path("/a/b/"), Cow::Borrowed("/a/b")));
        assert_eq!(o.path("/"), "/");
    }

    #[test]
    fn a_value_maps_back_to_the_bytes_the_client_sent() {
        let original = "/Users/AliCE";
        let lower = original.to_ascii_lowercase();
        let value = &lower[7..];
        assert_eq!(original_slice(original, &lower, value), Some("AliCE"));
    }

    #[test]
    fn matrix_parameters_are_stripped_per_segment() {
        assert_eq!(strip_matrix("/api/admin;jsessionid=1/x").as_deref(), Some("/api/admin/x"));
        assert_eq!(strip_matrix("/a;x;y/b;v=2").as_deref(), Some("/a/b"));
        assert_eq!(strip_matrix("/a/b;x").as_deref(), Some("/a/b"));
        assert_eq!(strip_matrix("/a/;x").as_deref(), Some("/a/"));
        assert_eq!(strip_matrix("/;x").as_deref(), Some("/"));
        assert_eq!(strip_matrix("/a/;x/b"), None);
    }
}
