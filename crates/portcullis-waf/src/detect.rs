//! The rule families over one decoded value. SQL injection and XSS are libinjection's
//! tokenizer and fingerprints (through `libinjectionrs`); path traversal, OS file names and
//! command injection are small scanners and Aho-Corasick sets built once per config load.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::decode::{self, Decoded};
use crate::rules::{self, Families, Family, RuleId};

/// Where a value came from: a header injection (CR/LF + header name) or a bad `%` escape
/// means something in the URL, cookies and headers; in a body it is ordinary text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Url,
    Body,
}

/// Files and schemes a request has no business naming (matched case-insensitively).
const OS_FILES: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/sudoers",
    "etc/crontab",
    "proc/self/",
    "proc/version",
    "boot.ini",
    "win.ini",
    "system.ini",
    "windows/system32",
    "windows\\system32",
    "winnt/system32",
    "winnt\\system32",
    "system32\\config",
    ".htaccess",
    ".htpasswd",
    "web.config",
    "wp-config.php",
    ".ssh/id_rsa",
    ".ssh/id_dsa",
    ".ssh/id_ed25519",
    ".ssh/authorized_keys",
    ".bash_history",
    ".aws/credentials",
    ".git/config",
    ".git/head",
    "var/log/auth.log",
    "php://filter",
    "php://input",
    "expect://",
    "phar://",
    "file:///",
];

/// Shells and system binaries by path.
const SHELL_PATHS: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/zsh",
    "/bin/dash",
    "/bin/ksh",
    "/bin/csh",
    "/bin/cat",
    "/bin/nc",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/bin/",
    "/sbin/",
    "cmd.exe",
    "powershell.exe",
    "${ifs}",
    "$ifs$",
];

/// Commands that are an attack after a shell separator whatever follows them.
const STRONG_UNIX: &[&str] = &[
    "bash", "sh", "zsh", "ksh", "csh", "dash", "nc", "ncat", "netcat", "wget", "curl", "python", "python3", "perl",
    "ruby", "php", "whoami", "uname", "ifconfig", "passwd", "chmod", "chown", "telnet", "nslookup", "base64", "socat",
    "sudo", "xterm", "busybox",
];
/// Commands that are ordinary words too: an attack after a separator only with an argument
/// that looks like one (`-la`, `/etc`, `$HOME`), a number for `sleep`/`ping`, or alone after a
/// spaced separator (`; id`).
const WEAK_UNIX: &[&str] = &[
    "cat", "ls", "id", "echo", "ping", "sleep", "find", "head", "tail", "grep", "awk", "sed", "env", "ps", "kill",
    "touch", "cp", "mv", "more", "less", "sort", "printf", "export", "pwd", "rm", "wc", "uniq", "chgrp", "crontab",
];
const STRONG_WINDOWS: &[&str] =
    &["cmd", "powershell", "pwsh", "ipconfig", "systeminfo", "tasklist", "certutil", "wmic", "bitsadmin"];
const WEAK_WINDOWS: &[&str] = &["dir", "type", "del", "copy", "net", "reg", "start", "ver", "whoami"];

/// The compiled detectors of one config load.
#[derive(Debug)]
pub(crate) struct Detectors {
    os_files: AhoCorasick,
    shell_paths: AhoCorasick,
}

impl Detectors {
    pub(crate) fn new() -> Self {
        let build = |patterns: &[&str]| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(patterns)
                // The constant lists above: a few dozen short patterns always build.
                .expect("the constant pattern lists build")
        };
        Self { os_files: build(OS_FILES), shell_paths: build(SHELL_PATHS) }
    }

    /// Every family's rules over one decoded value; `hit` gets each rule that matched.
    /// `fast`: a rule whose pre-screen proves it cannot match this text is not run (the
    /// verdicts are the same either way; `fast: false` is the reference the tests hold the
    /// fast path to).
    pub(crate) fn check(
        &self,
        families: Families,
        value: &Decoded<'_>,
        place: Place,
        fast: bool,
        hit: &mut dyn FnMut(RuleId),
    ) {
        let text = &*value.text;
        let bytes = text.as_bytes();
        // Which bytes the text holds, in one pass: each rule below that cannot match without
        // some byte is not run when none of them is there (each says why). The reference path
        // runs every rule.
        let has = if fast { Present::of(bytes) } else { Present::ALL };
        if families.contains(Family::Protocol) {
            protocol(value, place, &has, hit);
        }
        if families.contains(Family::Sqli) {
            if !(fast && sqli_cannot_match(bytes, classes(bytes))) && sqli(text) {
                hit(rules::SQLI_LIBINJECTION);
            }
            // It starts at a quote.
            if has.any(b"'\"") && sql_quote_terminator(text) {
                hit(rules::SQLI_QUOTE_TERMINATOR);
            }
        }
        if families.contains(Family::Xss) {
            // libinjection's XSS detector reports a tag, a comment or a doctype (all behind
            // `<`) or an attribute value after a dangerous attribute name (behind `=`), in each
            // of its five contexts: without either byte it cannot fire.
            if has.any(b"<=") && libinjectionrs::detect_xss(bytes).is_injection() {
                hit(rules::XSS_LIBINJECTION);
            }
            if has.any(b"<") && contains_ignore_case(bytes, b"<script") {
                hit(rules::XSS_SCRIPT_TAG);
            }
            // The scheme ends with a colon (blanks are removed, never added).
            if has.any(b":") && script_uri(text) {
                hit(rules::XSS_SCRIPT_URI);
            }
        }
        if families.contains(Family::PathTraversal) {
            if value.overlong || has.any(b".") && has_dot_dot_segment(text) {
                hit(rules::PATH_TRAVERSAL);
            }
            // Every pattern holds one of these (a unit test keeps it so).
            if has.any(OS_FILE_BYTES) && self.os_files.is_match(text) {
                hit(rules::OS_FILE_ACCESS);
            }
        }
        if families.contains(Family::CommandInjection) {
            if has.any(SHELL_PATH_BYTES) && self.shell_paths.is_match(text) {
                hit(rules::SHELL_PATH);
            }
            // It starts at a separator or a `$(`.
            if has.any(b";|&`\n$") {
                match command_after_separator(text) {
                    Some(Os::Unix) => hit(rules::UNIX_COMMAND),
                    Some(Os::Windows) => hit(rules::WINDOWS_COMMAND),
                    None => {}
                }
            }
        }
    }
}

/// Every pattern of `OS_FILES` holds one of these bytes.
const OS_FILE_BYTES: &[u8] = b"/\\.";
/// Every pattern of `SHELL_PATHS` holds one of these bytes.
const SHELL_PATH_BYTES: &[u8] = b"/.$";

/// The set of bytes a text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Present([u64; 4]);

impl Present {
    /// Every byte: no rule is skipped.
    const ALL: Self = Self([u64::MAX; 4]);

    fn of(bytes: &[u8]) -> Self {
        let mut set = [0u64; 4];
        for &b in bytes {
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        Self(set)
    }

    fn has(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn any(&self, bytes: &[u8]) -> bool {
        bytes.iter().any(|&b| self.has(b))
    }

    /// A control character other than tab, CR and LF, or DEL.
    fn control(&self) -> bool {
        // Bytes 0..32 but 9, 10 and 13; and 127.
        const CONTROLS: u64 = 0xFFFF_FFFF & !(1 << 9 | 1 << 10 | 1 << 13);
        self.0[0] & CONTROLS != 0 || self.has(0x7f)
    }
}

/// Byte classes, one table look-up a byte: [`classes`] of a value (the OR over its bytes) is
/// what [`is_plain`] and [`sqli_cannot_match`] start from, and the JSON scanner computes it
/// while it looks for a string's end.
pub(crate) const LETTER: u8 = 1;
pub(crate) const DIGIT: u8 = 2;
/// `-_@:` (with letters, digits, `.` and `,`: a plain token's bytes).
pub(crate) const TOKEN_MARK: u8 = 4;
pub(crate) const DOT: u8 = 8;
pub(crate) const SPACE: u8 = 16;
pub(crate) const COMMA: u8 = 32;
/// Any other byte.
pub(crate) const OTHER: u8 = 64;
/// Also `OTHER`: a byte that ends or escapes a JSON string, or may not be in one (`"`, `\`,
/// the control characters).
pub(crate) const JSON_STOP: u8 = 128;

pub(crate) static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphabetic() {
            LETTER
        } else if c.is_ascii_digit() {
            DIGIT
        } else {
            match c {
                b'-' | b'_' | b'@' | b':' => TOKEN_MARK,
                b'.' => DOT,
                b' ' => SPACE,
                b',' => COMMA,
                b'"' | b'\\' | 0..0x20 => OTHER | JSON_STOP,
                _ => OTHER,
            }
        };
        b += 1;
    }
    table
};

/// The classes of a value's bytes (their OR).
pub(crate) fn classes(raw: &[u8]) -> u8 {
    raw.iter().fold(0, |acc, &b| acc | CLASS[usize::from(b)])
}

/// A value with nothing to decode: one token of letters, digits and `-_.@:,`, no `..`;
/// `classes`: [`classes`] of it. Rules still read it: libinjection finds SQL in such tokens
/// (`1--`, `-1union`) and the OS-file list names some (`web.config`).
pub(crate) fn is_plain(raw: &[u8], classes: u8) -> bool {
    classes & (SPACE | OTHER) == 0 && (classes & DOT == 0 || !raw.windows(2).any(|w| w == b".."))
}

/// Whether libinjection's SQLi detector cannot fire on this text: only ASCII letters,
/// digits, spaces, commas and slashes, each word a bareword (no SQL keyword, function,
/// operator, type: none of its ~9,350 keywords), no two neighbouring words a two-word keyword
/// (`ORDER BY`, which its folding would merge), each word that starts with a digit all digits.
/// Such a text tokenizes to barewords, numbers, commas and the `/` operator only (the
/// quote-led string forms need a quote, comments a `*` after the slash or their own
/// punctuation, other contexts a quote); its folding keeps to those four token types (it
/// merges a bareword or `/` with its neighbour only into a keyword, and no keyword holds a
/// space next to a `/`; its other rules that change a type need a parenthesis, a keyword, a
/// backslash or a variable), and no fingerprint on libinjection's list is made of those four
/// types alone (unit tests check both lists). A URL path such as `/api/products` is one.
pub(crate) fn sqli_cannot_match(bytes: &[u8], classes: u8) -> bool {
    use libinjectionrs::sqli::sqli_data::may_be_keyword_of;

    if classes & !(LETTER | DIGIT | SPACE | COMMA | OTHER) != 0 {
        return false;
    }
    // The one other byte allowed: `/`, a separator between words here.
    if classes & OTHER != 0 && bytes.iter().any(|&b| CLASS[usize::from(b)] & OTHER != 0 && b != b'/') {
        return false;
    }
    const SEPARATOR: u8 = SPACE | COMMA | OTHER;
    // The previous word (`start..end`; empty after a number).
    let (mut p_start, mut p_end) = (0, 0);
    let mut i = 0;
    while i < bytes.len() {
        if CLASS[usize::from(bytes[i])] & SEPARATOR != 0 {
            i += 1;
            continue;
        }
        // A word of letters and digits, up to the next space, comma or slash.
        let start = i;
        let mut classes = 0;
        while i < bytes.len() {
            let class = CLASS[usize::from(bytes[i])];
            if class & SEPARATOR != 0 {
                break;
            }
            classes |= class;
            i += 1;
        }
        let word = &bytes[start..i];
        if bytes[start].is_ascii_digit() {
            if classes != DIGIT {
                return false;
            }
            (p_start, p_end) = (0, 0);
            continue;
        }
        if !bareword(word) {
            return false;
        }
        // libinjection merges two words only when both fit in 31 bytes with the space.
        let previous = &bytes[p_start..p_end];
        let len = previous.len() + 1 + word.len();
        if let Some(&first) = previous.first()
            && len < 32
            && may_be_keyword_of(len, first, previous.get(1).copied().unwrap_or(b' '), bytes[i - 1])
        {
            let mut pair = [0u8; 32];
            pair[..previous.len()].copy_from_slice(previous);
            pair[previous.len()] = b' ';
            pair[previous.len() + 1..len].copy_from_slice(word);
            if !bareword(&pair[..len]) {
                return false;
            }
        }
        (p_start, p_end) = (start, i);
    }
    true
}

/// [`sqli_cannot_match`] for one token of words and numbers joined by single dashes, the
/// commonest identifier shape of API values (`SKU-00012`, `2024-05-01`, `c-1842`): no dash
/// first, last or doubled (`--` is a comment), and each dash-separated part passes
/// [`sqli_cannot_match`] on its own (a bareword, or digits only). libinjection reads the dash
/// as its minus operator between barewords and numbers; no two parts are neighbours it could
/// fold into a two-word keyword, and no fingerprint on its list is made of barewords, numbers
/// and operators alone (`dashed_tokens_never_hide_a_detection` holds it to that). Such a
/// token holds no byte any other family's rules need (no `.`, `/`, `<`, `=`, `:`, `;`, `|`,
/// `&`, `%`), so it clears every family, as a [`sqli_cannot_match`] text does.
///
/// One pass: each part is one word of letters and digits (its neighbours are dashes), so
/// [`sqli_cannot_match`] of it is "all digits, or a bareword" (no pair to fold, no separator);
/// `dashed_is_its_parts_passing_the_sqli_pre_screen` holds the two formulations equal.
pub(crate) fn dashed_cannot_match(bytes: &[u8], token_classes: u8) -> bool {
    if token_classes & !(LETTER | DIGIT | TOKEN_MARK) != 0 {
        return false;
    }
    let mut start = 0;
    loop {
        // The part from `start` to the next dash (or the end): letters and digits only.
        let mut end = start;
        let mut part_classes = 0;
        while let Some(&b) = bytes.get(end) {
            if b == b'-' {
                break;
            }
            let class = CLASS[usize::from(b)];
            if class & !(LETTER | DIGIT) != 0 {
                // `_`, `@` or `:`.
                return false;
            }
            part_classes |= class;
            end += 1;
        }
        let part = &bytes[start..end];
        // An empty part: a dash first, last or doubled (`--` is a comment).
        let Some(&first) = part.first() else { return false };
        let passes = if first.is_ascii_digit() { part_classes == DIGIT } else { bareword(part) };
        if !passes {
            return false;
        }
        if end == bytes.len() {
            return true;
        }
        start = end + 1;
    }
}

/// A word of ASCII letters and digits that libinjection reads as a bareword (no keyword,
/// function, operator or type): most words set no bit of the keyword table's filter and need
/// no look-up.
fn bareword(word: &[u8]) -> bool {
    use libinjectionrs::sqli::TokenType;
    use libinjectionrs::sqli::sqli_data::{lookup_word, may_be_keyword};
    // ASCII letters, digits and a space: always UTF-8.
    !may_be_keyword(word) || std::str::from_utf8(word).is_ok_and(|w| lookup_word(w) == TokenType::Bareword)
}

fn sqli(text: &str) -> bool {
    let libinjection = |t: &str| {
        // `libinjectionrs::detect_sqli`, without its second fingerprinting of every input to
        // return a fingerprint: only an injection's is asked for.
        let mut state = libinjectionrs::SqliState::new(t.as_bytes(), libinjectionrs::SqliFlags::FLAG_NONE);
        if !state.detect() {
            return false;
        }
        // libinjection's known false positives: a three-token fingerprint (`v&s`, `sos`) over
        // prose with no SQL punctuation at all, such as `Null and void "quoted"`. An attack
        // needs an operator, a comment, a parenthesis or a list to do anything.
        let short = state.get_fingerprint().to_string().len() <= 3;
        !(short && is_prose(text))
    };
    libinjection(text) || decode::strip_sql_comments(text).is_some_and(|s| libinjection(&s))
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// `javascript:` or `vbscript:` (blanks inside the scheme ignored, as browsers do) followed by
/// code: a call, a template, an assignment or a comment — not prose such as
/// `JavaScript: the good parts`.
fn script_uri(text: &str) -> bool {
    let compact: Vec<u8> =
        text.bytes().filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')).map(|b| b.to_ascii_lowercase()).collect();
    ["javascript:", "vbscript:"].iter().any(|scheme| {
        let mut from = 0;
        while let Some(p) = compact[from..].windows(scheme.len()).position(|w| w == scheme.as_bytes()) {
            let rest = &compact[from + p + scheme.len()..];
            let ident = rest
                .iter()
                .take_while(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b'[' | b']' | b'\'' | b'"')
                })
                .count();
            if matches!(rest.get(ident), Some(b'(' | b'`' | b'=')) || rest.starts_with(b"//") || rest.starts_with(b"/*")
            {
                return true;
            }
            from += p + scheme.len();
        }
        false
    })
}

/// Text without any of SQL's operators, comment marks, parentheses, list commas or wildcards.
fn is_prose(text: &str) -> bool {
    !text.bytes().any(|b| b"=<>();#*|@\\`%,+-/".contains(&b))
}

/// A quote closed and followed by a comment that cuts the rest of the query (`admin' #`,
/// `x' --`), or by `;` and a statement (`1'; SHUTDOWN--`): injections too short for a
/// libinjection fingerprint.
fn sql_quote_terminator(text: &str) -> bool {
    const STATEMENTS: &[&str] = &[
        "shutdown", "drop", "delete", "insert", "update", "exec", "execute", "declare", "truncate", "alter", "create",
        "grant", "select", "union", "waitfor", "xp_",
    ];
    let bytes = text.as_bytes();
    bytes.iter().enumerate().filter(|&(_, &b)| b == b'\'' || b == b'"').any(|(i, _)| {
        let rest = text[i + 1..].trim_start_matches([' ', '\t', ')']);
        let comment_to_end = ["--", "#", "/*"].iter().any(|c| rest.starts_with(c))
            && rest.trim_end().len() <= 3
            && i > 0
            && bytes[i - 1].is_ascii_alphanumeric();
        let stacked = rest.strip_prefix(';').is_some_and(|r| {
            let r = r.trim_start().as_bytes();
            STATEMENTS.iter().any(|k| r.len() >= k.len() && r[..k.len()].eq_ignore_ascii_case(k.as_bytes()))
        });
        comment_to_end || stacked
    })
}

fn protocol(value: &Decoded<'_>, place: Place, has: &Present, hit: &mut dyn FnMut(RuleId)) {
    if value.nul {
        hit(rules::NUL_BYTE);
    }
    if value.full_width {
        hit(rules::UNICODE_ABUSE);
    }
    let text = value.text.as_bytes();
    if has.control() && text.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || b == 0x7f) {
        hit(rules::CONTROL_CHAR);
    }
    if place == Place::Url {
        if value.bad_encoding {
            hit(rules::BAD_URL_ENCODING);
        }
        // It starts at a line break.
        if has.any(b"\r\n") && has_header_injection(text) {
            hit(rules::HEADER_INJECTION);
        }
    }
}

/// A line break followed by `Name:` — a header (or a second request) smuggled into a value.
fn has_header_injection(text: &[u8]) -> bool {
    text.iter().enumerate().filter(|&(_, &b)| b == b'\n' || b == b'\r').any(|(i, _)| {
        let rest = &text[i + 1..];
        let rest = &rest[rest.iter().take_while(|&&b| matches!(b, b'\r' | b'\n' | b' ' | b'\t')).count()..];
        let name = rest.iter().take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-').count();
        name > 0 && rest.get(name) == Some(&b':') || rest.starts_with(b"HTTP/")
    })
}

/// A `..` path segment: `../`, `..\`, or a trailing `/..`.
fn has_dot_dot_segment(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("..").map(|p| p + from) {
        let before = pos.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(pos + 2).copied();
        let starts_segment = matches!(before, None | Some(b'/' | b'\\' | b'=' | b'"' | b'\'' | b' ' | b':' | b';'));
        let slash_after = matches!(after, Some(b'/' | b'\\'))
            || text[pos + 2..].starts_with(['\u{2215}', '\u{2044}', '\u{29F5}', '\u{FE68}']);
        let ends_path = after.is_none() && matches!(before, Some(b'/' | b'\\'));
        if starts_segment && slash_after || ends_path {
            return true;
        }
        from = pos + 2;
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Os {
    Unix,
    Windows,
}

fn is_separator(b: u8) -> bool {
    matches!(b, b';' | b'|' | b'&' | b'`' | b'\n')
}

/// A shell separator (`;`, `|`, `&`, `&&`, a backtick, `$(`, a newline) followed by a command.
fn command_after_separator(text: &str) -> Option<Os> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let substitution = b == b'`' || (b == b'$' && bytes.get(i + 1) == Some(&b'('));
        if !(is_separator(b) || substitution) {
            i += 1;
            continue;
        }
        // Past the separator run, spaces and openers.
        let mut j = i + 1;
        while j < bytes.len() && (is_separator(bytes[j]) || matches!(bytes[j], b' ' | b'\t' | b'(' | b'{' | b'$')) {
            j += 1;
        }
        let spaced = b == b'\n'
            || bytes.get(i + 1).is_some_and(|b| *b == b' ' || *b == b'\t')
            || i.checked_sub(1).is_some_and(|p| bytes[p] == b' ');
        let word_end = j + bytes[j..]
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'\\' | b'-' | b':'))
            .count();
        if let Some(os) = command_at(&bytes[j..word_end], &bytes[word_end..], substitution || spaced) {
            return Some(os);
        }
        i = j.max(i + 1);
    }
    None
}

/// Whether `word` (after a separator) is a command, given what `follows` it.
fn command_at(word: &[u8], follows: &[u8], alone_counts: bool) -> Option<Os> {
    let base = word.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or(word);
    let base = base.strip_suffix(b".exe").unwrap_or(base);
    let is = |list: &[&str]| list.iter().any(|c| c.as_bytes().eq_ignore_ascii_case(base));
    let next = follows.iter().find(|&&b| b != b' ' && b != b'\t').copied();
    let spaced_arg = follows.first().is_some_and(|&b| b == b' ' || b == b'\t');
    let ends = next.is_none_or(|b| is_separator(b) || matches!(b, b')' | b'<' | b'>' | b'}'));
    let argument = spaced_arg
        && (next.is_some_and(|b| matches!(b, b'-' | b'/' | b'.' | b'~' | b'$' | b'\'' | b'"' | b'\\' | b'%'))
            || is_drive(follows.trim_ascii_start())
            || next.is_some_and(|b| b.is_ascii_digit()) && is(&["sleep", "ping"]));
    let strong_follow = ends || spaced_arg;
    if is(STRONG_UNIX) && strong_follow {
        return Some(Os::Unix);
    }
    if is(STRONG_WINDOWS) && strong_follow {
        return Some(Os::Windows);
    }
    let weak_follow = argument || (ends && alone_counts);
    if is(WEAK_UNIX) && weak_follow {
        return Some(Os::Unix);
    }
    if is(WEAK_WINDOWS) && weak_follow {
        return Some(Os::Windows);
    }
    None
}

fn is_drive(rest: &[u8]) -> bool {
    matches!(rest, [l, b':', b'\\' | b'/', ..] if l.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(text: &str) -> Vec<u32> {
        let d = Detectors::new();
        let mut out = Vec::new();
        let value = decode::decode(text.as_bytes(), false);
        d.check(Families::all(), &value, Place::Url, true, &mut |r| out.push(r.0));
        out
    }

    #[test]
    fn command_separators_need_a_command() {
        for attack in
            ["; cat /etc/passwd", "| id", "$(whoami)", "`uname -a`", "&& ls -la", "x;sleep 5", "|nc evil 4444"]
        {
            assert!(command_after_separator(attack).is_some(), "{attack}");
        }
        for benign in ["Tom & Jerry", "fields=name|id", "R&D; sort by date", "salt & pepper; cat food", "a|b|c"] {
            assert!(command_after_separator(benign).is_none(), "{benign}");
        }
        assert_eq!(command_after_separator("& type c:\\boot.ini"), Some(Os::Windows));
    }

    #[test]
    fn dot_dot_segments_not_ellipses() {
        assert!(has_dot_dot_segment("../../etc"));
        assert!(has_dot_dot_segment("a/..\\b"));
        assert!(has_dot_dot_segment("/static/.."));
        assert!(!has_dot_dot_segment("wait.../what"));
        assert!(!has_dot_dot_segment("1..10"));
        assert!(has_dot_dot_segment("..\u{2215}etc"));
    }

    #[test]
    fn quote_then_comment_or_statement() {
        assert!(sql_quote_terminator("admin' #"));
        assert!(sql_quote_terminator("1'; SHUTDOWN--"));
        assert!(!sql_quote_terminator("O'Brien #1 fan"));
        assert!(!sql_quote_terminator("it's 5 o'clock; drop by"));
    }

    #[test]
    fn script_uris_need_code() {
        assert!(script_uri("javascript:alert(1)"));
        assert!(script_uri("JaVa\tScRiPt:alert`1`"));
        assert!(!script_uri("JavaScript: the good parts"));
    }

    #[test]
    fn prose_with_a_short_fingerprint_is_not_sqli() {
        assert!(!sqli("Null and void \"double quoted\""));
        assert!(sqli("1' OR '1'='1"));
    }

    #[test]
    fn header_injection_needs_a_header_name() {
        assert!(has_header_injection(b"x\r\nSet-Cookie: a=b"));
        assert!(!has_header_injection(b"line one\nline two"));
    }

    #[test]
    fn families_report_their_rules() {
        assert!(hits("1' OR '1'='1").contains(&942100));
        assert!(hits("<script>alert(1)</script>").contains(&941100));
        assert!(hits("..%2f..%2fetc%2fpasswd").contains(&930100));
        assert!(hits("a%00b").contains(&920270));
        assert!(hits("O'Brien").is_empty());
    }

    #[test]
    fn no_listed_sqli_fingerprint_is_barewords_numbers_and_commas_alone() {
        use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
        let fingerprints: Vec<&str> = SQL_KEYWORDS.iter().filter(|k| k.token_type == b'F').map(|k| k.word).collect();
        assert!(fingerprints.len() > 8000);
        for f in fingerprints {
            // Stored as '0' and the fingerprint in upper case: bareword `n`, number `1`, `,`.
            assert!(!f[1..].bytes().all(|b| matches!(b, b'N' | b'1' | b',')), "{f}");
        }
    }

    #[test]
    fn no_listed_sqli_fingerprint_is_barewords_numbers_commas_and_operators_alone() {
        use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
        for k in SQL_KEYWORDS.iter().filter(|k| k.token_type == b'F') {
            assert!(!k.word[1..].bytes().all(|b| matches!(b, b'N' | b'1' | b',' | b'O')), "{}", k.word);
        }
        // A bareword or `/` merges with its neighbour only into a keyword (`word /`,
        // `/ word`, `/ /`): no keyword holds a slash next to a space.
        for k in SQL_KEYWORDS.iter().filter(|k| k.word.contains('/')) {
            assert!(!k.word.contains("/ ") && !k.word.contains(" /"), "{}", k.word);
        }
    }

    #[test]
    fn the_sqli_pre_screen_passes_url_paths() {
        let cannot = |t: &[u8]| sqli_cannot_match(t, classes(t));
        assert!(cannot(b"/api/products"));
        assert!(cannot(b"/v1/orders/12345/items/"));
        assert!(cannot(b"//"));
        for sql in [&b"/api/union/select"[..], b"/x/1 or 1", b"/a/*b*/", b"/x/5th", b"/a-b", b"/a.b", b"/a/order by"] {
            assert!(!cannot(sql), "{}", String::from_utf8_lossy(sql));
        }
        // The other families still read such a text (only SQLi's detector is skipped).
        assert!(hits("/etc/passwd").contains(&930120));
        assert!(hits("/bin/sh").contains(&932160));
    }

    #[test]
    fn the_sqli_pre_screen_passes_prose_and_stops_at_sql() {
        let cannot = |t: &[u8]| sqli_cannot_match(t, classes(t));
        assert!(cannot(b"Blue cotton shirt, size M, batch 12"));
        assert!(cannot(b"blue shirt"));
        for sql in [
            &b"1 or 1"[..],
            b"1 union select 1",
            b"x order by 1",
            b"a and b",
            b"sleep 5",
            b"5th avenue",
            b"1e5",
            b"it's",
            b"a-b",
            b"caf\xc3\xa9",
        ] {
            assert!(!cannot(sql), "{}", String::from_utf8_lossy(sql));
        }
    }

    #[test]
    fn every_pattern_holds_a_byte_of_its_pre_screen() {
        for p in OS_FILES {
            assert!(p.bytes().any(|b| OS_FILE_BYTES.contains(&b)), "{p}");
        }
        for p in SHELL_PATHS {
            assert!(p.bytes().any(|b| SHELL_PATH_BYTES.contains(&b)), "{p}");
        }
    }

    #[test]
    fn present_bytes_are_the_text_bytes() {
        let has = Present::of(b"a\x01\xff:");
        for b in 0..=255u8 {
            assert_eq!(has.has(b), b"a\x01\xff:".contains(&b), "{b}");
        }
        assert!(has.control());
        assert!(!Present::of(b"tab\tcr\rlf\n").control());
        assert!(Present::of(b"\x7f").control());
        assert!(Present::ALL.any(b"x"));
    }

    #[test]
    fn plain_tokens_skip_every_rule() {
        let plain = |t: &[u8]| is_plain(t, classes(t));
        assert!(plain(b"2024-05-01"));
        assert!(plain(b"user@example.com"));
        assert!(plain(b"v1.2.3"));
        assert!(!plain(b"a b"));
        assert!(!plain(b".."));
        assert!(!plain(b"x/../y"));
    }
}

#[cfg(test)]
mod prescreen {
    use proptest::prelude::*;

    /// Bytes that move libinjection's HTML5 tokenizer between states, and names it blocks.
    const HTML: &[&str] = &[
        ">",
        "/",
        "'",
        "\"",
        "`",
        " ",
        "\t",
        "\n",
        "!",
        "?",
        "%",
        "-",
        "[",
        "]",
        "&",
        "#",
        ";",
        "on",
        "onload",
        "onerror",
        "style",
        "href",
        "src",
        "xmlns",
        "xlink",
        "script",
        "svg",
        "xsl",
        "doctype",
        "DOCTYPE",
        "[if",
        "xml",
        "import",
        "entity",
        "javascript:",
        "vbscript:",
        "data:",
        "alert(1)",
        "x",
    ];

    /// Words for texts the SQLi pre-screen may pass: SQL keywords of every kind, two-word
    /// keywords' halves, numbers, and ordinary words.
    fn sql_words() -> impl Strategy<Value = String> {
        use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
        let keyword = prop::sample::select(
            SQL_KEYWORDS
                .iter()
                .filter(|k| k.token_type != b'F' && k.word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' '))
                .map(|k| k.word)
                .collect::<Vec<_>>(),
        );
        let ordinary =
            prop::sample::select(&["blue", "shirt", "size", "M", "x86", "batch", "Liam", "0", "12", "007"][..]);
        let word = prop_oneof![keyword.prop_map(str::to_owned), ordinary.prop_map(str::to_owned), "[a-zA-Z0-9]{1,6}"];
        let gap = prop::sample::select(&[" ", "  ", ",", ", ", " , ", "/", "//", " / ", "/,"][..]);
        prop::collection::vec((word, gap), 1..8)
            .prop_map(|parts| parts.into_iter().map(|(w, g)| format!("{w}{g}")).collect::<String>())
    }

    /// Parts for dashed tokens: SQL keywords of every kind (one word each), numbers, hex and
    /// exponent forms, ordinary words, and mixtures of digits and letters.
    fn dashed_parts() -> impl Strategy<Value = Vec<String>> {
        use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
        let keyword = prop::sample::select(
            SQL_KEYWORDS
                .iter()
                .filter(|k| k.token_type != b'F' && k.word.bytes().all(|b| b.is_ascii_alphanumeric()))
                .map(|k| k.word)
                .collect::<Vec<_>>(),
        );
        let odd = prop::sample::select(
            &["SKU", "c", "1", "0", "00012", "2024", "05", "0x41", "1e1", "1union", "x86", "e", "b", "N", "id"][..],
        );
        let part =
            prop_oneof![keyword.prop_map(str::to_owned), odd.prop_map(str::to_owned), "[a-zA-Z0-9]{1,6}", "[0-9]{1,5}"];
        prop::collection::vec(part, 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the SQLi pre-screen passes, libinjection (in every context it tries) does
        /// not flag, also with a quote-free prefix or suffix of lower and upper case words.
        #[test]
        fn the_sqli_pre_screen_never_hides_a_detection(text in sql_words(), upper in any::<bool>()) {
            let text = if upper { text.to_ascii_uppercase() } else { text.to_ascii_lowercase() };
            if super::sqli_cannot_match(text.as_bytes(), super::classes(text.as_bytes())) {
                prop_assert!(!super::sqli(&text), "{text:?}");
                prop_assert!(!libinjectionrs::detect_sqli(text.as_bytes()).is_injection(), "{text:?}");
            }
        }

        /// Whatever the dashed-token pre-screen passes, libinjection does not flag: SQL
        /// keywords, numbers and words joined by dashes, in upper and lower case.
        #[test]
        fn dashed_tokens_never_hide_a_detection(parts in dashed_parts(), upper in any::<bool>()) {
            let text = parts.join("-");
            let text = if upper { text.to_ascii_uppercase() } else { text.to_ascii_lowercase() };
            if super::dashed_cannot_match(text.as_bytes(), super::classes(text.as_bytes())) {
                prop_assert!(!super::sqli(&text), "{text:?}");
                prop_assert!(!libinjectionrs::detect_sqli(text.as_bytes()).is_injection(), "{text:?}");
            }
        }

        /// The one-pass dashed pre-screen answers as its definition does: no dash first, last
        /// or doubled, no `_@:`, and every dash-separated part passes the SQLi pre-screen.
        #[test]
        fn dashed_is_its_parts_passing_the_sqli_pre_screen(
            parts in dashed_parts(),
            joints in prop::collection::vec(prop::sample::select(&["-", "--", "_", "@", ":", "-_", ""][..]), 0..6),
            edges in prop::sample::select(&["", "-", "_"][..]),
            upper in any::<bool>(),
        ) {
            let mut text = edges.to_owned();
            for (i, part) in parts.iter().enumerate() {
                text.push_str(part);
                text.push_str(joints.get(i).copied().unwrap_or("-"));
            }
            text.pop();
            text.push_str(edges);
            let text = if upper { text.to_ascii_uppercase() } else { text.to_ascii_lowercase() };
            let bytes = text.as_bytes();
            let defined = super::classes(bytes) & !(super::LETTER | super::DIGIT | super::TOKEN_MARK) == 0
                && bytes.first().is_some_and(|&b| b != b'-')
                && bytes.last() != Some(&b'-')
                && !bytes.windows(2).any(|w| w == b"--")
                && !bytes.iter().any(|&b| matches!(b, b'_' | b'@' | b':'))
                && bytes.split(|&b| b == b'-').all(|p| super::sqli_cannot_match(p, super::classes(p)));
            prop_assert_eq!(super::dashed_cannot_match(bytes, super::classes(bytes)), defined, "{:?}", text);
        }

        /// libinjection's XSS detector never fires on a text with neither `<` nor `=` (the
        /// pre-screen of `Detectors::check`), whatever else the text holds.
        #[test]
        fn xss_needs_a_lt_or_an_equals_sign(
            pieces in prop::collection::vec(prop::sample::select(HTML), 0..16),
            noise in prop::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut text: Vec<u8> = pieces.concat().into_bytes();
            text.extend(noise.iter().filter(|&&b| b != b'<' && b != b'='));
            prop_assert!(!libinjectionrs::detect_xss(&text).is_injection(), "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn the_same_texts_fire_once_they_have_one() {
        assert!(libinjectionrs::detect_xss(b"x onload=alert(1)").is_injection());
        assert!(libinjectionrs::detect_xss(b"<svg onload>").is_injection());
        assert!(!libinjectionrs::detect_xss(b"x onload alert(1)").is_injection());
    }
}
