//! Any bytes parsed as an HTTP/1.1 head, then through intake and every request stage of a
//! config with host, parameter and catch-all routes, rewrites, case- and slash-insensitive
//! matching and matrix parameters: a Flow, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::pipeline::{self, Downstream};

const CONFIG: &str = r#"version: 1
listeners: [{ name: l, bind: "127.0.0.1:8080" }]
trusted_proxies: ["127.0.0.0/8"]
routing: { case_insensitive: true, trailing_slash: ignore }
upstreams: { up: { targets: ["http://127.0.0.1:9"] } }
routes:
  - { name: a, match: { host: "*.example.com", path: "/v1/{id}" }, upstream: up, auth: none, rewrite: { path: "/x/{id}" } }
  - { name: b, match: { path: "/static/{*rest}", methods: [GET], matrix_params: true }, upstream: up, auth: none, rewrite: { path: "/s/{rest}" } }
  - { name: c, match: { path: "/", methods: [GET, POST] }, upstream: up, auth: none }
"#;

static SNAPSHOT: LazyLock<portcullis_core::Snapshot> = LazyLock::new(|| {
    let loaded = portcullis_config::load_str(CONFIG, "fuzz.yaml", std::path::Path::new("/"), None);
    portcullis_core::compile(&loaded.expect("fuzz config loads")).expect("fuzz config compiles")
});

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else { return };
    let mut builder = http::Request::builder().method(req.method.unwrap_or("GET")).uri(req.path.unwrap_or("/"));
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let Ok(request) = builder.body(()) else { return };
    let (mut parts, ()) = request.into_parts();
    let downstream =
        Downstream { peer: "127.0.0.1:5555".parse().expect("addr"), https: false, listener: "l".into(), tls: None };
    let mut ctx = pipeline::intake(&SNAPSHOT, &parts, &downstream);
    let _ = pipeline::on_request(&SNAPSHOT, &portcullis_core::stage::AuthSources::default(), &mut parts, &mut ctx);
});
