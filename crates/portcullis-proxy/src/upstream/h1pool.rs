//! HTTP/1.1 upstream connections with nothing in between: idle connections wait on a
//! per-target stack (last in, first out, so the warmest connection is reused) and are taken
//! by the request's own task for one exchange ([`super::h1client`]); the response body puts
//! its connection back when it has been read to its end. No task is spawned per connection
//! or per request, and an idle connection holds no buffer. A body abandoned half-read drops
//! its connection instead.
//!
//! A TLS target's connections are handshaken here too, within the connect timeout; the
//! stream type covers both, so the exchange path does not know the difference.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::h1client::{self, Failure, H1Body, Outgoing};
use super::h1io::Io;
use super::tls::UpstreamTls;
use crate::body::RequestBody;
use portcullis_core::UpstreamError as ProxyError;

/// The idle connections of one target.
#[derive(Debug)]
pub(crate) struct H1Pool {
    address: String,
    connect_timeout: Duration,
    max_idle: usize,
    /// Newest at the back (reused first); the front ages out after `idle_timeout`.
    idle: Mutex<VecDeque<(Io, Instant)>>,
    idle_timeout: Duration,
    tls: Option<TargetTls>,
}

/// How a TLS target is reached: the upstream's TLS side and the name verified.
#[derive(Debug)]
pub(crate) struct TargetTls {
    pub(crate) tls: UpstreamTls,
    pub(crate) name: ServerName<'static>,
}

impl H1Pool {
    pub(crate) fn new(
        address: String,
        connect_timeout: Duration,
        max_idle: usize,
        tls: Option<TargetTls>,
    ) -> Arc<Self> {
        Arc::new(Self {
            address,
            connect_timeout,
            max_idle,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout: super::POOL_IDLE_TIMEOUT,
            tls,
        })
    }

    /// The newest idle connection the upstream has not closed meanwhile.
    fn checkout(&self) -> Option<Io> {
        let now = Instant::now();
        loop {
            let (mut io, since) = self.idle.lock().ok()?.pop_back()?;
            if now.duration_since(since) < self.idle_timeout && io.is_reusable() {
                return Some(io);
            }
        }
    }

    /// Takes back a connection whose exchange ended cleanly.
    pub(crate) fn checkin(&self, io: Io) {
        let now = Instant::now();
        let Ok(mut idle) = self.idle.lock() else { return };
        // Connections unused for idle_timeout are closed (dropped).
        while idle.front().is_some_and(|(_, since)| now.duration_since(*since) >= self.idle_timeout) {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back((io, now));
        }
    }

    async fn connect(&self) -> Result<Io, ProxyError> {
        // One deadline for the TCP connect and the TLS handshake.
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(&self.address))
            .await
            .map_err(|_| ProxyError::Connect)?
            .map_err(|_| ProxyError::Connect)?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else { return Ok(Io::Plain(stream)) };
        let stream = tokio::time::timeout_at(deadline, tls.tls.connect(tls.name.clone(), stream))
            .await
            .map_err(|_| ProxyError::Connect)?
            .map_err(|_| ProxyError::Connect)?;
        Ok(Io::Tls(Box::new(stream)))
    }

    /// Sends one request (its URI in origin form) and waits for the response head. A pooled
    /// connection that fails before any answer comes is replaced by a new one, once, when the
    /// request can go again unchanged (no body) and either never went out in full or is
    /// idempotent — so keep-alive races never reach the client.
    pub(crate) async fn send(self: &Arc<Self>, request: Request<RequestBody>) -> Result<Response<H1Body>, SendFailure> {
        let (parts, body) = request.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut out = Outgoing::new(parts.method, target, parts.headers, body);
        // As an answer to the client (`h1::conn::send`): the request goes out after the work of
        // the other tasks already ready, so the requests of one readiness batch reach the
        // upstream together and wake it once.
        crate::h1::step_back().await;
        let mut fresh = false;
        loop {
            let (io, reused) = match (!fresh).then(|| self.checkout()).flatten() {
                Some(io) => (io, true),
                None => (self.connect().await.map_err(|_| SendFailure::Connect)?, false),
            };
            match h1client::exchange(io, &mut out, self).await {
                Ok(response) => return Ok(response),
                Err(Failure::Client(e)) => return Err(SendFailure::Client(e)),
                Err(Failure::Upstream { answered, sent }) => {
                    if reused && !answered && out.bodiless && (!sent || super::is_idempotent(&out.method)) {
                        fresh = true;
                        continue;
                    }
                    return Err(SendFailure::Invalid);
                }
            }
        }
    }
}

/// Why a send failed.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// No connection could be made.
    Connect,
    /// The client's body failed; the exchange is void.
    Client(ProxyError),
    /// The upstream's answer was missing, cut short or not one the gateway relays.
    Invalid,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod tests {
    use std::time::Duration;

    use http::Request;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::H1Pool;
    use crate::body::RequestBody;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

    fn request() -> Request<RequestBody> {
        Request::builder().uri("/x").header("host", "t").body(RequestBody::empty()).unwrap()
    }

    async fn read_head(upstream: &mut TcpStream) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = upstream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn a_request_goes_out_after_the_tasks_already_ready_on_the_thread() {
        // The test runtime is the single-threaded one the gateway runs on one core.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = H1Pool::new(listener.local_addr().unwrap().to_string(), Duration::from_secs(20), 4, None);
        // A first exchange leaves a pooled connection, so the second one has no connect to wait on.
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.send(request()).await.is_ok() }
        });
        let (mut upstream, _) = listener.accept().await.unwrap();
        read_head(&mut upstream).await;
        upstream.write_all(OK).await.unwrap();
        assert!(first.await.unwrap());
        // Another task becomes ready just before the second request is sent; it looks whether
        // the request has reached the upstream already (on loopback a write arrives at once).
        let std_upstream = upstream.into_std().unwrap();
        let peer = std_upstream.try_clone().unwrap();
        let other = tokio::spawn(async move { peer.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0) });
        let mut upstream = TcpStream::from_std(std_upstream).unwrap();
        let (sent, arrived_before) = tokio::join!(pool.send(request()), async {
            let arrived = other.await.unwrap();
            read_head(&mut upstream).await;
            upstream.write_all(OK).await.unwrap();
            arrived
        });
        assert!(sent.is_ok());
        assert!(!arrived_before, "the request went out before the task already ready ran");
    }
}
