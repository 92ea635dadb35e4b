//! One request's inspection run N times, for instruction counts under callgrind (which the
//! machine's load does not disturb, unlike wall-clock benches):
//!
//! ```sh
//! cargo build --release -p portcullis-waf --example inspect_loop
//! for n in 1 1001; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/inspect_loop features_get $n; done
//! ```
//!
//! (instructions of the 1001-run loop less the 1-run one, over 1000: one inspection). Cases:
//! `features_get`, `features_json` (`bench/features.sh`'s requests), `browser_get`,
//! `json_repeated`, `json_distinct` (the criterion bench's); `reference-` before a case runs
//! `Waf::reference` instead.

use std::hint::black_box;

use portcullis_waf::{Scan, Settings, Waf};

#[path = "../benches/requests/mod.rs"]
mod requests;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "features_get".to_owned());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let (case, waf) = match case.strip_prefix("reference-") {
        Some(case) => (case.to_owned(), Waf::reference(Settings::default())),
        None => (case, Waf::new(Settings::default())),
    };
    let (head, body) = match case.as_str() {
        "features_get" => (requests::features_get(), None),
        "features_json" => (requests::features_post(), Some(requests::features_json())),
        "browser_get" => (requests::browser_get(), None),
        "json_repeated" => (requests::browser_post(), Some(requests::json_4k(false))),
        "json_distinct" => (requests::browser_post(), Some(requests::json_4k(true))),
        other => {
            eprintln!("unknown case {other}");
            std::process::exit(2);
        }
    };
    let mut last = Scan::default();
    for _ in 0..n {
        let mut scan = Scan::default();
        waf.inspect_head("orders", black_box(&head), &mut scan);
        if let Some(body) = &body {
            waf.inspect_body("orders", &head, black_box(body), true, &mut scan);
        }
        last = black_box(scan);
    }
    println!("{case}: score {} rules {:?}", last.score(), last.rules());
}
