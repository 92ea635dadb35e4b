//! The body of the `validate_body` fuzz target, shared with the stable test that replays it
//! (`crates/portcullis-contract/tests/fuzz_validate_body.rs`), so CI runs it without nightly.
//!
//! The first byte picks one of a few JSON Schemas, the rest is a request's JSON body, checked
//! as a route's `validate: { schema: … }` checks it: the contract's own JSON scan (a parser of
//! its own, with `serde_json` deciding what it leaves) and the schema walk over its tape. Never
//! a panic; at most [`MAX_VIOLATIONS`] violations, each cut to its length bound; what
//! `serde_json` refuses is refused as not JSON; a body `serde_json` reads passes the empty
//! schema unless an object repeats a name or holds two names equal but for letter case.

use std::path::Path;
use std::sync::OnceLock;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};
use portcullis_contract::{Contract, MAX_VIOLATIONS, Request, schema_contract_text};

/// The empty schema first: any JSON value conforms to it.
const SCHEMAS: [&str; 3] = [
    "{}",
    r#"{"type":"object","required":["customer","items"],"additionalProperties":false,
        "properties":{"customer":{"type":"string","maxLength":32},"role":{"enum":["user"]},
        "items":{"type":"array","maxItems":50,"items":{"type":"object","required":["sku","qty"],
        "properties":{"sku":{"type":"string","pattern":"^SKU-[0-9]{5}$"},
        "qty":{"type":"integer","minimum":1,"maximum":99},"price":{"type":"number"}}}}}}"#,
    r#"{"oneOf":[{"type":"array","items":{"type":["string","null"]}},
        {"type":"object","patternProperties":{"^x-":{"type":"boolean"}},"minProperties":1}],
        "$defs":{"n":{"type":"number","multipleOf":0.5}}}"#,
];

fn contracts() -> &'static [Contract] {
    static CONTRACTS: OnceLock<Vec<Contract>> = OnceLock::new();
    CONTRACTS.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|text| {
                schema_contract_text(text, Path::new("fuzz.schema.json")).expect("the schema compiles").contract
            })
            .collect()
    })
}

/// What one check found.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) schema: usize,
    pub(crate) violations: usize,
    /// Whether `serde_json` reads the body.
    pub(crate) json: bool,
}

pub(crate) fn run(data: &[u8]) -> Outcome {
    let (schema, body) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first) % SCHEMAS.len(), rest),
        None => (0, data),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let request =
        Request { path_params: &[], query: None, headers: &headers, has_body: !body.is_empty(), body: Some(body) };
    let violations = contracts()[schema].check(&request);
    assert!(violations.len() <= MAX_VIOLATIONS, "{} violations", violations.len());
    for v in &violations {
        // 160 bytes, then at most a character's worth and the ellipsis.
        assert!(v.location.len() <= 160 + 3 + 3 && v.message.len() <= 160 + 3 + 3, "{v:?}");
        assert!(v.location.starts_with("body"), "{v:?}");
    }
    let json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    if body.is_empty() {
        assert!(violations.iter().any(|v| v.location == "body"), "an empty body is refused: {violations:?}");
    } else if !json {
        assert!(
            violations.iter().any(|v| v.location == "body" && v.message.starts_with("not valid JSON")),
            "serde_json refuses it, so must the check: {violations:?}"
        );
    } else if schema == 0 {
        for v in &violations {
            assert!(
                v.message == "repeats a name earlier in its object"
                    || v.message == "differs from another member's name only in letter case",
                "the empty schema refused a JSON body: {v:?}"
            );
        }
    }
    Outcome { schema, violations: violations.len(), json }
}
