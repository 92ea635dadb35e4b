//! Instruction counts of one request's CRS inspection, for callgrind (the criterion bench's
//! requests, evaluated N times each; `CASE=get|post`, default both):
//!
//!   cargo build --release -p portcullis-crs --example crs_eval
//!   valgrind --tool=callgrind target/release/examples/crs_eval 20
//!
//! Needs Debian's CRS at /usr/share/modsecurity-crs (scripts/modsecurity-crs.sh).

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

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let case = std::env::var("CASE").unwrap_or_default();
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
    let body = json_4k();
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
    for _ in 0..n {
        if case != "post" {
            assert!(!black_box(rules.evaluate(black_box(&get))).blocked);
        }
        if case != "get" {
            assert!(!black_box(rules.evaluate(black_box(&post))).blocked);
        }
    }
}
