//! The tape built by a direct scan of the bytes, for the bodies it can read exactly as
//! `serde_json::from_slice` would. A body is handed back (`None`) whenever it is not sure:
//! anything that is not JSON, nesting deeper than [`MAX_DEPTH`], a number whose `f64` is not
//! the one correctly rounded operation every parser agrees on, an escaped lone surrogate. The
//! caller then parses it with `serde_json`, which gives the verdict and the error, so the
//! scan may refuse too much but must never accept what `serde_json` refuses nor read a value
//! differently; `tests` and the fuzz target compare the two.
//!
//! Serde's visitor calls per value, and its number and string paths written for any reader,
//! were most of the cost of a check; here one loop over the bytes appends entries.

use serde_json::Number;

use super::{Builder, Entry, KeyRef, Parsed, Text};

#[cfg(test)]
mod tests;

/// Containers nested deeper than this are left to `serde_json` (which accepts 127).
const MAX_DEPTH: usize = 100;

/// A string is searched for its end eight bytes a step for this many steps, then by `memchr`
/// (whose call costs more than a step, and far less for the long rest of a string).
const SHORT_STEPS: usize = 4;

/// Past [`SHORT_STEPS`], the steps taken before `memchr` (strings up to 96 bytes in all).
const MORE_STEPS: usize = 8;

/// `10^0..=10^22`, each exactly an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A container being filled.
struct Open {
    /// Its entry on the tape.
    at: u32,
    object: bool,
    len: u32,
    /// One bit per member name's digest ([`KeyRef::digest`], hashed to 0..64): while no two
    /// names share a bit, no two are the same and the object's names need no comparing.
    bits: u64,
    /// Two names shared a bit: at the close the object's names are compared.
    clash: bool,
}

impl Open {
    fn new(at: u32, object: bool) -> Self {
        Self { at, object, len: 0, bits: 0, clash: false }
    }
}

/// The tape of `bytes`, or `None` when `serde_json` must decide.
pub(super) fn scan(bytes: &[u8]) -> Option<Parsed<'_>> {
    // Outside strings every byte `serde_json` accepts is ASCII, so the whole text being UTF-8
    // is the same condition as every string being UTF-8 (and checked in one fast pass).
    let text = std::str::from_utf8(bytes).ok()?;
    let capacity = (bytes.len() / 8).min(4096) + 1;
    let mut scanner = Scanner { text, bytes, pos: 0, builder: Builder::with_capacity(capacity) };
    scanner.document()?;
    Some(scanner.builder.finish(bytes))
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    builder: Builder<'a>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The next byte that is not JSON whitespace, not consumed.
    #[inline(always)]
    fn skip_whitespace(&mut self) -> Option<u8> {
        // Every JSON whitespace byte is at most a space: anything above is returned at once.
        let b = *self.bytes.get(self.pos)?;
        if b > b' ' { Some(b) } else { self.skip_whitespace_run() }
    }

    #[inline(never)]
    fn skip_whitespace_run(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    fn index(&self) -> Option<u32> {
        u32::try_from(self.builder.entries.len()).ok()
    }

    fn push(&mut self, entry: Entry<'a>) {
        self.builder.entries.push(entry);
    }

    /// One value and nothing but whitespace after it.
    fn document(&mut self) -> Option<()> {
        let mut open: Vec<Open> = Vec::new();
        'value: loop {
            // A value starts here.
            match self.skip_whitespace()? {
                b'{' => {
                    self.pos += 1;
                    let at = self.index()?;
                    self.push(Entry::Object { len: 0, end: 0 });
                    if self.skip_whitespace()? == b'}' {
                        self.pos += 1;
                        self.close(Open::new(at, true))?;
                    } else {
                        if open.len() >= MAX_DEPTH {
                            return None;
                        }
                        let mut object = Open::new(at, true);
                        self.member_name(&mut object)?;
                        open.push(object);
                        continue 'value;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    let at = self.index()?;
                    self.push(Entry::Array { len: 0, end: 0 });
                    if self.skip_whitespace()? == b']' {
                        self.pos += 1;
                        self.close(Open::new(at, false))?;
                    } else {
                        if open.len() >= MAX_DEPTH {
                            return None;
                        }
                        open.push(Open::new(at, false));
                        continue 'value;
                    }
                }
                b'"' => {
                    self.pos += 1;
                    let text = self.string()?;
                    self.push(Entry::String(text));
                }
                b't' => self.literal(b"true", Entry::Bool(true))?,
                b'f' => self.literal(b"false", Entry::Bool(false))?,
                b'n' => self.literal(b"null", Entry::Null)?,
                _ => {
                    let number = self.number()?;
                    self.push(Entry::Number(number));
                }
            }
            // A value ended: the container it is in goes on or closes, maybe several.
            loop {
                let Some(container) = open.last_mut() else {
                    return (self.skip_whitespace().is_none()).then_some(());
                };
                container.len += 1;
                match (self.skip_whitespace()?, container.object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.skip_whitespace()?;
                        self.member_name(container)?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        let closed = open.pop()?;
                        self.close(closed)?;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Writes a finished container's length and end into its entry.
    fn close(&mut self, container: Open) -> Option<()> {
        let end = self.index()?;
        let len = if container.object && container.clash {
            self.builder.close_object_at(container.at, end)
        } else {
            // Objects whose names never shared a digest bit have distinct names.
            container.len
        };
        let entry = if container.object { Entry::Object { len, end } } else { Entry::Array { len, end } };
        *self.builder.entries.get_mut(container.at as usize)? = entry;
        Some(())
    }

    /// `"name"` and the `:` after it, at the current position (whitespace skipped), noted in
    /// `object`'s digest bits.
    fn member_name(&mut self, object: &mut Open) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let (name, digest) = self.key()?;
        let bit = KeyRef::bit(digest);
        object.clash |= object.bits & bit != 0;
        object.bits |= bit;
        self.push(Entry::Key { name, shadowed: false });
        if self.skip_whitespace()? != b':' {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8], entry: Entry<'a>) -> Option<()> {
        if !self.bytes.get(self.pos..)?.starts_with(word) {
            return None;
        }
        self.pos += word.len();
        self.push(entry);
        Some(())
    }

    /// A string's contents, the opening quote consumed; borrowed unless it has escapes (then
    /// unescaped into the builder's strings).
    #[inline(always)]
    fn string(&mut self) -> Option<Text<'a>> {
        let start = self.pos;
        // Most strings end within a few eight-byte steps; only the rest take the long way.
        let mut at = start;
        for _ in 0..SHORT_STEPS {
            let Some(chunk) = self.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) else {
                return self.string_rest(start, at);
            };
            let mask = special_mask(u64::from_le_bytes(*chunk));
            if mask != 0 {
                let end = at + (mask.trailing_zeros() / 8) as usize;
                if self.bytes.get(end) == Some(&b'"') {
                    self.pos = end + 1;
                    // Both ends are next to ASCII quotes: char boundaries.
                    return self.text.get(start..end).map(Text::Body);
                }
                return self.string_escaped(start, end);
            }
            at += 8;
        }
        self.string_rest(start, at)
    }

    /// A member name's contents, the opening quote consumed, and its [`KeyRef::digest`]: as
    /// [`Self::string`], and whether the name is ASCII (most are) noted on the way.
    #[inline(always)]
    fn key(&mut self) -> Option<(Text<'a>, u32)> {
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let start = self.pos;
        let mut at = start;
        let mut high = 0_u64;
        let mut steps = 0;
        let text = loop {
            let Some(chunk) = self.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) else {
                break self.string_rest(start, at)?;
            };
            let word = u64::from_le_bytes(*chunk);
            let mask = special_mask(word);
            if mask != 0 {
                let lead = mask.trailing_zeros() / 8;
                let end = at + lead as usize;
                if self.bytes.get(end) != Some(&b'"') {
                    break self.string_escaped(start, end)?;
                }
                // The word's bytes before the quote (none when it is the first).
                let before = u64::MAX.checked_shr(64 - 8 * lead).unwrap_or(0);
                high |= word & before;
                self.pos = end + 1;
                let name = self.text.get(start..end)?;
                let digest =
                    if high & HIGH == 0 { KeyRef::digest_ascii(name.as_bytes()) } else { KeyRef::digest(name) };
                return Some((Text::Body(name), digest));
            }
            high |= word;
            at += 8;
            steps += 1;
            if steps == SHORT_STEPS {
                break self.string_rest(start, at)?;
            }
        };
        let digest = match text {
            Text::Body(s) => KeyRef::digest(s),
            Text::Unescaped(at) => KeyRef::digest(self.builder.unescaped.get(at as usize)?),
        };
        Some((text, digest))
    }

    /// [`Self::string`] past its first steps: from `at`, where no special byte has been seen
    /// since `start`.
    #[inline(never)]
    fn string_rest(&mut self, start: usize, from: usize) -> Option<Text<'a>> {
        let mut at = from;
        // Strings of a few dozen bytes still end sooner by steps than by a call to `memchr`.
        for _ in 0..MORE_STEPS {
            let Some(chunk) = self.bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) else {
                break;
            };
            let mask = special_mask(u64::from_le_bytes(*chunk));
            if mask != 0 {
                return self.string_end(start, at + (mask.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        let end = if self.bytes.len() < at + 8 {
            special_byte(self.bytes, at)?
        } else {
            // The closing quote or the first escape a vector at a time, then one pass for
            // control characters (refused) before it.
            let rest = self.bytes.get(at..)?;
            let len = memchr::memchr2(b'"', b'\\', rest)?;
            if has_control(rest.get(..len)?) { special_byte(self.bytes, at)? } else { at + len }
        };
        self.string_end(start, end)
    }

    /// The string from `start` whose first special byte is at `at`.
    fn string_end(&mut self, start: usize, at: usize) -> Option<Text<'a>> {
        if self.bytes.get(at) == Some(&b'"') {
            self.pos = at + 1;
            return self.text.get(start..at).map(Text::Body);
        }
        self.string_escaped(start, at)
    }

    /// A string with an escape or a control character at `at`.
    #[cold]
    #[inline(never)]
    fn string_escaped(&mut self, start: usize, at: usize) -> Option<Text<'a>> {
        let unescaped = self.escaped_string(start, at)?;
        let index = u32::try_from(self.builder.unescaped.len()).ok()?;
        self.builder.unescaped.push(unescaped);
        Some(Text::Unescaped(index))
    }

    /// The rest of a string from its first escape (or control character) at `at`.
    #[cold]
    fn escaped_string(&mut self, start: usize, mut at: usize) -> Option<String> {
        let mut out = String::new();
        let mut from = start;
        loop {
            match self.bytes.get(at)? {
                b'"' => {
                    self.pos = at + 1;
                    out.push_str(self.text.get(from..at)?);
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(from..at)?);
                    self.pos = at + 1;
                    self.escape(&mut out)?;
                    from = self.pos;
                }
                // A control character: not allowed unescaped.
                _ => return None,
            }
            at = special_byte(self.bytes, self.pos)?;
        }
    }

    /// One escape, its backslash consumed, appended to `out`.
    fn escape(&mut self, out: &mut String) -> Option<()> {
        let b = self.peek()?;
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let n = self.hex4()?;
                let code = match n {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                            return None;
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        (((n - 0xD800) << 10) | (low - 0xDC00)) + 0x1_0000
                    }
                    // A trailing surrogate first: serde_json refuses it.
                    0xDC00..=0xDFFF => return None,
                    _ => n,
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(c);
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut n = 0_u32;
        for &d in digits {
            n = (n << 4) | char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(n)
    }

    /// A number, as `serde_json` reads it; `None` for what it does differently or refuses.
    fn number(&mut self) -> Option<Number> {
        let positive = if self.peek()? == b'-' {
            self.pos += 1;
            false
        } else {
            true
        };
        let mut significand: u64 = match self.peek()? {
            b'0' => {
                self.pos += 1;
                // A leading zero stands alone.
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
                0
            }
            b'1'..=b'9' => self.digits(0)?.0,
            _ => return None,
        };
        let mut exponent: i32 = 0;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let (value, count) = self.digits(significand)?;
            if count == 0 {
                return None;
            }
            significand = value;
            exponent = -i32::try_from(count).ok()?;
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            let negative = match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    true
                }
                Some(b'+') => {
                    self.pos += 1;
                    false
                }
                _ => false,
            };
            let (value, count) = self.digits(0)?;
            if count == 0 {
                return None;
            }
            let value = i32::try_from(value).ok()?;
            exponent = if negative { exponent.checked_sub(value)? } else { exponent.checked_add(value)? };
            float = true;
        }
        if !float {
            return Some(if positive {
                Number::from(significand)
            } else {
                // serde_json's own rule: `-0`, and what does not fit an i64, become floats.
                let neg = (significand as i64).wrapping_neg();
                if neg >= 0 { Number::from_f64(-(significand as f64))? } else { Number::from(neg) }
            });
        }
        // One operation on exact operands, correctly rounded: the `f64` serde_json computes
        // (with or without `float_roundtrip`) and every correct parser agrees on.
        if significand >= 1 << 53 {
            return None;
        }
        // Below 2^53: exact.
        let mut f = significand as f64;
        let pow = *POW10.get(usize::try_from(exponent.unsigned_abs()).ok()?)?;
        if exponent >= 0 {
            f *= pow;
        } else {
            f /= pow;
        }
        Number::from_f64(if positive { f } else { -f })
    }

    /// Decimal digits appended to `value`, and how many; `None` if the value overflows.
    fn digits(&mut self, mut value: u64) -> Option<(u64, usize)> {
        let start = self.pos;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.pos += 1;
        }
        Some((value, self.pos - start))
    }
}

/// Whether `span` has a byte below 0x20 (a minimum, which compiles to vector code).
fn has_control(span: &[u8]) -> bool {
    span.iter().fold(u8::MAX, |min, &b| min.min(b)) < 0x20
}

/// The index of the first `"`, `\` or control character at or after `from`, eight bytes at a
/// time; `None` when there is none (an unterminated string).
fn special_byte(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mask = special_mask(u64::from_le_bytes(chunk.try_into().ok()?));
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

/// The high bit of each byte of `x` (eight bytes, little-endian) that is `"`, `\` or a control
/// character; exact at the lowest one (a borrow may mark others above it, which that hides).
fn special_mask(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) | below(x, 0x20)
}
