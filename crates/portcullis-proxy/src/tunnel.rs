//! WebSocket pass-through. The service forwards an allowed upgrade request; only when the
//! upstream answers 101 does the gateway answer 101, with a [`Tunnel`] riding in that
//! response's extensions. The listener parks it in the connection's [`Slot`], lets hyper
//! finish the connection (which hands the socket over, with any bytes the client pipelined
//! still unread), and then [`Tunnel::splice`]s the two upgraded connections in the same
//! task — so the connection keeps its `max_connections` permit and graceful shutdown waits
//! for it. The splice ends when either side closes, when nothing moved in either direction
//! for `idle_timeout`, or when a shutdown's grace has passed.
//!
//! Both sides of the handshake were checked by the pipeline before (`portcullis_core::websocket`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::conn_io::Activity;
use crate::runtime::Runtime;
use crate::upstream::Upgraded;

/// Both ends of an upgrade that was agreed on, until they are connected. `Clone` (shared)
/// because response extensions must be; only one holder ever takes the ends.
#[derive(Clone, Debug)]
pub(crate) struct Tunnel(Arc<Mutex<Option<Ends>>>);

#[derive(Debug)]
struct Ends {
    downstream: OnUpgrade,
    /// The upstream's connection, taken out of its pool for good with its 101.
    upstream: Upgraded,
}

impl Tunnel {
    pub(crate) fn new(downstream: OnUpgrade, upstream: Upgraded) -> Self {
        Self(Arc::new(Mutex::new(Some(Ends { downstream, upstream }))))
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
        let Ok(Ok(downstream)) = tokio::time::timeout(idle, ends.downstream).await else { return };
        let (mut downstream, mut upstream) = (TokioIo::new(downstream), ends.upstream);
        let copy = tokio::io::copy_bidirectional(&mut downstream, &mut upstream);
        let mut copy = std::pin::pin!(copy);
        // Sampled every quarter period, closed on the fifth quiet sample: 1.25× to 1.5× idle
        // after the last byte, whatever the phase of the ticks against the traffic.
        let period = (idle / 4).max(Duration::from_millis(10));
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
                    quiet_ticks = if activity.take_touched() { 0 } else { quiet_ticks + 1 };
                    if quiet_ticks >= 5 {
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
