//! Any bytes as a WSDL, as a SOAP response and as JSON input: errors, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_soap::{Limits, Wsdl};

fn wsdl() -> &'static Wsdl {
    static WSDL: OnceLock<Wsdl> = OnceLock::new();
    WSDL.get_or_init(|| {
        let text = include_bytes!("../../crates/portcullis-soap/tests/fixtures/contacts-wrapped.wsdl");
        Wsdl::parse(text).expect("the fixture parses")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = Wsdl::parse(data) {
        for op in parsed.operations() {
            let _ = op.build_request(&serde_json::Map::new());
            let _ = op.input_schema();
        }
        let _ = portcullis_soap::routes_yaml(&parsed, &Default::default());
    }
    for op in wsdl().operations() {
        let _ = op.parse_response(data, &Limits::default());
        if let Ok(serde_json::Value::Object(input)) = serde_json::from_slice(data) {
            let _ = op.build_request(&input);
        }
    }
});
