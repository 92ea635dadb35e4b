use serde_json::{Value, json};

use crate::wsdl::tests::wsdl;
use crate::xml::{self, Element, Limits};

fn input(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn envelope(file: &str, op: &str, value: Value) -> String {
    let w = wsdl(file);
    let request = w.operation(op).unwrap().build_request(&input(value)).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(request.body).unwrap()
}

fn error(file: &str, op: &str, value: Value) -> String {
    let w = wsdl(file);
    w.operation(op).unwrap().build_request(&input(value)).unwrap_err().to_string()
}

fn body(xml_text: &str) -> Element {
    let mut root = xml::parse(xml_text.as_bytes(), &Limits::default()).unwrap();
    let mut body = root.children.remove(0);
    body.children.remove(0)
}

#[test]
fn wrapped_request_qualifies_elements_as_the_schema_says() {
    let text = envelope("contacts-wrapped.wsdl", "GetContact", json!({"ContactId": "42"}));
    assert_eq!(
        text,
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns0="urn:example:crm"><soap:Body><ns0:GetContact><ns0:ContactId>42</ns0:ContactId></ns0:GetContact></soap:Body></soap:Envelope>"#
    );
}

#[test]
fn nested_values_follow_schema_order_with_arrays_nil_and_attributes() {
    let contact = json!({
        "Tags": ["a", "b"], "Name": "Ada & <Co>", "Id": 7, "Active": true, "Email": null,
        "Phones": {"Phone": [{"Kind": "home", "Number": "1"}, {"Number": "2", "Kind": "work"}]},
        "Address": {"City": "London"}, "Balance": 12.5
    });
    let text = envelope(
        "contacts-wrapped.wsdl",
        "SaveContact",
        json!({"Contact": contact, "Credit": {"#text": "10.00", "@currency": "EUR"}, "Notify": "1"}),
    );
    let save = body(&text);
    let c = &save.children[0];
    let names: Vec<&str> = c.children.iter().map(|e| &*e.local).collect();
    assert_eq!(names, ["Id", "Name", "Email", "Active", "Balance", "Address", "Phones", "Tags", "Tags"]);
    assert!(c.children.iter().all(|e| &*e.ns == "urn:example:crm:types"));
    assert_eq!(c.children[1].text, "Ada & <Co>");
    assert_eq!(c.children[2].attr_ns(crate::names::XSI, "nil"), Some("true"));
    assert_eq!(c.children[6].children[1].children[0].text, "work", "Kind comes before Number");
    let credit = &save.children[1];
    assert_eq!((credit.attr("currency"), credit.text.as_str()), (Some("EUR"), "10.00"));
    assert_eq!(save.children[2].text, "1");
}

#[test]
fn values_are_checked_against_their_xsd_types() {
    let find = |v: Value| error("contacts-wrapped.wsdl", "FindContacts", v);
    assert_eq!(find(json!({"Name": "a", "MaxResults": 70000})), "/MaxResults: expected an integer (xs:unsignedShort)");
    assert_eq!(find(json!({"Name": "a", "MaxResults": "ten"})), "/MaxResults: expected an integer (xs:unsignedShort)");
    assert_eq!(find(json!({"Name": "a", "ActiveOnly": "yes"})), "/ActiveOnly: expected a boolean (xs:boolean)");
    assert_eq!(find(json!({"Name": {"x": 1}})), "/Name: expected a string (xs:string)");
    assert_eq!(find(json!({"Name": ["a", "b"]})), "/Name: takes one value, not an array");
    assert_eq!(find(json!({"Name": null})), "/Name: null is not allowed here (the element is not nillable)");
    let ok = envelope("contacts-wrapped.wsdl", "FindContacts", json!({"Name": 5, "MaxResults": 3.0, "@mode": "fuzzy"}));
    assert!(
        ok.contains(r#"<ns0:FindContacts mode="fuzzy"><ns0:Name>5</ns0:Name><ns0:MaxResults>3</ns0:MaxResults>"#),
        "{ok}"
    );
}

#[test]
fn unknown_and_missing_fields_are_named() {
    let err = error("contacts-wrapped.wsdl", "GetContact", json!({"ContactId": 1, "Extra": 2}));
    assert_eq!(err, "/Extra: unknown field `Extra`; expected one of: ContactId");
    assert_eq!(error("contacts-wrapped.wsdl", "GetContact", json!({})), "/ContactId: this required field is missing");
    let deep =
        error("contacts-wrapped.wsdl", "SaveContact", json!({"Contact": {"Id": 1, "Name": "n"}, "Notify": true}));
    assert_eq!(deep, "/Contact/Active: this required field is missing");
    let choice = error(
        "contacts-wrapped.wsdl",
        "SaveContact",
        json!({"Contact": {"Id": 1, "Name": "n", "Active": false}, "Notify": true, "NotifyEmail": "a@b"}),
    );
    assert_eq!(choice, "the input: give only one of: Notify, NotifyEmail");
    let attr = error(
        "contacts-wrapped.wsdl",
        "SaveContact",
        json!({"Contact": {"Id": 1, "Name": "n", "Active": false}, "Notify": true, "Credit": 5}),
    );
    assert_eq!(attr, "/Credit: expected an object with `#text` and @currency");
    let attr = error(
        "contacts-wrapped.wsdl",
        "SaveContact",
        json!({"Contact": {"Id": 1, "Name": "n", "Active": false}, "Notify": true, "Credit": {"#text": 5}}),
    );
    assert_eq!(attr, "/Credit/@currency: this required attribute is missing");
}

#[test]
fn text_that_xml_cannot_carry_is_refused_and_markup_is_escaped() {
    let err = error("contacts-wrapped.wsdl", "FindContacts", json!({"Name": "a\u{0}b"}));
    assert_eq!(err, "/Name: the character U+0000 cannot be sent in XML");
    let text = envelope(
        "contacts-wrapped.wsdl",
        "FindContacts",
        json!({"Name": "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///\">]>&e;\r", "@mode": "\"'\t"}),
    );
    assert!(text.contains("&lt;!DOCTYPE x [&lt;!ENTITY e SYSTEM \"file:///\"&gt;]&gt;&amp;e;&#13;"), "{text}");
    assert!(text.contains(r#"mode="&quot;'&#9;""#), "{text}");
    let find = body(&text);
    assert_eq!(find.children[0].text, "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///\">]>&e;\r");
}

#[test]
fn soap12_requests_carry_the_action_in_the_content_type() {
    let w = wsdl("weather-soap12.wsdl");
    let request =
        w.operation("GetForecast").unwrap().build_request(&input(json!({"city": "Oslo", "days": "3"}))).unwrap();
    assert_eq!(
        request.content_type,
        "application/soap+xml; charset=utf-8; action=\"http://example.com/weather/GetForecast\""
    );
    assert!(request.soap_action.is_none());
    let text = String::from_utf8(request.body).unwrap();
    assert!(text.contains(r#"xmlns:soap="http://www.w3.org/2003/05/soap-envelope""#));
    assert!(text.contains("<ns0:GetForecast><city>Oslo</city><days>3</days></ns0:GetForecast>"), "{text}");
}

#[test]
fn soap11_requests_send_a_quoted_soapaction_even_when_empty() {
    let w = wsdl("quotes-bare.wsdl");
    let request = w.operation("GetPrice").unwrap().build_request(&input(json!({"Symbol": "ACME"}))).unwrap();
    let headers: Vec<(String, String)> =
        request.headers().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned())).collect();
    assert_eq!(
        headers,
        [("content-type".into(), "text/xml; charset=utf-8".into()), ("soapaction".into(), "\"\"".into())]
    );
    let text = String::from_utf8(request.body).unwrap();
    assert!(
        text.contains("<soap:Body><ns0:Symbol>ACME</ns0:Symbol></soap:Body>"),
        "bare: the part element is the body"
    );
}

#[test]
fn bare_complex_parts_and_rpc_parts_are_wrapped_as_the_wsdl_says() {
    let quotes = envelope("quotes-bare.wsdl", "GetQuotes", json!({"symbol": ["A", "B"]}));
    assert!(quotes.contains("<ns0:QuoteRequest><symbol>A</symbol><symbol>B</symbol></ns0:QuoteRequest>"), "{quotes}");
    let too_many = error("quotes-bare.wsdl", "GetQuotes", json!({"symbol": vec!["x"; 11]}));
    assert_eq!(too_many, "/symbol: has more items than the schema's maxOccurs");
    let rpc = envelope("calc-rpc.wsdl", "Add", json!({"a": 1, "b": "-2"}));
    assert!(rpc.contains(r#"xmlns:ns0="urn:example:calc:rpc""#));
    assert!(rpc.contains("<ns0:Add><a>1</a><b>-2</b></ns0:Add>"), "{rpc}");
    let person =
        envelope("calc-rpc.wsdl", "Describe", json!({"person": {"name": "A", "friend": {"name": "B", "age": 3}}}));
    assert!(person.contains("<person><name>A</name><friend><name>B</name><age>3</age></friend></person>"), "{person}");
}
