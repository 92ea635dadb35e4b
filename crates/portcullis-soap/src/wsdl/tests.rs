use super::*;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn wsdl(name: &str) -> Wsdl {
    Wsdl::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn wrapped_service_lists_each_operation_once_on_its_soap11_port() {
    let w = wsdl("contacts-wrapped.wsdl");
    let ops: Vec<(&str, SoapVersion)> = w.operations().map(|o| (o.name(), o.version())).collect();
    assert_eq!(
        ops,
        [
            ("GetContact", SoapVersion::Soap11),
            ("FindContacts", SoapVersion::Soap11),
            ("SaveContact", SoapVersion::Soap11)
        ]
    );
    assert_eq!(w.all_operations().len(), 6, "both ports stay available");
    assert!(w.unsupported().is_empty(), "{:?}", w.unsupported());
    let op = w.operation("GetContact").unwrap();
    assert_eq!(op.service(), "ContactService");
    assert_eq!(op.port(), "ContactServiceSoap");
    assert_eq!(op.style(), Style::Document);
    assert_eq!(op.action(), Some("urn:example:crm/GetContact"));
    assert_eq!(op.endpoint(), Some("https://crm.internal/ContactService.asmx"));
    assert_eq!(op.input_fields(), ["ContactId"]);
    assert!(!op.is_one_way());
    assert_eq!(w.services()[0].ports.len(), 2);
}

#[test]
fn a_version_can_be_chosen_explicitly() {
    let w = wsdl("contacts-wrapped.wsdl");
    let op = w.operation_with_version("FindContacts", SoapVersion::Soap12).unwrap();
    assert_eq!(op.port(), "ContactServiceSoap12");
    assert_eq!(op.input_fields(), ["Name", "MaxResults", "ActiveOnly", "@mode"]);
}

#[test]
fn an_unknown_operation_lists_each_known_one_once() {
    // Each operation is bound to a SOAP 1.2 and a SOAP 1.1 port.
    let err = wsdl("contacts-wrapped.wsdl").operation("GetContacts").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the WSDL has no SOAP operation `GetContacts` (it has: GetContact, FindContacts, SaveContact)"
    );
}

#[test]
fn a_soap12_only_service_uses_soap12() {
    let w = wsdl("weather-soap12.wsdl");
    let op = w.operation("GetForecast").unwrap();
    assert_eq!(op.version(), SoapVersion::Soap12);
    assert!(matches!(
        w.operation_with_version("GetForecast", SoapVersion::Soap11),
        Err(WsdlError::UnknownOperation { .. })
    ));
}

#[test]
fn bare_and_rpc_messages_expose_the_right_keys() {
    let quotes = wsdl("quotes-bare.wsdl");
    assert_eq!(quotes.operation("GetPrice").unwrap().input_fields(), ["Symbol"]);
    assert_eq!(quotes.operation("GetPrice").unwrap().action(), None, "an empty soapAction is no action");
    assert_eq!(quotes.operation("GetQuotes").unwrap().input_fields(), ["symbol", "exchange"]);
    let calc = wsdl("calc-rpc.wsdl");
    let add = calc.operation("Add").unwrap();
    assert_eq!(add.style(), Style::Rpc);
    assert_eq!(add.input_fields(), ["a", "b"]);
    assert_eq!(calc.operation("Describe").unwrap().input_fields(), ["person"]);
}

#[test]
fn unsupported_operations_name_the_construct_and_leave_the_others_usable() {
    let w = wsdl("unsupported.wsdl");
    assert_eq!(w.operations().map(Operation::name).collect::<Vec<_>>(), ["Ping"]);
    let reason = |name: &str| w.operation(name).unwrap_err().to_string();
    assert!(reason("Encoded").contains("use=\"encoded\""), "{}", reason("Encoded"));
    assert!(reason("Anything").contains("xs:any"), "{}", reason("Anything"));
    assert!(reason("Anything").contains("element `Anything`"), "{}", reason("Anything"));
    assert!(reason("WithHeader").contains("soap:header"), "{}", reason("WithHeader"));
    assert!(reason("External").contains("external.xsd"), "{}", reason("External"));
    assert!(reason("Pairs").contains("repeating xs:sequence"), "{}", reason("Pairs"));
    assert_eq!(w.unsupported().len(), 5);
}

#[test]
fn unknown_operations_list_the_known_ones() {
    let err = wsdl("calc-rpc.wsdl").operation("Divide").unwrap_err();
    assert_eq!(err.to_string(), "the WSDL has no SOAP operation `Divide` (it has: Add, Describe)");
}

#[test]
fn documents_that_are_not_single_file_wsdl_11_are_refused() {
    let import = br#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"><import namespace="urn:x" location="other.wsdl"/></definitions>"#;
    let err = Wsdl::parse(import).unwrap_err();
    assert!(err.to_string().contains("wsdl:import") && err.to_string().contains("other.wsdl"), "{err}");
    let v2 = br#"<description xmlns="http://www.w3.org/ns/wsdl"/>"#;
    assert!(Wsdl::parse(v2).unwrap_err().to_string().contains("WSDL 2.0"));
    assert!(matches!(Wsdl::parse(b"<html/>"), Err(WsdlError::NotWsdl(_))));
    let empty = br#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>"#;
    assert_eq!(Wsdl::parse(empty).unwrap_err(), WsdlError::NoSoapOperations);
    assert!(matches!(Wsdl::parse(b"<!DOCTYPE x><x/>"), Err(WsdlError::Xml(XmlError::Dtd))));
}

#[test]
fn recursive_and_self_deriving_types_do_not_loop() {
    let calc = wsdl("calc-rpc.wsdl");
    assert!(calc.operation("Describe").is_ok(), "Person.friend is a Person");
    let cyclic = r#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
        xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" targetNamespace="urn:t">
      <types><xs:schema targetNamespace="urn:t">
        <xs:complexType name="A"><xs:complexContent><xs:extension base="t:B"/></xs:complexContent></xs:complexType>
        <xs:complexType name="B"><xs:complexContent><xs:extension base="t:A"/></xs:complexContent></xs:complexType>
        <xs:element name="Op" type="t:A"/>
      </xs:schema></types>
      <message name="m"><part name="p" element="t:Op"/></message>
      <portType name="P"><operation name="Op"><input message="t:m"/></operation></portType>
      <binding name="B" type="t:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
        <operation name="Op"><input><soap:body use="literal"/></input></operation></binding>
      <service name="S"><port name="p" binding="t:B"><soap:address location="http://x/"/></port></service>
    </definitions>"#;
    let w = Wsdl::parse(cyclic.as_bytes()).unwrap();
    let err = w.operation("Op").unwrap_err().to_string();
    assert!(err.contains("derives from itself"), "{err}");
}

#[test]
fn one_name_on_two_port_types_is_listed_twice_and_ambiguous_by_name() {
    let text = r#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
        xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" targetNamespace="urn:t">
      <types><xs:schema targetNamespace="urn:t"><xs:element name="E"><xs:complexType/></xs:element></xs:schema></types>
      <message name="m"><part name="p" element="t:E"/></message>
      <portType name="P1"><operation name="Op"><input message="t:m"/><output message="t:m"/></operation></portType>
      <portType name="P2"><operation name="Op"><input message="t:m"/><output message="t:m"/></operation></portType>
      <binding name="B1" type="t:P1"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
        <operation name="Op"><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation></binding>
      <binding name="B2" type="t:P2"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
        <operation name="Op"><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation></binding>
      <service name="S1"><port name="p1" binding="t:B1"><soap:address location="http://x/1"/></port></service>
      <service name="S2"><port name="p2" binding="t:B2"><soap:address location="http://x/2"/></port></service>
    </definitions>"#;
    let w = Wsdl::parse(text.as_bytes()).unwrap();
    assert_eq!(w.operations().map(Operation::service).collect::<Vec<_>>(), ["S1", "S2"]);
    let err = w.operation("Op").unwrap_err();
    assert_eq!(err, WsdlError::AmbiguousOperation { name: "Op".into(), port_types: vec!["P1".into(), "P2".into()] });
}

#[test]
fn very_long_derivation_chains_are_refused_not_recursed() {
    let mut types = String::new();
    for i in 0..5000 {
        types.push_str(&format!(
            r#"<xs:complexType name="T{i}"><xs:complexContent><xs:extension base="t:T{}"/></xs:complexContent></xs:complexType>"#,
            i + 1
        ));
    }
    types.push_str(r#"<xs:complexType name="T5000"><xs:sequence><xs:element name="x" type="xs:int"/></xs:sequence></xs:complexType>"#);
    let text = format!(
        r#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
        xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" targetNamespace="urn:t">
      <types><xs:schema targetNamespace="urn:t">{types}<xs:element name="Op" type="t:T0"/></xs:schema></types>
      <message name="m"><part name="p" element="t:Op"/></message>
      <portType name="P"><operation name="Op"><input message="t:m"/></operation></portType>
      <binding name="B" type="t:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
        <operation name="Op"><input><soap:body use="literal"/></input></operation></binding>
      <service name="S"><port name="p" binding="t:B"><soap:address location="http://x/"/></port></service>
    </definitions>"#
    );
    let w = Wsdl::parse(text.as_bytes()).unwrap();
    let err = w.operation("Op").unwrap_err().to_string();
    assert!(err.contains("more than 64 types"), "{err}");
}

#[test]
fn parsed_wsdls_can_be_shared_across_request_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Wsdl>();
    shareable::<Operation>();
    shareable::<crate::RequestTemplate>();
    shareable::<crate::SoapResponse>();
}
