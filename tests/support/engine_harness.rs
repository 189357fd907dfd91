//! An engine over a fresh test database, with helpers to import, to snapshot every
//! table the engine writes, and to run SQL on either backend.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use tenant_operator::archive::Limits;
use tenant_operator::db::Database;
use tenant_operator::engine::{Engine, ImportError, ImportReport, ImportRequest, ReportingConfig};

use crate::support::{Backend, TestDatabase};

/// Both backends, for tests that loop over them.
pub const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

/// Tables the engine writes, with the columns a snapshot compares.
const SNAPSHOT_TABLES: [(&str, &str); 5] = [
    (
        "tenants",
        "guid, url, url_key, name, name_key, status, sip_domain, created_at, settings, reporting_database",
    ),
    (
        "config_objects",
        "guid, tenant_guid, object_type, name, attributes",
    ),
    (
        "access_numbers",
        "digits, value, tenant_guid, trunk_id, media",
    ),
    ("trunks", "id, name, domain, carrier"),
    (
        "import_journal",
        "import_id, tenant_guid, archive_sha256, report",
    ),
];

/// An engine over a migrated database of its own, and a folder for archives.
pub struct Harness {
    /// The database; dropping it removes the database and its reporting databases.
    pub test_db: TestDatabase,
    /// The pool.
    pub db: Database,
    /// The engine, with the test's reporting prefix.
    pub engine: Engine,
    /// A folder for archives built by the test.
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// Creates a migrated database on `backend` and an engine over it.
    pub async fn new(backend: Backend) -> Self {
        let test_db = TestDatabase::new(backend).await;
        let db = Database::connect(&test_db.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let reporting = ReportingConfig {
            server_url: None,
            name_prefix: test_db.reporting_prefix.clone(),
        };
        let engine = Engine::new(db.clone(), Limits::default(), reporting);
        let dir = tempfile::tempdir().expect("archive folder");
        Self {
            test_db,
            db,
            engine,
            dir,
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.test_db.backend
    }

    /// Imports `archive` under the standalone lock, without an import id.
    pub async fn import(&self, archive: &Path) -> ImportReport {
        self.try_import(archive, None).await.expect("import runs")
    }

    /// Imports `archive` under the standalone lock.
    pub async fn try_import(
        &self,
        archive: &Path,
        import_id: Option<&str>,
    ) -> Result<ImportReport, ImportError> {
        let request = ImportRequest {
            archive: archive.to_path_buf(),
            import_id: import_id.map(str::to_owned),
            lock_timeout: Duration::from_secs(30),
        };
        self.engine
            .import(&request, &self.db.standalone_lock())
            .await
    }

    /// Returns every row of every table the engine writes, as text, sorted.
    pub async fn snapshot(&self) -> Vec<(String, Vec<String>)> {
        let mut tables = Vec::new();
        for (table, columns) in SNAPSHOT_TABLES {
            let rows = self
                .rows(&format!("SELECT {} FROM {table}", self.row_text(columns)))
                .await;
            tables.push((table.to_owned(), rows));
        }
        tables
    }

    /// Runs a query whose one column is text and returns the rows sorted.
    pub async fn rows(&self, sql: &str) -> Vec<String> {
        let mut rows: Vec<String> = match &self.db {
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|error| panic!("query {sql:?} failed: {error}"));
        rows.sort();
        rows
    }

    /// Runs a statement, or several separated by `;`.
    pub async fn execute(&self, sql: &str) {
        let result = match &self.db {
            Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        };
        result.unwrap_or_else(|error| panic!("statement {sql:?} failed: {error}"));
    }

    /// Builds an SQL expression that joins `columns` as text with `|`, NULL as `-`.
    pub fn row_text(&self, columns: &str) -> String {
        let parts: Vec<String> = columns
            .split(',')
            .map(str::trim)
            .map(|column| match self.backend() {
                Backend::Postgres => format!("coalesce({column}::text, '-')"),
                Backend::Sqlite => format!("coalesce(CAST({column} AS TEXT), '-')"),
            })
            .collect();
        parts.join(" || '|' || ")
    }
}
