//! The same client byte streams through the codec ([`replay`]) and through hyper's HTTP/1.1
//! server as the listener runs it today (its builder, `ConnIo` with the `FramingScan`): the
//! same requests dispatched with the same method, target, version, headers and flaw, the same
//! body bytes and trailers, and the same refusal status. The corpus: the end-to-end suite's
//! hostile requests plus pipelines, trailers, HTTP/1.0 and limits.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portcullis_core::snapshot::Limits;
use portcullis_core::stage::RawHeadFlaw;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::replay::{BodyOutcome, Dispatched, Event, replay};
use crate::conn_io::{Activity, ConnIo, FramingScan};
use crate::server::{h1_buf_size, http1_builder};

#[path = "../../../portcullis/tests/e2e/differential/corpus.rs"]
#[allow(dead_code, clippy::all)]
mod e2e_corpus;

/// A status no part of either engine answers with: what the test service answers.
const SERVED: u16 = 299;

/// The requests hyper's server dispatches for `input` and the status it refused with, if any.
async fn through_hyper(input: &[u8], limits: &Limits) -> Vec<Event> {
    let (mut client, server) = tokio::io::duplex(input.len() + 64 * 1024);
    let framing = FramingScan::new();
    let io = ConnIo::new(server, Bytes::new(), Activity::new(), Some(framing.clone()), h1_buf_size(limits));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let seen = seen.clone();
        service_fn(move |request: Request<Incoming>| {
            let flaw = framing.dispatched();
            let seen = seen.clone();
            async move {
                let (parts, body) = request.into_parts();
                let outcome = if flaw.is_some() {
                    BodyOutcome::Unread
                } else {
                    match body.collect().await {
                        Ok(collected) => {
                            let trailers = collected.trailers().cloned();
                            BodyOutcome::Complete { data: collected.to_bytes().to_vec(), trailers }
                        }
                        Err(_) => BodyOutcome::Broken,
                    }
                };
                seen.lock().unwrap().push(Dispatched {
                    method: parts.method,
                    uri: parts.uri.to_string(),
                    version: parts.version,
                    headers: flatten(parts.headers),
                    flaw,
                    body: outcome,
                });
                let mut response = Response::new(Empty::<Bytes>::new());
                *response.status_mut() = StatusCode::from_u16(SERVED).unwrap();
                if flaw.is_some() {
                    // The gateway refuses a flawed head and closes.
                    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = http1_builder(limits).serve_connection(TokioIo::new(io), service).with_upgrades();
    let serving = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
    });
    client.write_all(input).await.unwrap();
    client.shutdown().await.unwrap();
    let mut output = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut output)).await;
    serving.await.unwrap();
    let mut events: Vec<Event> = seen.lock().unwrap().drain(..).map(Event::Request).collect();
    if let Some(status) = statuses(&output).into_iter().find(|s| s.as_u16() != SERVED && !s.is_informational()) {
        events.push(Event::Refused(status));
    }
    events
}

fn flatten(headers: HeaderMap) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut last = None;
    headers
        .into_iter()
        .map(|(name, value)| {
            if let Some(name) = name {
                last = Some(name);
            }
            (last.clone().expect("the first entry is named"), value)
        })
        .collect()
}

/// The statuses of the response heads in `output` (bodies skipped by their length).
fn statuses(mut output: &[u8]) -> Vec<StatusCode> {
    let mut found = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = response.parse(output) else { return found };
        let Some(status) = response.code.and_then(|c| StatusCode::from_u16(c).ok()) else { return found };
        let body = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        found.push(status);
        output = output.get(len + body..).unwrap_or_default();
    }
}

/// The codec's events, the same for every way the stream may be split into reads that
/// leave a head's first read whole (hyper reads 8 KiB at first).
fn through_codec(input: &[u8], limits: &Limits) -> Vec<Event> {
    replay(input, h1_buf_size(limits), 8192)
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = e2e_corpus::CORPUS
        .iter()
        .map(|case| {
            let text = case.bytes.to_vec();
            let text = replace(&text, b"{M}", b"m1");
            (case.name.to_string(), replace(&text, b"{BIG}", &vec![b'a'; 64 * 1024]))
        })
        .collect();
    let extra: &[(&str, &[u8])] = &[
        ("pipelined-bodies", b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("pipelined-then-flaw", b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b#x HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("pipelined-then-refused", b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n"),
        ("leading-crlf", b"\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("http10-close", b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n"),
        ("http10-keep-alive", b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"),
        ("http10-body", b"POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"),
        ("connection-close-then-more", b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("close-then-keep-alive", b"GET /a HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        ("expect-continue", b"PUT /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"),
        ("cl-zero", b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        ("cl-repeated-same", b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\n\r\n"),
        ("cl-max", b"POST /a HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"),
        ("cl-short-body", b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
        ("chunked-short-body", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
        ("chunked-mixed-case", b"POST /a HTTP/1.1\r\nTransfer-Encoding: ChUnKeD\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        ("chunk-ext-quoted", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"b;c\"\r\nhi\r\n0;z\r\n\r\n"),
        ("chunk-size-space", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \t \r\nhi\r\n0\r\n\r\n"),
        ("chunk-size-leading-space", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nhi\r\n0\r\n\r\n"),
        ("chunk-size-upper-hex", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"),
        ("chunk-size-leading-zeros", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000000000002\r\nhi\r\n0\r\n\r\n"),
        ("trailer-bare-lf", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\nY: 2\r\n\r\n"),
        ("trailer-invalid", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n"),
        ("te-cl-after", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        ("te-empty", b"POST /a HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"),
        ("te-chunked-comma", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n"),
        ("te-tab-chunked", b"POST /a HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"),
        ("te-obs-text", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\xff\r\n\r\n0\r\n\r\n"),
        ("value-obs-text", b"GET /a HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"),
        ("value-del", b"GET /a HTTP/1.1\r\nX: a\x7fb\r\n\r\n"),
        ("value-tab", b"GET /a HTTP/1.1\r\nX:\ta\tb\t\r\n\r\n"),
        ("value-empty", b"GET /a HTTP/1.1\r\nX:\r\n\r\n"),
        ("bare-lf-everywhere", b"GET /a HTTP/1.1\nHost: t\n\n"),
        ("bare-lf-in-body-framing", b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\n0\r\n\r\n"),
        ("upgrade-websocket", b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        ("absolute-form", b"GET http://t/a?b HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("authority-form", b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n"),
        ("options-star", b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("method-extension", b"PURGE /a HTTP/1.1\r\n\r\n"),
        ("partial-head-at-eof", b"GET /a HTTP/1.1\r\nHost: t\r\n"),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        ("empty", b""),
    ];
    cases.extend(extra.iter().map(|(name, bytes)| (name.to_string(), bytes.to_vec())));
    // Limits: the largest head accepted and one byte more; many fields.
    let limits = Limits::default();
    let max = h1_buf_size(&limits);
    for len in [max - 1, max] {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(len - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        cases.push((format!("head-{len}-bytes"), head));
    }
    for count in [MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 1] {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..count {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        cases.push((format!("{count}-fields"), head));
    }
    cases
}

const MAX_FIELDS: usize = super::head::MAX_HEADERS;

fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

#[tokio::test]
async fn the_codec_decides_as_hyper_and_the_framing_scan() {
    let limits = Limits::default();
    let mut differ = Vec::new();
    let mut refused = 0;
    let mut flawed = 0;
    for (name, input) in corpus() {
        let hyper = through_hyper(&input, &limits).await;
        let codec = through_codec(&input, &limits);
        if hyper != codec {
            let short = |events: &[Event]| {
                let text = format!("{events:?}");
                text.chars().take(600).collect::<String>()
            };
            differ.push(format!("{name}:\n  hyper: {}\n  codec: {}", short(&hyper), short(&codec)));
        }
        refused += usize::from(codec.iter().any(|e| matches!(e, Event::Refused(_))));
        flawed += usize::from(codec.iter().any(|e| matches!(e, Event::Request(d) if d.flaw.is_some())));
    }
    assert!(differ.is_empty(), "{} streams differ:\n{}", differ.len(), differ.join("\n"));
    // The corpus exercises both kinds of refusal (a broken harness would see none).
    assert!(refused >= 20 && flawed >= 5, "refused {refused}, flawed {flawed}");
}

#[tokio::test]
async fn every_smuggling_shape_is_refused_or_framed_alike() {
    // CL.TE and TE.CL: the request is flagged and nothing after it is dispatched.
    let limits = Limits::default();
    for name in ["cl-te", "te-cl"] {
        let (_, input) = corpus().into_iter().find(|(n, _)| n == name).unwrap();
        let events = through_codec(&input, &limits);
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert!(
            matches!(&events[0], Event::Request(d) if d.flaw == Some(RawHeadFlaw::AmbiguousFraming)),
            "{name}: {events:?}"
        );
        assert_eq!(through_hyper(&input, &limits).await, events, "{name}");
    }
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_by_both_with_431() {
    // hyper's bound is its read buffer's capacity, which may round past `h1_buf_size`: a head
    // just over it is then dispatched, and the request-limits stage answers it 431 (its
    // fields are over `max_header_bytes`). The codec's bound is exact.
    let limits = Limits::default();
    let max = h1_buf_size(&limits);
    for len in [max + 1, max + 100, 2 * max] {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(len - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(through_codec(&head, &limits), [Event::Refused(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)]);
        match through_hyper(&head, &limits).await.as_slice() {
            [Event::Refused(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)] => {}
            [Event::Request(request)] => {
                let bytes: usize = request.headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
                assert!(bytes as u64 > limits.max_header_bytes, "{len}: {bytes}");
            }
            other => panic!("{len}: {}", format!("{other:?}").chars().take(300).collect::<String>()),
        }
    }
}
