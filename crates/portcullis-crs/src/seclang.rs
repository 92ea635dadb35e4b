//! SecLang text: configuration lines joined at their backslash continuations, split into a
//! directive name and its arguments, and a rule's action list split into `name:value` pairs.

use std::path::{Path, PathBuf};

/// One directive as written: where it starts, its name and its (unquoted) arguments.
#[derive(Debug, Clone)]
pub(crate) struct RawDirective {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
}

/// Splits a configuration file into directives. Comments and blank lines are dropped; a line
/// ending in a backslash continues on the next one.
pub(crate) fn directives(file: &Path, text: &str) -> Result<Vec<RawDirective>, (usize, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start = 0usize;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end_matches('\r');
        if buf.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start = line_no;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            buf.push_str(stripped);
            continue;
        }
        buf.push_str(line);
        let joined = std::mem::take(&mut buf);
        let args = split_args(joined.trim()).map_err(|m| (start, m))?;
        let mut it = args.into_iter();
        if let Some(name) = it.next() {
            out.push(RawDirective { file: file.to_path_buf(), line: start, name, args: it.collect() });
        }
    }
    if !buf.trim().is_empty() {
        return Err((start, "the file ends inside a continued line".into()));
    }
    Ok(out)
}

/// Splits a directive line into words; a double-quoted word may hold spaces and `\"`.
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => {
                        word.push('"');
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => word.push(other),
                }
            }
            if !closed {
                return Err("unterminated double-quoted argument".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

/// Splits an action list (`id:1,phase:2,msg:'a, b',t:none`) into `(name, value)` pairs.
/// Single quotes group a value and are removed; `\'` inside them is a quote.
pub(crate) fn actions(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_quote && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                in_quote = !in_quote;
                cur.push('\u{0}');
            }
            ',' if !in_quote => items.push(std::mem::take(&mut cur)),
            other => cur.push(other),
        }
    }
    if in_quote {
        return Err("unterminated single quote in the action list".into());
    }
    items.push(cur);
    for item in items {
        // The NUL marks where a quote was, so that `msg:'x'` and `'setvar:a=b'` both unquote.
        let item = item.trim();
        if item.is_empty() || item == "\u{0}\u{0}" {
            continue;
        }
        let (name, value) = match item.find(':') {
            Some(i) => (&item[..i], Some(&item[i + 1..])),
            None => (item, None),
        };
        let name = name.replace('\u{0}', "").trim().to_ascii_lowercase();
        let value = value.map(|v| v.trim().replace('\u{0}', ""));
        if name.is_empty() {
            return Err(format!("an action without a name in {s:?}"));
        }
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_keeps_the_first_line() {
        let text = "# c\n\nSecRule ARGS \"@rx a\\\"b\" \\\n    \"id:1,\\\n    phase:2\"\nSecMarker END\n";
        let d = directives(Path::new("x.conf"), text).expect("parses");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].line, 3);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b", "id:1,    phase:2"]);
        assert_eq!(d[1].line, 6);
        assert_eq!(d[1].args, vec!["END"]);
    }

    #[test]
    fn splits_actions_with_quotes() {
        let a = actions("id:1, msg:'a, b',setvar:'tx.x=+%{tx.y}',t:none,chain,logdata:'it\\'s'").expect("parses");
        assert_eq!(a[0], ("id".into(), Some("1".into())));
        assert_eq!(a[1], ("msg".into(), Some("a, b".into())));
        assert_eq!(a[2], ("setvar".into(), Some("tx.x=+%{tx.y}".into())));
        assert_eq!(a[3], ("t".into(), Some("none".into())));
        assert_eq!(a[4], ("chain".into(), None));
        assert_eq!(a[5], ("logdata".into(), Some("it's".into())));
        assert!(actions("msg:'open").is_err());
    }
}
