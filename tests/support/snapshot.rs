//! A seeded configuration database and byte-for-byte dumps of it, so a test can prove
//! that a rejected import left nothing behind.
//!
//! The seed is one tenant imported by the binary, a trunk and free numbers that the
//! ranges of every base archive of `archives.rs` cover, so a partial write would show.
//! It is made once per backend and test process and copied into each fresh database.
//!
//! Include it with `#[path = "support/snapshot.rs"] mod snapshot;` next to
//! `mod support;` and `#[path = "support/engine_fixtures.rs"] mod engine_fixtures;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::Connection;
use tokio::sync::OnceCell;

use crate::engine_fixtures::TenantFixture;
use crate::support::{Backend, TestDatabase};

/// Connects to `$test_db` on its backend and evaluates `$body` with `$connection` bound
/// to the connection, for code that reads the same on both backends.
macro_rules! with_connection {
    ($test_db:expr, |$connection:ident| $body:expr) => {
        match $test_db.backend {
            Backend::Postgres => {
                let mut $connection = sqlx::PgConnection::connect(&$test_db.url)
                    .await
                    .expect("connect");
                $body
            }
            Backend::Sqlite => {
                let mut $connection = sqlx::SqliteConnection::connect(&$test_db.url)
                    .await
                    .expect("connect");
                $body
            }
        }
    };
}

/// The seeded PostgreSQL database as a `pg_dump` script, made once per test process.
static POSTGRES_SEED: OnceCell<String> = OnceCell::const_new();

/// The seeded SQLite database file, made once per test process.
static SQLITE_SEED: OnceCell<Vec<u8>> = OnceCell::const_new();

/// Creates a fresh database with the content of the seeded one. The seed is made by the
/// binary once per backend and copied into each new database, because importing it
/// for every case of a corpus would double the run time.
pub async fn seeded_database(backend: Backend) -> TestDatabase {
    let test_db = TestDatabase::new(backend).await;
    match backend {
        Backend::Postgres => {
            let script = POSTGRES_SEED.get_or_init(capture_postgres_seed).await;
            let mut psql = Command::new("psql")
                .args(["--quiet", "--no-psqlrc", "--set", "ON_ERROR_STOP=1"])
                .args(["--dbname", &test_db.url])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("run psql");
            std::io::Write::write_all(&mut psql.stdin.take().expect("stdin"), script.as_bytes())
                .expect("send the seed script to psql");
            let status = psql.wait().expect("wait for psql");
            assert!(status.success(), "restoring the seed failed: {status}");
        }
        Backend::Sqlite => {
            let file = SQLITE_SEED.get_or_init(capture_sqlite_seed).await;
            std::fs::write(sqlite_path(&test_db), file).expect("copy the seed database");
        }
    }

    let free_numbers = query_text(
        &test_db,
        "SELECT CAST(count(*) AS TEXT) FROM access_numbers WHERE tenant_guid IS NULL",
    )
    .await;
    assert_eq!(free_numbers, vec!["4".to_owned()], "{backend:?}: seed copy");
    test_db
}

async fn capture_postgres_seed() -> String {
    let template = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("seed folder");
    seed(&template, dir.path()).await;
    let output = Command::new("pg_dump")
        .args(["--no-owner", "--no-privileges", "--dbname", &template.url])
        .output()
        .expect("run pg_dump");
    assert!(output.status.success(), "pg_dump of the seed failed");
    String::from_utf8(output.stdout).expect("UTF-8 dump")
}

async fn capture_sqlite_seed() -> Vec<u8> {
    let template = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("seed folder");
    seed(&template, dir.path()).await;
    let mut connection = sqlx::SqliteConnection::connect(&template.url)
        .await
        .expect("connect");
    // Moves every page from the write-ahead log into the file, so the file alone is
    // the whole database.
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .expect("checkpoint the seed database");
    connection.close().await.expect("close");
    std::fs::read(sqlite_path(&template)).expect("read the seed database")
}

fn sqlite_path(test_db: &TestDatabase) -> PathBuf {
    PathBuf::from(
        test_db
            .url
            .strip_prefix("sqlite://")
            .expect("an sqlite:// URL"),
    )
}

/// Imports one valid tenant with a range, then adds a trunk and free numbers inside the
/// ranges of every base archive of the corpus, so a partial write would show.
async fn seed(test_db: &TestDatabase, dir: &Path) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir(&seed_dir).expect("seed folder");
    let fixture = TenantFixture::new("seed", 4).with_range("16175550000", "16175550009", "voice");
    let archive = fixture.write_v3(&seed_dir);
    import_seed(test_db, &archive);

    let statements = "
        INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-a', 'sip.carrier-a.test', 'Carrier A');
        INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) VALUES
            (11, 14155550150, NULL, (SELECT id FROM trunks WHERE name = 'carrier-a'), 'voice'),
            (11, 12125550005, NULL, NULL, 'text'),
            (11, 16505550003, NULL, NULL, 'voice_text'),
            (12, 442071838760, NULL, NULL, 'voice');
    ";
    execute(test_db, statements).await;
}

/// Runs SQL statements that return no rows.
async fn execute(test_db: &TestDatabase, statements: &str) {
    with_connection!(test_db, |connection| {
        sqlx::raw_sql(statements)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("statements {statements:?} failed: {error}"));
    });
}

/// Imports the seed archive with `tenant-operator import` and panics unless it exits 0.
fn import_seed(test_db: &TestDatabase, archive: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .arg("import")
        .args(["--output", "json", "--database-url", &test_db.url])
        .arg(archive)
        .env("REPORTING_DATABASE_PREFIX", &test_db.reporting_prefix)
        .env_remove("DATABASE_URL")
        .env_remove("REPORTING_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run tenant-operator import");
    assert!(
        output.status.success(),
        "seed import failed with {}: {} {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What a rejected import must leave as it found it: the database dump and the list of
/// reporting databases.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    dump: String,
    reporting: Vec<String>,
}

impl Snapshot {
    /// Dumps the database and lists its reporting databases.
    pub async fn take(test_db: &TestDatabase) -> Self {
        Self {
            dump: dump(test_db).await,
            reporting: test_db.reporting_databases().await,
        }
    }

    /// Takes a new snapshot and panics, naming `what`, when it differs from this one.
    pub async fn assert_unchanged(&self, test_db: &TestDatabase, what: &str) {
        let now = Self::take(test_db).await;
        assert_same_dump(what, &self.dump, &now.dump);
        assert_eq!(
            self.reporting, now.reporting,
            "{what}: reporting databases changed"
        );
    }
}

/// Dumps the whole configuration database, schema and data, deterministically.
async fn dump(test_db: &TestDatabase) -> String {
    match test_db.backend {
        Backend::Postgres => {
            let output = Command::new("pg_dump")
                .args(["--inserts", "--no-owner", "--no-privileges", "--dbname"])
                .arg(&test_db.url)
                .output()
                .expect("run pg_dump");
            assert!(
                output.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            // pg_dump 15.14 and later fence the script with `\restrict KEY` lines
            // whose key is random per run; they are not database content.
            String::from_utf8(output.stdout)
                .expect("UTF-8 dump")
                .lines()
                .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Backend::Sqlite => dump_sqlite(test_db).await,
    }
}

/// Dumps every schema object of an SQLite database, then every row of every table as
/// SQL literals ordered by primary key (by rowid for a table without one).
async fn dump_sqlite(test_db: &TestDatabase) -> String {
    let mut lines = query_text(
        test_db,
        "SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') \
         FROM sqlite_master ORDER BY type, name",
    )
    .await;
    let tables = query_text(
        test_db,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    )
    .await;
    for table in tables {
        let columns = query_text(
            test_db,
            &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        )
        .await;
        let keys = query_text(
            test_db,
            &format!("SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk"),
        )
        .await;
        let row: Vec<String> = columns
            .iter()
            .map(|column| format!("quote(\"{column}\")"))
            .collect();
        let order = if keys.is_empty() {
            "rowid".to_owned()
        } else {
            keys.iter()
                .map(|key| format!("\"{key}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!("table {table}:"));
        lines.extend(
            query_text(
                test_db,
                &format!(
                    "SELECT {} FROM \"{table}\" ORDER BY {order}",
                    row.join(" || ',' || ")
                ),
            )
            .await,
        );
    }
    lines.join("\n")
}

/// Runs a query whose one column is text and returns the rows in query order.
pub async fn query_text(test_db: &TestDatabase, sql: &str) -> Vec<String> {
    with_connection!(test_db, |connection| {
        sqlx::query_scalar(sql)
            .fetch_all(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("query {sql:?} failed: {error}"))
    })
}

/// Compares two dumps and panics, naming `what` and the first line that differs, when
/// they are not equal.
fn assert_same_dump(what: &str, before: &str, after: &str) {
    if before == after {
        return;
    }
    let first_difference = before
        .lines()
        .zip(after.lines())
        .find(|(left, right)| left != right);
    panic!(
        "{what}: the database changed; first differing line {first_difference:?}, \
         {} lines before and {} after",
        before.lines().count(),
        after.lines().count()
    );
}
