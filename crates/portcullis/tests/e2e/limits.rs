//! Request limits, framing, slow clients, idle and connection caps, bad input, and the
//! graceful drain on shutdown.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::kit::{Backend, TestGateway, WAIT, get, raw, text};

fn config(backend: &Backend, extra: &str, http2: bool) -> String {
    format!(
        r#"version: 1
listeners: [{{ name: test, bind: "@LISTEN@", http2: {http2} }}]
logging: {{ access: {{ path: off }} }}
shutdown_grace: 5s
limits:
  max_header_bytes: 2048
  max_uri_bytes: 256
  max_body_bytes: 1000
{extra}
upstreams:
  b: {{ targets: ["{}"] }}
routes:
  - {{ name: all, match: {{ path: "/{{*rest}}" }}, upstream: b, auth: none }}
"#,
        backend.url()
    )
}

fn status_of(response: &str) -> &str {
    response.get(9..12).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_uri_is_414_and_big_headers_431() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    let r = get(&gw.url(&format!("/{}", "a".repeat(300))), &[]).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(r.code(), "uri_too_long");
    let big = "b".repeat(2100);
    let r = get(&gw.url("/x"), &[("x-big", big.as_str())]).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.code(), "headers_too_large");
    assert_eq!(b.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413_declared_or_chunked() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    let declared =
        format!("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\nConnection: close\r\n\r\n{}", "a".repeat(1001));
    let out = raw(gw.addr, declared.as_bytes(), WAIT).await;
    assert_eq!(status_of(&out), "413", "{out}");
    assert!(out.contains("body_too_large"));
    assert_eq!(b.count(), 0, "the backend saw nothing of a declared oversize body");
    let chunk = "a".repeat(600);
    let chunked = format!(
        "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let out = raw(gw.addr, chunked.as_bytes(), WAIT).await;
    assert_eq!(status_of(&out), "413", "{out}");
    assert!(out.contains("body_too_large"));
    let ok = format!(
        "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let out = raw(gw.addr, ok.as_bytes(), WAIT).await;
    assert_eq!(status_of(&out), "200", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_and_never_reaches_the_backend() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    let smuggle = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: t\r\n\r\n";
    let out = raw(gw.addr, smuggle, WAIT).await;
    assert_eq!(status_of(&out), "400", "{out}");
    let two =
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde";
    let out = raw(gw.addr, two, WAIT).await;
    assert_eq!(status_of(&out), "400", "{out}");
    assert_eq!(b.count(), 0);
    assert_eq!(get(&gw.url("/still-serving"), &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_input_gets_400_and_the_gateway_keeps_serving() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    for junk in [
        &b"\x00\x01\x02\x03garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
        b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let out = raw(gw.addr, junk, Duration::from_secs(2)).await;
        assert!(out.is_empty() || status_of(&out).starts_with('4'), "{out}");
    }
    assert_eq!(get(&gw.url("/ok"), &[]).await.status, StatusCode::OK);
}

/// A client that sends part of its headers and then nothing is disconnected.
async fn assert_slow_client_is_cut_off(gw: &TestGateway, partial: &[u8]) {
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(partial).await.expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the gateway kept a slow client's connection open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_with_http2_detection() {
    let b = Backend::ok().await;
    let extra = "  header_read_timeout: 300ms";
    let gw = TestGateway::start(&config(&b, &format!("{extra}\n"), true).replace("\n\nupstreams", "\nupstreams")).await;
    assert_slow_client_is_cut_off(&gw, b"").await;
    assert_slow_client_is_cut_off(&gw, b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow:").await;
    assert_slow_client_is_cut_off(&gw, b"PRI * HTTP/2.0\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_on_http1_only_listener() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "  header_read_timeout: 300ms\n", false)).await;
    assert_slow_client_is_cut_off(&gw, b"").await;
    assert_slow_client_is_cut_off(&gw, b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_is_closed() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "  idle_timeout: 300ms\n", true)).await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("response").expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "idle connection was not closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_connections_are_closed() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "  max_connections: 2\n", true)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("response").expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let out = raw(gw.addr, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", WAIT).await;
    assert!(out.is_empty(), "a third connection was served: {out}");
    drop(held);
    // The slots free once the held connections close.
    let mut served = false;
    for _ in 0..50 {
        let out = raw(gw.addr, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", WAIT).await;
        if out.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let b = Backend::start_with_delay(Duration::from_millis(500), |_| text(StatusCode::OK, "slow-ok")).await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    let addr = gw.addr;
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    // Wait until the backend has the request, then stop the gateway.
    for _ in 0..200 {
        if b.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(b.count(), 1);
    gw.shutdown().await;
    let r = in_flight.await.expect("task");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "slow-ok");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_needs_exactly_one_host() {
    let b = Backend::ok().await;
    let gw = TestGateway::start(&config(&b, "", true)).await;
    let hosts = b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n";
    let out = raw(gw.addr, hosts, WAIT).await;
    assert_eq!(status_of(&out), "400", "{out}");
    let no_host = b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n";
    let out = raw(gw.addr, no_host, WAIT).await;
    assert_eq!(status_of(&out), "400", "{out}");
    assert_eq!(b.count(), 0);
}
