//! An HPACK (RFC 7541) checker that follows a connection's header blocks as the h2 crate
//! decodes them — same integer limit, same table sizes, same index rules — but keeps only the
//! dynamic table's entry sizes, not the fields. It answers one question: would this block
//! fail to decode? (h2 ends such a connection with `PROTOCOL_ERROR` where RFC 9113 §4.3 asks
//! for `COMPRESSION_ERROR`; see [`super::h2_watch`].)

use std::collections::VecDeque;

/// `SETTINGS_HEADER_TABLE_SIZE` as the gateway advertises it (h2's default; hyper does not
/// change it): the largest table size update a client may send.
const ADVERTISED_TABLE_SIZE: usize = 4096;
/// h2's integer limit: the prefix byte and at most four more.
const MAX_INT_BYTES: usize = 5;
/// Per-entry overhead (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Name lengths of the static table (RFC 7541 Appendix A), index 1 first.
const STATIC_NAME_LENS: [u8; 61] = [
    10, 7, 7, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 14, 15, 15, 13, 6, 27, 3, 5, 13, 13, 19, 16, 16, 14, 16, 13, 12, 6, 4,
    4, 6, 7, 4, 4, 8, 17, 13, 8, 19, 13, 4, 8, 12, 18, 19, 5, 7, 7, 11, 6, 10, 25, 17, 10, 4, 3, 16,
];

/// A block did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DecodingError;

type Result<T> = std::result::Result<T, DecodingError>;

/// The decoder's state across the blocks of one connection.
#[derive(Debug)]
pub(super) struct Checker {
    /// Newest first: (name length, entry size).
    entries: VecDeque<(usize, usize)>,
    size: usize,
    max_size: usize,
}

impl Default for Checker {
    fn default() -> Self {
        Self { entries: VecDeque::new(), size: 0, max_size: ADVERTISED_TABLE_SIZE }
    }
}

impl Checker {
    /// Checks one complete header block, updating the table as the decoder would.
    pub(super) fn block(&mut self, mut src: &[u8]) -> Result<()> {
        let mut can_resize = true;
        while let Some(&first) = src.first() {
            if first & 0x80 != 0 {
                can_resize = false;
                let index = int(&mut src, 7)?;
                self.name_len(index)?;
            } else if first & 0x40 != 0 {
                can_resize = false;
                let (name, value) = self.literal(&mut src, 6)?;
                self.insert(name, name + value + ENTRY_OVERHEAD);
            } else if first & 0xe0 == 0x20 {
                if !can_resize {
                    return Err(DecodingError);
                }
                let size = int(&mut src, 5)?;
                if size > ADVERTISED_TABLE_SIZE {
                    return Err(DecodingError);
                }
                self.max_size = size;
                self.evict(0);
            } else {
                can_resize = false;
                self.literal(&mut src, 4)?;
            }
        }
        Ok(())
    }

    /// A literal's name and value lengths (decoded).
    fn literal(&self, src: &mut &[u8], prefix: u8) -> Result<(usize, usize)> {
        let index = int(src, prefix)?;
        let name = if index == 0 { string(src)? } else { self.name_len(index)? };
        Ok((name, string(src)?))
    }

    fn name_len(&self, index: usize) -> Result<usize> {
        match index {
            0 => Err(DecodingError),
            1..=61 => Ok(usize::from(STATIC_NAME_LENS[index - 1])),
            _ => self.entries.get(index - 62).map(|(name, _)| *name).ok_or(DecodingError),
        }
    }

    fn insert(&mut self, name: usize, size: usize) {
        self.evict(size);
        if self.size + size <= self.max_size {
            self.size += size;
            self.entries.push_front((name, size));
        }
    }

    /// Evicts the oldest entries until `room` more bytes fit (all of them if it cannot).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((_, size)) = self.entries.pop_back() else { return };
            self.size -= size;
        }
    }
}

/// An integer with an N-bit prefix (RFC 7541 §5.1), as h2 bounds it.
fn int(src: &mut &[u8], prefix: u8) -> Result<usize> {
    let mask = (1u8 << prefix) - 1;
    let (&first, rest) = src.split_first().ok_or(DecodingError)?;
    *src = rest;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    let mut shift = 0;
    for used in 2..=MAX_INT_BYTES {
        let (&b, rest) = src.split_first().ok_or(DecodingError)?;
        *src = rest;
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
        if used == MAX_INT_BYTES {
            break;
        }
    }
    Err(DecodingError)
}

/// A string literal (RFC 7541 §5.2): its decoded length.
fn string(src: &mut &[u8]) -> Result<usize> {
    let huffman = src.first().ok_or(DecodingError)? & 0x80 != 0;
    let len = int(src, 7)?;
    let bytes = src.get(..len).ok_or(DecodingError)?;
    *src = &src[len..];
    if huffman { huffman_len(bytes) } else { Ok(len) }
}

/// Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols 0–255 then EOS. The
/// code is canonical, so the lengths alone define it.
const CODE_LENS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12,
    10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
    5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22,
    22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20,
    22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28,
    27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28,
    27, 27, 27, 27, 27, 26, 30,
];
const MAX_CODE_LEN: usize = 30;
const EOS: u16 = 256;

/// Codes per length, and the symbols in canonical order (by length, then value).
struct Canonical {
    count: [u16; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = {
    let mut count = [0u16; MAX_CODE_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[CODE_LENS[i] as usize] += 1;
        i += 1;
    }
    let mut symbols = [0u16; 257];
    let (mut n, mut len) = (0, 1);
    while len <= MAX_CODE_LEN {
        let mut sym = 0;
        while sym < 257 {
            if CODE_LENS[sym] as usize == len {
                symbols[n] = sym as u16;
                n += 1;
            }
            sym += 1;
        }
        len += 1;
    }
    Canonical { count, symbols }
};

/// The decoded length of a Huffman string; an error for the EOS symbol, or padding that is
/// longer than 7 bits or not all ones (RFC 7541 §5.2).
fn huffman_len(bytes: &[u8]) -> Result<usize> {
    let (mut decoded, mut code, mut first, mut index, mut len) = (0usize, 0u32, 0u32, 0usize, 0usize);
    let mut ones = true;
    for &byte in bytes {
        for shift in (0..8).rev() {
            let bit = u32::from(byte >> shift & 1);
            code |= bit;
            ones &= bit == 1;
            len += 1;
            let count = u32::from(CANONICAL.count[len]);
            if code < first + count {
                if CANONICAL.symbols[index + (code - first) as usize] == EOS {
                    return Err(DecodingError);
                }
                decoded += 1;
                (code, first, index, len, ones) = (0, 0, 0, 0, true);
                continue;
            }
            if len == MAX_CODE_LEN {
                return Err(DecodingError);
            }
            index += count as usize;
            first = (first + count) << 1;
            code <<= 1;
        }
    }
    if len > 7 || !ones {
        return Err(DecodingError);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7541_examples_decode_and_fill_the_table() {
        // C.4.1–C.4.3: three requests with Huffman coding, sharing the dynamic table.
        let mut checker = Checker::default();
        let blocks: [&[u8]; 3] = [
            &[0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff],
            &[0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf],
            &[
                0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f, 0x89, 0x25, 0xa8,
                0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
            ],
        ];
        for block in blocks {
            assert_eq!(checker.block(block), Ok(()));
        }
        // RFC 7541 C.4.3: the table then holds 164 bytes in three entries.
        assert_eq!((checker.entries.len(), checker.size), (3, 164));
        assert_eq!(huffman_len(&[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]), Ok(15));
    }

    #[test]
    fn decoding_errors_are_found() {
        for bad in [
            &[0x3f, 0xe2, 0x1f][..],               // size update above 4096
            &[0x82, 0x3f, 0x01],                   // size update after a field
            &[0x80],                               // index 0
            &[0xbe],                               // index 62 with an empty table
            &[0x00, 0x82, 0xff, 0xff, 0x01, b'x'], // padding over 7 bits
            &[0x00, 0x81, 0x00, 0x01, b'x'],       // padding not ones
            &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff], // EOS
            &[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0x00, 0x05, b'a'],
        ] {
            assert_eq!(Checker::default().block(bad), Err(DecodingError), "{bad:x?}");
        }
        assert_eq!(Checker::default().block(&[0x3f, 0xe1, 0x1f, 0x82]), Ok(()), "4096 itself is allowed");
    }

    #[test]
    fn any_bytes_are_checked_without_panicking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut checker = Checker::default();
        for len in 0..4000usize {
            let block: Vec<u8> = (0..len % 64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = checker.block(&block);
            assert!(checker.size <= checker.max_size);
        }
    }
}
