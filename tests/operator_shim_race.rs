//! End to end: `tenant-operator serve --lease-cluster` and `tenant-operator run` race
//! on one target cluster, against the fake API server and a real PostgreSQL database.
//!
//! Both take the Lease `tenant-import-eu-west`, so an upload and a TenantImport into
//! the same target exclude each other, and the engine's database fence stays
//! underneath.

mod support;

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/operator_process.rs"]
mod operator_process;
#[path = "support/shim.rs"]
mod shim;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fake_apiserver::FakeApiServer;
use operator_process::{
    LEASES, OPERATOR_NAMESPACE, Operator, TENANT_IMPORTS, WAIT, create_import, file_url, setup,
    spec, tenant_count, wait_for_outcome,
};
use serde_json::Value;
use shim::{Shim, ShimOptions, TenantArchive, metric, wait_until};
use support::TestDatabase;
use tenant_operator::lock::ImportLock;
use tenant_operator::operator::lease::LeaseLock;

/// The target cluster of every import here.
const CLUSTER: &str = "eu-west";
/// Users per generated archive, so that each import runs long enough to overlap with
/// the other one unless the Lease keeps them apart.
const OBJECTS: usize = 2000;

/// Starts `serve` with the Lease options of `CLUSTER` and the fake API server's
/// kubeconfig.
async fn start_shim(server: &FakeApiServer, db: &TestDatabase) -> Shim {
    let options = ShimOptions::lease(
        &server.kubeconfig_path(),
        CLUSTER,
        OPERATOR_NAMESPACE,
        "shim-a",
        Duration::from_secs(3),
    );
    Shim::start(&db.url, &db.reporting_prefix, options).await
}

/// Returns `(started_at, finished_at)` of every journal entry, in start order.
async fn journal_intervals(db: &TestDatabase) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let pool = sqlx::PgPool::connect(&db.url)
        .await
        .expect("connect to test database");
    let rows =
        sqlx::query_as("SELECT started_at, finished_at FROM import_journal ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .expect("read the import journal");
    pool.close().await;
    rows
}

/// The upload's HTTP status and body after the race, and the TenantImport with its
/// final outcome.
struct RaceResult {
    upload_status: u16,
    upload_body: String,
    tenant_import: Value,
}

/// Holds the Lease of `CLUSTER` while an upload of `uploaded` with lockTimeout=1 gets
/// 503 and the TenantImport `name` of `watched` records LockTimeout. Then starts a
/// second upload of `uploaded`, releases the Lease while it waits, and returns once
/// the upload has a response and the TenantImport reached Imported or Conflict.
async fn race_after_release(
    server: &FakeApiServer,
    db: &TestDatabase,
    shim: &Shim,
    uploaded: &Path,
    name: &str,
    watched: &Path,
) -> RaceResult {
    let api = shim.client().await;
    let lock = LeaseLock::new(
        server.client().await,
        OPERATOR_NAMESPACE,
        CLUSTER,
        "test-holder",
    );
    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("test takes the Lease");

    // While the test holds the Lease, both front ends time out on it.
    let response = api.import(uploaded, 1).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 503, "upload under a held Lease: {body}");
    assert!(body.contains("test-holder"), "503 names the holder: {body}");

    create_import(server, name, spec(&file_url(watched), CLUSTER)).await;
    let waiting = wait_for_outcome(server, name, "LockTimeout").await;
    let message = waiting["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("test-holder"), "{waiting}");
    assert_eq!(
        tenant_count(db).await,
        0,
        "nothing imported under the Lease"
    );

    // The upload starts while the Lease is still held, then both race for it.
    let path = uploaded.to_path_buf();
    let upload = tokio::spawn(async move {
        let response = api.import(&path, 60).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    });
    wait_until(
        "the upload waits for the lock",
        Duration::from_secs(30),
        || async { metric(shim, "tenant_operator_tenant_imports_in_progress").await >= 1.0 },
    )
    .await;
    guard.release().await.expect("test releases the Lease");

    let (upload_status, upload_body) = upload.await.expect("upload task");
    let description = format!("TenantImport {name} to reach a final outcome");
    let tenant_import = server
        .wait_for(TENANT_IMPORTS, WAIT, &description, |imports| {
            imports
                .iter()
                .find(|ti| {
                    ti["metadata"]["name"] == name
                        && matches!(
                            ti["status"]["outcome"].as_str(),
                            Some("Imported" | "Conflict")
                        )
                })
                .cloned()
        })
        .await;
    RaceResult {
        upload_status,
        upload_body,
        tenant_import,
    }
}

/// Asserts that no two journal entries overlap in time.
async fn assert_journal_serial(db: &TestDatabase, expected_entries: usize) {
    let intervals = journal_intervals(db).await;
    assert_eq!(intervals.len(), expected_entries, "{intervals:?}");
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "imports overlapped: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[tokio::test]
async fn upload_and_tenant_import_share_lease() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let shim = start_shim(&server, &db).await;
    let dir = tempfile::tempdir().expect("archive folder");
    let uploaded = dir.path().join("uploaded.zip");
    TenantArchive::new("uploaded", OBJECTS).write(&uploaded);
    let watched = dir.path().join("watched.zip");
    TenantArchive::new("watched", OBJECTS).write(&watched);

    let race = race_after_release(&server, &db, &shim, &uploaded, "watched", &watched).await;

    assert_eq!(
        race.upload_status, 200,
        "upload after release: {}",
        race.upload_body
    );
    let ti = &race.tenant_import;
    assert_eq!(ti["status"]["outcome"], "Imported", "{ti}");
    assert_eq!(ti["status"]["tenant"]["url"], "watched.cc.test");
    assert_eq!(tenant_count(&db).await, 2, "one tenant from each front end");

    // The test, the shim and the operator each took the Lease once.
    let lease = server
        .object(LEASES, OPERATOR_NAMESPACE, "tenant-import-eu-west")
        .expect("import Lease");
    let transitions = lease["spec"]["leaseTransitions"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        transitions >= 2,
        "the shim and the operator took the Lease: {lease}"
    );

    assert_journal_serial(&db, 2).await;
}

#[tokio::test]
async fn same_archive_imported_once() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let shim = start_shim(&server, &db).await;
    let dir = tempfile::tempdir().expect("archive folder");
    let archive = dir.path().join("shared.zip");
    TenantArchive::new("shared", OBJECTS).write(&archive);

    let race = race_after_release(&server, &db, &shim, &archive, "shared", &archive).await;

    let outcome = race.tenant_import["status"]["outcome"]
        .as_str()
        .unwrap_or_default();
    let verdicts = (race.upload_status, outcome);
    assert!(
        verdicts == (200, "Conflict") || verdicts == (409, "Imported"),
        "one front end imports and the other reports a conflict: {verdicts:?}, upload {}",
        race.upload_body
    );
    assert_eq!(tenant_count(&db).await, 1);
    assert_journal_serial(&db, 1).await;
}

#[tokio::test]
async fn lease_cluster_needs_namespace() {
    let db = TestDatabase::new(support::Backend::Postgres).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(["--database-url", &db.url])
        .args(["--reporting-database-prefix", &db.reporting_prefix])
        .args(["--insecure-no-auth", "--lease-cluster", CLUSTER])
        .env_remove("POD_NAMESPACE")
        .env_remove("LEASE_CLUSTER")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tenant-operator serve");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "serve started: {stderr}");
    assert!(stderr.contains("--lease-namespace"), "{stderr}");
}

/// A shim that takes the Lease is ready only while the API server serves the Lease,
/// so a pod cut off from the API server gets no uploads that could only time out.
#[tokio::test]
async fn readiness_needs_api_server() {
    let (server, db) = setup().await;
    let options = ShimOptions::lease(
        &server.kubeconfig_for("shim-ready"),
        CLUSTER,
        OPERATOR_NAMESPACE,
        "shim-ready",
        Duration::from_secs(3),
    );
    let shim = Shim::start(&db.url, &db.reporting_prefix, options).await;
    let readyz = || async {
        let response = shim
            .http
            .get(shim.url("/readyz"))
            .send()
            .await
            .expect("request /readyz");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    };

    let (status, body) = readyz().await;
    assert_eq!(status, 200, "ready with the API server up: {body}");

    server.cut_off("shim-ready");
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "ready while cut off: {body}");
    assert!(body.contains("Lease tenant-import-eu-west"), "{body}");

    server.restore("shim-ready");
    let (status, body) = readyz().await;
    assert_eq!(status, 200, "ready after the API server is back: {body}");
}
