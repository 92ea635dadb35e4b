//! The HTTP/1.1 request codec (`portcullis_proxy::h1`) over any bytes taken as one client
//! connection's stream: never a panic, and the same requests, bodies and refusal whichever way
//! the stream is split into reads — a head or a chunk split across reads must not parse
//! differently from one read whole (the byte-at-a-time split is the extreme). Where both
//! refuse the same request, the refusal may differ only in whether the flaw was seen with
//! the head (`MalformedBody`) or once the body was read (`Broken`): how much of a body came
//! with its head is up to the client.

use portcullis_proxy::h1::replay::{BodyOutcome, Event, replay};

/// The largest head the listener accepts with the default limits (`server::h1_buf_size`).
pub(crate) const MAX_HEAD: usize = 16 * 1024 + 8 * 1024 + 1024;

/// Runs `data` whole and split; returns the whole run's events. Panics when they differ.
pub(crate) fn run(data: &[u8]) -> Vec<Event> {
    let whole = replay(data, MAX_HEAD, data.len().max(1));
    for piece in [1, 7, 512] {
        let split = replay(data, MAX_HEAD, piece);
        assert_eq!(normalise(&split), normalise(&whole), "split into {piece}-byte reads");
    }
    for event in &whole {
        if let Event::Request(request) = event
            && let BodyOutcome::Complete { data: body, .. } = &request.body
        {
            assert!(body.len() <= data.len(), "a body longer than the stream");
        }
    }
    whole
}

/// A flaw found in the body's first bytes and a body broken later are the same refusal.
fn normalise(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .cloned()
        .map(|event| match event {
            Event::Request(mut request) if request.flaw == Some(portcullis_core::stage::RawHeadFlaw::MalformedBody) => {
                request.flaw = None;
                request.body = BodyOutcome::Broken;
                Event::Request(request)
            }
            other => other,
        })
        .collect()
}
