//! End to end: holder A of the import Lease `tenant-import-eu-west` loses it while its
//! import is paused inside the fenced transaction, after three batches of objects.
//! Holder B, another process with another holder identity, takes the Lease and
//! imports a tenant whose access-number range overlaps A's. Real binaries, a real
//! PostgreSQL database and the fake API server.
//!
//! A is a `tenant-operator run` controller or a `serve --lease-cluster` shim, and B is
//! the other front end. A loses the Lease in one of two ways:
//!
//! - Expiry: the fake API server cuts A off, an API outage for A alone, and the test
//!   moves the Lease's renewTime into the past. B takes it through its normal acquire
//!   path. Without the outage A's next renewal would make the Lease current again,
//!   because A is still its holder. In a cluster, too, a Lease expires when its
//!   holder cannot renew it.
//! - Theft: the test writes another holder, `intruder`, into the Lease. B takes it
//!   over once the intruder's lease duration has passed without renewal.
//!
//! When A learns of the loss before commit (its renewal finds another holder, or its
//! own lease duration passes without renewal), it rolls back, and its retry imports
//! after B: the serial order B, A. When A cannot learn of it (cut off, with a lease
//! duration longer than the test), it commits, and B imports after it: the serial
//! order A, B. Either way B waits at the engine's fence until A's transaction ends.

mod support;

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/import_results.rs"]
mod import_results;
#[path = "support/operator_process.rs"]
mod operator_process;
#[path = "support/shim.rs"]
mod shim;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use import_results::{assert_intervals_disjoint, fence_waiter, project, serial_result};
use operator_process::{
    EVENTS, LEASES, OPERATOR_NAMESPACE, Operator, TENANT_IMPORTS, WAIT, condition, create_import,
    file_url, setup, spec, wait_for_log, wait_for_outcome,
};
use serde_json::{Value, json};
use shim::{Shim, ShimOptions, TenantArchive};
use sqlx::Connection;
use support::{Backend, TestDatabase};
use tenant_operator::engine::fault::{BATCH_SIZE_VARIABLE, MARKER, PAUSE_VARIABLE};
use tokio::task::JoinHandle;

/// The target cluster of every import here.
const CLUSTER: &str = "eu-west";
/// The Lease of `CLUSTER`.
const LEASE: &str = "tenant-import-eu-west";
/// Holder identities, which are also the processes' bearer tokens.
const HOLDER_A: &str = "holder-a";
const HOLDER_B: &str = "holder-b";
const INTRUDER: &str = "intruder";
/// The lease duration the intruder writes.
const INTRUDER_DURATION: Duration = Duration::from_secs(2);
/// A's lease duration when it must learn of the loss: renewals every second.
const SHORT_LEASE: Duration = Duration::from_secs(3);
/// A's lease duration when it must not: longer than any case runs.
const LONG_LEASE: Duration = Duration::from_secs(300);
/// Objects per archive and per staging batch, so A pauses after 30 of 60 objects.
const OBJECTS: usize = 60;
const BATCH_SIZE: &str = "10";
const PAUSE_POINT: &str = "objects:3";
/// Seconds each import waits for the Lease and the fence.
const LOCK_TIMEOUT: u64 = 60;

/// The front end that runs an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Controller,
    Shim,
}

/// How A loses the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Expiry,
    Theft,
}

/// One case: A's front end, how it loses the Lease, and whether it can learn of it.
#[derive(Debug, Clone, Copy)]
struct Case {
    holder: Kind,
    loss: Loss,
    noticed: bool,
}

/// A running front end and its import of one archive.
enum FrontEnd {
    /// A `run` controller; its TenantImport has the holder identity as name.
    Controller(Operator),
    /// A `serve` shim and its upload in flight, with the HTTP status and body.
    Shim {
        shim: Shim,
        upload: Option<JoinHandle<(u16, String)>>,
    },
}

impl FrontEnd {
    /// Starts a front end of `kind` under `identity` and its import of `archive`.
    async fn start(
        kind: Kind,
        env: &Environment,
        identity: &str,
        archive: &Path,
        lease_duration: Duration,
        pause: bool,
    ) -> Self {
        let batch = [
            (PAUSE_VARIABLE, PAUSE_POINT),
            (BATCH_SIZE_VARIABLE, BATCH_SIZE),
        ];
        let pause_env: &[(&str, &str)] = if pause { &batch } else { &[] };
        match kind {
            Kind::Controller => {
                let seconds = lease_duration.as_secs().to_string();
                let extra = ["--lease-duration", seconds.as_str()];
                let operator =
                    Operator::start_with_env(&env.server, &env.db, identity, &extra, pause_env);
                let mut spec = spec(&file_url(archive), CLUSTER);
                spec["lockTimeoutSeconds"] = json!(LOCK_TIMEOUT);
                create_import(&env.server, identity, spec).await;
                Self::Controller(operator)
            }
            Kind::Shim => {
                let kubeconfig = env.server.kubeconfig_for(identity);
                let mut options = ShimOptions::lease(
                    &kubeconfig,
                    CLUSTER,
                    OPERATOR_NAMESPACE,
                    identity,
                    lease_duration,
                );
                for (name, value) in pause_env {
                    options.env.push(((*name).to_owned(), (*value).to_owned()));
                }
                let shim = Shim::start(&env.db.url, &env.db.reporting_prefix, options).await;
                let mut front_end = Self::Shim { shim, upload: None };
                front_end.upload(archive).await;
                front_end
            }
        }
    }

    /// Sends an upload of `archive` without waiting for its response.
    async fn upload(&mut self, archive: &Path) {
        let Self::Shim { shim, upload } = self else {
            panic!("only a shim uploads");
        };
        let api = shim.client().await;
        let path = archive.to_path_buf();
        *upload = Some(tokio::spawn(async move {
            let response = api.import(&path, LOCK_TIMEOUT).await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }));
    }

    /// Returns the upload's HTTP status and body.
    async fn upload_response(&mut self) -> (u16, String) {
        let Self::Shim { upload, .. } = self else {
            panic!("only a shim uploads");
        };
        let task = upload.take().expect("an upload in flight");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("upload response in time")
            .expect("upload task")
    }

    fn log(&self) -> PathBuf {
        match self {
            Self::Controller(operator) => operator.log_path(),
            Self::Shim { shim, .. } => shim.log.clone(),
        }
    }

    fn resume(&mut self) {
        match self {
            Self::Controller(operator) => operator.resume(),
            Self::Shim { shim, .. } => shim.resume(),
        }
    }

    /// Waits until the front end paused for the `count`th time, then resumes it.
    async fn resume_pause(&mut self, count: usize) {
        wait_for_log(&self.log(), &[&pause_marker()], count).await;
        self.resume();
    }
}

/// The fake API server, the database and the two archives of a case.
struct Environment {
    server: FakeApiServer,
    db: TestDatabase,
    archive_a: PathBuf,
    archive_b: PathBuf,
    _dir: tempfile::TempDir,
}

#[tokio::test]
async fn controller_rolls_back_after_expiry() {
    run(Case {
        holder: Kind::Controller,
        loss: Loss::Expiry,
        noticed: true,
    })
    .await;
}

#[tokio::test]
async fn controller_rolls_back_after_theft() {
    run(Case {
        holder: Kind::Controller,
        loss: Loss::Theft,
        noticed: true,
    })
    .await;
}

#[tokio::test]
async fn shim_rolls_back_after_expiry() {
    run(Case {
        holder: Kind::Shim,
        loss: Loss::Expiry,
        noticed: true,
    })
    .await;
}

#[tokio::test]
async fn shim_rolls_back_after_theft() {
    run(Case {
        holder: Kind::Shim,
        loss: Loss::Theft,
        noticed: true,
    })
    .await;
}

#[tokio::test]
async fn unaware_controller_commits_before_thief() {
    run(Case {
        holder: Kind::Controller,
        loss: Loss::Theft,
        noticed: false,
    })
    .await;
}

#[tokio::test]
async fn unaware_shim_commits_before_taker() {
    run(Case {
        holder: Kind::Shim,
        loss: Loss::Expiry,
        noticed: false,
    })
    .await;
}

/// Runs one case to its end and checks the database against a serial run.
async fn run(case: Case) {
    let env = environment().await;
    let other = match case.holder {
        Kind::Controller => Kind::Shim,
        Kind::Shim => Kind::Controller,
    };
    let lease_duration = if case.noticed {
        SHORT_LEASE
    } else {
        LONG_LEASE
    };
    let mut a = FrontEnd::start(
        case.holder,
        &env,
        HOLDER_A,
        &env.archive_a,
        lease_duration,
        true,
    )
    .await;
    wait_for_log(&a.log(), &[&pause_marker()], 1).await;
    assert_eq!(lease_holder(&env.server), HOLDER_A, "{case:?}");

    let mut b = FrontEnd::start(other, &env, HOLDER_B, &env.archive_b, SHORT_LEASE, false).await;
    take_lease_from_a(&env.server, case).await;
    wait_for_holder(&env.server, HOLDER_B).await;
    let mut conn = sqlx::PgConnection::connect(&env.db.url)
        .await
        .expect("connect to the test database");
    wait_for_fence_waiter(&mut conn).await;

    if case.noticed {
        let lost = match case.loss {
            Loss::Expiry => "lease expired without renewal",
            Loss::Theft => "lease lost to another holder",
        };
        // A controller renews its leader Lease as well, so the line must name the
        // import Lease.
        wait_for_log(&a.log(), &[lost, LEASE], 1).await;
        env.server.restore(HOLDER_A);
    }
    assert!(
        fence_waiter(&mut conn).await,
        "{case:?}: B still waits at the fence before A resumes"
    );
    let _ = conn.close().await;
    a.resume();

    if case.noticed {
        check_rolled_back(&env, &mut a, case).await;
        check_imported(&env, &mut b, HOLDER_B).await;
        check_imported(&env, &mut a, HOLDER_A).await;
    } else {
        wait_for_log(&a.log(), &["tenant imported"], 1).await;
        env.server.restore(HOLDER_A);
        check_imported(&env, &mut a, HOLDER_A).await;
        check_imported(&env, &mut b, HOLDER_B).await;
    }
    check_serial(&env, case).await;
}

async fn environment() -> Environment {
    let (server, db) = setup().await;
    let dir = tempfile::tempdir().expect("archive folder");
    let archive_a = dir.path().join("a.zip");
    TenantArchive::new(HOLDER_A, OBJECTS)
        .range("5559000", "5559019")
        .write(&archive_a);
    let archive_b = dir.path().join("b.zip");
    TenantArchive::new(HOLDER_B, OBJECTS)
        .range("5559010", "5559029")
        .write(&archive_b);
    Environment {
        server,
        db,
        archive_a,
        archive_b,
        _dir: dir,
    }
}

/// Makes A lose the Lease. A is cut off from the API server unless it must learn of
/// a theft through its renewal. A cut-off A still learns of an expiry, from its own
/// lease duration passing without renewal.
async fn take_lease_from_a(server: &FakeApiServer, case: Case) {
    if !case.noticed || case.loss == Loss::Expiry {
        server.cut_off(HOLDER_A);
    }
    let lease = match case.loss {
        Loss::Expiry => server.expire_lease(OPERATOR_NAMESPACE, LEASE),
        Loss::Theft => server.steal_lease(OPERATOR_NAMESPACE, LEASE, INTRUDER, INTRUDER_DURATION),
    };
    assert_eq!(lease["spec"]["holderIdentity"], lease_holder(server));
}

/// Checks that A's first import ended with the lost-lock failure and wrote nothing,
/// and starts A's retry where the retry is the client's.
async fn check_rolled_back(env: &Environment, a: &mut FrontEnd, case: Case) {
    match a {
        FrontEnd::Controller(_) => {
            let event = env
                .server
                .wait_for(EVENTS, WAIT, "a LockLost Event", |events| {
                    events
                        .iter()
                        .find(|event| event["reason"] == "LockLost")
                        .cloned()
                })
                .await;
            let note = event["note"].as_str().unwrap_or_default();
            assert!(note.contains("lost before commit"), "{case:?}: {event}");
            assert!(note.contains("nothing was written"), "{case:?}: {event}");
        }
        FrontEnd::Shim { .. } => {
            let (status, body) = a.upload_response().await;
            assert_eq!(status, 503, "{case:?}: {body}");
            let error: Value = serde_json::from_str(&body).expect("JSON error body");
            assert_eq!(error["error"], "lock_lost", "{case:?}: {body}");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(message.contains("nothing was written"), "{case:?}: {body}");
            assert!(message.contains("retry"), "{case:?}: {body}");
            a.upload(&env.archive_a).await;
        }
    }
    let tenants = project(&env.db.url).await.tenants;
    assert!(
        !tenants.iter().any(|tenant| tenant.starts_with(HOLDER_A)),
        "{case:?}: A's tenant after its rollback: {tenants:?}"
    );
    a.resume_pause(2).await;
}

/// Waits until the front end's import under `identity` is Imported.
async fn check_imported(env: &Environment, front_end: &mut FrontEnd, identity: &str) {
    match front_end {
        FrontEnd::Controller(_) => {
            let imported = wait_for_outcome(&env.server, identity, "Imported").await;
            let ready = condition(&imported, "Ready");
            assert_eq!(ready["reason"], "Imported", "{imported}");
        }
        FrontEnd::Shim { .. } => {
            let (status, body) = front_end.upload_response().await;
            assert_eq!(status, 200, "{identity}: {body}");
        }
    }
}

/// Compares the database with the serial run that the case must match: B before A
/// when A rolled back, A before B when it committed unaware.
async fn check_serial(env: &Environment, case: Case) {
    let (a, b) = (env.archive_a.as_path(), env.archive_b.as_path());
    let order = if case.noticed { [b, a] } else { [a, b] };
    let expected = serial_result(&order).await;
    let actual = project(&env.db.url).await;
    assert_eq!(actual, expected, "{case:?}");
    assert_intervals_disjoint(&env.db.url, Backend::Postgres).await;

    let pool = sqlx::PgPool::connect(&env.db.url)
        .await
        .expect("connect to the test database");
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT reporting_database FROM tenants ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("read the tenants' reporting databases");
    pool.close().await;
    let existing = env.db.reporting_databases().await;
    assert_eq!(
        recorded, existing,
        "{case:?}: orphan or missing reporting database"
    );

    let imports = env.server.objects(TENANT_IMPORTS);
    for resource in &imports {
        let attempts = resource["status"]["attempts"].as_u64().unwrap_or_default();
        let minimum = if case.noticed && resource["metadata"]["name"] == HOLDER_A {
            2
        } else {
            1
        };
        assert!(attempts >= minimum, "{case:?}: {resource}");
    }
}

fn pause_marker() -> String {
    format!("{MARKER}{PAUSE_POINT}")
}

fn lease_holder(server: &FakeApiServer) -> String {
    let lease = server
        .object(LEASES, OPERATOR_NAMESPACE, LEASE)
        .expect("the import Lease");
    lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_for_holder(server: &FakeApiServer, holder: &str) {
    let what = format!("{holder} to hold {LEASE}");
    server
        .wait_for(LEASES, WAIT, &what, |leases| {
            leases
                .iter()
                .find(|lease| {
                    lease["metadata"]["name"] == LEASE && lease["spec"]["holderIdentity"] == holder
                })
                .cloned()
        })
        .await;
}

async fn wait_for_fence_waiter(conn: &mut sqlx::PgConnection) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !fence_waiter(conn).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never waited at the fence"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
