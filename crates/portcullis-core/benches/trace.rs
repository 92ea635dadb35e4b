//! What the always-on decision trace costs one request: the steps an ordinary forwarded request
//! records (every request and response phase), then the `decided_by` lookup the access log and
//! problem documents make. Compare with the proxy CPU per request of `bench/run.sh`.
//! Run: `cargo bench -p portcullis-core --bench trace`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::trace::{By, Trace, Verdict};

/// The phases of SPEC §3 a forwarded request passes, in order.
const PHASES: [&str; 17] = [
    "request_limits",
    "request_target",
    "strip_identity",
    "ip_filter",
    "route",
    "route_limits",
    "strip_hop_by_hop",
    "cors",
    "waf",
    "authenticate",
    "authorize",
    "rate_limit",
    "cache_lookup",
    "transform",
    "upstream",
    "response_transform",
    "cache_store",
];

fn benches(c: &mut Criterion) {
    let route: Arc<str> = Arc::from("orders");
    c.bench_function("trace_of_a_forwarded_request", |b| {
        b.iter(|| {
            let mut trace = Trace::default();
            for (i, phase) in PHASES.iter().enumerate() {
                match i {
                    4 => trace.record(phase, Verdict::Pass, By::Name(route.clone())),
                    7 | 8 | 12 | 16 => trace.skip(phase),
                    _ => trace.pass(phase),
                }
            }
            black_box(trace.decided_by().is_none());
            black_box(trace)
        })
    });
    c.bench_function("trace_of_a_refused_request", |b| {
        b.iter(|| {
            let mut trace = Trace::default();
            for phase in &PHASES[..10] {
                trace.pass(phase);
            }
            trace.record("authorize", Verdict::Refuse, By::Name(route.clone()));
            black_box(trace.decided_by().map(|d| d.to_string()));
        })
    });
}

criterion_group!(trace_benches, benches);
criterion_main!(trace_benches);
