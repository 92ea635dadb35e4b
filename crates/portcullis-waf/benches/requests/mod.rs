//! The requests the inspection benches and the callgrind loop inspect: those of
//! `bench/features.sh` (`FEATURE=waf`: a GET with three query parameters and only `Host`, as
//! wrk sends it; `FEATURE=waf_json`: its 4 KiB JSON order), and a browser-like GET and order
//! bodies of this crate's own.

use http::Request;
use http::request::Parts;

pub(crate) const UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// `bench/features.sh`'s GET (`FEATURE=waf`).
pub(crate) fn features_get() -> Parts {
    Request::get("/api/products?category=books&max_price=25&sort=price_desc")
        .header("host", "127.0.0.1:18097")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0
}

/// `bench/features.sh`'s POST head (`FEATURE=waf_json`).
pub(crate) fn features_post() -> Parts {
    Request::post("/api/orders")
        .header("host", "127.0.0.1:18097")
        .header("content-type", "application/json")
        .header("content-length", "4000")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0
}

/// `bench/features.sh`'s body (`FEATURE=waf_json`), byte for byte: 30 order lines.
pub(crate) fn features_json() -> Vec<u8> {
    let mut body =
        String::from(r#"{"customer":"c-1842","note":"Leave it with the neighbour at no. 12, please","items":["#);
    for i in 0..30 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"id":{i},"sku":"SKU-{i:05}","name":"Widget number {i}","description":"A sturdy widget for everyday use, blue","qty":{},"price":{}.99}}"#,
            i % 7 + 1,
            i * 3 + 5
        ));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// A browser-like GET: three query parameters, `User-Agent` and `Accept`.
pub(crate) fn browser_get() -> Parts {
    Request::get("/v1/orders?status=shipped&page=2&q=blue%20shirt")
        .header("user-agent", UA)
        .header("accept", "application/json")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0
}

/// A JSON POST head with a browser's `User-Agent`.
pub(crate) fn browser_post() -> Parts {
    Request::post("/v1/orders")
        .header("user-agent", UA)
        .header("content-type", "application/json")
        .body(())
        .unwrap_or_default()
        .into_parts()
        .0
}

/// Order lines; `distinct`: every line's name and note differ (no value repeats, so the WAF's
/// per-body memo never helps).
pub(crate) fn json_4k(distinct: bool) -> Vec<u8> {
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
