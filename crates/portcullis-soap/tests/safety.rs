//! Hostile XML: every payload is refused quickly, with no memory spike, and none panics.
//!
//! Peak memory is read from the kernel (`VmHWM`, reset through `/proc/self/clear_refs`), so
//! the check covers every allocation the parser might make. This file holds one test so no
//! other test shares the process while it measures.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

use std::time::{Duration, Instant};

use portcullis_soap::{Limits, ResponseError, Wsdl, WsdlError, XmlError, parse_response_untyped};

const ENV_OPEN: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#;
const ENV_CLOSE: &str = "</soap:Body></soap:Envelope>";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn envelope(body: &str) -> Vec<u8> {
    format!("{ENV_OPEN}{body}{ENV_CLOSE}").into_bytes()
}

/// Payloads and the error each must give.
fn payloads() -> Vec<(&'static str, Vec<u8>, XmlError)> {
    let big_entity = "x".repeat(50_000);
    let quadratic =
        format!("<!DOCTYPE r [<!ENTITY a \"{big_entity}\">]>{ENV_OPEN}<r>{}</r>{ENV_CLOSE}", "&a;".repeat(50_000));
    let deep = format!("{ENV_OPEN}{}{}{ENV_CLOSE}", "<a>".repeat(1_000_000), "</a>".repeat(1_000_000));
    let wide = format!("{ENV_OPEN}<r>{}</r>{ENV_CLOSE}", "<a/>".repeat(1_000_000));
    let oversize = format!("{ENV_OPEN}<r>{}</r>{ENV_CLOSE}", "x".repeat(Limits::DEFAULT_MAX_BYTES));
    let parameter_entity = "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/evil.dtd\"> %p;]><r/>";
    vec![
        ("xxe", fixture("xxe.xml"), XmlError::Dtd),
        ("billion laughs", fixture("billion-laughs.xml"), XmlError::Dtd),
        ("quadratic blowup", quadratic.into_bytes(), XmlError::Dtd),
        ("parameter entity", parameter_entity.as_bytes().to_vec(), XmlError::Dtd),
        ("entity without a DTD", envelope("<r>&lol9;</r>"), XmlError::UnknownEntity("lol9".to_owned())),
        ("deep nesting", deep.into_bytes(), XmlError::TooDeep { limit: Limits::DEFAULT_MAX_DEPTH }),
        ("a million siblings", wide.into_bytes(), XmlError::TooManyNodes { limit: Limits::DEFAULT_MAX_NODES }),
        ("oversize", oversize.into_bytes(), XmlError::TooLarge { limit: Limits::DEFAULT_MAX_BYTES }),
    ]
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak to the current resident size (Linux ≥ 4.0); false where unsupported.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[test]
fn hostile_xml_is_refused_quickly_without_a_memory_spike() {
    let payloads = payloads();
    let measured = reset_peak();
    let before = peak_rss_kib().unwrap_or(0);
    let started = Instant::now();
    for (name, bytes, want) in &payloads {
        let one = Instant::now();
        let got = parse_response_untyped(bytes, &Limits::default());
        assert_eq!(got, Err(ResponseError::Xml(want.clone())), "{name}");
        assert!(one.elapsed() < Duration::from_secs(2), "{name} took {:?}", one.elapsed());
        // The same payload as a WSDL is refused the same way.
        match Wsdl::parse_with_limits(bytes, &Limits::default()) {
            Err(WsdlError::Xml(e)) => assert_eq!(&e, want, "{name} as WSDL"),
            other => panic!("{name} as WSDL: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    let grown_mib = peak_rss_kib().unwrap_or(0).saturating_sub(before) / 1024;
    eprintln!("hostile payloads: {elapsed:?}, peak RSS growth {grown_mib} MiB (reset worked: {measured})");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    if measured {
        // The largest payload is 10 MiB and is refused unread; a million-node tree is stopped
        // at 200,000 nodes. An entity expansion would need gigabytes.
        assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
    }
}
