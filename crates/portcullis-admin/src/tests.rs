use super::{Access, OPENAPI, served};

/// The same check as the end-to-end one, offline: every served (method, path) is
/// documented and the other way round, and exactly the tokenless ones say `security: []`.
#[test]
fn openapi_lists_exactly_the_served_endpoints_and_which_need_no_token() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item").iter().filter(|(k, _)| *k != "parameters") {
            let open = operation.get("security").is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
            documented.push((method.to_ascii_uppercase(), path.clone(), open));
        }
    }
    let mut served: Vec<(String, String, bool)> = served()
        .into_iter()
        .map(|(verb, path, access)| {
            (verb.as_str().to_owned(), path.to_owned(), matches!(access, Access::Open | Access::Page))
        })
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
}
