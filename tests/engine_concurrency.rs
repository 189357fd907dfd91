//! Imports racing for the standalone lock: both succeed in turn, and an import waits
//! only as long as its lock timeout. An import whose outer lock is lost waits at the
//! fence, and one whose guard reports the loss rolls back before commit.

#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/engine_harness.rs"]
mod engine_harness;
#[path = "support/lost_lock.rs"]
mod lost_lock;
mod support;

use std::time::{Duration, Instant};

use sqlx::Connection;

use engine_fixtures::TenantFixture;
use engine_harness::{BACKENDS, Harness};
use lost_lock::{KnownLostLock, LostLock};
use tenant_operator::db::Database;
use tenant_operator::engine::{FENCE_KEY, ImportError, ImportRequest, Outcome};
use tenant_operator::lock::ImportLock;

#[tokio::test]
async fn racing_imports_both_succeed() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let first = TenantFixture::new("racer-one", 300).with_range("5556000", "5556099", "voice");
        let second = TenantFixture::new("racer-two", 300).with_range("5556100", "5556199", "voice");
        let first_path = first.write_v3(harness.dir.path());
        let second_path = second.write_v3(harness.dir.path());

        let (one, two) = tokio::join!(harness.import(&first_path), harness.import(&second_path));

        assert_eq!(
            one.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            one.message
        );
        assert_eq!(
            two.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            two.message
        );
        let tenants = harness.rows("SELECT url FROM tenants").await;
        assert_eq!(
            tenants,
            vec![first.url.clone(), second.url.clone()],
            "{backend:?}"
        );
        let objects = harness
            .rows("SELECT CAST(guid AS TEXT) FROM config_objects")
            .await;
        assert_eq!(objects.len(), 600, "{backend:?}");
        let numbers = harness
            .rows("SELECT CAST(value AS TEXT) FROM access_numbers")
            .await;
        assert_eq!(numbers.len(), 200, "{backend:?}");
    }
}

#[tokio::test]
async fn held_lock_times_out_import() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let lock = harness.db.standalone_lock();
        let held = lock
            .acquire(Duration::from_secs(5))
            .await
            .expect("test takes the lock");
        let fixture = TenantFixture::new("waiting", 2).with_range("5557000", "5557001", "voice");
        let before = harness.snapshot().await;

        let timeout = Duration::from_millis(600);
        let request = ImportRequest {
            archive: fixture.write_v3(harness.dir.path()),
            import_id: None,
            lock_timeout: timeout,
        };
        let started = Instant::now();
        let report = harness
            .engine
            .import(&request, &lock)
            .await
            .expect("import runs");
        let waited = started.elapsed();

        assert_eq!(
            report.outcome,
            Outcome::LockTimeout,
            "{backend:?}: {}",
            report.message
        );
        assert!(waited >= timeout, "{backend:?}: gave up after {waited:?}");
        assert!(
            waited < timeout + Duration::from_secs(5),
            "{backend:?}: waited {waited:?}"
        );
        assert_eq!(
            report.tenant.as_ref().map(|t| t.guid),
            Some(fixture.guid),
            "{backend:?}"
        );
        assert_eq!(
            harness.snapshot().await,
            before,
            "{backend:?}: tables changed"
        );
        assert!(
            harness.test_db.reporting_databases().await.is_empty(),
            "{backend:?}"
        );

        held.release().await.expect("release");
        let after = harness
            .engine
            .import(&request, &lock)
            .await
            .expect("import runs");
        assert_eq!(
            after.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            after.message
        );
    }
}

#[tokio::test]
async fn fence_separates_imports_without_lock() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("fenced", 2000).with_range("5559000", "5559999", "voice");
        let request = ImportRequest {
            archive: fixture.write_v3(harness.dir.path()),
            import_id: None,
            lock_timeout: Duration::from_secs(30),
        };

        let (one, two) = tokio::join!(
            harness.engine.import(&request, &LostLock),
            harness.engine.import(&request, &LostLock)
        );
        let mut outcomes = vec![
            one.expect("first import runs").outcome,
            two.expect("second import runs").outcome,
        ];
        outcomes.sort_by_key(|outcome| format!("{outcome:?}"));

        assert_eq!(
            outcomes,
            vec![Outcome::Conflict, Outcome::Imported],
            "{backend:?}"
        );
        assert_eq!(
            harness.test_db.reporting_databases().await.len(),
            1,
            "{backend:?}"
        );
    }
}

/// A connection of the test that holds the fence: the advisory transaction lock on
/// PostgreSQL, the write lock on SQLite.
enum FenceHolder {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl FenceHolder {
    async fn take(harness: &Harness) -> Self {
        match &harness.db {
            Database::Postgres(_) => {
                let mut conn = sqlx::PgConnection::connect(&harness.test_db.url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .expect("begin");
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(FENCE_KEY)
                    .execute(&mut conn)
                    .await
                    .expect("test takes the fence");
                Self::Postgres(conn)
            }
            Database::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&harness.test_db.url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .expect("test takes the write lock");
                Self::Sqlite(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Self::Postgres(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("rollback");
            }
            Self::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("rollback");
            }
        }
    }
}

#[tokio::test]
async fn held_fence_times_out_import() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let holder = FenceHolder::take(&harness).await;
        let fixture = TenantFixture::new("fence-wait", 2);
        let request = ImportRequest {
            archive: fixture.write_v3(harness.dir.path()),
            import_id: None,
            lock_timeout: Duration::from_millis(500),
        };

        let started = Instant::now();
        let report = harness
            .engine
            .import(&request, &LostLock)
            .await
            .expect("import runs");
        let waited = started.elapsed();

        assert_eq!(
            report.outcome,
            Outcome::LockTimeout,
            "{backend:?}: {}",
            report.message
        );
        assert!(
            waited >= request.lock_timeout,
            "{backend:?}: gave up after {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(10),
            "{backend:?}: waited {waited:?}"
        );
        holder.release().await;
        let after = harness
            .engine
            .import(&request, &LostLock)
            .await
            .expect("import runs");
        assert_eq!(
            after.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            after.message
        );
    }
}

/// A guard that reports the lock lost makes the import roll back everything, its
/// reporting database included, and a retry under a held lock imports once.
#[tokio::test]
async fn known_lost_lock_rolls_back() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture =
            TenantFixture::new("lost-before-commit", 50).with_range("5557300", "5557319", "voice");
        let archive = fixture.write_v3(harness.dir.path());
        let import_id = "lost-before-commit";
        let before = harness.snapshot().await;
        let request = ImportRequest {
            archive: archive.clone(),
            import_id: Some(import_id.to_owned()),
            lock_timeout: Duration::from_secs(30),
        };

        let result = harness.engine.import(&request, &KnownLostLock).await;

        assert!(
            matches!(result, Err(ImportError::LockLost)),
            "{backend:?}: {result:?}"
        );
        assert_eq!(harness.snapshot().await, before, "{backend:?}: rows");
        let reporting = harness.test_db.reporting_databases().await;
        assert!(reporting.is_empty(), "{backend:?}: {reporting:?}");

        let retried = harness
            .try_import(&archive, Some(import_id))
            .await
            .expect("retry runs");
        assert_eq!(
            retried.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            retried.message
        );
        assert!(!retried.replayed, "{backend:?}: the retry replayed");
        let tenants = harness.rows("SELECT url FROM tenants").await;
        assert_eq!(tenants, [fixture.url.as_str()], "{backend:?}");
        let journal = harness.rows("SELECT import_id FROM import_journal").await;
        assert_eq!(journal, [import_id], "{backend:?}");
        let reporting = harness.test_db.reporting_databases().await;
        assert_eq!(reporting.len(), 1, "{backend:?}: {reporting:?}");
    }
}
