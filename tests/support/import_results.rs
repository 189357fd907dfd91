//! The results of imports as tests compare them: a backend-neutral projection of the
//! tenants, objects, access numbers and journal, the same projection after a serial
//! run, the journal's time intervals and the sessions waiting at the engine's fence.
//!
//! Include it with `#[path = "support/import_results.rs"] mod import_results;` next to
//! `mod support;`.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tenant_operator::archive::Limits;
use tenant_operator::db::Database;
use tenant_operator::engine::{Engine, FENCE_KEY, ImportRequest, Outcome, ReportingConfig};

use crate::support::{Backend, TestDatabase};

/// The result of a set of imports, in terms that do not depend on the backend, the
/// timing or the reporting prefix. It lists every access number with its owner's URL
/// and media, every tenant with its object count, and every journaled verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// `digits|value|owner URL or -|media` per access number.
    pub numbers: Vec<String>,
    /// `URL|object count` per tenant.
    pub tenants: Vec<String>,
    /// Tenant URL, outcome, counts and skipped ranges per journal entry.
    pub reports: Vec<String>,
}

/// Creates a test database on `backend` with the current schema.
pub async fn migrated(backend: Backend) -> TestDatabase {
    let test_db = TestDatabase::new(backend).await;
    let db = Database::connect(&test_db.url).await.expect("connect");
    db.migrate().await.expect("migrate");
    close(db).await;
    test_db
}

/// Closes the pool of `db`.
pub async fn close(db: Database) {
    match db {
        Database::Postgres(pool) => pool.close().await,
        Database::Sqlite(pool) => pool.close().await,
    }
}

/// Imports `archives` one after another, in the given order, into a fresh SQLite
/// database and returns the result.
pub async fn serial_result(archives: &[&Path]) -> Projection {
    let test_db = migrated(Backend::Sqlite).await;
    let db = Database::connect(&test_db.url).await.expect("connect");
    let reporting = ReportingConfig {
        server_url: None,
        name_prefix: test_db.reporting_prefix.clone(),
    };
    let engine = Engine::new(db.clone(), Limits::default(), reporting);
    for archive in archives {
        let request = ImportRequest {
            archive: archive.to_path_buf(),
            import_id: None,
            lock_timeout: Duration::from_secs(30),
        };
        let report = engine
            .import(&request, &db.standalone_lock())
            .await
            .expect("serial import runs");
        assert_eq!(report.outcome, Outcome::Imported, "{}", report.message);
    }
    close(db).await;
    project(&test_db.url).await
}

/// Reads the backend-neutral result of the imports in the database at `url`.
pub async fn project(url: &str) -> Projection {
    let numbers = text_rows(
        url,
        "SELECT CAST(a.digits AS TEXT) || '|' || CAST(a.value AS TEXT) || '|' \
         || coalesce(t.url, '-') || '|' || a.media \
         FROM access_numbers a LEFT JOIN tenants t ON t.guid = a.tenant_guid",
    )
    .await;
    let tenants = text_rows(
        url,
        "SELECT t.url || '|' || CAST((SELECT count(*) FROM config_objects o \
         WHERE o.tenant_guid = t.guid) AS TEXT) FROM tenants t",
    )
    .await;
    let mut reports: Vec<String> =
        text_rows(url, "SELECT CAST(report AS TEXT) FROM import_journal")
            .await
            .iter()
            .map(|text| {
                let report: serde_json::Value = serde_json::from_str(text).expect("journal report");
                format!(
                    "{} {} {} {}",
                    report["tenant"]["url"],
                    report["outcome"],
                    report["accessNumbers"],
                    report["skippedRanges"]
                )
            })
            .collect();
    reports.sort();
    Projection {
        numbers,
        tenants,
        reports,
    }
}

/// Runs `sql`, which returns one text column, and returns its rows sorted.
pub async fn text_rows(url: &str, sql: &str) -> Vec<String> {
    let db = Database::connect(url).await.expect("connect");
    let mut rows: Vec<String> = match &db {
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .unwrap_or_else(|error| panic!("query {sql:?} failed: {error}"));
    close(db).await;
    rows.sort();
    rows
}

/// Asserts that no two committed imports were writing at the same time: sorted by
/// start, each import finished before the next one started.
pub async fn assert_intervals_disjoint(url: &str, backend: Backend) {
    let mut intervals = journal_intervals(url).await;
    assert!(!intervals.is_empty(), "{backend:?}: the journal is empty");
    intervals.sort();
    for pair in intervals.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        assert!(
            earlier.0 <= earlier.1,
            "{backend:?}: an import finished before it started: {earlier:?}"
        );
        assert!(
            earlier.1 <= later.0,
            "{backend:?}: imports overlapped: {earlier:?} and {later:?}"
        );
    }
}

/// Returns `(started_at, finished_at)` of every journal entry.
pub async fn journal_intervals(url: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let db = Database::connect(url).await.expect("connect");
    let sql = "SELECT started_at, finished_at FROM import_journal";
    let intervals = match &db {
        Database::Postgres(pool) => sqlx::query_as(sql)
            .fetch_all(pool)
            .await
            .expect("read the journal"),
        Database::Sqlite(pool) => {
            let rows: Vec<(String, String)> = sqlx::query_as(sql)
                .fetch_all(pool)
                .await
                .expect("read the journal");
            rows.iter()
                .map(|(started, finished)| (parse_time(started), parse_time(finished)))
                .collect()
        }
    };
    close(db).await;
    intervals
}

/// Returns whether a session of the connection's PostgreSQL database waits for the
/// fence's advisory lock.
pub async fn fence_waiter(conn: &mut sqlx::PgConnection) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
         AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
    )
    .bind(FENCE_KEY)
    .fetch_one(conn)
    .await
    .expect("look for a fence waiter")
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("journal time {text:?}: {error}"))
        .with_timezone(&Utc)
}
