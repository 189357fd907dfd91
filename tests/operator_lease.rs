//! The Lease import lock against the fake API server: compare-and-swap, waiting for a
//! release, takeover of an expired Lease, renewal, API failures, and a guard that
//! learns of a lost Lease.

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, Fault, FaultAction};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tenant_operator::lock::{ImportLock, LockError, LockGuard};
use tenant_operator::operator::lease::LeaseLock;

const NAMESPACE: &str = "ops";
const LEASES: &str = "leases.coordination.k8s.io";
const LEASE: &str = "tenant-import-eu-west";

fn holder_of(server: &FakeApiServer, name: &str) -> Option<String> {
    let lease = server.object(LEASES, NAMESPACE, name)?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn lease_lock_creates_and_releases() {
    let server = FakeApiServer::start().await;
    let lock = LeaseLock::new(server.client().await, NAMESPACE, "eu-west", "pod-a");

    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");
    assert_eq!(
        holder_of(&server, "tenant-import-eu-west").as_deref(),
        Some("pod-a")
    );

    guard.release().await.expect("release");
    assert_eq!(holder_of(&server, "tenant-import-eu-west"), None);
}

#[tokio::test]
async fn second_holder_times_out_naming_holder() {
    let server = FakeApiServer::start().await;
    let client = server.client().await;
    let first = LeaseLock::new(client.clone(), NAMESPACE, "eu-west", "pod-a");
    let second = LeaseLock::new(client, NAMESPACE, "eu-west", "pod-b");

    let _guard = first
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");
    let error = second
        .acquire(Duration::from_millis(300))
        .await
        .err()
        .expect("lock is held");
    match error {
        LockError::Timeout { holder, waited } => {
            assert_eq!(holder, "pod-a");
            assert!(
                waited >= Duration::from_millis(300),
                "waited only {waited:?}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn waiter_wakes_on_release() {
    let server = FakeApiServer::start().await;
    let client = server.client().await;
    let first = LeaseLock::new(client.clone(), NAMESPACE, "eu-west", "pod-a");
    let second = LeaseLock::new(client, NAMESPACE, "eu-west", "pod-b");
    let guard = first
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");

    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let guard = second.acquire(Duration::from_secs(60)).await;
        (guard.map(|_| ()), started.elapsed())
    });
    server
        .wait_for_request(Duration::from_secs(5), "a watch on the lease", |r| {
            r.path.ends_with("/leases") && r.query.contains("watch=true")
        })
        .await;
    guard.release().await.expect("release");

    let (result, waited) = waiter.await.expect("waiter task");
    result.expect("lock after release");
    // The holder's lease lasts 15 s; taking it well before then shows the waiter woke
    // on the release rather than on expiry.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    assert_eq!(
        holder_of(&server, "tenant-import-eu-west").as_deref(),
        Some("pod-b")
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over() {
    let server = FakeApiServer::start().await;
    let client = server.client().await;
    let stale = chrono::Utc::now() - chrono::Duration::seconds(60);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("tenant-import-eu-west".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("crashed-pod".to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(stale)),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }),
    };
    Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &lease)
        .await
        .expect("create stale lease");

    let lock = LeaseLock::new(client, NAMESPACE, "eu-west", "pod-b");
    let _guard = lock
        .acquire(Duration::from_secs(1))
        .await
        .expect("takeover");

    let stored = server
        .object(LEASES, NAMESPACE, "tenant-import-eu-west")
        .expect("lease");
    assert_eq!(stored["spec"]["holderIdentity"], "pod-b");
    assert_eq!(stored["spec"]["leaseTransitions"], 4);
}

#[tokio::test]
async fn held_lease_is_renewed() {
    let server = FakeApiServer::start().await;
    let client = server.client().await;
    let duration = Duration::from_secs(1);
    let lock = LeaseLock::with_duration(client, NAMESPACE, "eu-west", "pod-a", duration);
    let _guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");
    let first = server
        .object(LEASES, NAMESPACE, "tenant-import-eu-west")
        .expect("lease");

    let renewed = server
        .wait_for(LEASES, Duration::from_secs(5), "a renewal", |leases| {
            leases
                .iter()
                .find(|l| l["spec"]["renewTime"] != first["spec"]["renewTime"])
                .cloned()
        })
        .await;
    assert_eq!(renewed["spec"]["holderIdentity"], "pod-a");
}

#[tokio::test]
async fn conflicting_create_is_retried() {
    let server = FakeApiServer::start().await;
    server.inject(Fault {
        method: Some(http::Method::POST),
        path_contains: "/leases".to_owned(),
        action: FaultAction::Status(409),
        times: 1,
    });
    let lock = LeaseLock::new(server.client().await, NAMESPACE, "eu-west", "pod-a");

    let _guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("lock after retry");
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/leases"))
        .count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn api_failure_is_backend_error() {
    let server = FakeApiServer::start().await;
    server.inject(Fault {
        method: Some(http::Method::GET),
        path_contains: "/leases/".to_owned(),
        action: FaultAction::Status(500),
        times: 1,
    });
    let lock = LeaseLock::new(server.client().await, NAMESPACE, "eu-west", "pod-a");

    let error = lock
        .acquire(Duration::from_secs(1))
        .await
        .err()
        .expect("failure");
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
}

#[tokio::test]
async fn guard_learns_of_stolen_lease() {
    let server = FakeApiServer::start().await;
    let duration = Duration::from_secs(3);
    let lock = LeaseLock::with_duration(
        server.client().await,
        NAMESPACE,
        "eu-west",
        "pod-a",
        duration,
    );
    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");
    assert!(guard.is_held(), "a fresh guard");

    let stolen = server.steal_lease(NAMESPACE, LEASE, "pod-b", Duration::from_secs(15));
    assert_eq!(stolen["spec"]["holderIdentity"], "pod-b");
    // The next renewal, at most a third of the duration away, finds pod-b.
    wait_for_held(guard.as_ref(), false, duration).await;

    guard.release().await.expect("release");
    assert_eq!(
        holder_of(&server, LEASE).as_deref(),
        Some("pod-b"),
        "release leaves the new holder's Lease alone"
    );
}

#[tokio::test]
async fn guard_expires_during_outage() {
    let server = FakeApiServer::start().await;
    let duration = Duration::from_secs(3);
    let client = server.client_for("pod-a").await;
    let lock = LeaseLock::with_duration(client, NAMESPACE, "eu-west", "pod-a", duration);
    let guard = lock
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");

    server.cut_off("pod-a");
    let lost_after = wait_for_held(guard.as_ref(), false, duration * 2).await;
    // The last renewal before the outage was at most a third of the duration earlier.
    let earliest = duration - duration / 3;
    assert!(
        lost_after >= earliest - Duration::from_millis(100),
        "lost {lost_after:?} after the outage began, before its lease duration passed"
    );

    // pod-a is still the holder, so the first renewal after the outage succeeds and
    // the guard counts as held again.
    server.restore("pod-a");
    wait_for_held(guard.as_ref(), true, duration).await;
    assert_eq!(holder_of(&server, LEASE).as_deref(), Some("pod-a"));
}

/// Waits until `guard.is_held()` returns `held` and returns how long that took, or
/// panics after `within`.
async fn wait_for_held(guard: &dyn LockGuard, held: bool, within: Duration) -> Duration {
    let started = Instant::now();
    while guard.is_held() != held {
        assert!(
            started.elapsed() < within,
            "is_held() stayed {} for {within:?}",
            !held
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}
