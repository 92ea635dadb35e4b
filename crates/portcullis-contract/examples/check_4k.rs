//! The bench's 4 KiB body check (`benches/validate.rs`), run a given number of times, for
//! instruction counts that do not depend on the machine's load:
//!
//! ```text
//! cargo build --release -p portcullis-contract --example check_4k
//! for n in 0 1000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/check_4k $n; done
//! ```
//!
//! (the difference of the two totals, divided by 1000, is one check). `check_4k N gateway`
//! checks `bench/features.sh`'s order against its schema instead (`FEATURE=validate`: the
//! gateway's check, byte for byte).

use std::hint::black_box;

use portcullis_contract::Request;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/fixture.rs"]
mod fixture;

fn main() {
    let mut args = std::env::args().skip(1);
    let times: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let gateway = args.next().as_deref() == Some("gateway");
    let (contract, body, headers, query) = if gateway {
        (fixture::gateway_contract(), fixture::gateway_body(), fixture::gateway_headers(), None)
    } else {
        (fixture::contract(), fixture::body(), fixture::headers(), Some("dry_run=false"))
    };
    let request = Request { path_params: &[], query, headers: &headers, has_body: true, body: Some(&body) };
    assert!(contract.check(&request).is_empty(), "{:?}", contract.check(&request));
    for _ in 0..times {
        black_box(contract.check(black_box(&request)));
    }
}
