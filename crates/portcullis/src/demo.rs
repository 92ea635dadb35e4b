//! `portcullis demo`: the quick start that needs nothing but the binary. It starts a local
//! echo backend, builds the embedded config below around it, and serves like `run`.

use std::process::ExitCode;

/// The demo's config; `@ECHO@` and `@BIND@` are filled in at start.
pub(crate) const DEMO_CONFIG: &str = r#"version: 1
listeners:
  - name: demo
    bind: "@BIND@"
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
    let demo_hash = portcullis_auth::api_key::stored_form(&portcullis_auth::api_key::digest_of(DEMO_KEY.as_bytes()));
    let text =
        DEMO_CONFIG.replace("@ECHO@", &addr.to_string()).replace("@BIND@", bind).replace("@DEMO_KEY_HASH@", &demo_hash);
    let dir = std::env::temp_dir();
    let loaded = portcullis_config::load_str(&text, "demo.yaml", &dir, None);
    let snapshot = match crate::cli::build(loaded) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
    };
    eprintln!("Portcullis demo on http://{bind}  (Ctrl-C to stop)");
    eprintln!("  curl -i http://{bind}/hello              # a mock upstream");
    eprintln!("  curl -i http://{bind}/echo/anything?x=1  # proxied to a local echo backend");
    eprintln!("  curl -i -H 'X-Consumer: admin' http://{bind}/echo/who  # identity headers are stripped");
    eprintln!("  curl -i http://{bind}/nope               # a problem document (404 no_route)");
    eprintln!("  curl -i http://{bind}/private/x          # 401 missing_credentials");
    eprintln!("  curl -i -H 'X-Api-Key: {DEMO_KEY}' http://{bind}/private/x");
    eprintln!("                                           # the demo consumer: X-Consumer, RateLimit-* (plan demo)");
    crate::cli::serve(snapshot, None)
}
