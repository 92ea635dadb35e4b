//! RESP2, the little of it the limiter speaks: commands written as arrays of bulk strings
//! straight into a pipeline's buffer, and replies parsed from a read buffer that may hold
//! half a reply (then nothing is consumed and the caller reads more).
//!
//! The parser trusts nothing: lengths are bounded ([`MAX_BULK`], [`MAX_ARRAY`], [`MAX_DEPTH`])
//! so a broken or hostile server costs at most a dropped connection, never a panic or a huge
//! allocation.

/// The longest bulk string accepted; the limiter's replies are a few digits.
pub(crate) const MAX_BULK: usize = 1 << 20;
/// The most elements an array may announce (a reply has two plus one per limit).
pub(crate) const MAX_ARRAY: usize = 1 << 16;
/// Nesting bound (the scripts reply flat arrays).
pub(crate) const MAX_DEPTH: usize = 4;
/// The longest simple string, error or integer line.
const MAX_LINE: usize = 64 * 1024;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR …`: the server refused the command.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nabc` (`$-1` is [`Reply::Nil`]).
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*2\r\n…`.
    Array(Vec<Reply>),
}

/// The server broke the protocol: the connection cannot be trusted any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtocolError;

impl Reply {
    /// An integer, or a bulk string of decimal digits (the scripts format big numbers as
    /// strings so Lua's doubles do not lose them), as a non-negative number.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Reply::Int(n) => u64::try_from(*n).ok(),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// A `NOSCRIPT` error: the server lost the script cache (a restart, `SCRIPT FLUSH`).
    pub(crate) fn is_noscript(&self) -> bool {
        matches!(self, Reply::Error(e) if e.starts_with("NOSCRIPT"))
    }
}

/// Appends `*{args}\r\n`: a command of `args` bulk strings follows.
pub(crate) fn array_header(buf: &mut Vec<u8>, args: usize) {
    buf.push(b'*');
    push_decimal(buf, args as u64);
    buf.extend_from_slice(b"\r\n");
}

/// Appends one bulk string made of `parts` laid end to end (a key without an allocation).
pub(crate) fn bulk_parts(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    buf.push(b'$');
    push_decimal(buf, len as u64);
    buf.extend_from_slice(b"\r\n");
    for p in parts {
        buf.extend_from_slice(p);
    }
    buf.extend_from_slice(b"\r\n");
}

/// Appends one bulk string.
pub(crate) fn bulk(buf: &mut Vec<u8>, arg: &[u8]) {
    bulk_parts(buf, &[arg]);
}

/// Appends one bulk string holding `n` in decimal.
pub(crate) fn bulk_u64(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let text = decimal(&mut digits, n);
    bulk(buf, text);
}

/// `n` in decimal, written at the end of `out`.
pub(crate) fn decimal(out: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = out.len();
    loop {
        at -= 1;
        // `n % 10` is below 10.
        out[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[at..];
        }
    }
}

fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    buf.extend_from_slice(decimal(&mut digits, n));
}

/// Parses one reply from the start of `buf`: `Ok(Some((reply, bytes used)))`, `Ok(None)` when
/// `buf` holds only part of it, or an error when it is not RESP2.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some((line, next)) = line(buf, at)? else {
        return Ok(None);
    };
    let (&kind, rest) = line.split_first().ok_or(ProtocolError)?;
    match kind {
        b'+' => Ok(Some((Reply::Status(text(rest)?), next))),
        b'-' => Ok(Some((Reply::Error(text(rest)?), next))),
        b':' => Ok(Some((Reply::Int(integer(rest)?), next))),
        b'$' => {
            let Some(len) = length(rest, MAX_BULK)? else {
                return Ok(Some((Reply::Nil, next)));
            };
            let end = next.checked_add(len).ok_or(ProtocolError)?;
            let Some(tail) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if tail != b"\r\n" {
                return Err(ProtocolError);
            }
            Ok(Some((Reply::Bulk(buf[next..end].to_vec()), end + 2)))
        }
        b'*' => {
            let Some(count) = length(rest, MAX_ARRAY)? else {
                return Ok(Some((Reply::Nil, next)));
            };
            if depth >= MAX_DEPTH {
                return Err(ProtocolError);
            }
            // Each element takes at least 3 bytes (`:0\r\n` is 4): a count the buffer cannot
            // hold yet is not allocated for.
            let mut items = Vec::with_capacity(count.min(buf.len().saturating_sub(next) / 3 + 1));
            let mut at = next;
            for _ in 0..count {
                let Some((item, after)) = parse_at(buf, at, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = after;
            }
            Ok(Some((Reply::Array(items), at)))
        }
        _ => Err(ProtocolError),
    }
}

/// The line starting at `at` without its CRLF, and where the next one starts.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = buf.get(at..).unwrap_or_default();
    let Some(lf) = rest.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') else {
        return if rest.len() > MAX_LINE + 1 { Err(ProtocolError) } else { Ok(None) };
    };
    let Some(line) = rest[..lf].strip_suffix(b"\r") else {
        return Err(ProtocolError);
    };
    Ok(Some((line, at + lf + 1)))
}

fn text(bytes: &[u8]) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError)
}

fn integer(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()).ok_or(ProtocolError)
}

/// A `$`/`*` length: `None` for `-1`, else at most `max`.
fn length(bytes: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
    match integer(bytes)? {
        -1 => Ok(None),
        n => usize::try_from(n).ok().filter(|&n| n <= max).map(Some).ok_or(ProtocolError),
    }
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;

/// The reply parser's contract on any bytes, for the `redis_reply` fuzz target and its stable
/// replay: replies are read one after another as the connection's read loop does; each
/// consumes at least one byte and no more than it was given, and every shorter prefix of a
/// complete reply parses as "need more" (so a reply split across reads is neither misread nor
/// taken for a broken connection). Returns how many replies were read before the first error or the
/// end. Panics when the contract is broken.
#[doc(hidden)]
#[must_use]
pub fn check_parser(data: &[u8]) -> usize {
    let mut at = 0;
    let mut replies = 0;
    while at < data.len() {
        let rest = &data[at..];
        match parse(rest) {
            Ok(Some((_, used))) => {
                assert!(used > 0 && used <= rest.len(), "a reply used {used} of {} bytes", rest.len());
                for cut in 0..used {
                    assert!(
                        matches!(parse(&rest[..cut]), Ok(None)),
                        "a {cut}-byte prefix of a {used}-byte reply parsed as complete"
                    );
                }
                at += used;
                replies += 1;
            }
            Ok(None) | Err(ProtocolError) => break,
        }
    }
    replies
}
