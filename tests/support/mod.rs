//! Test support shared by the integration tests: a fresh database per test, on
//! PostgreSQL or SQLite, and the location of the sample archives.
//!
//! PostgreSQL tests use the server at `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). Each test database, and every reporting
//! database created under its unique prefix, is dropped when the handle is dropped.

#![allow(dead_code)]

use std::path::PathBuf;

use sqlx::Connection;
use uuid::Uuid;

/// Returns the URL of the PostgreSQL server the tests use, without a database name.
pub fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Declares one `#[tokio::test]` per backend for each named `async fn(Backend)` of the
/// calling module, in modules `postgres` and `sqlite`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::Backend::Postgres).await; })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::Backend::Sqlite).await; })*
        }
    };
}

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL at [`postgres_server_url`].
    Postgres,
    /// SQLite in a temporary folder.
    Sqlite,
}

/// A database that exists for one test.
pub struct TestDatabase {
    /// URL of the configuration database.
    pub url: String,
    /// A prefix unique to this test for reporting database names.
    pub reporting_prefix: String,
    /// The backend.
    pub backend: Backend,
    /// Temporary folder of an SQLite database, removed on drop.
    pub dir: Option<tempfile::TempDir>,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        let token = Uuid::new_v4().simple().to_string();
        let reporting_prefix = format!("r{}_", &token[..10]);
        match backend {
            Backend::Postgres => {
                let name = format!("tenant_operator_test_{}", &token[..16]);
                let mut admin = admin_connection().await;
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                Self {
                    url: format!("{}/{name}", postgres_server_url()),
                    reporting_prefix,
                    backend,
                    dir: None,
                    name,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create temporary folder");
                let path = dir.path().join("config.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    reporting_prefix,
                    backend,
                    dir: Some(dir),
                    name: String::new(),
                }
            }
        }
    }

    /// Lists the reporting databases that exist under this test's prefix: database
    /// names on PostgreSQL, file names on SQLite.
    pub async fn reporting_databases(&self) -> Vec<String> {
        match self.backend {
            Backend::Postgres => {
                let mut admin = admin_connection().await;
                sqlx::query_scalar::<_, String>(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
                )
                .bind(&self.reporting_prefix)
                .fetch_all(&mut admin)
                .await
                .expect("list reporting databases")
            }
            Backend::Sqlite => {
                let dir = self.dir.as_ref().expect("sqlite folder").path();
                let mut names = Vec::new();
                for entry in walk(dir) {
                    let name = entry
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string();
                    if name.starts_with(&self.reporting_prefix) {
                        names.push(name);
                    }
                }
                names.sort();
                names
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        drop_postgres_databases(&self.name, &self.reporting_prefix);
    }
}

/// Drops the PostgreSQL database `name` and every database whose name starts with
/// `reporting_prefix`, ignoring failures. It blocks, so `Drop` implementations can call
/// it: the work runs on a thread and runtime of its own, because `Drop` may run
/// outside any runtime.
pub fn drop_postgres_databases(name: &str, reporting_prefix: &str) {
    let name = name.to_owned();
    let prefix = reporting_prefix.to_owned();
    let cleanup = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cleanup runtime");
        runtime.block_on(async move {
            let mut admin = admin_connection().await;
            let mut names: Vec<String> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)",
            )
            .bind(&prefix)
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
            names.push(name);
            for name in names {
                let quoted = name.replace('"', "\"\"");
                let statement = format!("DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)");
                let _ = sqlx::query(&statement).execute(&mut admin).await;
            }
        });
    });
    let _ = cleanup.join();
}

/// Opens a connection to the `postgres` maintenance database.
pub async fn admin_connection() -> sqlx::PgConnection {
    let url = format!("{}/postgres", postgres_server_url());
    sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to PostgreSQL; is it running on 127.0.0.1:5432?")
}

/// Returns the folder of the four sample archives: `SAMPLE_ARCHIVES_DIR` when set, else
/// the shared folder beside the repository, or `None` (with a message) when it is
/// absent.
pub fn shared_examples() -> Option<PathBuf> {
    let dir = match std::env::var_os("SAMPLE_ARCHIVES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/examples"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: the sample archives folder {} is absent",
            dir.display()
        );
        None
    }
}

/// Returns the path of the repository's own sample archive.
pub fn own_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample-tenant-v3.zip")
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
