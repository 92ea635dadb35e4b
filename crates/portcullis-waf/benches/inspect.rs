//! One request's inspection by the built-in rules: a GET with three query parameters and the
//! usual headers, and a 4 KiB JSON POST (`cargo bench -p portcullis-waf`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use portcullis_waf::{Scan, Settings, Waf};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// Order lines; `distinct`: every line's name and note differ (no value repeats, so the WAF's
/// per-body memo never helps).
fn json_4k(distinct: bool) -> Vec<u8> {
    let mut items = Vec::new();
    let mut i = 0;
    while serde_json::to_vec(&items).map_or(0, |v| v.len()) < 4096 {
        let (name, note) = if distinct {
            (format!("Blue cotton shirt, size M, batch {i}"), format!("Leave it with neighbour {i} if nobody's home"))
        } else {
            ("Blue cotton shirt, size M".to_owned(), "Leave it with the neighbour if nobody's home".to_owned())
        };
        items.push(serde_json::json!({
            "id": i, "sku": format!("SKU-{i:05}"), "name": name, "note": note, "qty": 2, "price": 19.99
        }));
        i += 1;
    }
    serde_json::to_vec(&serde_json::json!({ "customer": "O'Brien", "items": items })).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let waf = Waf::new(Settings::default());
    let get = Request::get("/v1/orders?status=shipped&page=2&q=blue%20shirt")
        .header("user-agent", UA)
        .header("accept", "application/json")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0;
    c.bench_function("inspect GET with three query parameters", |b| {
        b.iter(|| {
            let mut scan = Scan::default();
            waf.inspect_head("orders", black_box(&get), &mut scan);
            black_box(scan)
        })
    });
    let body = json_4k(false);
    let post = Request::post("/v1/orders")
        .header("user-agent", UA)
        .header("content-type", "application/json")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0;
    c.bench_function("inspect 4 KiB JSON POST", |b| {
        b.iter(|| {
            let mut scan = Scan::default();
            waf.inspect_head("orders", black_box(&post), &mut scan);
            waf.inspect_body("orders", &post, black_box(&body), true, &mut scan);
            black_box(scan)
        })
    });
    let distinct = json_4k(true);
    c.bench_function("inspect 4 KiB JSON POST, no value repeated", |b| {
        b.iter(|| {
            let mut scan = Scan::default();
            waf.inspect_head("orders", black_box(&post), &mut scan);
            waf.inspect_body("orders", &post, black_box(&distinct), true, &mut scan);
            black_box(scan)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
