//! The sample TenantImports that the Argo CD health check is tested on
//! (tests/packaging/argocd/testdata) carry the conditions the operator writes: for
//! each sample's outcome and reason, `decision::set_conditions` must produce the same
//! condition types, statuses and reasons. A change to the operator's conditions then
//! fails here, and the samples and gitops/argocd-health.lua get updated with it.

use std::path::Path;

use chrono::Utc;
use serde_json::Value;
use tenant_operator::operator::crd::{ImportOutcome, TenantImportStatus};
use tenant_operator::operator::decision::{self, reason};

/// Returns (type, status, reason) of each condition, sorted by type.
fn condition_keys(conditions: &[Value]) -> Vec<(String, String, String)> {
    let mut keys: Vec<(String, String, String)> = conditions
        .iter()
        .map(|condition| {
            let field = |name: &str| condition[name].as_str().unwrap_or_default().to_owned();
            (field("type"), field("status"), field("reason"))
        })
        .collect();
    keys.sort();
    keys
}

/// Returns the conditions the operator writes for an outcome and reason.
fn operator_conditions(outcome: Option<ImportOutcome>, reason: &str) -> Vec<Value> {
    let mut status = TenantImportStatus::default();
    decision::set_conditions(&mut status, outcome, reason, "message", Some(1), Utc::now());
    let status = serde_json::to_value(status).expect("encodable status");
    status["conditions"].as_array().cloned().unwrap_or_default()
}

#[test]
fn health_samples_carry_operator_conditions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/packaging/argocd/testdata");
    let mut checked = Vec::new();

    for entry in std::fs::read_dir(&dir).expect("read the samples folder") {
        let path = entry.expect("sample entry").path();
        let text = std::fs::read_to_string(&path).expect("read sample");
        let sample: Value = serde_yaml::from_str(&text).expect("YAML sample");
        let conditions = sample["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(ready) = conditions.iter().find(|c| c["type"] == "Ready") else {
            continue;
        };
        let reason = ready["reason"].as_str().expect("Ready reason");
        let outcome: Option<ImportOutcome> =
            serde_json::from_value(sample["status"]["outcome"].clone()).expect("known outcome");
        // The operator writes no outcome only while an attempt runs; a sample with
        // neither tests the health check's fallback, not the operator's status.
        if outcome.is_none() && reason != reason::IMPORTING {
            continue;
        }

        let expected = condition_keys(&operator_conditions(outcome, reason));
        assert_eq!(
            condition_keys(&conditions),
            expected,
            "{} has other conditions than the operator writes",
            path.display()
        );
        checked.push(path);
    }

    assert!(
        checked.len() >= 8,
        "only {} samples checked: {checked:?}",
        checked.len()
    );
}
