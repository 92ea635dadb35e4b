//! WebSocket pass-through. The service forwards an allowed upgrade request; only when the
//! upstream answers 101 does the gateway answer 101, with a [`Tunnel`] riding in that
//! response's extensions. The listener parks it in the connection's [`Slot`], lets hyper
//! finish the connection (which hands the socket over, with any bytes the client pipelined
//! still unread), and then [`Tunnel::splice`]s the two upgraded connections in the same
//! task — so the connection keeps its `max_connections` permit and graceful shutdown waits
//! for it. The splice ends when either side closes, when nothing moved in either direction
//! for `idle_timeout`, or when a shutdown's grace has passed.
//!
//! Both sides of the handshake are checked first (RFC 6455 §4): the client's `GET` must carry
//! a `Sec-WebSocket-Key` of 16 base64 bytes and `Sec-WebSocket-Version: 13` ([`accept_for`],
//! else 400 and nothing is forwarded), and the upstream's 101 the `Sec-WebSocket-Accept` that
//! key calls for ([`accepted`], else 502 and no tunnel). A backend that switches protocols
//! without a real handshake is no WebSocket server, and bytes spliced to it would be read as
//! HTTP requests that no stage of the gateway ever saw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::conn_io::Activity;
use crate::runtime::Runtime;
use crate::upstream::Lease;

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
pub(crate) const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
/// RFC 6455 §1.3: appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` an upstream must answer the client's handshake with; `None`
/// when the handshake is not one a WebSocket server could accept (the key missing, repeated
/// or not 16 bytes of base64; the version missing, repeated or not 13).
pub(crate) fn accept_for(request: &HeaderMap) -> Option<HeaderValue> {
    let key = single(request, &SEC_WEBSOCKET_KEY)?;
    if single(request, &SEC_WEBSOCKET_VERSION)?.as_bytes().trim_ascii() != b"13" {
        return None;
    }
    let key = key.as_bytes().trim_ascii();
    // 16 bytes are 24 base64 characters with padding; nothing else decodes to 16.
    let mut decoded = [0u8; 18];
    if key.len() != 24 || STANDARD.decode_slice(key, &mut decoded).ok()? != 16 {
        return None;
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(GUID);
    HeaderValue::from_str(&STANDARD.encode(context.finish())).ok()
}

/// Whether the upstream's 101 carries exactly the `Sec-WebSocket-Accept` expected.
pub(crate) fn accepted(response: &HeaderMap, expected: &HeaderValue) -> bool {
    single(response, &SEC_WEBSOCKET_ACCEPT).is_some_and(|v| v.as_bytes().trim_ascii() == expected.as_bytes())
}

fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Both ends of an upgrade that was agreed on, until they are connected. `Clone` (shared)
/// because response extensions must be; only one holder ever takes the ends.
#[derive(Clone, Debug)]
pub(crate) struct Tunnel(Arc<Mutex<Option<Ends>>>);

#[derive(Debug)]
struct Ends {
    downstream: OnUpgrade,
    upstream: OnUpgrade,
    /// The upstream connection stays leased (never pooled again) until it is handed over.
    lease: Option<Lease>,
}

impl Tunnel {
    pub(crate) fn new(downstream: OnUpgrade, upstream: OnUpgrade, lease: Option<Lease>) -> Self {
        Self(Arc::new(Mutex::new(Some(Ends { downstream, upstream, lease }))))
    }

    fn take(&self) -> Option<Ends> {
        self.0.lock().ok()?.take()
    }

    /// Copies bytes both ways until a side closes, the connection idles for `idle`, or the
    /// shutdown grace ends. `activity` is the downstream socket's (every byte in either
    /// direction crosses it).
    pub(crate) async fn splice(
        self,
        activity: Arc<Activity>,
        mut stop: watch::Receiver<bool>,
        idle: Duration,
        current: &ArcSwap<Runtime>,
    ) {
        let Some(ends) = self.take() else { return };
        let handed_over = async { Ok::<_, hyper::Error>((ends.downstream.await?, ends.upstream.await?)) };
        let Ok(Ok((downstream, upstream))) = tokio::time::timeout(idle, handed_over).await else { return };
        drop(ends.lease);
        let (mut downstream, mut upstream) = (TokioIo::new(downstream), TokioIo::new(upstream));
        let copy = tokio::io::copy_bidirectional(&mut downstream, &mut upstream);
        let mut copy = std::pin::pin!(copy);
        let period = (idle / 2).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let grace = || current.load().snapshot.shutdown_grace;
        let mut closes_at = (*stop.borrow()).then(|| tokio::time::Instant::now() + grace());
        let mut quiet_ticks = 0u32;
        loop {
            tokio::select! {
                _ = copy.as_mut() => return,
                changed = stop.changed(), if closes_at.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        closes_at = Some(tokio::time::Instant::now() + grace());
                    }
                }
                () = sleep_until(closes_at) => return,
                _ = ticker.tick() => {
                    // Sampled like the listener's watchdog: closes after 1× to 1.5× idle.
                    quiet_ticks = if activity.take_touched() { 0 } else { quiet_ticks + 1 };
                    if quiet_ticks >= 2 {
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A connection's parked tunnel, between its 101 and hyper handing the socket over.
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<Option<Tunnel>>);

impl Slot {
    /// Takes the tunnel out of a 101 response (anything else is left alone).
    pub(crate) fn hold<B>(&self, response: &mut Response<B>) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        if let (Some(tunnel), Ok(mut slot)) = (response.extensions_mut().remove::<Tunnel>(), self.0.lock()) {
            *slot = Some(tunnel);
        }
    }

    pub(crate) fn take(&self) -> Option<Tunnel> {
        self.0.lock().ok()?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn the_rfc_6455_sample_key_calls_for_the_rfc_accept_and_nothing_else_passes() {
        let ok = request(&[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13")]);
        let expected = accept_for(&ok).expect("a valid handshake");
        assert_eq!(expected, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(accepted(&request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]), &expected));
        assert!(!accepted(&request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo")]), &expected));
        assert!(!accepted(&HeaderMap::new(), &expected));
        let mut twice = request(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]);
        twice.append(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!accepted(&twice, &expected), "two answers are no answer");
    }

    #[test]
    fn keys_that_are_not_16_base64_bytes_and_versions_other_than_13_are_refused() {
        let bad: [&[(&'static str, &'static str)]; 6] = [
            &[("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "8")],
            &[("sec-websocket-key", "c2hvcnQ="), ("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=!"), ("sec-websocket-version", "13")],
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZSEh"), ("sec-websocket-version", "13")],
        ];
        for headers in bad {
            assert_eq!(accept_for(&request(headers)), None, "{headers:?}");
        }
    }
}
