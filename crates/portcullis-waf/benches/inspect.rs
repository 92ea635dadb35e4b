//! One request's inspection by the built-in rules (`cargo bench -p portcullis-waf`):
//! `bench/features.sh`'s two requests (a GET with three query parameters and only `Host`, as
//! wrk sends it; a 4 KiB JSON order of 30 lines), a browser-like GET with `User-Agent`, and
//! 4 KiB JSON bodies whose strings repeat or do not.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::request::Parts;
use portcullis_waf::{Scan, Settings, Waf};

mod requests;

fn bench(c: &mut Criterion) {
    let waf = Waf::new(Settings::default());
    let mut case = |name: &str, head: Parts, body: Option<Vec<u8>>| {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut scan = Scan::default();
                waf.inspect_head("orders", black_box(&head), &mut scan);
                if let Some(body) = &body {
                    waf.inspect_body("orders", &head, black_box(body), true, &mut scan);
                }
                black_box(scan)
            })
        });
    };
    case("features.sh GET with three query parameters", requests::features_get(), None);
    case("features.sh 4 KiB JSON POST", requests::features_post(), Some(requests::features_json()));
    case("inspect GET with three query parameters", requests::browser_get(), None);
    case("inspect 4 KiB JSON POST", requests::browser_post(), Some(requests::json_4k(false)));
    case("inspect 4 KiB JSON POST, no value repeated", requests::browser_post(), Some(requests::json_4k(true)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
