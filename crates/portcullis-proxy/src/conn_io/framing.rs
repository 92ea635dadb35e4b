//! The framing scan of an HTTP/1.1 connection's request stream (see [`FramingScan`]).

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use portcullis_core::stage::RawHeadFlaw;

/// Follows the request heads of an HTTP/1.1 connection as the client sent them, to see what
/// the parsed request no longer shows: `Content-Length` beside `Transfer-Encoding` (hyper
/// resolves that per RFC 9112; the gateway refuses it) and a `#` in the request target (the
/// URI parser drops the fragment). See [`Scan`] for how it keeps its place.
///
/// Every head the scan completes is either handed to the service by hyper, in the same order,
/// or ends the connection (hyper parses with the same parser and the same header limit), so
/// the n-th head scanned is the n-th request dispatched. The first flawed head's index is
/// recorded; its refusal closes the connection, so no later request needs one of its own. It
/// never decides timing — hyper's header-read timer does.
#[derive(Debug)]
pub(crate) struct FramingScan {
    /// Requests hyper handed over so far.
    dispatched: AtomicU64,
    /// Index of the first flawed head (`u64::MAX`: none yet); `flaw` says what it was.
    flawed_at: AtomicU64,
    flaw: AtomicU8,
    /// A 101 went out: what follows is another protocol's bytes.
    upgraded: AtomicBool,
}

impl FramingScan {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            dispatched: AtomicU64::new(0),
            flawed_at: AtomicU64::new(u64::MAX),
            flaw: AtomicU8::new(0),
            upgraded: AtomicBool::new(false),
        })
    }

    /// Called as hyper hands over a request: what its head showed, if anything was wrong.
    pub(crate) fn dispatched(&self) -> Option<RawHeadFlaw> {
        let index = self.dispatched.fetch_add(1, Ordering::Relaxed);
        let flawed_at = self.flawed_at.load(Ordering::Acquire);
        if index < flawed_at {
            return None;
        }
        // A later request on the same connection is one whose start the scan no longer vouches
        // for (it cannot occur: the first refusal closes the connection).
        Some(if index == flawed_at { flaw_from(self.flaw.load(Ordering::Relaxed)) } else { RawHeadFlaw::Untracked })
    }

    /// The connection was handed over to a tunnel: the scan stops.
    pub(crate) fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// Only the first flaw counts (see the type's comment).
    fn record(&self, index: u64, flaw: RawHeadFlaw) {
        if self.flawed_at.load(Ordering::Relaxed) == u64::MAX {
            self.flaw.store(flaw as u8, Ordering::Relaxed);
            self.flawed_at.store(index, Ordering::Release);
        }
    }
}

fn flaw_from(byte: u8) -> RawHeadFlaw {
    match byte {
        b if b == RawHeadFlaw::AmbiguousFraming as u8 => RawHeadFlaw::AmbiguousFraming,
        b if b == RawHeadFlaw::Fragment as u8 => RawHeadFlaw::Fragment,
        b if b == RawHeadFlaw::MalformedBody as u8 => RawHeadFlaw::MalformedBody,
        _ => RawHeadFlaw::Untracked,
    }
}

/// Where in the byte stream the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The next bytes start a request head.
    Head,
    /// Inside a body of known length: this many bytes remain.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Upgraded, or lost: nothing more is scanned.
    Off,
}

/// The chunked decoder's states, byte for byte as hyper's (`proto/h1/decode.rs`), so the scan
/// ends a body exactly where hyper does; where hyper would fail, the scan stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunk {
    /// The next state after `byte`; `None` where hyper refuses the body, `Some(None)` at its end.
    fn step(self, byte: u8) -> Option<Option<Chunk>> {
        let hex = |size: u64| {
            let digit = (byte as char).to_digit(16)?;
            size.checked_mul(16)?.checked_add(u64::from(digit))
        };
        let next = match (self, byte) {
            (Chunk::Start, _) => Chunk::Size(hex(0)?),
            (Chunk::Size(n), b' ' | b'\t') | (Chunk::SizeLws(n), b' ' | b'\t') => Chunk::SizeLws(n),
            (Chunk::Size(n) | Chunk::SizeLws(n), b';') => Chunk::Extension(n),
            (Chunk::Size(n) | Chunk::SizeLws(n) | Chunk::Extension(n), b'\r') => Chunk::SizeLf(n),
            (Chunk::Size(n), _) => Chunk::Size(hex(n)?),
            (Chunk::SizeLws(_), _) | (Chunk::Extension(_), b'\n') => return None,
            (Chunk::Extension(n), _) => Chunk::Extension(n),
            (Chunk::SizeLf(0), b'\n') => Chunk::EndCr,
            (Chunk::SizeLf(n), b'\n') => Chunk::Data(n),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => Chunk::Start,
            (Chunk::EndCr, b'\r') => Chunk::EndLf,
            (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
            (Chunk::EndCr | Chunk::Trailer, _) => Chunk::Trailer,
            (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
            (Chunk::EndLf, b'\n') => return Some(None),
            _ => return None,
        };
        Some(Some(next))
    }
}

/// Per-connection scan state. The common case — a head within one read — is parsed in place;
/// only a head split across reads is gathered in `partial` (bounded by hyper's own buffer).
#[derive(Debug)]
pub(super) struct Scan {
    shared: Arc<FramingScan>,
    place: Place,
    /// Heads completed so far: the index of the next one.
    heads: u64,
    partial: Vec<u8>,
    max_head: usize,
}

/// The header limit hyper parses with (`http1_builder`'s `max_headers`): a head with more is
/// refused by both.
pub(crate) const MAX_HEADERS: usize = 256;

impl Scan {
    pub(super) fn new(shared: Arc<FramingScan>, max_head: usize) -> Self {
        Self { shared, place: Place::Head, heads: 0, partial: Vec::new(), max_head }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.shared.upgraded.load(Ordering::Relaxed) {
                self.place = Place::Off;
                self.partial = Vec::new();
            }
            let used = match self.place {
                Place::Off => return,
                Place::Head => self.head(data),
                Place::Length(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let left = left - n as u64;
                    self.place = if left == 0 { Place::Head } else { Place::Length(left) };
                    n
                }
                Place::Chunked(state) => self.chunked(state, data),
            };
            data = data.get(used..).unwrap_or_default();
        }
    }

    /// Bytes of `data` that belong to the current head (all of them while it is incomplete).
    fn head(&mut self, data: &[u8]) -> usize {
        if self.partial.is_empty() {
            // Parsed in place; copied only when the head goes on in the next read.
            return match parse_head(data) {
                Parsed::Complete(len, head) => {
                    self.complete(head);
                    len
                }
                Parsed::Partial if data.len() < self.max_head => {
                    self.partial.extend_from_slice(data);
                    data.len()
                }
                Parsed::Partial | Parsed::Invalid => {
                    self.lose();
                    data.len()
                }
            };
        }
        let before = self.partial.len();
        // A head ends with an empty line: do not re-parse a trickle that cannot have ended it.
        let may_end = ends_a_head(&self.partial[before.saturating_sub(2)..], data);
        self.partial.extend_from_slice(data);
        if !may_end {
            if self.partial.len() >= self.max_head {
                self.lose();
            }
            return data.len();
        }
        let partial = std::mem::take(&mut self.partial);
        match parse_head(&partial) {
            // Every earlier chance to end was parsed as incomplete, so it ends within `data`.
            Parsed::Complete(len, head) if len > before => {
                self.complete(head);
                len - before
            }
            Parsed::Partial if partial.len() < self.max_head => {
                self.partial = partial;
                data.len()
            }
            Parsed::Complete(..) | Parsed::Partial | Parsed::Invalid => {
                self.lose();
                data.len()
            }
        }
    }

    fn complete(&mut self, head: Head) {
        let index = self.heads;
        self.heads += 1;
        if let Some(flaw) = head.flaw {
            self.shared.record(index, flaw);
        }
        self.place = head.body;
        if head.body == Place::Off {
            // Framing hyper refuses: that head ends the connection; anything after it is not
            // vouched for.
            self.shared.record(self.heads, RawHeadFlaw::Untracked);
        }
    }

    fn chunked(&mut self, mut state: Chunk, data: &[u8]) -> usize {
        let mut i = 0;
        while i < data.len() {
            if let Chunk::Data(left) = state {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len() - i);
                i += n;
                let left = left - n as u64;
                state = if left == 0 { Chunk::DataCr } else { Chunk::Data(left) };
                continue;
            }
            match state.step(data[i]) {
                Some(Some(next)) => state = next,
                Some(None) => {
                    self.place = Place::Head;
                    return i + 1;
                }
                None => {
                    // The request this body belongs to, if hyper has not handed it over yet
                    // (the bytes came with its head), is refused before anything is
                    // forwarded; every later one is not vouched for.
                    self.shared.record(self.heads.saturating_sub(1), RawHeadFlaw::MalformedBody);
                    self.lose();
                    return data.len();
                }
            }
            i += 1;
        }
        self.place = Place::Chunked(state);
        i
    }

    /// The scan no longer knows where the next head starts (on input hyper refuses too): the
    /// next request, should hyper dispatch one, is refused.
    fn lose(&mut self) {
        self.place = Place::Off;
        self.partial = Vec::new();
        self.shared.record(self.heads, RawHeadFlaw::Untracked);
    }
}

/// Whether an empty line (`\n\n` or `\n\r\n`) ends within `data`, read after `tail` (the
/// last bytes already seen of the head).
fn ends_a_head(tail: &[u8], data: &[u8]) -> bool {
    let (mut before_last, mut last) = (0u8, 0u8);
    for &b in tail {
        (before_last, last) = (last, b);
    }
    data.iter().any(|&b| {
        let ends = b == b'\n' && (last == b'\n' || (last == b'\r' && before_last == b'\n'));
        (before_last, last) = (last, b);
        ends
    })
}

/// What a complete head says about the bytes after it.
struct Head {
    flaw: Option<RawHeadFlaw>,
    /// Where the scan goes next: the body's framing as hyper reads it.
    body: Place,
}

enum Parsed {
    Complete(usize, Head),
    Partial,
    Invalid,
}

/// Parses one request head as hyper does (httparse, default config, [`MAX_HEADERS`]) and
/// reads its framing with hyper's rules (`proto/h1/role.rs`).
fn parse_head(bytes: &[u8]) -> Parsed {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len =
        match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut request, bytes, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::Invalid,
        };
    let mut flaw = request.path.is_some_and(|p| p.contains('#')).then_some(RawHeadFlaw::Fragment);
    // In header order, as hyper reads them: a length after a Transfer-Encoding is ignored, an
    // invalid or second different one before it is refused.
    let (mut te, mut last_te_chunked, mut has_cl, mut cl, mut refused) = (false, false, false, None::<u64>, false);
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            last_te_chunked = is_chunked(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            has_cl = true;
            if te {
                continue;
            }
            match (from_digits(h.value), cl) {
                (Some(n), None) => cl = Some(n),
                (Some(n), Some(prev)) if n == prev => {}
                _ => refused = true,
            }
        }
    }
    if te && has_cl {
        flaw = Some(RawHeadFlaw::AmbiguousFraming);
    }
    let body = match (te, cl) {
        _ if refused => Place::Off,
        (true, _) if request.version == Some(0) || !last_te_chunked => Place::Off,
        (true, _) => Place::Chunked(Chunk::Start),
        (false, Some(n)) if n > u64::MAX - 2 => Place::Off,
        (false, Some(0) | None) => Place::Head,
        (false, Some(n)) => Place::Length(n),
    };
    Parsed::Complete(len, Head { flaw, body })
}

/// hyper's `is_chunked_`: the last coding of a visible-ASCII value is `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    let visible = value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    visible
        && std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// hyper's `from_digits`: ASCII digits only, no sign, no overflow.
fn from_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

#[cfg(test)]
mod tests;
