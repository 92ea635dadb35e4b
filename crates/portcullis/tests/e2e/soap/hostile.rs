//! SOAP answers no honest server sends, and requests at the limits: small hyper backends
//! answer the WSDL fixture's `GetContact` with XXE, billion laughs, deep nesting, oversized or
//! non-SOAP bodies; each is a quick 502 and the gateway keeps serving. Also what the backend
//! receives (endpoint path, SOAP headers, escaped input) and the request-side limits.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::{fixtures, post_json};
use crate::kit::{Backend, Recorded, TestGateway, get, hanging_backend, raw};

/// Route body limit of the test config: answers past it are refused too.
const LIMIT: usize = 64 * 1024;

fn soap_body(inner: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    )
}

/// The answer to `GetContact` with `ContactId` n.
fn answers() -> Vec<(u8, StatusCode, Bytes)> {
    let read = |name: &str| Bytes::from(std::fs::read(fixtures().join(name)).expect("fixture"));
    let deep = soap_body(&"<a>".repeat(100_000));
    let huge = soap_body(&format!(
        "<GetContactResponse xmlns=\"urn:example:crm\">{}</GetContactResponse>",
        "x".repeat(2 << 20)
    ));
    vec![
        (1, StatusCode::OK, read("billion-laughs.xml")),
        (2, StatusCode::OK, read("xxe.xml")),
        (3, StatusCode::OK, Bytes::from(deep)),
        (4, StatusCode::OK, Bytes::from(huge)),
        (5, StatusCode::OK, Bytes::from_static(b"<html><body>Welcome to nginx!</body></html>")),
        (6, StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"Internal Server Error")),
        (7, StatusCode::OK, read("get-contact-response.xml")),
        (8, StatusCode::INTERNAL_SERVER_ERROR, read("get-contact-response.xml")),
    ]
}

pub(super) async fn hostile_backend() -> Backend {
    let answers = answers();
    Backend::start(move |r: &Recorded| {
        let body = String::from_utf8_lossy(&r.body);
        let (status, bytes) = answers
            .iter()
            .find(|(n, _, _)| body.contains(&format!("ContactId>{n}<")))
            .map_or((StatusCode::OK, Bytes::new()), |(_, s, b)| (*s, b.clone()));
        let mut response = Response::new(Full::new(bytes));
        *response.status_mut() = status;
        response.headers_mut().insert("content-type", "text/xml; charset=utf-8".parse().expect("header"));
        response
    })
    .await
}

async fn gateway(backend: &Backend) -> TestGateway {
    let wsdl = fixtures().join("contacts-wrapped.wsdl");
    let wsdl = wsdl.display();
    let hang = hanging_backend().await;
    let config = format!(
        r#"version: 1
listeners: [{{ name: l, bind: "@LISTEN@" }}]
logging: {{ access: {{ path: "@DIR@/access.jsonl" }} }}
limits: {{ max_body_bytes: {LIMIT} }}
upstreams:
  evil: {{ targets: ["{url}"], soap: {{ wsdl: "{wsdl}" }} }}
  based: {{ targets: ["{url}/crm/svc/"], soap: {{ wsdl: "{wsdl}" }} }}
  slow: {{ targets: ["http://{hang}"], timeouts: {{ response: 300ms }}, soap: {{ wsdl: "{wsdl}" }} }}
routes:
  - {{ name: contact, match: {{ path: "/contacts/{{id}}", methods: [GET] }}, upstream: evil, auth: none, soap: {{ operation: GetContact, request: {{ ContactId: "{{path.id}}" }} }} }}
  - {{ name: based, match: {{ path: "/based/{{id}}", methods: [GET] }}, upstream: based, auth: none, soap: {{ operation: GetContact, request: {{ ContactId: "{{path.id}}" }} }} }}
  - {{ name: find, match: {{ path: /find, methods: [POST] }}, upstream: evil, auth: none, limits: {{ max_body_bytes: 1024 }}, soap: {{ operation: FindContacts }} }}
  - {{ name: slow, match: {{ path: /slow, methods: [POST] }}, upstream: slow, auth: none, soap: {{ operation: FindContacts }} }}
"#,
        url = backend.url()
    );
    TestGateway::start(&config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_soap_answers_are_a_quick_502_and_the_gateway_keeps_serving() {
    let backend = hostile_backend().await;
    let gw = gateway(&backend).await;
    for id in 1..=6 {
        let started = Instant::now();
        let reply = get(&gw.url(&format!("/contacts/{id}")), &[]).await;
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "answer {id}: {}", reply.text());
        assert_eq!(reply.code(), "upstream_error", "answer {id}");
        assert!(!reply.text().contains("nginx") && !reply.text().contains("passwd"), "{}", reply.text());
        assert!(took < Duration::from_secs(2), "answer {id} took {took:?}");
    }
    // A SOAP output with an error status is no answer either.
    assert_eq!(get(&gw.url("/contacts/8"), &[]).await.code(), "upstream_error");
    let ok = get(&gw.url("/contacts/7"), &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let contact = &ok.json()["GetContactResult"];
    assert_eq!(contact["Id"], 42, "{}", ok.text());
    assert_eq!(contact["Tags"], json!(["math", "poetry"]));
    assert_eq!(contact["Email"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_goes_to_the_wsdl_address_path_or_the_targets_base_path_with_soap_headers() {
    let backend = hostile_backend().await;
    let gw = gateway(&backend).await;
    let reply = get(&gw.url("/contacts/7"), &[("accept-encoding", "gzip"), ("if-none-match", "\"x\"")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = get(&gw.url("/based/7"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = backend.requests();
    assert_eq!(seen.len(), 2);
    let (address, based) = (&seen[0], &seen[1]);
    assert_eq!((address.method.as_str(), address.uri.as_str()), ("POST", "/ContactService.asmx"));
    assert_eq!(based.uri, "/crm/svc", "a target's base path replaces the WSDL address's");
    let header = |r: &Recorded, name: &str| r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header(address, "content-type").as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(header(address, "soapaction").as_deref(), Some("\"urn:example:crm/GetContact\""));
    assert!(header(address, "x-request-id").is_some() && header(address, "x-forwarded-for").is_some());
    assert_eq!(header(address, "accept-encoding"), None, "the answer must come back as plain XML");
    assert_eq!(header(address, "if-none-match"), None);
    assert_eq!(header(address, "content-length"), Some(address.body.len().to_string()));
    let envelope = String::from_utf8_lossy(&address.body);
    assert!(envelope.contains("GetContact") && envelope.contains(">7<"), "{envelope}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_input_is_escaped_and_request_limits_hold() {
    let backend = hostile_backend().await;
    let gw = gateway(&backend).await;
    let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;"#;
    let reply = post_json(&gw.url("/find"), &json!({"Name": xxe}).to_string()).await;
    // The backend answers an empty body to this one: no valid answer, but it was sent.
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let sent = String::from_utf8_lossy(&backend.requests()[0].body).into_owned();
    assert!(sent.contains("&lt;!DOCTYPE") && sent.contains("&amp;e;") && !sent.contains("<!DOCTYPE"), "{sent}");
    // Over the route's 1 KiB: declared, and streamed in chunks.
    let big = json!({"Name": "x".repeat(4096)}).to_string();
    assert_eq!(post_json(&gw.url("/find"), &big).await.code(), "body_too_large");
    let chunked = format!(
        "POST /find HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let answer = raw(gw.addr, chunked.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(backend.count(), 1, "nothing over the limit reached the backend");
    let not_json = post_json(&gw.url("/find"), "Name=Ada").await;
    assert_eq!(not_json.code(), "bad_request");
    let array = post_json(&gw.url("/find"), "[1]").await;
    assert_eq!(array.code(), "invalid_request");
    let missing = post_json(&gw.url("/find"), "{}").await;
    assert_eq!(missing.code(), "invalid_request", "Name is required");
    let started = Instant::now();
    let slow = post_json(&gw.url("/slow"), r#"{"Name": "Ada"}"#).await;
    assert_eq!((slow.status, slow.code().as_str()), (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soap_exchanges_are_in_the_access_log_with_target_and_outcome() {
    let backend = hostile_backend().await;
    let gw = gateway(&backend).await;
    assert_eq!(get(&gw.url("/contacts/7"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/contacts/5"), &[]).await.status, StatusCode::BAD_GATEWAY);
    assert_eq!(post_json(&gw.url("/find"), r#"{"Name": 1, "Nope": 2}"#).await.status, StatusCode::BAD_REQUEST);
    let lines = crate::access_log::wait_for_lines(&gw, 3).await;
    // Found by path: lines are written as answers finish, not in the order requests were sent.
    let line = |path: &str| -> serde_json::Value {
        lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
            .find(|v| v["path"] == path)
            .unwrap_or_else(|| panic!("no line for {path}: {lines:#?}"))
    };
    let (ok, bad, refused) = (line("/contacts/7"), line("/contacts/5"), line("/find"));
    assert_eq!(
        (ok["status"].clone(), ok["outcome"].clone(), ok["route"].clone()),
        (json!(200), json!("ok"), json!("contact"))
    );
    assert_eq!(ok["upstream"], "evil");
    assert_eq!(ok["target"], backend.url());
    assert!(ok["upstream_ms"].as_f64().is_some() && ok["bytes_out"].as_u64() > Some(0), "{ok}");
    assert_eq!((bad["status"].clone(), bad["outcome"].clone()), (json!(502), json!("upstream_error")));
    assert_eq!((refused["status"].clone(), refused["outcome"].clone()), (json!(400), json!("invalid_request")));
    assert_eq!(refused["bytes_in"], 22);
    assert!(refused["target"].is_null(), "refused before any upstream was asked: {refused}");
}
