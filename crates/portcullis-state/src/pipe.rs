//! One pipelined connection to Redis, shared by every decision made on a worker thread.
//!
//! A caller writes its command into the queue's buffer and waits for its reply. One driver
//! task per connection takes everything queued, writes it with one `write` and reads the
//! replies in order, handing each to its caller as soon as it is parsed. Decisions that
//! arrive while a batch is in flight queue up and go out together as the next batch, so under
//! load one round trip and a few system calls serve many decisions; alone, a decision costs
//! one write, one read and two task wake-ups.
//!
//! Bounds: each caller gives a deadline; a batch must be connected, written and answered by
//! the earliest deadline in it, or the connection is dropped (its state is then unknown) and
//! every caller in the batch fails; the next batch connects afresh. So a caller is answered or
//! refused by its own deadline, without a timer of its own.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::resp::{self, Reply};
use crate::target::{Io, Target};

/// A read buffer this long without one whole reply means a broken server.
const MAX_PENDING_REPLY: usize = 4 << 20;
/// Read size: a batch of replies to a few hundred decisions.
const READ_CHUNK: usize = 16 * 1024;

/// The call got no reply: not connected, timed out, the connection broke, or the server
/// spoke something other than RESP. (Error replies are replies: see [`Reply::Error`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

type Answer = oneshot::Sender<Reply>;

/// One connection and its queue. Dropping it ends the driver and closes the connection.
pub(crate) struct Pipe {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    target: Arc<Target>,
}

#[derive(Default)]
struct Queue {
    /// Commands waiting for the next batch, back to back.
    buf: Vec<u8>,
    /// Their callers, in the same order.
    waiters: Vec<Answer>,
    /// The earliest deadline among them.
    deadline: Option<Instant>,
    driver: Driver,
    closed: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Not started yet (or it panicked): the next caller spawns it.
    #[default]
    Absent,
    /// Waiting for work: the next caller wakes it.
    Idle,
    /// Working: it looks at the queue again when its batch is done.
    Busy,
}

impl Pipe {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        Self { shared: Arc::new(Shared { queue: Mutex::new(Queue::default()), wake: Notify::new(), target }) }
    }

    /// Sends the command `encode` writes (one RESP array) and waits for its reply, at most
    /// until `deadline`. Must be called inside a tokio runtime.
    pub(crate) async fn call(&self, deadline: Instant, encode: impl FnOnce(&mut Vec<u8>)) -> Result<Reply, Failed> {
        let (tx, rx) = oneshot::channel();
        let driver = {
            let mut q = self.shared.queue.lock();
            if q.closed {
                return Err(Failed);
            }
            encode(&mut q.buf);
            q.waiters.push(tx);
            q.deadline = Some(q.deadline.map_or(deadline, |d| d.min(deadline)));
            std::mem::replace(&mut q.driver, Driver::Busy)
        };
        match driver {
            Driver::Absent => drop(tokio::spawn(drive(self.shared.clone()))),
            Driver::Idle => self.shared.wake.notify_one(),
            Driver::Busy => {}
        }
        // A dropped sender (the batch failed) is the failure.
        rx.await.map_err(|_| Failed)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// Marks the driver absent when it ends, even by a panic, so the next caller starts another
/// rather than queueing forever.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.queue.lock().driver = Driver::Absent;
    }
}

async fn drive(shared: Arc<Shared>) {
    let running = Running(shared);
    let shared = &running.0;
    let mut conn: Option<Conn> = None;
    let (mut out, mut waiters) = (Vec::new(), Vec::new());
    // One timer for the driver's life, moved to each batch's deadline. Those deadlines only
    // grow (each caller's is its call time plus the same timeout), and tokio moves a timer
    // later without touching its wheel; a fresh `timeout_at` per batch was a new earliest
    // timer each time, so the runtime woke its own I/O driver for it (an eventfd `write` and
    // an `epoll_wait` per batch).
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    loop {
        let deadline = {
            let mut q = shared.queue.lock();
            if q.waiters.is_empty() {
                if q.closed {
                    return;
                }
                q.driver = Driver::Idle;
                None
            } else {
                std::mem::swap(&mut q.buf, &mut out);
                std::mem::swap(&mut q.waiters, &mut waiters);
                q.deadline.take()
            }
        };
        let Some(deadline) = deadline else {
            shared.wake.notified().await;
            continue;
        };
        // Callers whose time is up are refused without touching the connection.
        if deadline > Instant::now() {
            timer.as_mut().reset(deadline);
            let answered = tokio::select! {
                biased;
                done = exchange(&shared.target, &mut conn, &out, &mut waiters) => done.is_ok(),
                () = timer.as_mut() => false,
            };
            if !answered {
                conn = None;
            }
        }
        // Callers not answered are failed by dropping their senders.
        waiters.clear();
        out.clear();
    }
}

/// Writes one batch and hands each reply to its caller, in order.
async fn exchange(
    target: &Target,
    conn: &mut Option<Conn>,
    out: &[u8],
    waiters: &mut Vec<Answer>,
) -> Result<(), Failed> {
    if conn.is_none() {
        *conn = Some(Conn::new(target.connect().await.map_err(|_| Failed)?));
        if let Some(c) = conn.as_mut() {
            c.handshake(target).await?;
        }
    }
    let Some(c) = conn.as_mut() else { return Err(Failed) };
    c.io.write_all(out).await.map_err(|_| Failed)?;
    c.io.flush().await.map_err(|_| Failed)?;
    for answer in waiters.drain(..) {
        let reply = c.read_reply().await?;
        // The caller may have gone (its request ended); the reply still had to be read.
        let _ = answer.send(reply);
    }
    Ok(())
}

/// A connected stream and what has been read from it but not parsed yet.
pub(crate) struct Conn {
    io: Box<dyn Io>,
    read: Vec<u8>,
    start: usize,
}

impl Conn {
    pub(crate) fn new(io: Box<dyn Io>) -> Self {
        Self { io, read: Vec::with_capacity(READ_CHUNK), start: 0 }
    }

    /// `AUTH` and `SELECT` as the URL asks, before any other command.
    async fn handshake(&mut self, target: &Target) -> Result<(), Failed> {
        let mut buf = Vec::new();
        let commands = target.handshake(&mut buf);
        if commands == 0 {
            return Ok(());
        }
        self.io.write_all(&buf).await.map_err(|_| Failed)?;
        self.io.flush().await.map_err(|_| Failed)?;
        for _ in 0..commands {
            if let Reply::Error(_) = self.read_reply().await? {
                return Err(Failed);
            }
        }
        Ok(())
    }

    pub(crate) async fn read_reply(&mut self) -> Result<Reply, Failed> {
        loop {
            match resp::parse(&self.read[self.start..]) {
                Ok(Some((reply, used))) => {
                    self.start += used;
                    if self.start == self.read.len() {
                        self.read.clear();
                        self.start = 0;
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(resp::ProtocolError) => return Err(Failed),
            }
            if self.start > 0 {
                self.read.drain(..self.start);
                self.start = 0;
            }
            if self.read.len() > MAX_PENDING_REPLY {
                return Err(Failed);
            }
            self.read.reserve(READ_CHUNK);
            match self.io.read_buf(&mut self.read).await {
                Ok(0) | Err(_) => return Err(Failed),
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "pipe_tests.rs"]
mod tests;
