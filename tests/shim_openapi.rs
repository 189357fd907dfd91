//! `docs/openapi.yaml` matches the routes of `serve`.

use std::collections::BTreeSet;

use serde_yaml::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("read docs/openapi.yaml");
    serde_yaml::from_str(&text).expect("docs/openapi.yaml is YAML")
}

fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let paths = document["paths"].as_mapping().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path").to_owned();
        for (method, operation) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method");
            if METHODS.contains(&method) {
                operations.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    operations
}

#[test]
fn openapi_paths_match_router() {
    let document = document();
    assert!(
        document["openapi"]
            .as_str()
            .expect("openapi")
            .starts_with("3.")
    );
    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let served: BTreeSet<(String, String)> = tenant_operator::shim::route_table()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_owned(), path.to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented routes the router lacks: {unserved:?}"
    );
}

#[test]
fn openapi_marks_public_routes() {
    let document = document();
    let public = [
        "/configapi/v2/oauth/token",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    for (method, path, operation) in operations(&document) {
        let security = operation.get("security");
        let responses = operation["responses"].as_mapping().expect("responses");
        let has_401 = responses.contains_key(Value::from("401"));
        if public.contains(&path.as_str()) {
            let empty = security
                .and_then(Value::as_sequence)
                .is_some_and(Vec::is_empty);
            assert!(
                empty,
                "{method} {path} is public but not marked `security: []`"
            );
        } else {
            assert!(
                security.is_none(),
                "{method} {path} overrides the bearer requirement"
            );
            assert!(has_401, "{method} {path} does not document 401");
        }
    }
}

#[test]
fn openapi_references_resolve() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .expect("read docs/openapi.yaml");
    let document = document();
    let mut checked = 0;
    for reference in text.split("$ref: \"#/").skip(1) {
        let pointer = reference.split('"').next().expect("reference");
        let mut node = &document;
        for part in pointer.split('/') {
            node = node
                .get(part)
                .unwrap_or_else(|| panic!("unresolved $ref #/{pointer}"));
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} references found");
}
