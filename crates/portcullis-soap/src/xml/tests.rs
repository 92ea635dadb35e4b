use super::*;

fn parse_str(text: &str) -> Result<Element, XmlError> {
    parse(text.as_bytes(), &Limits::default())
}

#[test]
fn names_resolve_through_prefixes_and_default_namespaces() {
    let root = parse_str(r#"<a:r xmlns:a="urn:a" xmlns="urn:d"><c x="1" a:y="2"><d xmlns=""/></c></a:r>"#).unwrap();
    assert!(root.is("urn:a", "r"));
    let c = &root.children[0];
    assert!(c.is("urn:d", "c"), "unprefixed elements take the default namespace");
    assert_eq!(c.attr("x"), Some("1"), "unprefixed attributes are in no namespace");
    assert_eq!(c.attr_ns("urn:a", "y"), Some("2"));
    assert!(c.children[0].is("", "d"), "xmlns=\"\" undeclares the default namespace");
    assert_eq!(c.resolve_qname("a:T").unwrap(), QName::new("urn:a", "T"));
    assert_eq!(c.resolve_qname("T").unwrap(), QName::new("urn:d", "T"));
    assert_eq!(c.resolve_qname("zz:T"), Err(XmlError::UnboundPrefix("zz".to_owned())));
}

#[test]
fn predefined_entities_and_character_references_are_expanded() {
    let root = parse_str(r#"<r a="&lt;&quot;&#65;">x &amp; y &#x263A; <![CDATA[<raw&>]]></r>"#).unwrap();
    assert_eq!(root.attr("a"), Some("<\"A"));
    assert_eq!(root.text, "x & y \u{263A} <raw&>");
}

#[test]
fn a_doctype_is_refused_even_without_entities() {
    assert_eq!(parse_str("<!DOCTYPE r><r/>").unwrap_err(), XmlError::Dtd);
}

#[test]
fn entities_that_only_a_dtd_could_declare_are_refused() {
    assert_eq!(parse_str("<r>&ext;</r>").unwrap_err(), XmlError::UnknownEntity("ext".to_owned()));
    assert_eq!(parse_str(r#"<r a="&ext;"/>"#).unwrap_err(), XmlError::UnknownEntity("ext".to_owned()));
}

#[test]
fn size_depth_and_node_limits_are_enforced() {
    let limits = Limits { max_bytes: 10, ..Limits::default() };
    assert_eq!(parse(b"<r>0123456789</r>", &limits).unwrap_err(), XmlError::TooLarge { limit: 10 });
    let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
    assert_eq!(parse_str(&deep).unwrap_err(), XmlError::TooDeep { limit: 64 });
    let limits = Limits { max_nodes: 3, ..Limits::default() };
    assert_eq!(parse(b"<r><a/><b/><c/></r>", &limits).unwrap_err(), XmlError::TooManyNodes { limit: 3 });
}

#[test]
fn malformed_documents_are_errors() {
    for bad in [
        "<r><a></b></r>",
        "<r>",
        "<r/><s/>",
        "<r/>text",
        "",
        "<p:r/>",
        "<r a='1' a='2'/>",
        "<r>&amp</r>",
        "</r>",
        "<r xmlns:p=\"\"/>",
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn encodings_other_than_utf8_are_refused() {
    let latin1 = parse_str(r#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#).unwrap_err();
    assert!(matches!(latin1, XmlError::Encoding(_)), "{latin1}");
    assert!(matches!(parse(b"\xFF\xFE<\x00r\x00/\x00>\x00", &Limits::default()), Err(XmlError::Encoding(_))));
    assert!(parse(b"<r>\xC3\x28</r>", &Limits::default()).is_err(), "invalid UTF-8 is refused");
    assert!(parse(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?><r/>", &Limits::default()).is_ok());
}
