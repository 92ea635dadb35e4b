//! HTTP/1.1 upstream connections without a dispatcher in between: idle senders wait on a
//! per-target stack (last in, first out, so the warmest connection is reused) and go back
//! when the response body has been read to its end — no task is spawned per request to
//! return a connection. A body abandoned half-read drops its connection instead.
//!
//! A TLS target's connections are handshaken here too, within the connect timeout; the
//! sender type is the same either way, so the exchange path does not know the difference.
//! Connections are driven with upgrades enabled, so a 101 hands the socket to a tunnel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::tls::UpstreamTls;
use crate::body::RequestBody;
use portcullis_core::UpstreamError as ProxyError;

type Sender = SendRequest<RequestBody>;

/// The idle connections of one target.
#[derive(Debug)]
pub(crate) struct H1Pool {
    address: String,
    connect_timeout: Duration,
    max_idle: usize,
    /// Newest at the back (reused first); the front ages out after `idle_timeout`.
    idle: Mutex<std::collections::VecDeque<(Sender, std::time::Instant)>>,
    idle_timeout: Duration,
    tls: Option<TargetTls>,
}

/// How a TLS target is reached: the upstream's TLS side and the name verified.
#[derive(Debug)]
pub(crate) struct TargetTls {
    pub(crate) tls: UpstreamTls,
    pub(crate) name: ServerName<'static>,
}

/// A connection lent to one exchange; returned by [`Lease::release`] once the response body
/// has ended.
#[derive(Debug)]
pub(crate) struct Lease {
    sender: Option<Sender>,
    pool: Arc<H1Pool>,
    /// Whether the connection may serve another request once this body ended.
    reusable: bool,
}

impl Lease {
    pub(crate) fn release(&mut self) {
        if let Some(sender) = self.sender.take()
            && self.reusable
        {
            self.pool.checkin(sender);
        }
    }
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
            idle: Mutex::new(std::collections::VecDeque::new()),
            idle_timeout: super::POOL_IDLE_TIMEOUT,
            tls,
        })
    }

    fn checkout(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((sender, _)) = idle.pop_back() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let now = std::time::Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            // Connections unused for idle_timeout are closed (dropping the sender ends them).
            while idle.front().is_some_and(|(_, since)| now.duration_since(*since) >= self.idle_timeout) {
                idle.pop_front();
            }
            if idle.len() < self.max_idle {
                idle.push_back((sender, now));
            }
        }
    }

    async fn connect(&self) -> Result<Sender, ProxyError> {
        // One deadline for the TCP connect and the TLS handshake.
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(&self.address))
            .await
            .map_err(|_| ProxyError::Connect)?
            .map_err(|_| ProxyError::Connect)?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else { return drive(TokioIo::new(stream)).await };
        let stream = tokio::time::timeout_at(deadline, tls.tls.connect(tls.name.clone(), stream))
            .await
            .map_err(|_| ProxyError::Connect)?
            .map_err(|_| ProxyError::Connect)?;
        drive(TokioIo::new(stream)).await
    }

    /// A ready sender: a pooled one if any is still alive, else a new connection.
    async fn ready_sender(&self, fresh: bool) -> Result<Sender, ProxyError> {
        if !fresh {
            while let Some(mut sender) = self.checkout() {
                if sender.ready().await.is_ok() {
                    return Ok(sender);
                }
            }
        }
        let mut sender = self.connect().await?;
        sender.ready().await.map_err(|_| ProxyError::Connect)?;
        Ok(sender)
    }

    /// Sends one request. A pooled connection the upstream closed before taking the request
    /// is replaced by a new one, once, so keep-alive races never reach the client.
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), SendFailure> {
        let mut request = request;
        let mut fresh = false;
        loop {
            let mut sender = self.ready_sender(fresh).await.map_err(|_| SendFailure::Connect)?;
            match sender.try_send_request(request).await {
                Ok(mut response) => {
                    // An invalid framing drops the connection with the response.
                    let reusable = response_framing(response.headers_mut()).ok_or(SendFailure::Invalid)?;
                    return Ok((response, Lease { sender: Some(sender), pool: self.clone(), reusable }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => {
                        request = unsent;
                        fresh = true;
                    }
                    _ => return Err(SendFailure::Http(e.into_error())),
                },
            }
        }
    }
}

/// Starts the HTTP/1.1 connection task over `io` and returns its sender.
async fn drive<T>(io: T) -> Result<Sender, ProxyError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io).await.map_err(|_| ProxyError::Connect)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Checks how an upstream response's body is framed (RFC 9112 §6.3). hyper decodes a body
/// whose last coding is `chunked` and keeps both headers, so a `Content-Length` beside it
/// would be relayed with a body of another length: the length goes, and the connection with
/// it (an upstream that sent both may frame its next response differently). Any other
/// `Transfer-Encoding` (`gzip`, `chunked, chunked`, two fields) is refused: the body it
/// frames is not the one hyper would relay. `Some(reusable)`, or `None` to refuse.
fn response_framing(headers: &mut HeaderMap) -> Option<bool> {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    let Some(only) = codings.next() else { return Some(true) };
    let chunked = only.to_str().is_ok_and(|v| v.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"));
    if !chunked || codings.next().is_some() {
        return None;
    }
    Some(headers.remove(CONTENT_LENGTH).is_none())
}

/// Why a send failed.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// No connection could be made.
    Connect,
    /// The exchange failed on a connection.
    Http(hyper::Error),
    /// The response's framing cannot be relayed faithfully.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(fields: &[(&'static str, &'static str)]) -> (Option<bool>, bool) {
        let mut headers = HeaderMap::new();
        for (k, v) in fields {
            headers.append(*k, http::HeaderValue::from_static(v));
        }
        let verdict = response_framing(&mut headers);
        (verdict, headers.contains_key(CONTENT_LENGTH))
    }

    #[test]
    fn only_a_single_chunked_coding_is_relayed_and_never_beside_a_length() {
        assert_eq!(framing(&[("content-length", "2")]), (Some(true), true));
        assert_eq!(framing(&[("transfer-encoding", "chunked")]), (Some(true), false));
        assert_eq!(framing(&[("transfer-encoding", "chunked"), ("content-length", "2")]), (Some(false), false));
        for bad in [
            &[("transfer-encoding", "gzip, chunked")][..],
            &[("transfer-encoding", "chunked, chunked")],
            &[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")],
            &[("transfer-encoding", "gzip")],
        ] {
            assert_eq!(framing(bad).0, None, "{bad:?}");
        }
    }
}
