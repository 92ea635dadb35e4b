//! HTTP/2 header blocks checked beside h2: RFC 9113 §4.3 makes every HPACK decoding error a
//! connection error of type `COMPRESSION_ERROR`, but h2 (0.4, `codec/framed_read.rs`, the
//! `Err(e) => … library_go_away(Reason::PROTOCOL_ERROR)` arms after `load_hpack`) reports
//! them as `PROTOCOL_ERROR`, with no option to change it. So the client's frames are followed
//! here as they are read, each complete header block is checked with [`Checker`], and once
//! one fails to decode, the GOAWAY h2 then writes carries `COMPRESSION_ERROR` instead.
//!
//! Only that one code of that one frame is ever changed, and only on a connection whose
//! client sent a block that does not decode; everything else passes through untouched.

use super::hpack::Checker;

/// The client connection preface, skipped before the first frame.
const PREFACE_LEN: usize = 24;
/// A header block larger than this is not followed (h2 refuses far smaller ones).
const MAX_BLOCK: usize = 256 * 1024;

const DATA_HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const GOAWAY: u8 = 0x7;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const PROTOCOL_ERROR: u8 = 0x1;
const COMPRESSION_ERROR: u8 = 0x9;

/// Frame boundaries in one direction of the byte stream.
#[derive(Debug, Default, Clone)]
struct Frames {
    head: [u8; 9],
    /// Bytes of `head` filled; 9 while in the payload.
    filled: usize,
    /// Payload bytes already passed.
    at: usize,
}

impl Frames {
    fn len(&self) -> usize {
        usize::from(self.head[0]) << 16 | usize::from(self.head[1]) << 8 | usize::from(self.head[2])
    }

    fn kind(&self) -> u8 {
        self.head[3]
    }

    fn flags(&self) -> u8 {
        self.head[4]
    }

    /// Takes up to one frame-header or payload part from `data`: how many bytes it used, and
    /// the payload part (with its offset in the payload) when it was one.
    fn step<'a>(&mut self, data: &'a [u8]) -> (usize, Option<(usize, &'a [u8])>) {
        if self.filled < 9 {
            let n = (9 - self.filled).min(data.len());
            self.head[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            self.at = 0;
            return (n, None);
        }
        let n = (self.len() - self.at).min(data.len());
        let part = (self.at, &data[..n]);
        self.at += n;
        (n, Some(part))
    }

    /// After `step`: whether the frame is complete (its payload passed).
    fn ended(&mut self) -> bool {
        if self.filled == 9 && self.at == self.len() {
            self.filled = 0;
            return true;
        }
        false
    }
}

/// Both directions of one HTTP/2 connection.
#[derive(Debug)]
pub(super) struct H2Watch {
    skip: usize,
    inbound: Frames,
    /// The current HEADERS or CONTINUATION frame's payload, then the block being gathered.
    frame: Vec<u8>,
    block: Vec<u8>,
    checker: Checker,
    /// A block did not decode: the next `PROTOCOL_ERROR` GOAWAY becomes `COMPRESSION_ERROR`.
    failed: bool,
    /// Stopped following the client (a block too large to follow).
    lost: bool,
    outbound: Frames,
    /// The GOAWAY being written: error code bytes 0–2 were zero.
    code_high_zero: bool,
}

impl H2Watch {
    pub(super) fn new() -> Self {
        Self {
            skip: PREFACE_LEN,
            inbound: Frames::default(),
            frame: Vec::new(),
            block: Vec::new(),
            checker: Checker::default(),
            failed: false,
            lost: false,
            outbound: Frames::default(),
            code_high_zero: false,
        }
    }

    /// Bytes read from the client.
    pub(super) fn read(&mut self, mut data: &[u8]) {
        let skipped = self.skip.min(data.len());
        self.skip -= skipped;
        data = &data[skipped..];
        while !data.is_empty() && !self.lost && !self.failed {
            let (used, part) = self.inbound.step(data);
            data = &data[used..];
            let kind = self.inbound.kind();
            if let Some((_, part)) = part.filter(|_| kind == DATA_HEADERS || kind == CONTINUATION) {
                self.frame.extend_from_slice(part);
            }
            if self.inbound.ended() && (kind == DATA_HEADERS || kind == CONTINUATION) {
                self.header_frame(kind, self.inbound.flags());
            }
        }
    }

    fn header_frame(&mut self, kind: u8, flags: u8) {
        let payload = std::mem::take(&mut self.frame);
        let fragment = if kind == DATA_HEADERS { fragment(&payload, flags) } else { Some(&payload[..]) };
        match fragment {
            Some(fragment) if self.block.len() + fragment.len() <= MAX_BLOCK => {
                self.block.extend_from_slice(fragment);
            }
            // Bad padding (h2's own PROTOCOL_ERROR) or too large to follow.
            _ => {
                self.lost = true;
                return;
            }
        }
        self.frame = payload;
        self.frame.clear();
        if flags & END_HEADERS != 0 {
            self.failed = self.checker.block(&self.block).is_err();
            self.block.clear();
            if self.block.capacity() > 16 * 1024 {
                self.block = Vec::new();
            }
        }
    }

    /// Whether a write must go through [`H2Watch::written`]'s rewrite (a block failed).
    pub(super) fn rewriting(&self) -> bool {
        self.failed
    }

    /// Bytes about to be written to the client: turns a GOAWAY's `PROTOCOL_ERROR` in them
    /// into `COMPRESSION_ERROR`. Call [`H2Watch::wrote`] with what the socket then took.
    pub(super) fn patch(&self, data: &mut [u8]) {
        let mut frames = self.outbound.clone();
        let mut high_zero = self.code_high_zero;
        let mut pos = 0;
        while pos < data.len() {
            let (used, offset) = {
                let (used, part) = frames.step(&data[pos..]);
                (used, part.map(|(offset, _)| offset))
            };
            if let Some(offset) = offset.filter(|_| frames.kind() == GOAWAY) {
                for (i, byte) in data[pos..pos + used].iter_mut().enumerate() {
                    match offset + i {
                        4 => high_zero = *byte == 0,
                        5 | 6 => high_zero &= *byte == 0,
                        // The error code's lowest byte.
                        7 if high_zero && *byte == PROTOCOL_ERROR => *byte = COMPRESSION_ERROR,
                        _ => {}
                    }
                }
            }
            frames.ended();
            pos += used;
        }
    }

    /// `data` went out: follows the server's frames over it.
    pub(super) fn wrote(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (used, part) = self.outbound.step(data);
            if let Some((offset, part)) = part
                && self.outbound.kind() == GOAWAY
            {
                for (i, b) in part.iter().enumerate() {
                    match offset + i {
                        4 => self.code_high_zero = *b == 0,
                        5 | 6 => self.code_high_zero &= *b == 0,
                        _ => {}
                    }
                }
            }
            self.outbound.ended();
            data = &data[used..];
        }
    }
}

/// A HEADERS payload's header block fragment: without the pad length, priority and padding.
fn fragment(payload: &[u8], flags: u8) -> Option<&[u8]> {
    let (pad, mut rest) = if flags & PADDED != 0 {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    if flags & PRIORITY != 0 {
        rest = rest.get(5..)?;
    }
    rest.get(..rest.len().checked_sub(pad)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap_or_default().to_be_bytes();
        let mut out = vec![len[1], len[2], len[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn goaway(code: u8) -> Vec<u8> {
        frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, code])
    }

    /// Feeds the client's bytes, then writes `out` through the watch in `piece`-byte writes.
    fn run(client: &[u8], out: &[u8], piece: usize) -> Vec<u8> {
        let mut watch = H2Watch::new();
        for part in client.chunks(piece) {
            watch.read(part);
        }
        let mut sent = Vec::new();
        for part in out.chunks(piece) {
            let mut part = part.to_vec();
            if watch.rewriting() {
                watch.patch(&mut part);
            }
            watch.wrote(&part);
            sent.extend(part);
        }
        sent
    }

    fn client(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 0, &[]));
        for b in blocks {
            bytes.extend(b);
        }
        bytes
    }

    #[test]
    fn a_block_that_does_not_decode_turns_the_goaway_into_compression_error() {
        let bad = client(&[frame(DATA_HEADERS, END_HEADERS | PADDED, 1, &[2, 0x82, 0x80, 0, 0])]);
        let mut out = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        out.extend(goaway(PROTOCOL_ERROR));
        for piece in [1, 2, 5, 64] {
            let sent = run(&bad, &out, piece);
            assert_eq!(sent[sent.len() - 1], COMPRESSION_ERROR, "{piece}");
            assert_eq!(sent[..sent.len() - 1], out[..out.len() - 1]);
        }
    }

    #[test]
    fn good_blocks_and_other_codes_pass_untouched() {
        // A block split over HEADERS and CONTINUATION, with priority.
        let good = client(&[
            frame(DATA_HEADERS, PRIORITY, 1, &[0, 0, 0, 0, 16, 0x82]),
            frame(CONTINUATION, END_HEADERS, 1, &[0x86, 0x84]),
        ]);
        let out = goaway(PROTOCOL_ERROR);
        assert_eq!(run(&good, &out, 3), out);
        let bad = client(&[frame(DATA_HEADERS, END_HEADERS, 1, &[0x80])]);
        let calm = goaway(0xb);
        assert_eq!(run(&bad, &calm, 3), calm);
    }
}
