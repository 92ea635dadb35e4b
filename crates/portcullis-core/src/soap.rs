//! The upstream phase of a SOAP route (SPEC §6): a request that passed every phase becomes an
//! envelope posted to the SOAP upstream through the [`Edge`], and the answer becomes JSON or
//! a `soap_fault` problem. Everything but the posting itself is here, so `explain` and `test`
//! map a stand-in upstream's SOAP answer with the code `run` uses.
//!
//! The exchange: the client's body is read whole, bounded by the route's `max_body_bytes`
//! (413 past it) → the operation's input ([`input`]) → the envelope (a mapping error is 400
//! `invalid_request` with the JSON pointer) → POST through the upstream's pool (balancing,
//! TLS, passive health; never retried, a POST is not idempotent), to the target's base path,
//! else the path of the WSDL port's address → the answer read whole, bounded by the same
//! limit → parsed whatever its HTTP status: the output is 200 JSON, a fault is `soap_fault`
//! (400 client/sender, 502 server/receiver) with `faultcode` and `faultstring`, anything else
//! 502 `upstream_error`. One deadline (the route's `timeout`, else the upstream's response
//! timeout) covers the client's body, the upstream's answer and its body.

pub mod input;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body::Body;
use portcullis_soap::{Fault, Limits, MapError, ResponseError, SoapRequest, SoapResponse};
use tokio::time::Instant;

use crate::context::RequestContext;
use crate::error::UpstreamError;
use crate::pipeline::{Edge, ForwardMode, OutBody, Outbound};
use crate::problem::{ErrorCode, Problem};
use crate::record::BodyStats;
use crate::snapshot::{RouteSpec, SoapRouteSpec};

/// Answers bigger than this are parsed on the blocking pool, so a large document does not
/// hold up the other requests of a worker thread.
const BLOCKING_PARSE_BYTES: usize = 256 * 1024;

/// Longest `detail` taken from a mapping error (which names the client's keys).
const MAX_DETAIL_CHARS: usize = 300;

/// Client headers that describe the client's body or negotiate the answer's representation:
/// the envelope is a new body, and the answer must come back as plain, whole XML.
const REPLACED_HEADERS: [HeaderName; 13] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::EXPECT,
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Why a SOAP exchange ended without the operation's answer.
#[derive(Debug, thiserror::Error)]
pub enum SoapError {
    #[error("the request body is larger than allowed")]
    BodyTooLarge,
    #[error("the request body could not be read")]
    ClientBody,
    #[error("the request body did not arrive within the route's timeout")]
    ClientBodyTimeout,
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    Map(#[from] MapError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the SOAP answer is larger than the route's body limit")]
    AnswerTooLarge,
    #[error("the SOAP answer broke off")]
    AnswerBroken,
    #[error("the SOAP answer did not arrive in time")]
    AnswerTimeout,
    #[error("the SOAP answer is not a usable SOAP envelope: {0}")]
    NotSoap(#[from] ResponseError),
    #[error("the SOAP service answered HTTP {0} without a fault")]
    StatusWithoutFault(StatusCode),
    #[error("parsing the SOAP answer failed")]
    Internal,
}

impl SoapError {
    /// A failure of the SOAP service's answer (logged as a warning: it describes the backend).
    pub fn is_answer(&self) -> bool {
        matches!(self, Self::AnswerTooLarge | Self::AnswerBroken | Self::NotSoap(_) | Self::StatusWithoutFault(_))
    }

    pub fn into_problem(self) -> Problem {
        let detail = match &self {
            Self::Map(e) => bounded(e.to_string()),
            Self::Input(e) => bounded(e.to_string()),
            _ => String::new(),
        };
        match self {
            Self::BodyTooLarge => UpstreamError::BodyTooLarge.into_problem(),
            Self::ClientBody => UpstreamError::ClientBody.into_problem(),
            Self::ClientBodyTimeout => Problem::new(ErrorCode::RequestTimeout, self.to_string()),
            Self::Input(input::InputError::NotJson(_) | input::InputError::Encoding(_)) => {
                Problem::new(ErrorCode::BadRequest, detail)
            }
            Self::Input(input::InputError::NotObject | input::InputError::Template(_)) | Self::Map(_) => {
                Problem::new(ErrorCode::InvalidRequest, detail)
            }
            Self::Upstream(e) => e.into_problem(),
            Self::AnswerTimeout => UpstreamError::Timeout.into_problem(),
            // What exactly was wrong with the answer is logged, not told: it describes the
            // backend, not the client's request.
            Self::AnswerTooLarge | Self::AnswerBroken | Self::NotSoap(_) | Self::StatusWithoutFault(_) => {
                Problem::new(ErrorCode::UpstreamError, "the SOAP service sent no valid answer")
            }
            Self::Internal => Problem::new(ErrorCode::Internal, self.to_string()),
        }
    }
}

fn bounded(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// What the upstream phase learnt of the SOAP service: which target answered and how long the
/// exchange took (the log's `target` and `upstream_ms`).
#[derive(Debug, Default)]
pub struct Answered {
    pub target: Option<Arc<str>>,
    pub upstream_ms: Option<f64>,
}

/// One SOAP exchange: the client's body read whole (bounded by the route's `max_body_bytes`,
/// counted in `stats`), the operation's input, the envelope posted through `edge`, the answer
/// read whole and parsed. One deadline (the route's `timeout`, else the upstream's response
/// timeout) covers it all.
#[allow(clippy::too_many_arguments)]
pub async fn exchange<E: Edge>(
    edge: &E,
    upstream: usize,
    route: &RouteSpec,
    soap: &SoapRouteSpec,
    response_timeout: std::time::Duration,
    mut parts: Parts,
    body: crate::pipeline::ClientBody<crate::pipeline::Prefixed<E::Body>>,
    ctx: &RequestContext,
    stats: &BodyStats,
    answered: &mut Answered,
) -> Result<SoapResponse, SoapError> {
    let timeout = route.timeout.unwrap_or(response_timeout);
    let deadline = Instant::now() + timeout;
    let limit = route.limits.max_body_bytes;
    let body = match body {
        crate::pipeline::ClientBody::Read(bytes) => bytes,
        crate::pipeline::ClientBody::Stream(body) => {
            read_bounded(body, limit, deadline, Some(stats)).await.map_err(|e| match e {
                ReadError::TooLarge => SoapError::BodyTooLarge,
                ReadError::Broken => SoapError::ClientBody,
                ReadError::Timeout => SoapError::ClientBodyTimeout,
            })?
        }
    };
    let input = input::build(soap.template.as_ref(), &parts, &body, ctx)?;
    let request = soap.operation.build_request(&input)?;
    envelope_head(&mut parts, &request, soap);
    let outbound = Outbound {
        upstream,
        parts,
        body: OutBody::Full(Bytes::from(request.body)),
        client_ip: ctx.client_ip,
        timeout: deadline.saturating_duration_since(Instant::now()),
        mode: ForwardMode::SoapEndpoint,
        stats: None,
        limits: route.limits,
    };
    let forwarded = edge.forward(outbound).await?;
    let body_started = std::time::Instant::now();
    let response = forwarded.response;
    let status = response.status();
    // Read to its end: the edge's body frees the connection for the next request.
    let answer = read_bounded(response.into_body(), limit, deadline, None).await;
    answered.target = Some(forwarded.target);
    answered.upstream_ms = Some(forwarded.upstream_ms + body_started.elapsed().as_secs_f64() * 1000.0);
    let answer = answer.map_err(|e| match e {
        ReadError::TooLarge => SoapError::AnswerTooLarge,
        ReadError::Broken => SoapError::AnswerBroken,
        ReadError::Timeout => SoapError::AnswerTimeout,
    })?;
    parse(soap, status, answer, limit).await
}

async fn parse(soap: &SoapRouteSpec, status: StatusCode, answer: Bytes, limit: u64) -> Result<SoapResponse, SoapError> {
    let op = &soap.operation;
    if op.is_one_way() && status.is_success() && answer.iter().all(u8::is_ascii_whitespace) {
        return Ok(SoapResponse::Output(serde_json::Map::new()));
    }
    let limits = Limits::with_max_bytes(usize::try_from(limit).unwrap_or(usize::MAX));
    let parsed = if answer.len() > BLOCKING_PARSE_BYTES {
        let op = op.clone();
        tokio::task::spawn_blocking(move || op.parse_response(&answer, &limits))
            .await
            .map_err(|_| SoapError::Internal)?
    } else {
        op.parse_response(&answer, &limits)
    };
    match parsed? {
        SoapResponse::Output(_) if !status.is_success() => Err(SoapError::StatusWithoutFault(status)),
        parsed => Ok(parsed),
    }
}

/// A fault is the service's answer, translated: a `soap_fault` problem (400 client/sender,
/// 502 server/receiver) with `faultcode` and `faultstring`.
pub fn fault_problem(fault: &Fault) -> Problem {
    let mut problem = Problem::new(ErrorCode::SoapFault, "the SOAP service answered with a fault");
    problem.status = Some(fault.status());
    problem.extensions.push(("faultcode", fault.faultcode.clone().into()));
    problem.extensions.push(("faultstring", fault.faultstring.clone().into()));
    problem
}

/// The request head for the envelope: POST to the WSDL address's path (the pool swaps in a
/// target's base path), the operation's `Content-Type` and `SOAPAction`, and none of the
/// client's body or representation headers. The rest (`X-Request-Id`, `traceparent`,
/// `X-Forwarded-*`, `headers.request` edits) is what the transform stage made of them.
fn envelope_head(parts: &mut Parts, request: &SoapRequest, soap: &SoapRouteSpec) {
    parts.method = Method::POST;
    parts.uri = Uri::from(soap.address_path.clone());
    for name in &REPLACED_HEADERS {
        parts.headers.remove(name);
    }
    parts.headers.remove(&portcullis_soap::SOAP_ACTION);
    for (name, value) in request.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(request.body.len()));
}

pub(crate) enum ReadError {
    TooLarge,
    Broken,
    Timeout,
}

/// Reads a whole body, at most `limit` bytes, before `deadline`. `stats` counts the bytes
/// (the access log's `bytes_in`). A body of one frame is kept as it came (no copy); the
/// deadline's timer is armed only once a frame is not ready when asked for, and then one
/// timer serves the rest of the read.
pub(crate) async fn read_bounded<B>(
    mut body: B,
    limit: u64,
    deadline: Instant,
    stats: Option<&BodyStats>,
) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes> + Unpin,
{
    use std::sync::atomic::Ordering::Relaxed;
    use std::task::Poll;
    // A declared length over the limit is refused before a byte is read.
    if body.size_hint().lower() > limit {
        return Err(ReadError::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
    loop {
        // As `tokio::time::timeout_at` would: the frame first, the deadline only when it is
        // not there yet.
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(frame) = std::pin::Pin::new(&mut body).poll_frame(cx) {
                return Poll::Ready(Some(frame));
            }
            if timer.is_none() {
                timer.set(Some(tokio::time::sleep_until(deadline)));
            }
            match timer.as_mut().as_pin_mut() {
                Some(sleep) => std::future::Future::poll(sleep, cx).map(|()| None),
                None => Poll::Pending,
            }
        })
        .await;
        let frame = match next {
            None => return Err(ReadError::Timeout),
            Some(None) => break,
            Some(Some(Err(_))) => return Err(ReadError::Broken),
            Some(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if let Some(stats) = stats {
            stats.bytes.store(total, Relaxed);
        }
        if total > limit {
            if let Some(stats) = stats {
                stats.exceeded.store(true, Relaxed);
            }
            return Err(ReadError::TooLarge);
        }
        if first.is_none() {
            first = Some(data);
        } else {
            more.push(data);
        }
    }
    Ok(match first {
        None => Bytes::new(),
        Some(only) if more.is_empty() => only,
        Some(head) => {
            let mut all = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
            all.extend_from_slice(&head);
            more.iter().for_each(|c| all.extend_from_slice(c));
            all.freeze()
        }
    })
}

#[cfg(test)]
mod tests;
