//! A whole client byte stream run through the codec as one connection would run it: heads
//! parsed from what has been read so far, each body framed to its end, the connection closed
//! where the codec (or the gateway's flaw check) refuses or the request does not keep it
//! alive. What the differential test compares with hyper's server, and what the fuzz target
//! and the proptest drive. Pure: no sockets, no clock.

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use portcullis_core::stage::RawHeadFlaw;

use super::chunked::{ChunkedDecoder, Decoded};
use super::head::{self, Framing, MAX_HEADERS};

/// One request of the stream, as a listener would hand it to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub flaw: Option<RawHeadFlaw>,
    pub body: BodyOutcome,
}

/// What became of a request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Refused by its head's flaw: never read.
    Unread,
    /// Read to its end.
    Complete { data: Vec<u8>, trailers: Option<HeaderMap> },
    /// The stream ended early or broke the framing: the connection closes.
    Broken,
}

/// What happened on the connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Request(Dispatched),
    /// The codec answered this status itself and closed.
    Refused(StatusCode),
}

/// Runs `input` arriving in reads of at most `piece` bytes (the client then half-closes).
/// `max_head`: the largest head accepted (bytes buffered before it completes).
pub fn replay(input: &[u8], max_head: usize, piece: usize) -> Vec<Event> {
    let mut reader = Reader { input, at: 0, piece: piece.max(1) };
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    loop {
        let head = loop {
            if !buf.is_empty() {
                match head::parse(&mut buf, max_head) {
                    Ok(Some(head)) => break Some(head),
                    Ok(None) => {}
                    Err(e) => {
                        events.push(Event::Refused(e.status()));
                        return events;
                    }
                }
            }
            if !reader.read(&mut buf) {
                // The client's end, between requests or within a head: closed, unanswered.
                break None;
            }
        };
        let Some(head) = head else { return events };
        let mut flaw = head.flaw;
        if flaw.is_none() && head.framing == Framing::Chunked && head::body_already_malformed(&buf) {
            flaw = Some(RawHeadFlaw::MalformedBody);
        }
        let body = if flaw.is_some() { BodyOutcome::Unread } else { read_body(head.framing, &mut buf, &mut reader) };
        let parts = head.parts;
        let stop = flaw.is_some() || body == BodyOutcome::Broken || !head.keep_alive;
        events.push(Event::Request(Dispatched {
            method: parts.method,
            uri: parts.uri.to_string(),
            version: parts.version,
            headers: parts
                .headers
                .into_iter()
                .scan(None, |name, (n, v)| {
                    if n.is_some() {
                        *name = n;
                    }
                    Some((name.clone()?, v))
                })
                .collect(),
            flaw,
            body,
        }));
        if stop {
            return events;
        }
    }
}

fn read_body(framing: Framing, buf: &mut BytesMut, reader: &mut Reader<'_>) -> BodyOutcome {
    match framing {
        Framing::Empty => BodyOutcome::Complete { data: Vec::new(), trailers: None },
        Framing::Length(n) => {
            let mut data = Vec::new();
            let mut left = n;
            loop {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                data.extend_from_slice(&buf.split_to(take));
                left -= take as u64;
                if left == 0 {
                    return BodyOutcome::Complete { data, trailers: None };
                }
                if !reader.read(buf) {
                    return BodyOutcome::Broken;
                }
            }
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new(MAX_HEADERS);
            let mut data = Vec::new();
            loop {
                match decoder.decode(buf) {
                    Ok(Decoded::Data(bytes)) => data.extend_from_slice(&bytes),
                    Ok(Decoded::End(trailers)) => return BodyOutcome::Complete { data, trailers },
                    Ok(Decoded::NeedMore) if reader.read(buf) => {}
                    Ok(Decoded::NeedMore) | Err(_) => return BodyOutcome::Broken,
                }
            }
        }
    }
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
    piece: usize,
}

impl Reader<'_> {
    /// Appends the next read; `false` at the end of the stream.
    fn read(&mut self, buf: &mut BytesMut) -> bool {
        let end = (self.at + self.piece).min(self.input.len());
        if end == self.at {
            return false;
        }
        buf.extend_from_slice(&self.input[self.at..end]);
        self.at = end;
        true
    }
}
