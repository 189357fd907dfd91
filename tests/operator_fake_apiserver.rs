//! The fake API server itself: the semantics the operator's tests rely on, checked
//! through the real kube client.

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Fault, FaultAction};
use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use tenant_operator::operator::crd::{TenantImport, TenantImportStatus};

fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            ..LeaseSpec::default()
        }),
    }
}

fn tenant_import(name: &str) -> TenantImport {
    serde_json::from_value(json!({
        "apiVersion": "ccops.dev/v1alpha1",
        "kind": "TenantImport",
        "metadata": {"name": name},
        "spec": {
            "source": {"url": "file:///tmp/a.zip"},
            "target": {"cluster": "eu-west", "databaseSecretRef": {"name": "db"}},
        },
    }))
    .expect("valid TenantImport")
}

fn status_code(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_twice_is_already_exists() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client().await, "ops");

    let created = leases
        .create(&PostParams::default(), &lease("a", "x"))
        .await
        .expect("create");
    let again = leases
        .create(&PostParams::default(), &lease("a", "y"))
        .await;

    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(status_code(again.expect_err("exists")), 409);
}

#[tokio::test]
async fn stale_replace_is_conflict() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client().await, "ops");
    let stale = leases
        .create(&PostParams::default(), &lease("a", "x"))
        .await
        .expect("create");
    let mut fresh = stale.clone();
    fresh.spec = Some(LeaseSpec {
        holder_identity: Some("y".to_owned()),
        ..LeaseSpec::default()
    });
    leases
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("first replace");

    let error = leases
        .replace("a", &PostParams::default(), &stale)
        .await
        .expect_err("stale");

    assert_eq!(status_code(error), 409);
}

#[tokio::test]
async fn status_subresource_is_separate() {
    let server = FakeApiServer::start().await;
    let imports: Api<TenantImport> = Api::namespaced(server.client().await, "cc");
    imports
        .create(&PostParams::default(), &tenant_import("t"))
        .await
        .expect("create");

    let status = json!({"status": {"attempts": 3, "message": "hello"}});
    let patched = imports
        .patch_status("t", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );

    let mut with_status = patched.clone();
    with_status.status = Some(TenantImportStatus::default());
    with_status.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into());
    let replaced = imports
        .replace("t", &PostParams::default(), &with_status)
        .await
        .expect("replace");
    let kept = replaced.status.expect("status kept");
    assert_eq!(
        kept.attempts, 3,
        "a main-resource write keeps the stored status"
    );
    assert_eq!(
        replaced.metadata.generation,
        Some(1),
        "metadata writes keep the generation"
    );

    let spec = json!({"spec": {"lockTimeoutSeconds": 30}});
    let changed = imports
        .patch("t", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .expect("patch spec");
    assert_eq!(changed.metadata.generation, Some(2));
}

#[tokio::test]
async fn json_and_apply_patches() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client().await, "ops");
    leases
        .create(&PostParams::default(), &lease("a", "x"))
        .await
        .expect("create");

    let operations: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/holderIdentity", "value": "y"},
    ]))
    .expect("JSON patch");
    let patched = leases
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(operations))
        .await
        .expect("JSON patch");
    assert_eq!(
        patched.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("y")
    );

    let applied = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "b"},
        "spec": {"holderIdentity": "z"},
    });
    let created = leases
        .patch(
            "b",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&applied),
        )
        .await
        .expect("apply creates");
    assert_eq!(
        created.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("z")
    );
}

#[tokio::test]
async fn watch_resumes_and_sends_bookmarks() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client().await, "ops");
    let first = leases
        .create(&PostParams::default(), &lease("a", "x"))
        .await
        .expect("create a");
    leases
        .create(&PostParams::default(), &lease("b", "x"))
        .await
        .expect("create b");

    let since = first.metadata.resource_version.expect("resourceVersion");
    let params = WatchParams::default().timeout(10);
    let stream = leases.watch(&params, &since).await.expect("watch");
    let mut stream = std::pin::pin!(stream);

    let event = stream
        .try_next()
        .await
        .expect("watch event")
        .expect("open stream");
    match event {
        WatchEvent::Added(lease) => assert_eq!(lease.metadata.name.as_deref(), Some("b")),
        other => panic!("expected b to be added, got {other:?}"),
    }
    let bookmark = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("bookmark in time")
        .expect("watch event")
        .expect("open stream");
    assert!(matches!(bookmark, WatchEvent::Bookmark(_)), "{bookmark:?}");
}

#[tokio::test]
async fn faults_and_request_log() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client().await, "ops");
    server.inject(Fault {
        method: None,
        path_contains: "/leases/a".to_owned(),
        action: FaultAction::Status(500),
        times: 1,
    });

    let failed = leases.get("a").await.expect_err("injected 500");
    assert_eq!(status_code(failed), 500);
    let missing = leases.get("a").await.expect_err("fault used up");
    assert_eq!(status_code(missing), 404);

    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|r| r.method == "GET"
            && r.path == "/apis/coordination.k8s.io/v1/namespaces/ops/leases/a")
    );
}
