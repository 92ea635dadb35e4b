//! One request's CRS inspection at paranoia level 1 (Debian's modsecurity-crs, installed by
//! scripts/modsecurity-crs.sh): a GET with three query parameters and a 4 KiB JSON POST.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_crs::{CrsRules, Transaction};
use std::hint::black_box;
use std::path::Path;

fn json_4k() -> Vec<u8> {
    let mut items = Vec::new();
    let mut i = 0;
    loop {
        let item = format!(
            "{{\"id\":{i},\"sku\":\"SKU-{i:05}\",\"name\":\"Widget number {i}\",\"description\":\"A sturdy widget for everyday use, blue\",\"qty\":{},\"price\":{}.99}}",
            i % 7 + 1,
            i * 3 + 5
        );
        let len: usize = items.iter().map(|s: &String| s.len() + 1).sum::<usize>() + item.len() + 40;
        if len > 4096 {
            break;
        }
        items.push(item);
        i += 1;
    }
    let mut body = format!("{{\"customer\":\"c-1842\",\"items\":[{}]}}", items.join(","));
    while body.len() < 4096 {
        body.insert(body.len() - 1, ' ');
    }
    body.into_bytes()
}

fn bench(c: &mut Criterion) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/modsecurity-crs.sh");
    let status = std::process::Command::new("bash").arg(script).status().expect("run scripts/modsecurity-crs.sh");
    assert!(status.success(), "scripts/modsecurity-crs.sh failed");
    let rules = CrsRules::load(Path::new("/usr/share/modsecurity-crs"), 1, 5).expect("Debian CRS loads");
    let ip = "192.0.2.10".parse().expect("ip");
    let get_headers: [(&str, &[u8]); 3] = [
        ("Host", b"api.example.com"),
        ("User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        ("Accept", b"application/json"),
    ];
    let get = Transaction {
        method: "GET",
        uri: "/api/products?category=books&max_price=25&sort=price_desc",
        protocol: "HTTP/1.1",
        client_ip: ip,
        headers: &get_headers,
        body: None,
    };
    assert!(!rules.evaluate(&get).blocked);
    let body = json_4k();
    assert_eq!(body.len(), 4096);
    let len = body.len().to_string();
    let post_headers: [(&str, &[u8]); 5] = [
        ("Host", b"api.example.com"),
        ("User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        ("Accept", b"application/json"),
        ("Content-Type", b"application/json"),
        ("Content-Length", len.as_bytes()),
    ];
    let post = Transaction {
        method: "POST",
        uri: "/api/orders",
        protocol: "HTTP/1.1",
        client_ip: ip,
        headers: &post_headers,
        body: Some(&body),
    };
    assert!(!rules.evaluate(&post).blocked);
    let mut g = c.benchmark_group("crs_pl1");
    g.bench_function("get_3_query_params", |b| b.iter(|| black_box(rules.evaluate(black_box(&get)))));
    g.bench_function("post_json_4k", |b| b.iter(|| black_box(rules.evaluate(black_box(&post)))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
