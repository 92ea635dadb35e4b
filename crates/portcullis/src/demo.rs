//! `portcullis demo`: the quick start that needs nothing but the binary. It starts a local
//! echo backend, builds the embedded config below around it, and serves like `run`. Each run
//! keeps its database in a folder of its own under the temp folder, removed at exit, and the
//! banner is printed only once the gateway listens.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The demo's config; `@ECHO@` and `@BIND@` are filled in at start. The database is a file
/// in the run's own folder (the config's folder).
pub(crate) const DEMO_CONFIG: &str = r#"version: 1
listeners:
  - name: demo
    bind: "@BIND@"
state:
  database: sqlite://demo.db
logging:
  access: { path: stdout }
auth:
  demo_keys: { type: api_key, header: X-Api-Key }
plans:
  demo: { rate: 5/s, burst: 10, quota: 1000/day }
consumers:
  demo: { plan: demo, keys: ["@DEMO_KEY_HASH@"] }
upstreams:
  echo:
    targets: ["http://@ECHO@"]
    retries: { attempts: 1, on: [connect_error] }
  hello:
    mock: { status: 200, headers: { content-type: application/json }, body: '{"hello":"world"}' }
routes:
  - name: hello
    match: { path: /hello, methods: [GET] }
    upstream: hello
    auth: none
    headers:
      response: { set: { X-Demo: "portcullis" } }
  - name: echo
    match: { path: "/echo/{*rest}" }
    upstream: echo
    rewrite: { path: "/{rest}" }
    auth: none
  - name: private
    match: { path: "/private/{*rest}" }
    upstream: echo
    rewrite: { path: "/{rest}" }
    auth: { any: [demo_keys] }
"#;

/// The demo consumer's API key. It is printed at start: it protects nothing but the demo.
pub(crate) const DEMO_KEY: &str = "pcl_demo_key_printed_at_start_not_a_secret";

pub(crate) fn run(bind: &str) -> ExitCode {
    let echo = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // The echo backend runs on its own thread and runtime, beside the gateway.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        echo.block_on(async {
            let _ = tx.send(crate::echo::start().await);
            std::future::pending::<()>().await;
        });
    });
    let addr = match rx.recv() {
        Ok(Ok(addr)) => addr,
        _ => {
            eprintln!("cannot start the demo echo backend");
            return ExitCode::from(1);
        }
    };
    let folder = match RunFolder::create() {
        Ok(folder) => folder,
        Err(e) => {
            eprintln!("cannot create the demo's folder in {}: {e}", std::env::temp_dir().display());
            return ExitCode::from(1);
        }
    };
    let demo_hash = portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(DEMO_KEY.as_bytes()));
    let text =
        DEMO_CONFIG.replace("@ECHO@", &addr.to_string()).replace("@BIND@", bind).replace("@DEMO_KEY_HASH@", &demo_hash);
    let loaded = portcullis_config::load_str(&text, "demo.yaml", folder.path(), None);
    let prepared = match crate::cli::prepare(loaded) {
        Ok(prepared) => prepared,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
    };
    let listening = Cell::new(false);
    let code = crate::cli::serve(prepared, None, |addrs| {
        listening.set(true);
        if let Some((_, at)) = addrs.first() {
            banner(&at.to_string());
        }
    });
    if !listening.get() {
        eprintln!("the demo did not start; `portcullis demo --bind 127.0.0.1:PORT` picks another address");
    }
    code
}

fn banner(at: &str) {
    eprintln!("Portcullis demo on http://{at}  (Ctrl-C to stop)");
    eprintln!("  curl -i http://{at}/hello              # a mock upstream");
    eprintln!("  curl -i http://{at}/echo/anything?x=1  # proxied to a local echo backend");
    eprintln!("  curl -i -H 'X-Consumer: admin' http://{at}/echo/who  # identity headers are stripped");
    eprintln!("  curl -i http://{at}/nope               # a problem document (404 no_route)");
    eprintln!("  curl -i http://{at}/private/x          # 401 missing_credentials");
    eprintln!("  curl -i -H 'X-Api-Key: {DEMO_KEY}' http://{at}/private/x");
    eprintln!("                                           # the demo consumer: X-Consumer, RateLimit-* (plan demo)");
}

/// This run's folder under the temp folder (`portcullis-demo-PID-N`, owner-only), holding
/// its database; removed with everything in it when dropped.
struct RunFolder(PathBuf);

impl RunFolder {
    fn create() -> std::io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let path = base.join(format!("portcullis-demo-{}-{nanos}-{attempt}", std::process::id()));
            // `create`, not `create_all`: a folder that already exists is never reused.
            match builder.create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
