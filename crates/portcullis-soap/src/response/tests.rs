use serde_json::{Value, json};

use super::*;
use crate::fault::FaultKind;
use crate::names::QName;
use crate::wsdl::tests::{fixture, wsdl};

fn output(file: &str, op: &str, response: &[u8]) -> Value {
    let w = wsdl(file);
    match w.operation(op).unwrap().parse_response(response, &Limits::default()).unwrap() {
        SoapResponse::Output(map) => Value::Object(map),
        SoapResponse::Fault(f) => panic!("fault: {f:?}"),
    }
}

fn fault(bytes: &[u8]) -> Fault {
    match parse_response_untyped(bytes, &Limits::default()).unwrap() {
        SoapResponse::Fault(f) => f,
        other => panic!("not a fault: {other:?}"),
    }
}

fn env11(body: &str) -> Vec<u8> {
    format!(r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{body}</s:Body></s:Envelope>"#)
        .into_bytes()
}

#[test]
fn wrapped_response_maps_types_arrays_nil_and_escapes() {
    let value = output("contacts-wrapped.wsdl", "GetContact", &fixture("get-contact-response.xml"));
    assert_eq!(
        value,
        json!({"GetContactResult": {
            "Id": 42, "Name": "Ada <Lovelace> & Co \u{263A}", "Email": null, "Active": true, "Balance": 1234.5,
            "Since": "1843-07-01T00:00:00Z", "Address": {"City": "London"},
            "Phones": {"Phone": [{"Kind": "home", "Number": "+44 20 7946 0000"}]},
            "Tags": ["math", "poetry"]
        }})
    );
}

#[test]
fn a_declared_array_with_one_item_is_still_an_array_and_absent_is_absent() {
    let body = r#"<FindContactsResponse xmlns="urn:example:crm"><Contact><Id xmlns="urn:example:crm:types">1</Id></Contact><Total>18446744073709551615</Total></FindContactsResponse>"#;
    let value = output("contacts-wrapped.wsdl", "FindContacts", &env11(body));
    assert_eq!(value, json!({"Contact": [{"Id": 1}], "Total": 18446744073709551615u64}));
    let empty = output(
        "contacts-wrapped.wsdl",
        "FindContacts",
        &env11(r#"<FindContactsResponse xmlns="urn:example:crm"><Total>0</Total></FindContactsResponse>"#),
    );
    assert_eq!(empty, json!({"Total": 0}));
}

#[test]
fn numbers_keep_their_kind_and_unparseable_text_stays_text() {
    use crate::schema::ValueKind::*;
    assert_eq!(scalar(" 12 ".to_owned(), Integer(None)), json!(12));
    assert_eq!(
        scalar("123456789012345678901234567890".to_owned(), Integer(None)),
        json!("123456789012345678901234567890")
    );
    assert_eq!(scalar("1.50".to_owned(), Decimal), json!(1.5));
    assert_eq!(scalar("10".to_owned(), Decimal), json!(10));
    assert_eq!(scalar("-1E3".to_owned(), Float), json!(-1000.0));
    assert_eq!(scalar("INF".to_owned(), Float), json!("INF"));
    assert_eq!(scalar("NaN".to_owned(), Float), json!("NaN"));
    assert_eq!(scalar("infinity".to_owned(), Float), json!("infinity"));
    assert_eq!(scalar("0".to_owned(), Boolean), json!(false));
    assert_eq!(scalar("".to_owned(), Boolean), Value::Null);
    assert_eq!(scalar("".to_owned(), Integer(None)), Value::Null);
    assert_eq!(scalar("".to_owned(), String), json!(""));
    assert_eq!(scalar(" x ".to_owned(), String), json!(" x "), "strings are kept as sent");
    assert_eq!(scalar("abc".to_owned(), Integer(None)), json!("abc"));
}

#[test]
fn attributes_and_text_get_stable_keys() {
    let body = r#"<q:QuoteList xmlns:q="urn:example:quotes"><quote stale="1"><symbol>A</symbol><last>1.25</last><volume>9</volume></quote><quote><symbol>B</symbol><last>2</last><volume>0</volume><extra kind="x">note</extra></quote></q:QuoteList>"#;
    let value = output("quotes-bare.wsdl", "GetQuotes", &env11(body));
    assert_eq!(
        value,
        json!({"quote": [
            {"@stale": true, "symbol": "A", "last": 1.25, "volume": 9},
            {"symbol": "B", "last": 2, "volume": 0, "extra": {"@kind": "x", "#text": "note"}}
        ]})
    );
}

#[test]
fn bare_responses_with_several_parts_key_the_part_elements() {
    let body = r#"<q:Price xmlns:q="urn:example:quotes">99.90</q:Price><q:Currency xmlns:q="urn:example:quotes" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="1"/>"#;
    assert_eq!(output("quotes-bare.wsdl", "GetPrice", &env11(body)), json!({"Price": 99.9, "Currency": null}));
}

#[test]
fn rpc_responses_map_the_parts_of_the_response_wrapper() {
    let body = r#"<r:DescribeResponse xmlns:r="urn:example:calc:rpc"><greeting>Hi</greeting><tags><tag>x</tag></tags><adult>true</adult></r:DescribeResponse>"#;
    assert_eq!(
        output("calc-rpc.wsdl", "Describe", &env11(body)),
        json!({"greeting": "Hi", "tags": {"tag": ["x"]}, "adult": true})
    );
    let add = r#"<r:AddResponse xmlns:r="urn:example:calc:rpc"><result>-3</result></r:AddResponse>"#;
    assert_eq!(output("calc-rpc.wsdl", "Add", &env11(add)), json!({"result": -3}));
}

#[test]
fn soap12_responses_and_xsi_type_are_understood() {
    let value = output("weather-soap12.wsdl", "GetForecast", &fixture("forecast-response12.xml"));
    assert_eq!(
        value,
        json!({"city": "Oslo", "day": [{"date": "2026-12-02", "high": -1.5, "low": -7, "sunny": false, "note": null}]})
    );
    let typed = r#"<a xmlns:x="http://www.w3.org/2001/XMLSchema" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><n i:type="x:int">5</n><s>5</s></a>"#;
    let w = wsdl("weather-soap12.wsdl");
    let SoapResponse::Output(map) =
        w.operation("GetForecast").unwrap().parse_response(&env11(typed), &Limits::default()).unwrap()
    else {
        panic!("fault")
    };
    assert_eq!(Value::Object(map), json!({"n": 5, "s": "5"}), "an unexpected wrapper maps by xsi:type or as text");
}

#[test]
fn without_a_schema_repetition_alone_makes_arrays() {
    let body = r#"<r><a>1</a><a>2</a><b/><c x="1"/></r>"#;
    let SoapResponse::Output(map) = parse_response_untyped(&env11(body), &Limits::default()).unwrap() else { panic!() };
    assert_eq!(Value::Object(map), json!({"a": ["1", "2"], "b": "", "c": {"@x": "1"}}));
}

#[test]
fn soap11_faults_resolve_the_code_prefix_and_keep_detail() {
    let f = fault(&fixture("fault11.xml"));
    assert_eq!(f.kind, FaultKind::Client);
    assert_eq!(f.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(f.code, QName::new(crate::names::SOAP11_ENV, "Client.Validation"));
    assert_eq!(f.faultcode, "Client.Validation");
    assert_eq!(f.faultstring, "ContactId must be positive");
    assert_eq!(f.actor.as_deref(), Some("urn:example:crm"));
    assert_eq!(f.detail, Some(json!({"ValidationError": {"Field": ["ContactId", "Name"]}})));
    let server = fault(&fixture("fault11-server.xml"));
    assert_eq!((server.kind, server.faultcode.as_str()), (FaultKind::Server, "Server"));
    assert_eq!(server.status(), http::StatusCode::BAD_GATEWAY);
}

#[test]
fn soap12_faults_map_sender_to_client_and_prefer_english() {
    let f = fault(&fixture("fault12.xml"));
    assert_eq!((f.kind, f.faultcode.as_str(), f.faultstring.as_str()), (FaultKind::Client, "Sender", "Unknown city"));
    assert_eq!(f.subcodes, [QName::new("http://example.com/weather", "UnknownCity")]);
    assert_eq!(f.detail, Some(json!({"city": "Atlantis"})));
    let r = fault(&fixture("fault12-receiver.xml"));
    assert_eq!(
        (r.kind, r.faultcode.as_str(), r.faultstring.as_str()),
        (FaultKind::Server, "Receiver", "backend timeout")
    );
}

#[test]
fn fault_codes_outside_the_envelope_namespace_are_server_faults() {
    let body = r#"<s:Fault><faultcode xmlns:c="urn:custom">c:Client</faultcode><faultstring>?</faultstring></s:Fault>"#;
    let f = fault(&env11(body));
    assert_eq!((f.kind, f.faultcode.as_str()), (FaultKind::Server, "{urn:custom}Client"));
    let unprefixed = fault(&env11("<s:Fault><faultcode>Client</faultcode></s:Fault>"));
    assert_eq!(unprefixed.kind, FaultKind::Client);
}

#[test]
fn documents_that_are_not_soap_envelopes_are_errors() {
    let e = parse_response_untyped(b"<html><body/></html>", &Limits::default()).unwrap_err();
    assert!(matches!(e, ResponseError::NotSoap(_)), "{e}");
    let e = parse_response_untyped(
        br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>"#,
        &Limits::default(),
    );
    assert!(matches!(e, Err(ResponseError::NotSoap(_))));
    for bad in ["malformed.xml", "xxe.xml", "billion-laughs.xml", "undeclared-entity.xml"] {
        let e = parse_response_untyped(&fixture(bad), &Limits::default()).unwrap_err();
        assert!(matches!(e, ResponseError::Xml(_)), "{bad}: {e}");
    }
}
