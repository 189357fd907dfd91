//! The standalone import lock on both backends: a second holder waits, times out
//! after about the timeout, and gets the lock as soon as the first releases it.

mod support;

use std::time::{Duration, Instant};

use support::{Backend, TestDatabase};
use tenant_operator::db::Database;
use tenant_operator::lock::{ImportLock, LockError};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

async fn migrated(backend: Backend) -> (TestDatabase, Database) {
    let test_db = TestDatabase::new(backend).await;
    let db = Database::connect(&test_db.url).await.expect("connect");
    db.migrate().await.expect("migrate");
    (test_db, db)
}

#[tokio::test]
async fn lock_times_out_while_held() {
    for backend in BACKENDS {
        let (_test_db, db) = migrated(backend).await;
        let lock = db.standalone_lock();
        let held = lock
            .acquire(Duration::from_secs(5))
            .await
            .expect("first acquire");

        let timeout = Duration::from_millis(400);
        let started = Instant::now();
        let second = lock.acquire(timeout).await;
        let waited = started.elapsed();

        assert!(
            matches!(second, Err(LockError::Timeout { .. })),
            "{backend:?}: expected a timeout"
        );
        assert!(
            waited >= timeout,
            "{backend:?}: gave up early after {waited:?}"
        );
        assert!(
            waited < timeout + Duration::from_secs(3),
            "{backend:?}: waited {waited:?}, far beyond the timeout"
        );
        held.release().await.expect("release");
    }
}

#[tokio::test]
async fn lock_with_zero_timeout_tries_once() {
    for backend in BACKENDS {
        let (_test_db, db) = migrated(backend).await;
        let lock = db.standalone_lock();
        let held = lock.acquire(Duration::ZERO).await.expect("free lock");
        let second = lock.acquire(Duration::ZERO).await;
        assert!(
            matches!(second, Err(LockError::Timeout { .. })),
            "{backend:?}: expected a timeout"
        );
        held.release().await.expect("release");
    }
}

#[tokio::test]
async fn waiter_gets_lock_on_release() {
    for backend in BACKENDS {
        let (_test_db, db) = migrated(backend).await;
        let lock = db.standalone_lock();
        let held = lock
            .acquire(Duration::from_secs(5))
            .await
            .expect("first acquire");

        let waiter_lock = lock.clone();
        let waiter = tokio::spawn(async move {
            let started = Instant::now();
            let guard = waiter_lock.acquire(Duration::from_secs(30)).await;
            (guard, started.elapsed())
        });
        if backend == Backend::Postgres {
            wait_for_advisory_waiter(&db).await;
        }
        held.release().await.expect("release");

        let (guard, waited) = waiter.await.expect("waiter task");
        let guard = guard.expect("waiter gets the lock");
        assert!(
            waited < Duration::from_secs(10),
            "{backend:?}: waiter took {waited:?} after the release"
        );
        guard.release().await.expect("release waiter");
    }
}

#[tokio::test]
async fn dropped_guard_frees_lock() {
    for backend in BACKENDS {
        let (_test_db, db) = migrated(backend).await;
        let lock = db.standalone_lock();
        let held = lock
            .acquire(Duration::from_secs(5))
            .await
            .expect("first acquire");
        drop(held);

        let again = lock.acquire(Duration::from_secs(10)).await;
        assert!(again.is_ok(), "{backend:?}: lock still held after drop");
    }
}

#[tokio::test]
async fn lock_is_per_database() {
    for backend in BACKENDS {
        let (_first_db, first) = migrated(backend).await;
        let (_second_db, second) = migrated(backend).await;
        let held = first
            .standalone_lock()
            .acquire(Duration::ZERO)
            .await
            .expect("first");
        let other = second.standalone_lock().acquire(Duration::ZERO).await;
        assert!(
            other.is_ok(),
            "{backend:?}: another database's lock was blocked"
        );
        held.release().await.expect("release");
    }
}

#[tokio::test]
async fn connect_rejects_unknown_scheme() {
    let error = Database::connect("mysql://root@127.0.0.1/config")
        .await
        .expect_err("mysql is not supported");
    let message = error.to_string();
    assert!(message.contains("\"mysql\""), "{message}");
    assert!(message.contains("postgres://"), "{message}");
}

#[tokio::test]
async fn connect_creates_sqlite_folder() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("nested/folder/config.db");
    let db = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let info = db.cluster_info().await.expect("cluster info");
    assert_eq!(info.schema_version, 12);
    assert!(path.exists());
}

#[tokio::test]
async fn migrate_records_schema_version() {
    for backend in BACKENDS {
        let (_test_db, db) = migrated(backend).await;
        db.migrate().await.expect("second migrate is a no-op");
        let info = db.cluster_info().await.expect("cluster info");
        assert_eq!(info.schema_version, 12, "{backend:?}");
        assert!(!info.database_id.is_nil(), "{backend:?}");
    }
}

/// Waits until another session waits for an advisory lock of this database.
async fn wait_for_advisory_waiter(db: &Database) {
    let Database::Postgres(pool) = db else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND NOT granted AND database = (SELECT oid FROM pg_database \
             WHERE datname = current_database()))",
        )
        .fetch_one(pool)
        .await
        .expect("query pg_locks");
        if waiting {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session started waiting for the lock"
        );
        tokio::task::yield_now().await;
    }
}
