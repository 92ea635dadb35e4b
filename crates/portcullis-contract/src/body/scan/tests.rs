#![allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]

use proptest::prelude::*;
use serde_json::Value;

use super::scan;
use crate::body::{parse, parse_with_serde};

/// The value the scan reads from `bytes`, if it reads it.
fn scanned(bytes: &[u8]) -> Option<Value> {
    scan(bytes).map(|parsed| parsed.root().build_value())
}

/// `Value`'s equality takes `-0.0` for `0.0`; the text tells them apart.
fn same(a: &Value, b: &Value) -> bool {
    let (a_text, b_text) = (a.to_string(), b.to_string());
    a == b && a_text == b_text
}

/// The whole contract for one input: what the scan reads is what `serde_json` reads, what it
/// leaves is decided by `serde_json` itself, and `parse` gives `from_slice`'s verdict and error.
fn agrees(bytes: &[u8]) {
    let expected = serde_json::from_slice::<Value>(bytes);
    if let Some(got) = scanned(bytes) {
        let Ok(expected) = &expected else {
            panic!("the scan accepts what serde_json refuses: {:?}", String::from_utf8_lossy(bytes));
        };
        assert!(same(&got, expected), "{:?}: {got} vs {expected}", String::from_utf8_lossy(bytes));
    }
    let got = parse(bytes).map(|p| p.root().build_value()).map_err(|e| e.to_string());
    match (&got, &expected) {
        (Ok(got), Ok(expected)) => assert!(same(got, expected), "{:?}", String::from_utf8_lossy(bytes)),
        (Err(got), Err(expected)) => assert_eq!(got, &expected.to_string()),
        _ => panic!("{:?}: {got:?} vs {expected:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Inputs at every edge the two parsers could differ on.
const CORPUS: &[&str] = &[
    "",
    " ",
    "{}",
    "[]",
    " [ ] ",
    "{ }",
    "[[]]",
    "[{}]",
    "null",
    "true",
    "false",
    "nul",
    "tru",
    "nulll",
    r#""x""#,
    r#"  "x"  "#,
    "\"",
    "\"abc",
    r#""a\"b""#,
    r#""\\""#,
    r#""\/\b\f\n\r\t""#,
    r#""\u0000""#,
    r#""\u00e9\u00E9""#,
    r#""\ud83d\ude00""#,
    r#""\uD83D\uDE00x""#,
    r#""\ud83d""#,
    r#""\ud83dx""#,
    r#""\ud83d\u0041""#,
    r#""\ude00""#,
    r#""\ud83d\ud83d\ude00""#,
    r#""\u12""#,
    r#""\u12g4""#,
    r#""\x""#,
    r#""\'""#,
    "\"\u{1}\"",
    "\"\u{1f}\"",
    "\"\u{7f}\"",
    "\"tab\there\"",
    "\"é ü 😀\"",
    "\"line\nbreak\"",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "00",
    "01",
    "-01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "1e+",
    "1E-",
    "1e5",
    "1E+2",
    "1e-2",
    "1.5e3",
    "-1.5E-3",
    "1e22",
    "1e23",
    "1e-22",
    "1e-23",
    "1e400",
    "-1e400",
    "1e-400",
    "1e007",
    "0e0",
    "0e999",
    "0.1",
    "0.30000000000000004",
    "3.141592653589793",
    "9007199254740991.0",
    "9007199254740992.0",
    "9007199254740993.0",
    "123456789012345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "9223372036854775808",
    "-18446744073709551615",
    "1.7976931348623157e308",
    "5e-324",
    "2.2250738585072014e-308",
    "0.000000000000000000000000000001",
    "123.456e-7",
    "4.35",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[1,,2]",
    "[",
    "]",
    "[1",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\" 1}",
    "{\"a\":1,}",
    "{,}",
    "{1:2}",
    "{\"a\":1 \"b\":2}",
    r#"{"a":1,"a":2}"#,
    r#"{"a":1,"b":2,"a":3,"b":{"a":4,"a":[5]}}"#,
    r#"{"":0,"":1}"#,
    "[1] 2",
    "{} x",
    "1 2",
    "\u{feff}{}",
    "{}\u{feff}",
    "\t\n\r {}\t\n\r ",
    "\x0c{}",
    "{}\0",
    "[true,false,null]",
    "[truefalse]",
    "[1true]",
    "[\"a\"\"b\"]",
    "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
];

#[test]
fn every_input_of_the_corpus_reads_as_serde_json_reads_it() {
    for text in CORPUS {
        agrees(text.as_bytes());
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_as_serde_json_refuses_them() {
    for bytes in [&b"\"\xff\""[..], b"\"\xc3\"", b"\"\xed\xa0\x80\"", b"[\"a\",\"\xc3\x28\"]", b"\xff", b"{\"\xe9\":1}"]
    {
        agrees(bytes);
    }
}

#[test]
fn strings_of_every_length_with_a_quote_escape_or_control_character_anywhere() {
    // Short strings are scanned eight bytes at a time, long ones by `memchr` past 32 bytes.
    for len in 0..80 {
        let plain = "é".repeat(len / 2) + &"x".repeat(len % 2);
        agrees(format!("[\"{plain}\",1]").as_bytes());
        agrees(format!("\"{plain}").as_bytes());
        for at in 0..=plain.len() {
            if !plain.is_char_boundary(at) {
                continue;
            }
            for special in ["\\n", "\\u00e9", "\\\"", "\u{1}", "\u{1f}", "\\q", "\\"] {
                let text = format!("[\"{}{special}{}\"]", &plain[..at], &plain[at..]);
                agrees(text.as_bytes());
            }
        }
    }
}

#[test]
fn nesting_reads_the_same_to_serde_jsons_limit_and_past_it() {
    for depth in [1, 50, 99, 100, 101, 126, 127, 128, 129, 300] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let text = open.repeat(depth) + "0" + &close.repeat(depth);
            agrees(text.as_bytes());
            let empty = open.repeat(depth - 1) + if open == "[" { "[]" } else { "{}" } + &close.repeat(depth - 1);
            agrees(empty.as_bytes());
        }
    }
}

#[test]
fn ordinary_bodies_are_read_by_the_scan() {
    // If the scan handed everything back, the check would be correct and slow; these must not be.
    let ordinary = [
        r#"{"customer":"acme","note":null,"lines":[{"sku":"ABC-0001","qty":3,"price":12.5,"gift":false}]}"#,
        r#"{"text":"She said \"hi\"\nand left \u00e9 \ud83d\ude00","n":-12,"f":-0.25,"e":1.5e10,"big":18446744073709551615}"#,
        "[1, 2.0, -3, 4e2, \"x\", true, false, null, {}, []]",
        "  {\n  \"pretty\": [\n    1,\n    2\n  ]\n}\n",
    ];
    for text in ordinary {
        assert!(scan(text.as_bytes()).is_some(), "{text}");
        agrees(text.as_bytes());
    }
}

#[test]
fn a_refused_body_keeps_serde_jsons_message() {
    for text in ["{", "[1,]", "01", "1e400", "\"\\ud83d\""] {
        let message = parse(text.as_bytes()).err().map(|e| e.to_string());
        let expected = serde_json::from_str::<Value>(text).err().map(|e| e.to_string());
        assert!(message.is_some());
        assert_eq!(message, expected, "{text}");
        assert_eq!(message, parse_with_serde(text.as_bytes()).err().map(|e| e.to_string()));
    }
}

#[test]
fn validation_verdicts_equal_those_on_the_value() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "n": { "type": "integer", "minimum": 0, "maximum": 100 },
            "f": { "type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5 },
            "s": { "type": "string", "maxLength": 3, "pattern": "^[a-z😀]*$" },
            "a": { "type": "array", "uniqueItems": true, "items": { "type": ["integer", "string"] } },
            "z": { "const": -0.0 },
        },
        "additionalProperties": false,
    });
    let on_body = jsonschema::options_for::<crate::body::Body>().build(&schema).unwrap();
    let on_value = jsonschema::validator_for(&schema).unwrap();
    let bodies = [
        r#"{"n":1,"f":0.5,"s":"ab","a":[1,"1"]}"#,
        r#"{"n":1.0,"f":1e0,"s":"\ud83d\ude00ab","a":[1,1.0]}"#,
        r#"{"n":-0,"z":0}"#,
        r#"{"n":101}"#,
        r#"{"n":100.5}"#,
        r#"{"f":0.3}"#,
        r#"{"s":"abcd"}"#,
        r#"{"s":"A"}"#,
        r#"{"n":1,"n":"x"}"#,
        r#"{"n":"x","n":1}"#,
        r#"{"q":1}"#,
        r#"{"z":-0.0}"#,
        r#"{"n":18446744073709551615}"#,
        r#"{"n":1e2}"#,
    ];
    for text in bodies {
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(scan(text.as_bytes()).is_some(), "{text}");
        let parsed = parse(text.as_bytes()).unwrap();
        assert_eq!(on_body.is_valid(parsed.root()), on_value.is_valid(&value), "{text}");
    }
}

/// Bytes JSON's grammar turns on, so random texts reach every branch.
const JSONISH: &[u8] = b"{}[]\",:\\/ \t\n\r0123456789-+.eEtrufalsn\x01\x1f\x7f\xc3\xa9\xed\xa0\x80\xffuUdD";

/// Random values; `any_float` adds floats of every magnitude and precision (which the scan
/// may leave to `serde_json`) to those of a few decimal places (which it must read).
fn json_value(any_float: bool) -> impl Strategy<Value = Value> {
    let float = if any_float { any::<f64>().boxed() } else { Just(0.5).boxed() };
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float.prop_map(Value::from),
        (any::<i32>(), 0_i32..6).prop_map(|(n, places)| Value::from(f64::from(n) / 10_f64.powi(places))),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    let key = prop_oneof![prop::sample::select(&["a", "b", "", "é"][..]).prop_map(str::to_owned), any::<String>()];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A value's text, compact or pretty, with every non-ASCII character escaped or not.
fn texts(value: &Value) -> Vec<String> {
    let compact = value.to_string();
    let escaped: String = compact
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c.to_string()]
            } else {
                let mut units = [0_u16; 2];
                c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04x}")).collect()
            }
        })
        .collect();
    vec![compact, serde_json::to_string_pretty(value).unwrap(), escaped]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ordinary_values_are_read_by_the_scan_as_serde_json_reads_them(value in json_value(false)) {
        for text in texts(&value) {
            prop_assert!(scan(text.as_bytes()).is_some(), "{}", text);
            agrees(text.as_bytes());
        }
    }

    #[test]
    fn any_value_is_read_by_the_scan_or_left_to_serde_json(value in json_value(true)) {
        for text in texts(&value) {
            agrees(text.as_bytes());
        }
    }

    #[test]
    fn random_edits_of_json_are_refused_or_read_as_serde_json_does(
        value in json_value(true),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(JSONISH)), 1..4),
    ) {
        let mut bytes = value.to_string().into_bytes();
        for (at, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
            } else {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        agrees(&bytes);
    }

    #[test]
    fn random_jsonish_bytes_are_refused_or_read_as_serde_json_does(
        bytes in prop::collection::vec(prop::sample::select(JSONISH), 0..64),
    ) {
        agrees(&bytes);
    }
}
