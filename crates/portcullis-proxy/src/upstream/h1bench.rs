//! CPU per upstream exchange, this module's path against the hyper client connection it
//! replaced (a `SendRequest` with its connection driven by a spawned task), both against the
//! same keep-alive upstream on 127.0.0.1 running in a thread of its own whose CPU is not
//! counted. A measurement, not a test (it asserts nothing about speed):
//!
//! ```text
//! nice -n 19 cargo test -p portcullis-proxy --release --lib upstream::h1bench -- --ignored --nocapture
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::h1pool::H1Pool;
use crate::body::RequestBody;

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world!";

/// CPU nanoseconds this thread has run (`/proc/thread-self/schedstat`).
fn thread_cpu(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// CPU nanoseconds of every thread of the process but `skip`.
fn process_cpu_except(skip: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter(|t| t.file_name().to_string_lossy() != skip)
        .map(|t| thread_cpu(&format!("{}/schedstat", t.path().display())))
        .sum()
}

/// A keep-alive upstream answering every request head with [`ANSWER`], on its own thread.
fn upstream() -> (SocketAddr, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            let _ = tx.send((listener.local_addr().expect("addr"), tid));
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            if s.write_all(ANSWER).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    rx.recv().expect("upstream started")
}

fn request<B>(body: B) -> Request<B> {
    let mut request = Request::builder().uri("/bench/items?page=2").body(body).expect("request");
    let headers = request.headers_mut();
    headers.insert("host", HeaderValue::from_static("127.0.0.1"));
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers.insert("x-request-id", HeaderValue::from_static("0123456789abcdef0123456789abcdef"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
    headers.insert("traceparent", HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    request
}

async fn ours(addr: SocketAddr, n: usize) -> usize {
    let pool = H1Pool::new(addr.to_string(), Duration::from_secs(5), 16, None);
    let mut bytes = 0;
    for _ in 0..n {
        let response = pool.send(request(RequestBody::empty())).await.expect("exchange");
        bytes += response.into_body().collect().await.expect("body").to_bytes().len();
    }
    bytes
}

async fn hyper_task(addr: SocketAddr, n: usize) -> usize {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut bytes = 0;
    for _ in 0..n {
        sender.ready().await.expect("ready");
        let response = sender.send_request(request(RequestBody::empty())).await.expect("exchange");
        bytes += response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_else(|_| Bytes::new()).len();
    }
    bytes
}

fn measure(label: &str, rt: &tokio::runtime::Runtime, skip: &str, n: usize, run: impl AsyncFn(usize) -> usize) {
    rt.block_on(run(n / 10));
    let cpu = process_cpu_except(skip);
    let wall = Instant::now();
    let bytes = rt.block_on(run(n));
    let cpu = process_cpu_except(skip).saturating_sub(cpu);
    let wall = wall.elapsed();
    assert_eq!(bytes, n * 13);
    println!(
        "{label:<40} {:>8.2} µs CPU/exchange {:>8.2} µs wall/exchange ({n} sequential exchanges)",
        cpu as f64 / n as f64 / 1000.0,
        wall.as_secs_f64() * 1e6 / n as f64
    );
}

#[test]
#[ignore = "a measurement: run with --release -- --ignored --nocapture"]
fn cpu_per_exchange_of_the_in_task_exchange_and_of_a_hyper_connection_task() {
    let (addr, upstream_tid) = upstream();
    let n: usize = std::env::var("EXCHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    for _ in 0..2 {
        measure("in-task exchange, current_thread", &current, &upstream_tid, n, async |n| ours(addr, n).await);
        measure("hyper conn task, current_thread", &current, &upstream_tid, n, async |n| hyper_task(addr, n).await);
        measure("in-task exchange, multi_thread(2)", &multi, &upstream_tid, n, async |n| {
            tokio::spawn(ours(addr, n)).await.expect("join")
        });
        measure("hyper conn task, multi_thread(2)", &multi, &upstream_tid, n, async |n| {
            tokio::spawn(hyper_task(addr, n)).await.expect("join")
        });
    }
}
