use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::*;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn pipe_to(url: &str) -> Pipe {
    let client = redis::Client::open(url).expect("url");
    Pipe::new(Arc::new(Target::new(&client, None)))
}

fn command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    resp::array_header(buf, args.len());
    for arg in args {
        resp::bulk(buf, arg);
    }
}

/// Whether the machine's Redis answers; without it the test is skipped, except in CI.
async fn machine_redis(pipe: &Pipe) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    let ok = pipe.call(deadline, |b| command(b, &[b"PING"])).await == Ok(Reply::Status("PONG".into()));
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but no Redis at {}", redis_url());
        eprintln!("skipped: no Redis at {}", redis_url());
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_each_get_their_own_reply() {
    let pipe = Arc::new(pipe_to(&redis_url()));
    if !machine_redis(&pipe).await {
        return;
    }
    let mut tasks = Vec::new();
    for task in 0..32 {
        let pipe = pipe.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let text = format!("{task}:{i}");
                let deadline = Instant::now() + Duration::from_secs(5);
                let reply = pipe.call(deadline, |b| command(b, &[b"ECHO", text.as_bytes()])).await;
                assert_eq!(reply, Ok(Reply::Bulk(text.clone().into_bytes())));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

/// A server that accepts and then says nothing: every call fails by its deadline, and each
/// batch after a timeout opens a new connection (the old one's state is unknown).
#[tokio::test]
async fn a_silent_server_fails_calls_by_their_deadline_and_is_reconnected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.expect("accept");
            held.push(stream);
        }
        held.len()
    });
    let pipe = pipe_to(&format!("redis://127.0.0.1:{port}"));
    for _ in 0..2 {
        let started = Instant::now();
        let reply = pipe.call(started + Duration::from_millis(100), |b| command(b, &[b"PING"])).await;
        assert_eq!(reply, Err(Failed));
        assert!(started.elapsed() < Duration::from_secs(2), "the call outlived its deadline by far");
    }
    assert_eq!(accepted.await.expect("server"), 2, "the second call did not reconnect");
}

/// A server that speaks something other than RESP loses the connection; error replies are
/// replies, and the connection goes on after them.
#[tokio::test]
async fn garbage_breaks_the_connection_but_an_error_reply_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut connections = 0;
        for answer in [&b"-ERR no\r\n+OK\r\n"[..], b"?what\r\n"] {
            let (mut stream, _) = listener.accept().await.expect("accept");
            connections += 1;
            let mut buf = [0u8; 256];
            let mut seen = 0;
            // Wait for as many commands as replies, then answer them all at once.
            let wanted = if answer.starts_with(b"-") { 2 } else { 1 };
            while seen < wanted {
                let n = stream.read(&mut buf).await.expect("read");
                seen += buf[..n].iter().filter(|&&b| b == b'*').count();
            }
            stream.write_all(answer).await.expect("write");
            if answer.starts_with(b"-") {
                // This connection stays usable: the next call goes on it, answered here.
                let _ = stream.read(&mut buf).await;
                stream.write_all(b"?what\r\n").await.expect("write");
            }
        }
        connections
    });
    let pipe = Arc::new(pipe_to(&format!("redis://127.0.0.1:{port}")));
    let deadline = || Instant::now() + Duration::from_secs(2);
    let (a, b) = tokio::join!(
        pipe.call(deadline(), |b| command(b, &[b"PING"])),
        pipe.call(deadline(), |b| command(b, &[b"PING"]))
    );
    assert_eq!(a, Ok(Reply::Error("ERR no".into())));
    assert_eq!(b, Ok(Reply::Status("OK".into())));
    assert_eq!(pipe.call(deadline(), |b| command(b, &[b"PING"])).await, Err(Failed), "garbage is no reply");
    assert_eq!(pipe.call(deadline(), |b| command(b, &[b"PING"])).await, Err(Failed));
    assert_eq!(server.await.expect("server"), 2, "a broken connection is not reused");
}
