//! The `chunked` transfer coding (RFC 9112 §7.1), decoded from a buffer the caller fills:
//! byte for byte the grammar hyper's decoder accepts (`proto/h1/decode.rs`), so the framing of
//! a connection moved off hyper does not change — the same chunk-size syntax (hex digits, no
//! sign, no overflow, whitespace only before `;` or CR), extensions up to 16 KiB and without a
//! bare LF, CRLF after every chunk, trailers bounded in count and bytes. Used for request bodies
//! here and reusable for response bodies: it knows nothing about sockets.

use bytes::{Buf as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Bytes of chunk extensions a body may carry in total (hyper's `CHUNKED_EXTENSIONS_LIMIT`).
pub const MAX_EXTENSION_BYTES: u64 = 16 * 1024;
/// Bytes of trailer section a body may carry (hyper's `TRAILER_LIMIT`).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// What one call to [`ChunkedDecoder::decode`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes, split off the front of the buffer without a copy.
    Data(Bytes),
    /// The buffer holds nothing more to decode: read more into it and call again.
    NeedMore,
    /// The body ended (the last-chunk and its CRLF were consumed); trailers when it had any.
    /// Bytes after the end stay in the buffer (a pipelined request's head).
    End(Option<HeaderMap>),
}

/// Why a chunked body was refused; the connection cannot go on after any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("invalid chunk size line")]
    Size,
    #[error("chunk size overflows")]
    Overflow,
    #[error("invalid chunk extension")]
    Extension,
    #[error("chunk extensions over the limit")]
    ExtensionsTooLong,
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    #[error("invalid trailer section framing")]
    Trailers,
    #[error("invalid trailer field")]
    TrailerField,
    #[error("trailer section over the limit")]
    TrailersTooLarge,
}

impl ChunkedError {
    /// Whether the error is in the framing itself (sizes, CRLFs, line ends) rather than in a
    /// bound (extension or trailer bytes) or in the trailer fields' syntax.
    pub fn is_framing(self) -> bool {
        matches!(self, Self::Size | Self::Overflow | Self::Extension | Self::DataEnd | Self::Trailers)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

/// An incremental decoder of one chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk size being read, then the bytes of the chunk still to come.
    size: u64,
    extension_bytes: u64,
    trailers: Option<BytesMut>,
    trailer_lines: usize,
    max_trailers: usize,
}

impl ChunkedDecoder {
    /// `max_trailers`: trailer fields accepted (hyper uses its `max_headers`).
    pub fn new(max_trailers: usize) -> Self {
        Self { state: State::Start, size: 0, extension_bytes: 0, trailers: None, trailer_lines: 0, max_trailers }
    }

    /// Whether the body's end was decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from the front of `buf` and returns the next piece of the body. Data
    /// comes out as soon as any of the chunk is in `buf` (no waiting for the whole chunk).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkedError> {
        let mut used = 0;
        let result = loop {
            if self.state == State::Done {
                break Ok(Decoded::End(None));
            }
            if self.state == State::Data {
                let available = buf.len() - used;
                if available == 0 {
                    break Ok(Decoded::NeedMore);
                }
                let n = usize::try_from(self.size).unwrap_or(usize::MAX).min(available);
                buf.advance(used);
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                return Ok(Decoded::Data(super::take_bytes(buf, n)));
            }
            let Some(&byte) = buf.get(used) else { break Ok(Decoded::NeedMore) };
            used += 1;
            match self.step(byte) {
                Ok(true) => break self.finish_trailers().map(Decoded::End),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        buf.advance(used);
        result
    }

    /// One byte of framing; `Ok(true)` when it ended the body.
    fn step(&mut self, byte: u8) -> Result<bool, ChunkedError> {
        self.state = match (self.state, byte) {
            (State::Start, _) => {
                self.size = 0;
                self.hex(byte).ok_or(ChunkedError::Size)??;
                State::Size
            }
            (State::Size | State::SizeLws, b'\t' | b' ') => State::SizeLws,
            (State::Size | State::SizeLws, b';') => State::Extension,
            (State::Size | State::SizeLws | State::Extension, b'\r') => State::SizeLf,
            (State::Size, _) => {
                self.hex(byte).ok_or(ChunkedError::Size)??;
                State::Size
            }
            (State::SizeLws, _) => return Err(ChunkedError::Size),
            (State::Extension, b'\n') => return Err(ChunkedError::Extension),
            (State::Extension, _) => {
                self.extension_bytes += 1;
                if self.extension_bytes >= MAX_EXTENSION_BYTES {
                    return Err(ChunkedError::ExtensionsTooLong);
                }
                State::Extension
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::EndCr,
            (State::SizeLf, b'\n') => State::Data,
            (State::SizeLf, _) => return Err(ChunkedError::Size),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Start,
            (State::DataCr | State::DataLf, _) => return Err(ChunkedError::DataEnd),
            (State::EndCr, b'\r') => {
                self.put_trailer(byte, false)?;
                State::EndLf
            }
            (State::EndCr, _) => {
                self.put_trailer(byte, true)?;
                State::Trailer
            }
            (State::Trailer, _) => {
                self.put_trailer(byte, false)?;
                if byte == b'\r' { State::TrailerLf } else { State::Trailer }
            }
            (State::TrailerLf, b'\n') => {
                if self.trailer_lines >= self.max_trailers {
                    return Err(ChunkedError::TrailersTooLarge);
                }
                self.trailer_lines += 1;
                self.put_trailer(byte, false)?;
                State::EndCr
            }
            (State::TrailerLf, _) => return Err(ChunkedError::Trailers),
            (State::EndLf, b'\n') => {
                self.put_trailer(byte, false)?;
                self.state = State::Done;
                return Ok(true);
            }
            (State::EndLf, _) => return Err(ChunkedError::Trailers),
            // Data is taken in bulk by `decode`; Done never steps.
            (State::Data | State::Done, _) => return Err(ChunkedError::Size),
        };
        Ok(false)
    }

    /// Adds a hex digit to the size: `None` if `byte` is not one.
    fn hex(&mut self, byte: u8) -> Option<Result<(), ChunkedError>> {
        let digit = (byte as char).to_digit(16)?;
        Some(
            self.size
                .checked_mul(16)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .map(|n| self.size = n)
                .ok_or(ChunkedError::Overflow),
        )
    }

    /// Gathers the trailer section; `start`: the first byte of a trailer after the last chunk.
    fn put_trailer(&mut self, byte: u8, start: bool) -> Result<(), ChunkedError> {
        let buf = match (&mut self.trailers, start) {
            (Some(buf), _) => buf,
            (None, true) => self.trailers.insert(BytesMut::with_capacity(64)),
            // The CRLF that ends a body without trailers.
            (None, false) => return Ok(()),
        };
        buf.extend_from_slice(&[byte]);
        if buf.len() >= MAX_TRAILER_BYTES {
            return Err(ChunkedError::TrailersTooLarge);
        }
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<Option<HeaderMap>, ChunkedError> {
        let Some(raw) = self.trailers.take() else { return Ok(None) };
        let mut fields = vec![httparse::EMPTY_HEADER; self.trailer_lines];
        let Ok(httparse::Status::Complete((_, fields))) = httparse::parse_headers(&raw, &mut fields) else {
            return Err(ChunkedError::TrailerField);
        };
        let mut map = HeaderMap::with_capacity(fields.len());
        for field in fields.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| ChunkedError::TrailerField)?;
            let value = HeaderValue::from_bytes(field.value).map_err(|_| ChunkedError::TrailerField)?;
            map.append(name, value);
        }
        Ok(Some(map))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests {
    use super::*;

    /// The body, the trailers, what is left after the body.
    type Run = Result<(Vec<u8>, Option<HeaderMap>, Vec<u8>), ChunkedError>;

    /// Decodes `input` fed in pieces of `step` bytes.
    fn run(input: &[u8], step: usize) -> Run {
        let mut decoder = ChunkedDecoder::new(256);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End(trailers) => {
                    let mut rest = buf.to_vec();
                    rest.extend_from_slice(&input[fed..]);
                    return Ok((body, trailers, rest));
                }
                Decoded::NeedMore => {
                    assert!(fed < input.len(), "ran out of input");
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    fn every_split(input: &[u8]) -> Run {
        let whole = run(input, input.len().max(1));
        for step in 1..input.len().min(9) {
            assert_eq!(run(input, step), whole, "split every {step} bytes");
        }
        whole
    }

    #[test]
    fn decodes_chunks_and_leaves_the_next_request() {
        let (body, trailers, rest) = every_split(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /").unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(trailers, None);
        assert_eq!(rest, b"GET /");
    }

    #[test]
    fn reads_trailers() {
        let (body, trailers, rest) = every_split(b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Two: b\r\n\r\n").unwrap();
        assert_eq!(body, b"abc");
        let trailers = trailers.unwrap();
        assert_eq!(trailers["x-sum"], "1");
        assert_eq!(trailers["x-two"], "b");
        assert!(rest.is_empty());
    }

    #[test]
    fn size_syntax_as_hyper() {
        assert_eq!(every_split(b"A \t;x\r\n0123456789\r\n0\r\n\r\n").unwrap().0, b"0123456789");
        assert_eq!(every_split(b"+5\r\nhello\r\n0\r\n\r\n"), Err(ChunkedError::Size));
        assert_eq!(every_split(b"0x5\r\nhello\r\n0\r\n\r\n"), Err(ChunkedError::Size));
        assert_eq!(every_split(b"5 5\r\nhello\r\n0\r\n\r\n"), Err(ChunkedError::Size));
        assert_eq!(every_split(b"5\nhello\r\n0\r\n\r\n"), Err(ChunkedError::Size));
        assert_eq!(every_split(b"5\r\nhello\n0\r\n\r\n"), Err(ChunkedError::DataEnd));
        assert_eq!(every_split(b"5\r\nhelloX\r\n0\r\n\r\n"), Err(ChunkedError::DataEnd));
        assert_eq!(every_split(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), Err(ChunkedError::Extension));
        assert_eq!(every_split(b"10000000000000000\r\n"), Err(ChunkedError::Overflow));
        assert_eq!(every_split(b"0\r\n\r\r"), Err(ChunkedError::Trailers));
    }

    #[test]
    fn limits_extensions_and_trailers() {
        let mut long = b"1;".to_vec();
        long.resize(2 + MAX_EXTENSION_BYTES as usize, b'a');
        assert_eq!(run(&long, 4096), Err(ChunkedError::ExtensionsTooLong));
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..257 {
            trailers.extend_from_slice(b"A: b\r\n");
        }
        trailers.extend_from_slice(b"\r\n");
        assert_eq!(run(&trailers, 64), Err(ChunkedError::TrailersTooLarge));
        let mut big = b"0\r\nA: ".to_vec();
        big.resize(MAX_TRAILER_BYTES + 10, b'b');
        assert_eq!(run(&big, 1000), Err(ChunkedError::TrailersTooLarge));
        assert_eq!(run(b"0\r\nno colon\r\n\r\n", 3), Err(ChunkedError::TrailerField));
    }

    #[test]
    fn after_the_end_nothing_more_is_consumed() {
        let mut decoder = ChunkedDecoder::new(4);
        let mut buf = BytesMut::from(&b"0\r\n\r\nrest"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::End(None)));
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::End(None)));
        assert_eq!(&buf[..], b"rest");
    }
}
