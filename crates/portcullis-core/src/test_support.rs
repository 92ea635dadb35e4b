//! What unit tests of the stages share: a compiled one-route config and the context a
//! request from a given peer starts with.

use http::request::Parts;

use crate::context::RequestContext;
use crate::pipeline::{Downstream, intake};
use crate::snapshot::Snapshot;

/// One public route `r` on `/x` to a mock upstream.
pub(crate) fn one_route_snapshot() -> Snapshot {
    let text = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\" }]\nupstreams: { m: { mock: { status: 200 } } }\n\
                routes:\n  - { name: r, match: { path: /x }, upstream: m, auth: none }\n";
    let loaded = portcullis_config::load_str(text, "t.yaml", std::path::Path::new("/tmp"), None).expect("parses");
    crate::compile(&loaded).expect("compiles")
}

/// The context `intake` makes for `parts` arriving from `peer` (port 4000).
pub(crate) fn context(snapshot: &Snapshot, parts: &Parts, peer: [u8; 4], https: bool) -> RequestContext {
    let downstream = Downstream { peer: (peer, 4000).into(), https, listener: "l".into(), tls: None };
    intake(snapshot, parts, &downstream, now())
}

/// The wall clock's now, as a request reads it.
pub(crate) fn now() -> crate::clock::Now {
    crate::clock::Now::read(&crate::clock::SystemClock::process())
}
