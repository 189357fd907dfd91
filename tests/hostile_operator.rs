//! The hostile archive corpus imported by the controller: `tenant-operator run` against
//! the fake API server, with one TenantImport per case and a `file://` archive URL.
//!
//! One operator process handles every case, except that a case with its own archive
//! limits gets an operator (and a fake API server) started with them. The test creates
//! all TenantImports of a group at once and waits until every one has a final outcome.
//! Each must end `Invalid` after one attempt, with the Ready condition's message naming
//! the problem (the same phrases that the command-line test checks), Stalled true and
//! Reconciling false. Afterwards the operator must have counted exactly one Invalid
//! import per case, the database dump must be byte-for-byte the seeded one, no
//! reporting database may appear, and the spool folder must be empty.

#[path = "support/archives.rs"]
mod archives;
#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/operator_process.rs"]
mod operator_process;
#[path = "support/resources.rs"]
mod resources;
#[path = "support/snapshot.rs"]
mod snapshot;
mod support;

use std::time::Duration;

use serde_json::{Value, json};

use fake_apiserver::FakeApiServer;
use hostile::{BuiltCase, OptionGroup};
use operator_process::{
    Operator, TENANT_IMPORTS, condition, create_import, create_secret, file_url, spec,
};
use resources::folder_bytes;
use snapshot::{Snapshot, seeded_database};
use support::{Backend, TestDatabase};

/// Seconds a TenantImport may wait for the import Lease. No hostile archive should
/// hold it for long, so only a hang would reach it, and no case should end as a
/// LockTimeout that is then retried.
const LOCK_TIMEOUT_SECONDS: u64 = 60;

/// Time allowed for every TenantImport of a group to reach a final outcome.
const GROUP_DEADLINE: Duration = Duration::from_secs(300);

/// Cases that the controller rejects before the import, while fetching the archive,
/// with the Ready reason they get. Every other case gets `InvalidArchive`.
const FETCH_REJECTED: &[(&str, &str)] = &[("archive_over_size_limit", "ArchiveTooLarge")];

#[tokio::test]
async fn corpus_rejected_by_controller() {
    let test_db = seeded_database(Backend::Postgres).await;
    let seeded = Snapshot::take(&test_db).await;
    let archives = tempfile::tempdir().expect("archive folder");

    let groups = hostile::build_corpus_by_options(archives.path());
    let mut checked = 0;
    for group in &groups {
        checked += check_group(&test_db, group).await;
        let what = format!("the controller with options {:?}", group.options);
        seeded.assert_unchanged(&test_db, &what).await;
    }
    assert_eq!(checked, hostile::CORPUS.len(), "cases checked");
}

/// Runs one operator with the group's options on every case of the group at once and
/// checks each TenantImport's status. Returns the number of cases checked.
async fn check_group(test_db: &TestDatabase, group: &OptionGroup) -> usize {
    let server = FakeApiServer::start().await;
    create_secret(&server, "configdb", &[("url", &test_db.url)]).await;
    let spool = tempfile::tempdir().expect("spool folder");
    let mut args: Vec<&str> = group.options.iter().map(String::as_str).collect();
    let spool_dir = spool.path().to_str().expect("UTF-8 spool folder");
    args.extend(["--spool-dir", spool_dir]);
    let operator = Operator::start(&server, test_db, "pod-a", &args);

    for case in &group.cases {
        let mut import = spec(&file_url(&case.archive.path), "eu-west");
        import["lockTimeoutSeconds"] = json!(LOCK_TIMEOUT_SECONDS);
        create_import(&server, &resource_name(case), import).await;
    }
    let imports = wait_for_all_final(&server, group.cases.len()).await;

    for case in &group.cases {
        let name = resource_name(case);
        let resource = imports
            .iter()
            .find(|import| import["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("TenantImport {name} is missing"));
        check_status(case, resource);
    }

    let (code, metrics) = operator.get("/metrics").await;
    assert_eq!(code, 200, "GET /metrics");
    assert_eq!(
        import_counts(&metrics),
        vec![("Invalid".to_owned(), group.cases.len() as u64)],
        "imports counted by outcome: one attempt per case, each Invalid"
    );
    assert_eq!(
        folder_bytes(spool.path()),
        0,
        "fetched archives are left in the spool folder"
    );
    group.cases.len()
}

/// Returns the TenantImport name of a case: its name with `-` for `_`, as Kubernetes
/// names allow no underscore.
fn resource_name(case: &BuiltCase) -> String {
    case.name.replace('_', "-")
}

/// Waits until `count` TenantImports have a completion time, which only a final
/// outcome sets, and returns them all.
async fn wait_for_all_final(server: &FakeApiServer, count: usize) -> Vec<Value> {
    let what = format!("{count} TenantImports to reach a final outcome");
    server
        .wait_for(TENANT_IMPORTS, GROUP_DEADLINE, &what, |imports| {
            let done = imports
                .iter()
                .filter(|import| import["status"]["completedAt"].is_string())
                .count();
            (done == count).then(|| imports.to_vec())
        })
        .await
}

/// Checks that one TenantImport ended Invalid after one attempt, for good, with a
/// message that names the problem.
fn check_status(case: &BuiltCase, resource: &Value) {
    let name = case.name;
    let status = &resource["status"];
    let expected_reason = FETCH_REJECTED
        .iter()
        .find(|(rejected, _)| *rejected == name)
        .map_or("InvalidArchive", |(_, reason)| reason);
    eprintln!("{name}: {}", status["message"]);

    assert_eq!(status["outcome"], "Invalid", "{name}: outcome; {status}");
    assert_eq!(status["attempts"], 1, "{name}: attempts");
    let ready = condition(resource, "Ready");
    assert_eq!(ready["status"], "False", "{name}: Ready");
    assert_eq!(ready["reason"], expected_reason, "{name}: Ready reason");
    let message = ready["message"].as_str().unwrap_or_default();
    case.archive
        .assert_message(message, &format!("{name}: Ready"));
    assert_eq!(
        status["message"], ready["message"],
        "{name}: status message"
    );
    assert_eq!(condition(resource, "Stalled")["status"], "True", "{name}");
    assert_eq!(
        condition(resource, "Reconciling")["status"],
        "False",
        "{name}"
    );
    assert_eq!(
        condition(resource, "Progressing")["status"],
        "False",
        "{name}"
    );
}

/// Returns the outcome and value of every `tenant_operator_imports_total` line of the
/// metrics text whose value is not 0, in text order.
fn import_counts(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("tenant_operator_imports_total{outcome=\"")?;
            let (outcome, value) = rest.split_once("\"} ")?;
            let value: u64 = value.trim().parse().ok()?;
            (value > 0).then(|| (outcome.to_owned(), value))
        })
        .collect()
}
