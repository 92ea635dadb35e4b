//! The shared test kit: a gateway on port 0 from a YAML string or a config file (with its
//! reloader, file watcher and admin API when asked), recording mock upstreams, broken
//! upstreams, and HTTP/1.1, HTTP/2 and raw-socket clients. Everything binds 127.0.0.1.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_proxy::GatewayHandle;
use portcullis_proxy::reload::Reloader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Every network wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh, unique scratch folder.
pub fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portcullis-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A running gateway; stopped (gracefully) on drop.
pub struct TestGateway {
    /// The first listener's address.
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub handle: GatewayHandle,
    /// Started from a file: reloads it.
    pub reloader: Option<Arc<Reloader>>,
    /// With [`TestGateway::with_admin`]: the admin API's address.
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway from YAML. `@LISTEN@` in the text is replaced by `127.0.0.1:0`.
    pub async fn start(yaml: &str) -> Self {
        Self::start_in(yaml, scratch_dir()).await
    }

    pub async fn start_in(yaml: &str, dir: PathBuf) -> Self {
        let text = yaml.replace("@LISTEN@", "127.0.0.1:0").replace("@DIR@", &dir.display().to_string());
        let loaded = portcullis_config::load_str(&text, "test.yaml", &dir, None)
            .unwrap_or_else(|e| panic!("config does not load:\n{e}"));
        Self::run(loaded, dir).await
    }

    /// Starts a gateway from a config file (relative paths are relative to its folder, as
    /// with `run -c`), with a [`Reloader`] for it; no watcher, no admin API.
    pub async fn from_file(path: &Path) -> Self {
        let loaded = portcullis_config::load_file(path, None).unwrap_or_else(|e| panic!("config does not load:\n{e}"));
        let dir = path.parent().expect("a config file's folder").to_path_buf();
        let mut gw = Self::run(loaded, dir).await;
        gw.reloader = Some(Reloader::new(path.to_path_buf(), None, gw.handle.clone()));
        gw
    }

    /// [`TestGateway::from_file`] with the file watcher running, as `run -c FILE` has it.
    pub async fn start_watching(path: &Path) -> Self {
        let gw = Self::from_file(path).await;
        tokio::spawn(gw.reloader().clone().watch());
        gw
    }

    /// Binds the admin API on 127.0.0.1:0 (whatever `admin.bind` says), answering from this
    /// gateway's reloader.
    pub async fn with_admin(self) -> Self {
        self.with_admin_on("127.0.0.1:0".parse().expect("addr")).await
    }

    /// Binds the admin API on `addr`; [`TestGateway::admin_url`] then goes to 127.0.0.1 at
    /// the bound port (so `0.0.0.0:0` works too).
    pub async fn with_admin_on(mut self, addr: SocketAddr) -> Self {
        let admin = portcullis_admin::Admin::bind(addr, self.reloader().clone()).await.expect("bind admin");
        let port = admin.local_addr().expect("admin addr").port();
        self.admin = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        tokio::spawn(admin.run());
        self
    }

    async fn run(loaded: portcullis_config::Loaded, dir: PathBuf) -> Self {
        let (snapshot, files) =
            portcullis_proxy::prepare(&loaded).unwrap_or_else(|e| panic!("config does not load:\n{e}"));
        let runtime = portcullis_proxy::Runtime::new(snapshot, files).expect("runtime");
        let gateway = portcullis_proxy::Gateway::bind(runtime).await.expect("bind");
        let addr = gateway.local_addrs()[0].1;
        let handle = gateway.handle();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(gateway.run(async {
            let _ = rx.await;
        }));
        Self { addr, dir, handle, reloader: None, admin: None, stop: Some(tx), task: Some(task) }
    }

    pub fn reloader(&self) -> &Arc<Reloader> {
        self.reloader.as_ref().expect("a gateway started from a file")
    }

    /// The bound address of the listener called `name`, if it is listening.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.handle.local_addrs().into_iter().find(|(n, _)| &**n == name).map(|(_, a)| a)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.expect("started with_admin"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a mock upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

type Handler = Arc<dyn Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync>;

/// A recording upstream that answers with `handler`.
pub struct Backend {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Recorded>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Backend {
    /// Answers 200 `backend-ok` to everything.
    pub async fn ok() -> Self {
        Self::start(|_| text(StatusCode::OK, "backend-ok")).await
    }

    pub async fn start(handler: impl Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync + 'static) -> Self {
        Self::start_with_delay(Duration::ZERO, handler).await
    }

    /// Like `start`, but each answer waits `delay` first.
    pub async fn start_with_delay(
        delay: Duration,
        handler: impl Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let received: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(handler);
        let (rec, conns) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::Relaxed);
                let (rec, handler) = (rec.clone(), handler.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (rec, handler) = (rec.clone(), handler.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let r = Recorded {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                                version: parts.version,
                            };
                            rec.lock().expect("lock").push(r.clone());
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            Ok::<_, Infallible>(handler(&r))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, received, connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.received.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// A port with nothing listening (bound, then released).
pub async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

/// Accepts connections and never answers.
pub async fn hanging_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Answers every connection with bytes that are not HTTP, then closes.
pub async fn garbage_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"SSH-2.0-not-http\r\n\x00\x01\x02").await;
            });
        }
    });
    addr
}

/// A gateway response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    /// The problem document's `code`.
    pub fn code(&self) -> String {
        assert_eq!(
            self.headers.get("content-type").map(|v| v.to_str().unwrap_or_default()),
            Some("application/problem+json"),
            "not a problem document: {self:?}"
        );
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP/1.1 client (pooled) for the tests.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge client.
pub fn h2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

/// Sends a request and reads the whole response (bounded by [`WAIT`]).
pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    let fut = async {
        let resp = client.request(req).await.expect("request failed");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Reply { status: parts.status, headers: parts.headers, body }
    };
    tokio::time::timeout(WAIT, fut).await.expect("request timed out")
}

/// GET with optional headers over HTTP/1.1.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(&client(), b.body(Full::new(Bytes::new())).expect("request")).await
}

/// Polls `check` every 20 ms until it gives `Some`, failing with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes raw bytes and returns everything read until the peer closes or `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
