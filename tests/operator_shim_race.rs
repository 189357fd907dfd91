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

use std::time::Duration;

use chrono::{DateTime, Utc};
use operator_process::{
    LEASES, OPERATOR_NAMESPACE, Operator, create_import, file_url, setup, spec, tenant_count,
    wait_for_outcome,
};
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
async fn start_shim(server: &fake_apiserver::FakeApiServer, db: &TestDatabase) -> Shim {
    let args = [
        "--lease-cluster",
        CLUSTER,
        "--lease-namespace",
        OPERATOR_NAMESPACE,
        "--holder-identity",
        "shim-a",
        "--lease-duration",
        "3",
    ];
    let kubeconfig = server.kubeconfig_path().display().to_string();
    let options = ShimOptions {
        insecure: false,
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        env: vec![
            ("KUBECONFIG".to_owned(), kubeconfig),
            (
                "RUST_LOG".to_owned(),
                "info,tenant_operator=debug".to_owned(),
            ),
        ],
    };
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

#[tokio::test]
async fn upload_and_tenant_import_share_lease() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let shim = start_shim(&server, &db).await;
    let api = shim.client().await;

    let dir = tempfile::tempdir().expect("archive folder");
    let uploaded = dir.path().join("uploaded.zip");
    TenantArchive::new("uploaded", OBJECTS).write(&uploaded);
    let watched = dir.path().join("watched.zip");
    TenantArchive::new("watched", OBJECTS).write(&watched);

    // While the test holds the Lease, both front ends time out on it.
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

    let response = api.import(&uploaded, 1).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 503, "upload under a held Lease: {body}");
    assert!(body.contains("test-holder"), "503 names the holder: {body}");

    create_import(&server, "watched", spec(&file_url(&watched), CLUSTER)).await;
    let waiting = wait_for_outcome(&server, "watched", "LockTimeout").await;
    let message = waiting["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("test-holder"), "{waiting}");
    assert_eq!(
        tenant_count(&db).await,
        0,
        "nothing imported under the Lease"
    );

    // The upload starts while the Lease is still held, then both race for it.
    let upload = tokio::spawn(async move {
        let response = api.import(&uploaded, 60).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    });
    wait_until(
        "the upload waits for the lock",
        Duration::from_secs(30),
        || {
            let shim = &shim;
            async move { metric(shim, "tenant_operator_tenant_imports_in_progress").await >= 1.0 }
        },
    )
    .await;
    guard.release().await.expect("test releases the Lease");

    let (status, body) = upload.await.expect("upload task");
    assert_eq!(status, 200, "upload after release: {body}");
    let imported = wait_for_outcome(&server, "watched", "Imported").await;
    assert_eq!(imported["status"]["tenant"]["url"], "watched.cc.test");
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

    let intervals = journal_intervals(&db).await;
    assert_eq!(intervals.len(), 2, "{intervals:?}");
    let (first, second) = (intervals[0], intervals[1]);
    assert!(
        first.1 <= second.0,
        "imports overlapped: first {first:?}, second {second:?}"
    );
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
