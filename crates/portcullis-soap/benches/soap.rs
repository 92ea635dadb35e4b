//! JSON→SOAP and SOAP→JSON for a typical message of about 2 KB (SPEC §9, issue 6).
//!
//! `cargo bench -p portcullis-soap --bench soap`

#![allow(clippy::unwrap_used, reason = "a bench with bad fixtures should stop")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_soap::{Limits, SoapResponse, Wsdl};
use serde_json::{Value, json};

fn wsdl() -> Wsdl {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/contacts-wrapped.wsdl");
    Wsdl::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn contact(id: u32) -> Value {
    json!({
        "Id": id, "Name": format!("Contact number {id} & partners"), "Email": format!("c{id}@example.com"),
        "Active": id.is_multiple_of(2), "Balance": 1234.5 + f64::from(id), "Since": "2019-04-01T09:30:00Z",
        "Address": {"Street": "12 Example Street", "City": "London"},
        "Phones": {"Phone": [
            {"Kind": "work", "Number": "+44 20 7946 0000"}, {"Kind": "mobile", "Number": "+44 7700 900000"},
            {"Kind": "home", "Number": "+44 20 7946 0001"}, {"Kind": "work", "Number": "+44 20 7946 0002"},
            {"Kind": "mobile", "Number": "+44 7700 900001"}, {"Kind": "home", "Number": "+44 20 7946 0003"}
        ]},
        "Tags": ["customer", "newsletter", "priority", "europe", "retail", "partner", "2019", "renewal", "vip",
                 "support-gold", "invoice-monthly", "contact <primary>"]
    })
}

/// A FindContacts response with four contacts: about 2 KB.
fn response() -> Vec<u8> {
    let contact = |id: u32| {
        format!(
            r#"<Contact><t:Id>{id}</t:Id><t:Name>Contact number {id} &amp; partners</t:Name><t:Email>c{id}@example.com</t:Email><t:Active>true</t:Active><t:Balance>1234.50</t:Balance><t:Since>2019-04-01T09:30:00Z</t:Since><t:Address><t:Street>12 Example Street</t:Street><t:City>London</t:City></t:Address><t:Phones><t:Phone><t:Kind>work</t:Kind><t:Number>+44 20 7946 0000</t:Number></t:Phone></t:Phones><t:Tags>customer</t:Tags><t:Tags>priority</t:Tags></Contact>"#
        )
    };
    let contacts: String = (1..=4).map(contact).collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><FindContactsResponse xmlns="urn:example:crm" xmlns:t="urn:example:crm:types">{contacts}<Total>4</Total></FindContactsResponse></soap:Body></soap:Envelope>"#
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let wsdl = wsdl();
    let save = wsdl.operation("SaveContact").unwrap();
    let Value::Object(input) =
        json!({"Contact": contact(7), "Credit": {"#text": "10.00", "@currency": "EUR"}, "Notify": true})
    else {
        unreachable!()
    };
    let request_len = save.build_request(&input).unwrap().body.len();
    let find = wsdl.operation("FindContacts").unwrap();
    let body = response();
    assert!(matches!(find.parse_response(&body, &Limits::default()).unwrap(), SoapResponse::Output(_)));
    eprintln!("request envelope: {request_len} bytes; response envelope: {} bytes", body.len());

    let mut group = c.benchmark_group("soap");
    group.throughput(Throughput::Bytes(request_len as u64));
    group.bench_function("json_to_soap_2k", |b| b.iter(|| save.build_request(black_box(&input)).unwrap()));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("soap_to_json_2k", |b| {
        b.iter(|| find.parse_response(black_box(&body), &Limits::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
