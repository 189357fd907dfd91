//! End to end: the `tenant-operator run` binary against the fake API server, a real
//! PostgreSQL database, `file://` archives and a real S3-protocol server (moto).
//!
//! The sample archives come from `SAMPLE_ARCHIVES_DIR` when set, and otherwise from
//! the shared examples folder beside the repository. Tests that need them skip with a
//! message when neither exists.

mod support;

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/operator_process.rs"]
mod operator_process;
#[path = "support/s3.rs"]
mod s3;

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Fault, FaultAction};
use kube::Api;
use kube::api::{Patch, PatchParams};
use operator_process::{
    EVENTS, LEASES, NAMESPACE, OPERATOR_NAMESPACE, Operator, TENANT_IMPORTS, WAIT, condition,
    create_import, create_secret, file_url, setup, spec, tenant_count, wait_for_outcome,
};
use serde_json::{Value, json};
use support::{Backend, TestDatabase};
use tenant_operator::lock::ImportLock;
use tenant_operator::operator::lease::LeaseLock;

/// Writes `bytes` to a file in a new temporary folder and returns the folder, which
/// removes the file when dropped, and the file's URL.
fn write_archive(name: &str, bytes: impl AsRef<[u8]>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write archive");
    let url = file_url(&path);
    (dir, url)
}

/// Returns the reasons and types of the Events about one TenantImport.
fn events_for(server: &FakeApiServer, name: &str) -> Vec<(String, String, String)> {
    server
        .objects(EVENTS)
        .iter()
        .filter(|e| e["regarding"]["name"] == name)
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["reportingInstance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Waits for an Event about TenantImport `name` with this type and reason, and
/// returns the reporting instance of each Event about it.
async fn wait_for_event(
    server: &FakeApiServer,
    name: &str,
    type_: &str,
    reason: &str,
) -> Vec<String> {
    let what = format!("a {type_} Event {reason} about {name}");
    server
        .wait_for(EVENTS, WAIT, &what, |_| {
            let events = events_for(server, name);
            events
                .iter()
                .any(|(t, r, _)| t == type_ && r == reason)
                .then(|| {
                    events
                        .into_iter()
                        .map(|(_, _, instance)| instance)
                        .collect()
                })
        })
        .await
}

#[tokio::test]
async fn file_archive_is_imported_with_status_and_event() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (server, db) = setup().await;
    let operator = Operator::start(&server, &db, "pod-a", &[]);

    let url = file_url(&examples.join("acme-v3.zip"));
    create_import(&server, "acme", spec(&url, "eu-west")).await;
    let acme = wait_for_outcome(&server, "acme", "Imported").await;

    let status = &acme["status"];
    assert_eq!(status["tenant"]["url"], "acme.cc.example.com");
    assert_eq!(status["tenant"]["name"], "Acme Support");
    assert_eq!(status["accessNumbers"]["created"], 151);
    assert_eq!(status["accessNumbers"]["skipped"], 0);
    assert_eq!(status["archive"]["formatVersion"], 3);
    assert_eq!(
        status["archive"]["size"],
        std::fs::metadata(examples.join("acme-v3.zip"))
            .expect("size")
            .len()
    );
    assert_eq!(status["attempts"], 1);
    assert_eq!(status["observedGeneration"], 1);
    assert!(status["completedAt"].is_string(), "{status}");
    assert_eq!(condition(&acme, "Ready")["status"], "True");
    assert_eq!(condition(&acme, "Ready")["reason"], "Imported");
    assert_eq!(condition(&acme, "Progressing")["status"], "False");
    assert_eq!(condition(&acme, "Reconciling")["status"], "False");
    assert_eq!(condition(&acme, "Stalled")["status"], "False");
    assert_eq!(tenant_count(&db).await, 1);

    let instances = wait_for_event(&server, "acme", "Normal", "Imported").await;
    assert_eq!(instances, ["pod-a"]);
    let (code, metrics) = operator.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tenant_operator_imports_total{outcome=\"Imported\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn second_import_of_tenant_is_conflict() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let url = file_url(&examples.join("acme-v3.zip"));

    create_import(&server, "acme", spec(&url, "eu-west")).await;
    wait_for_outcome(&server, "acme", "Imported").await;
    create_import(&server, "acme-again", spec(&url, "eu-west")).await;
    let again = wait_for_outcome(&server, "acme-again", "Conflict").await;

    assert_eq!(condition(&again, "Ready")["status"], "False");
    assert_eq!(condition(&again, "Ready")["reason"], "Conflict");
    assert_eq!(condition(&again, "Progressing")["status"], "False");
    assert_eq!(condition(&again, "Reconciling")["status"], "False");
    assert_eq!(condition(&again, "Stalled")["status"], "True");
    assert_eq!(again["status"]["attempts"], 1);
    assert_eq!(tenant_count(&db).await, 1);
    wait_for_event(&server, "acme-again", "Warning", "Conflict").await;
}

#[tokio::test]
async fn overlapping_range_is_reported_skipped() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);

    let acme = file_url(&examples.join("acme-v3.zip"));
    create_import(&server, "acme", spec(&acme, "eu-west")).await;
    wait_for_outcome(&server, "acme", "Imported").await;
    let umbrella = file_url(&examples.join("umbrella-v3.zip"));
    create_import(&server, "umbrella", spec(&umbrella, "eu-west")).await;
    let imported = wait_for_outcome(&server, "umbrella", "Imported").await;

    let status = &imported["status"];
    assert_eq!(status["accessNumbers"]["created"], 5);
    assert_eq!(status["accessNumbers"]["skipped"], 20);
    assert_eq!(
        status["skippedRanges"],
        json!([{"first": "14155550190", "last": "14155550209"}])
    );
}

#[tokio::test]
async fn lock_timeout_then_import_after_release() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let lock = LeaseLock::new(
        server.client().await,
        OPERATOR_NAMESPACE,
        "eu-west",
        "test-holder",
    );
    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("test takes the lease");

    let url = file_url(&examples.join("globex-v2.zip"));
    create_import(&server, "globex", spec(&url, "eu-west")).await;
    let waiting = wait_for_outcome(&server, "globex", "LockTimeout").await;
    assert_eq!(condition(&waiting, "Ready")["reason"], "LockTimeout");
    assert_eq!(condition(&waiting, "Progressing")["status"], "True");
    assert_eq!(condition(&waiting, "Reconciling")["status"], "True");
    assert_eq!(condition(&waiting, "Stalled")["status"], "False");
    assert!(
        waiting["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("test-holder"),
        "{waiting}"
    );
    assert_eq!(tenant_count(&db).await, 0);

    guard.release().await.expect("release");
    let imported = wait_for_outcome(&server, "globex", "Imported").await;
    assert!(
        imported["status"]["attempts"].as_u64() >= Some(2),
        "{imported}"
    );
    wait_for_event(&server, "globex", "Warning", "LockTimeout").await;
    wait_for_event(&server, "globex", "Normal", "Imported").await;
}

#[tokio::test]
async fn invalid_archive_is_final() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let (_dir, url) = write_archive("not-a-zip.zip", b"this is not a ZIP archive");

    create_import(&server, "broken", spec(&url, "eu-west")).await;
    let broken = wait_for_outcome(&server, "broken", "Invalid").await;

    assert_eq!(condition(&broken, "Ready")["reason"], "InvalidArchive");
    assert_eq!(condition(&broken, "Progressing")["status"], "False");
    assert_eq!(condition(&broken, "Reconciling")["status"], "False");
    assert_eq!(condition(&broken, "Stalled")["status"], "True");
    assert_eq!(broken["status"]["attempts"], 1);
    assert_eq!(tenant_count(&db).await, 0);
}

#[tokio::test]
async fn sha256_mismatch_is_invalid() {
    let (server, db) = setup().await;
    let operator = Operator::start(&server, &db, "pod-a", &[]);
    let (_dir, url) = write_archive("archive.zip", b"bytes whose digest is not pinned");

    let mut pinned = spec(&url, "eu-west");
    pinned["source"]["sha256"] = json!("ab".repeat(32));
    create_import(&server, "pinned", pinned).await;
    let rejected = wait_for_outcome(&server, "pinned", "Invalid").await;

    assert_eq!(condition(&rejected, "Ready")["reason"], "DigestMismatch");
    assert_eq!(condition(&rejected, "Progressing")["status"], "False");
    assert_eq!(condition(&rejected, "Reconciling")["status"], "False");
    assert_eq!(condition(&rejected, "Stalled")["status"], "True");
    let message = rejected["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&"ab".repeat(32)), "{message}");
    assert!(rejected["status"]["completedAt"].is_string());
    wait_for_event(&server, "pinned", "Warning", "DigestMismatch").await;

    // A final outcome is not retried: no attempt follows while the operator runs on.
    let (_, metrics) = operator.get("/metrics").await;
    assert!(
        metrics.contains("tenant_operator_imports_total{outcome=\"Invalid\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn oversized_archive_is_invalid() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &["--archive-max-bytes", "16"]);
    let (_dir, url) = write_archive("archive.zip", [0_u8; 64]);

    create_import(&server, "big", spec(&url, "eu-west")).await;
    let big = wait_for_outcome(&server, "big", "Invalid").await;

    assert_eq!(condition(&big, "Ready")["reason"], "ArchiveTooLarge");
}

#[tokio::test]
async fn missing_secret_fails_then_recovers() {
    let server = FakeApiServer::start().await;
    let db = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("folder");
    let url = file_url(&dir.path().join("absent.zip"));
    let _operator = Operator::start(&server, &db, "pod-a", &[]);

    create_import(&server, "orphan", spec(&url, "eu-west")).await;
    let failed = wait_for_outcome(&server, "orphan", "Failed").await;
    assert_eq!(condition(&failed, "Ready")["reason"], "SecretNotFound");
    assert_eq!(condition(&failed, "Progressing")["status"], "True");
    assert_eq!(condition(&failed, "Reconciling")["status"], "True");
    assert_eq!(condition(&failed, "Stalled")["status"], "False");
    let message = failed["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("configdb"), "{message}");

    // With the Secret in place the next attempt gets as far as the missing archive.
    create_secret(&server, "configdb", &[("url", &db.url)]).await;
    let what = "a retry that fails on the missing archive";
    let retried = server
        .wait_for(TENANT_IMPORTS, WAIT, what, |imports| {
            imports
                .iter()
                .find(|ti| condition(ti, "Ready")["reason"] == "SourceUnavailable")
                .cloned()
        })
        .await;
    assert!(
        retried["status"]["attempts"].as_u64() >= Some(2),
        "{retried}"
    );

    // The operator only reads Secrets.
    let writes = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/secrets") && r.method != "GET")
        .count();
    assert_eq!(writes, 1, "only the test's own create writes a Secret");
}

#[tokio::test]
async fn s3_archive_is_imported() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let Some(s3) = s3::S3Server::start().await else {
        return;
    };
    let (server, db) = setup().await;
    create_secret(
        &server,
        "bucket-credentials",
        &[
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
        ],
    )
    .await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let archive = std::fs::read(examples.join("initech-v1.zip")).expect("read sample");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&archive));

    let mut source = s3_spec(&s3, "s3://exports/initech.zip");
    source["source"]["sha256"] = json!(digest);
    create_import(&server, "initech", source).await;
    let failed = wait_for_outcome(&server, "initech", "Failed").await;
    assert_eq!(condition(&failed, "Ready")["reason"], "SourceUnavailable");

    s3.create_bucket("exports").await;
    s3.put_object("exports", "initech.zip", archive).await;
    let imported = wait_for_outcome(&server, "initech", "Imported").await;
    assert_eq!(imported["status"]["archive"]["sha256"], json!(digest));
    assert_eq!(imported["status"]["archive"]["formatVersion"], 1);
    assert_eq!(
        imported["status"]["tenant"]["url"],
        "initech.cc.example.com"
    );
}

fn s3_spec(s3: &s3::S3Server, url: &str) -> Value {
    json!({
        "source": {
            "url": url,
            "credentialsSecretRef": {"name": "bucket-credentials"},
            "endpoint": s3.endpoint,
            "region": "us-east-1",
            "forcePathStyle": true,
            "allowHttp": true,
        },
        "target": {"cluster": "eu-west", "databaseSecretRef": {"name": "configdb"}},
    })
}

#[tokio::test]
async fn rerun_annotation_runs_import_again() {
    let (server, db) = setup().await;
    let _operator = Operator::start(&server, &db, "pod-a", &[]);
    let (_dir, url) = write_archive("archive.zip", b"unpinned bytes");
    let mut pinned = spec(&url, "eu-west");
    pinned["source"]["sha256"] = json!("cd".repeat(32));
    create_import(&server, "pinned", pinned).await;
    wait_for_outcome(&server, "pinned", "Invalid").await;
    wait_for_event(&server, "pinned", "Warning", "DigestMismatch").await;

    let api: Api<tenant_operator::operator::crd::TenantImport> =
        Api::namespaced(server.client().await, NAMESPACE);
    let annotate = json!({"metadata": {"annotations": {"ccops.dev/rerun": "2"}}});
    api.patch("pinned", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .expect("annotate");

    let rerun = server
        .wait_for(
            TENANT_IMPORTS,
            WAIT,
            "a re-run with the new annotation",
            |imports| {
                imports
                    .iter()
                    .find(|ti| {
                        ti["status"]["observedRerun"] == "2" && ti["status"]["outcome"] == "Invalid"
                    })
                    .cloned()
            },
        )
        .await;
    assert_eq!(rerun["status"]["attempts"], 1);
    // The recorder folds a repeated Event into a series, so the second attempt shows
    // as a count of 2.
    server
        .wait_for(EVENTS, WAIT, "the second DigestMismatch Event", |events| {
            events
                .iter()
                .find(|e| e["regarding"]["name"] == "pinned" && e["series"]["count"] == 2)
                .cloned()
        })
        .await;
}

#[tokio::test]
async fn restart_during_import_reports_imported() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (server, db) = setup().await;
    let mut first = Operator::start(&server, &db, "pod-a", &[]);

    // Hold the target's Lease so the import waits at a known point.
    let lock = LeaseLock::new(
        server.client().await,
        OPERATOR_NAMESPACE,
        "eu-west",
        "test-holder",
    );
    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("test takes the lease");
    let mut slow = spec(&file_url(&examples.join("acme-v3.zip")), "eu-west");
    slow["lockTimeoutSeconds"] = json!(60);
    create_import(&server, "acme", slow).await;
    server
        .wait_for(
            TENANT_IMPORTS,
            WAIT,
            "the first attempt to start",
            |imports| {
                imports
                    .iter()
                    .find(|ti| {
                        ti["status"]["attempts"] == 1
                            && condition(ti, "Ready")["reason"] == "Importing"
                    })
                    .cloned()
            },
        )
        .await;

    server
        .wait_for_request(WAIT, "the engine to wait on the target's Lease", |r| {
            r.query.contains("watch=true") && r.query.contains("tenant-import-eu-west")
        })
        .await;

    // Hold back the status write that follows the commit, then let the import run.
    server.inject(Fault {
        method: Some(http::Method::PATCH),
        path_contains: "/tenantimports/acme/status".to_owned(),
        action: FaultAction::Delay(Duration::from_secs(120)),
        times: 1,
    });
    guard.release().await.expect("release");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tenant_count(&db).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import never committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();

    let _second = Operator::start(&server, &db, "pod-b", &[]);
    let imported = wait_for_outcome(&server, "acme", "Imported").await;
    assert_eq!(imported["status"]["attempts"], 2);
    assert_eq!(imported["status"]["tenant"]["url"], "acme.cc.example.com");
    assert_eq!(tenant_count(&db).await, 1);
}

#[tokio::test]
async fn standby_replica_takes_over() {
    let (server, db) = setup().await;
    let mut first = Operator::start(&server, &db, "pod-a", &[]);
    let leader = |holder: &'static str| {
        move |leases: &[Value]| {
            leases
                .iter()
                .find(|l| {
                    l["metadata"]["name"] == "tenant-operator-leader"
                        && l["spec"]["holderIdentity"] == holder
                })
                .cloned()
        }
    };
    server
        .wait_for(LEASES, WAIT, "pod-a to lead", leader("pod-a"))
        .await;
    let second = Operator::start(&server, &db, "pod-b", &[]);
    let (code, _) = second.get("/readyz").await;
    assert_eq!(code, 200, "a standby is ready");

    let (_dir, url) = write_archive("archive.zip", b"bytes");
    let mut pinned = spec(&url, "eu-west");
    pinned["source"]["sha256"] = json!("ef".repeat(32));
    create_import(&server, "one", pinned.clone()).await;
    wait_for_outcome(&server, "one", "Invalid").await;
    let instances = wait_for_event(&server, "one", "Warning", "DigestMismatch").await;
    assert_eq!(instances, ["pod-a"], "only the leader reconciles");

    let exit = first.terminate().await;
    assert!(
        exit.success(),
        "the leader stops cleanly on SIGTERM: {exit:?}"
    );
    server
        .wait_for(
            LEASES,
            Duration::from_secs(10),
            "pod-b to lead",
            leader("pod-b"),
        )
        .await;

    create_import(&server, "two", pinned).await;
    wait_for_outcome(&server, "two", "Invalid").await;
    let instances = wait_for_event(&server, "two", "Warning", "DigestMismatch").await;
    assert_eq!(instances, ["pod-b"]);
    let (_, metrics) = second.get("/metrics").await;
    assert!(metrics.contains("tenant_operator_leader 1"), "{metrics}");
}

#[tokio::test]
async fn leader_exits_when_lease_taken() {
    let (server, db) = setup().await;
    let mut operator = Operator::start(&server, &db, "pod-a", &[]);
    server
        .wait_for(LEASES, WAIT, "pod-a to lead", |leases| {
            leases
                .iter()
                .find(|l| l["spec"]["holderIdentity"] == "pod-a")
                .cloned()
        })
        .await;

    // Another writer takes the Lease, as a replica does after a network partition.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(server.client().await, OPERATOR_NAMESPACE);
    let intruder = json!({"spec": {
        "holderIdentity": "pod-z",
        "renewTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }});
    leases
        .patch(
            "tenant-operator-leader",
            &PatchParams::default(),
            &Patch::Merge(&intruder),
        )
        .await
        .expect("take the leader Lease");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = operator.child.try_wait().expect("operator status") {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader kept running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        exit.code(),
        Some(1),
        "a leader that lost its Lease exits with an error"
    );
    let lease = server
        .object(LEASES, OPERATOR_NAMESPACE, "tenant-operator-leader")
        .expect("leader Lease");
    assert_eq!(
        lease["spec"]["holderIdentity"], "pod-z",
        "the lost Lease is left alone"
    );
}

#[tokio::test]
async fn health_routes_answer() {
    let (server, db) = setup().await;
    let operator = Operator::start(&server, &db, "pod-a", &[]);

    let (code, body) = operator.get("/healthz").await;
    assert_eq!((code, body.trim_end()), (200, "ok"));
    let (code, body) = operator.get("/readyz").await;
    assert_eq!((code, body.trim_end()), (200, "ready"));
    let (code, metrics) = operator.get("/metrics").await;
    assert_eq!(code, 200);
    for name in [
        "tenant_operator_imports_in_flight",
        "tenant_operator_lock_wait_seconds",
        "tenant_operator_leader",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }
}
