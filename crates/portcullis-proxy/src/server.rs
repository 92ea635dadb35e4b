//! Downstream listeners: accept with a connection cap, complete the TLS handshake (ALPN) or
//! detect HTTP/1.1 or HTTP/2 prior knowledge under the header-read deadline, serve with
//! hyper, close idle connections, re-bind only what a reload changed, and drain gracefully
//! on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use portcullis_core::pipeline::Downstream;
use portcullis_core::snapshot::{Limits, ListenerSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::conn_io::{Activity, ConnIo, FramingScan};
use crate::h1;
use crate::runtime::Runtime;
use crate::service;
use crate::tls::ListenerTls;
use crate::tunnel;
use portcullis_telemetry::metrics::Metrics;

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// hyper's smallest read buffer; the header limit is enforced by our own stage above it.
const MIN_BUF: usize = 8192;

/// A gateway with its listeners bound, ready to serve.
pub struct Gateway {
    shared: Arc<Shared>,
}

/// Shares the current config with the process: reloads go through [`GatewayHandle::apply`].
#[derive(Clone)]
pub struct GatewayHandle {
    shared: Arc<Shared>,
}

struct Shared {
    current: Arc<ArcSwap<Runtime>>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    /// Cloned into every accept loop and connection; shutdown waits until all are gone.
    done: Mutex<Option<mpsc::Sender<()>>>,
    done_rx: tokio::sync::Mutex<mpsc::Receiver<()>>,
    listeners: Mutex<Listeners>,
}

#[derive(Default)]
struct Listeners {
    running: bool,
    /// `max_connections` the semaphore currently stands for.
    capacity: usize,
    bound: Vec<Bound>,
}

/// One listening socket, known by its configured address: a reload that keeps the address
/// keeps the socket (and its accept queue), whatever else about the listener changed.
struct Bound {
    bind: SocketAddr,
    local: SocketAddr,
    name: Arc<str>,
    /// Until the gateway runs.
    pending: Option<TcpListener>,
    stop: watch::Sender<bool>,
}

impl Bound {
    fn open(spec: &ListenerSpec) -> std::io::Result<Self> {
        let listener = listen(spec.bind).map_err(|e| {
            std::io::Error::new(e.kind(), format!("listener `{}` cannot bind {}: {e}", spec.name, spec.bind))
        })?;
        Ok(Self {
            bind: spec.bind,
            local: listener.local_addr()?,
            name: spec.name.clone(),
            pending: Some(listener),
            stop: watch::channel(false).0,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GatewayHandle {
    pub fn current(&self) -> Arc<Runtime> {
        self.shared.current.load_full()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Installs a new runtime: listeners at new addresses are bound first (a failure leaves
    /// everything as it was), then the runtime is swapped, then listeners the new config no
    /// longer has stop accepting. Requests in flight finish on the runtime they started with.
    pub fn apply(&self, mut runtime: Runtime) -> std::io::Result<()> {
        runtime.metrics = self.shared.metrics.clone();
        runtime.start_traces();
        let previous = self.shared.current.load();
        runtime.rate_limits.adopt(&previous.rate_limits);
        if runtime.database.is_none() {
            runtime.database = previous.database.clone();
        }
        runtime.identity.adopt(&previous.identity);
        runtime.identity.start(&self.shared.metrics);
        runtime.cache.adopt(&previous.cache, &runtime.snapshot);
        drop(previous);
        let mut listeners = lock(&self.shared.listeners);
        let mut fresh = Vec::new();
        for spec in &runtime.snapshot.listeners {
            if !listeners.bound.iter().any(|b| b.bind == spec.bind) {
                fresh.push(Bound::open(spec)?);
            }
        }
        let capacity = usize::try_from(runtime.snapshot.limits.max_connections).unwrap_or(usize::MAX);
        match capacity.cmp(&listeners.capacity) {
            std::cmp::Ordering::Greater => self.shared.permits.add_permits(capacity - listeners.capacity),
            std::cmp::Ordering::Less => {
                // Only free permits can go at once; connections over the new cap finish normally.
                let _ = self.shared.permits.forget_permits(listeners.capacity - capacity);
            }
            std::cmp::Ordering::Equal => {}
        }
        listeners.capacity = capacity;
        let specs = runtime.snapshot.listeners.clone();
        self.shared.current.store(Arc::new(runtime));
        listeners.bound.retain(|b| {
            let kept = specs.iter().any(|s| s.bind == b.bind);
            if !kept {
                tracing::info!(listener = %b.name, addr = %b.local, "listener removed");
                let _ = b.stop.send(true);
            }
            kept
        });
        for b in &mut listeners.bound {
            if let Some(spec) = specs.iter().find(|s| s.bind == b.bind) {
                b.name = spec.name.clone();
            }
        }
        let running = listeners.running;
        for mut b in fresh {
            tracing::info!(listener = %b.name, addr = %b.local, "listening");
            if running {
                self.spawn(&mut b);
            }
            listeners.bound.push(b);
        }
        Ok(())
    }

    /// The bound address of each listener (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<(Arc<str>, SocketAddr)> {
        lock(&self.shared.listeners).bound.iter().map(|b| (b.name.clone(), b.local)).collect()
    }

    /// Turns `true` when shutdown begins.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.shared.stop.subscribe()
    }

    fn spawn(&self, bound: &mut Bound) {
        let Some(listener) = bound.pending.take() else { return };
        let Some(done) = lock(&self.shared.done).clone() else { return };
        let accept = AcceptLoop {
            bind: bound.bind,
            listener,
            shared: self.shared.clone(),
            own_stop: bound.stop.subscribe(),
            stop: self.shared.stop.subscribe(),
            done,
        };
        tokio::spawn(accept.run());
    }
}

impl Gateway {
    /// Opens the database (unless the runtime has one) and binds every listener of the
    /// runtime's snapshot. The key sync runs until shutdown.
    pub async fn bind(mut runtime: Runtime) -> std::io::Result<Self> {
        if runtime.database.is_none() {
            runtime.database = Some(crate::database::open(&runtime.snapshot.state).await?);
        }
        if let Some(database) = &runtime.database {
            crate::database::restore_usage(database, runtime.rate_limits.engine()).await;
        }
        let mut bound = Vec::new();
        for spec in &runtime.snapshot.listeners {
            bound.push(Bound::open(spec)?);
        }
        let metrics = Arc::new(Metrics::new());
        runtime.metrics = metrics.clone();
        runtime.start_traces();
        runtime.identity.start(&metrics);
        let capacity = usize::try_from(runtime.snapshot.limits.max_connections).unwrap_or(usize::MAX);
        let (done, done_rx) = mpsc::channel::<()>(1);
        let shared = Shared {
            current: Arc::new(ArcSwap::from_pointee(runtime)),
            metrics,
            permits: Arc::new(Semaphore::new(capacity.min(Semaphore::MAX_PERMITS))),
            stop: watch::channel(false).0,
            done: Mutex::new(Some(done)),
            done_rx: tokio::sync::Mutex::new(done_rx),
            listeners: Mutex::new(Listeners { running: false, capacity: capacity.min(Semaphore::MAX_PERMITS), bound }),
        };
        if let Some(database) = shared.current.load().database.clone() {
            crate::database::spawn_sync(database, shared.stop.subscribe());
            crate::database::spawn_usage_persist(shared.current.clone(), shared.stop.subscribe());
        }
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The bound address of each listener (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<(Arc<str>, SocketAddr)> {
        self.handle().local_addrs()
    }

    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle { shared: self.shared.clone() }
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives open requests up to
    /// the configured `shutdown_grace` to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let handle = self.handle();
        {
            let mut listeners = lock(&self.shared.listeners);
            listeners.running = true;
            for b in &mut listeners.bound {
                handle.spawn(b);
            }
        }
        shutdown.await;
        let grace = self.shared.current.load().snapshot.shutdown_grace;
        tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining connections");
        let _ = self.shared.stop.send(true);
        drop(lock(&self.shared.done).take());
        let mut done_rx = self.shared.done_rx.lock().await;
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            tracing::warn!("shutdown grace elapsed with requests still open");
        }
        // Quota counters counted since the last periodic write survive the restart.
        let runtime = self.shared.current.load_full();
        if let Some(database) = &runtime.database {
            crate::database::persist_usage(database, runtime.rate_limits.engine()).await;
        }
        // The spans of the last requests go out before the process ends.
        if let Some(traces) = &runtime.traces {
            traces.flush(portcullis_otel::FLUSH_TIMEOUT).await;
        }
    }
}

/// Accept queue length: bursts of new connections wait in the kernel instead of being
/// refused (the OS default of 128 is too short for a gateway; capped by somaxconn).
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

struct AcceptLoop {
    bind: SocketAddr,
    listener: TcpListener,
    shared: Arc<Shared>,
    /// This listener removed by a reload.
    own_stop: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
}

impl AcceptLoop {
    async fn run(mut self) {
        loop {
            let accepted = tokio::select! {
                _ = self.stop.changed() => return,
                _ = self.own_stop.changed() => return,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(addr = %self.bind, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(permit) = self.shared.permits.clone().try_acquire_owned() else {
                // Over max_connections: close at once rather than queue without bound.
                drop(stream);
                continue;
            };
            // The listener's settings under the config current now (a reload may have
            // changed its TLS, HTTP/2 or name without re-binding it).
            let runtime = self.shared.current.load();
            let Some(index) = runtime.snapshot.listeners.iter().position(|l| l.bind == self.bind) else { continue };
            let spec = &runtime.snapshot.listeners[index];
            let tls = runtime.tls.get(index).cloned().flatten();
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                downstream: Downstream { peer, https: tls.is_some(), listener: spec.name.clone(), tls: None },
                http2: spec.http2,
                current: self.shared.current.clone(),
                stop: self.stop.clone(),
            };
            let gauge = self.shared.metrics.connections(&spec.name);
            drop(runtime);
            let done = self.done.clone();
            tokio::spawn(async move {
                gauge.inc();
                match tls {
                    // Boxed: the TLS states (handshake, session) would otherwise size every
                    // connection's task, plaintext ones included.
                    Some(tls) => Box::pin(conn.serve_tls(stream, tls)).await,
                    None => conn.serve_plain(stream).await,
                }
                gauge.dec();
                drop(permit);
                drop(done);
            });
        }
    }
}

struct Connection {
    downstream: Downstream,
    http2: bool,
    current: Arc<ArcSwap<Runtime>>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve_plain(self, mut stream: TcpStream) {
        let limits = self.current.load().snapshot.limits;
        let (is_h2, prefix) = if self.http2 {
            match detect_h2(&mut stream, limits.header_read_timeout).await {
                Some(found) => found,
                None => return,
            }
        } else {
            (false, Bytes::new())
        };
        self.serve(stream, is_h2, prefix, limits).await;
    }

    /// The handshake runs under the header-read deadline (a slow-loris guard for TLS too);
    /// ALPN decides the protocol. A failed handshake is logged at debug: scanners cause many.
    async fn serve_tls(mut self, stream: TcpStream, tls: Arc<ListenerTls>) {
        let limits = self.current.load().snapshot.limits;
        let stream = match tokio::time::timeout(limits.header_read_timeout, tls.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.downstream.peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let session = stream.get_ref().1;
        let is_h2 = session.alpn_protocol() == Some(b"h2");
        self.downstream.tls = Some(Arc::new(crate::tls::session_info(session)));
        self.serve(stream, is_h2, Bytes::new(), limits).await;
    }

    async fn serve<S>(self, stream: S, is_h2: bool, prefix: Bytes, limits: Limits)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if is_h2 {
            return Box::pin(self.serve_hyper(stream, true, prefix, limits)).await;
        }
        // HTTP/1.1 on the gateway's own driver; an upgrade request (WebSocket) and what follows
        // it go to hyper, which owns the upgrade hand-over (see `tunnel`).
        let settings = h1::conn::Settings {
            max_head: h1_buf_size(&limits),
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        };
        let downstream = Arc::new(self.downstream.clone());
        let current = self.current.clone();
        let handler = move |request: http::Request<crate::body::DownstreamBody>| {
            let runtime = current.load_full();
            let downstream = downstream.clone();
            async move { service::handle_body(runtime, &downstream, request).await }
        };
        match h1::conn::serve(stream, prefix, settings, self.stop.clone(), handler).await {
            h1::conn::Ended::Closed => {}
            // Boxed, as hyper's connection is large: the driver's own future stays small.
            h1::conn::Ended::Upgrade { io, prefix } => Box::pin(self.serve_hyper(io, false, prefix, limits)).await,
        }
    }

    /// HTTP/2, and HTTP/1.1 from an upgrade request on, served by hyper.
    async fn serve_hyper<S>(self, stream: S, is_h2: bool, prefix: Bytes, limits: Limits)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let downstream = Arc::new(self.downstream);
        let activity = Activity::new();
        let framing = (!is_h2).then(FramingScan::new);
        let conn_io = ConnIo::new(stream, prefix, activity.clone(), framing.clone(), h1_buf_size(&limits));
        let io = TokioIo::new(if is_h2 { conn_io.watch_h2() } else { conn_io });
        let in_flight = Arc::new(AtomicUsize::new(0));
        // A WebSocket 101 parks its tunnel here until hyper hands the socket over.
        let tunnel = Arc::new(tunnel::Slot::default());
        let service = {
            let (current, downstream, in_flight) = (self.current.clone(), downstream.clone(), in_flight.clone());
            let tunnel = tunnel.clone();
            service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let runtime = current.load_full();
                let downstream = downstream.clone();
                let in_flight = in_flight.clone();
                if let Some(flaw) = framing.as_ref().and_then(|f| f.dispatched()) {
                    request.extensions_mut().insert(flaw);
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let (tunnel, framing) = (tunnel.clone(), framing.clone());
                async move {
                    let mut response = service::handle(runtime, &downstream, request).await;
                    if response.status() == http::StatusCode::SWITCHING_PROTOCOLS
                        && let Some(framing) = &framing
                    {
                        framing.upgraded();
                    }
                    tunnel.hold(&mut response);
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let (stop, splice_activity) = (self.stop.clone(), activity.clone());
        let watch = Watchdog { stop: self.stop, activity, in_flight, idle: limits.idle_timeout };
        if is_h2 {
            let conn = http2_builder(&limits).serve_connection(io, service);
            watch.drive(conn, http2::Connection::graceful_shutdown).await;
        } else {
            let conn = http1_builder(&limits).serve_connection(io, service).with_upgrades();
            watch.drive(conn, http1::UpgradeableConnection::graceful_shutdown).await;
            // Still in this task: the tunnel keeps the connection's permit and the drain waits.
            if let Some(tunnel) = tunnel.take() {
                tunnel.splice(splice_activity, stop, limits.idle_timeout, &self.current).await;
            }
        }
    }
}

/// hyper's read buffer for HTTP/1.1, the largest request head it accepts; the header limit
/// is enforced by our own stage above it.
pub(crate) fn h1_buf_size(limits: &Limits) -> usize {
    let buf =
        usize::try_from(limits.max_header_bytes + limits.max_uri_bytes).unwrap_or(usize::MAX).saturating_add(1024);
    buf.max(MIN_BUF)
}

pub(crate) fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    // hyper times every request head, and its timer also runs while a keep-alive connection
    // waits for its next request: on HTTP/1.1 an idle connection closes after the shorter of
    // header_read_timeout and idle_timeout.
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        // A client that shuts its sending side after the request (`nc -N`, some HTTP/1.0
        // clients) still waits for the answer: the read side's end is not an abort.
        .half_close(true)
        .max_buf_size(h1_buf_size(limits))
        .max_headers(crate::conn_io::MAX_HEADERS);
    b
}

fn http2_builder(limits: &Limits) -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    let list = u32::try_from(limits.max_header_bytes + limits.max_uri_bytes).unwrap_or(u32::MAX).saturating_add(1024);
    b.timer(TokioTimer::new()).max_header_list_size(list).max_concurrent_streams(256);
    b
}

/// Reads the first bytes to tell the HTTP/2 preface from HTTP/1.1, under the header-read
/// deadline (hyper's own timer does not cover this phase). `None`: closed or too slow.
async fn detect_h2(stream: &mut TcpStream, deadline: Duration) -> Option<(bool, Bytes)> {
    let mut buf = [0u8; 24];
    let mut len = 0;
    let read = async {
        loop {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if buf[..len] != H2_PREFACE[..len] {
                return Some(false);
            }
            if len == H2_PREFACE.len() {
                return Some(true);
            }
        }
    };
    let is_h2 = tokio::time::timeout(deadline, read).await.ok()??;
    Some((is_h2, Bytes::copy_from_slice(&buf[..len])))
}

/// Drives one connection: closes it gracefully on shutdown or when idle too long, and drops
/// it when it stays silent for another idle period after that (a client that stopped reading
/// a response, or an upstream that stalled mid-body, would otherwise hold it forever).
/// Idleness is sampled every half `idle_timeout`, so it fires after 1× to 1.5× the timeout.
struct Watchdog {
    stop: watch::Receiver<bool>,
    activity: Arc<Activity>,
    in_flight: Arc<AtomicUsize>,
    idle: Duration,
}

impl Watchdog {
    async fn drive<C: Future>(mut self, conn: C, graceful_shutdown: fn(std::pin::Pin<&mut C>)) {
        let mut conn = pin!(conn);
        let mut closing = *self.stop.borrow();
        if closing {
            graceful_shutdown(conn.as_mut());
        }
        let period = (self.idle / 2).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut quiet_ticks = 0u32;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                changed = self.stop.changed(), if !closing => {
                    if changed.is_err() || *self.stop.borrow() {
                        closing = true;
                        graceful_shutdown(conn.as_mut());
                    }
                }
                _ = ticker.tick() => {
                    let moved = self.activity.take_touched();
                    let busy = moved || (!closing && self.in_flight.load(Ordering::Relaxed) > 0);
                    quiet_ticks = if busy { 0 } else { quiet_ticks.saturating_add(1) };
                    if quiet_ticks >= 2 && !closing {
                        closing = true;
                        quiet_ticks = 0;
                        graceful_shutdown(conn.as_mut());
                    } else if quiet_ticks >= 2 {
                        // Still silent an idle period after the graceful close: drop it.
                        return;
                    }
                }
            }
        }
    }
}
