//! The tenant's reporting database: a PostgreSQL database on the reporting server, or
//! an SQLite file beside the configuration database file.
//!
//! Its name is the configured prefix followed by the tenant GUID as 32 hex digits. Its
//! `reporting_meta` row records the tenant GUID and the configuration database's id.
//! The engine drops only a database whose row names this configuration database and
//! this tenant, or one with no tables at all, which a crash between creating the
//! database and writing its schema leaves. So a leftover of an interrupted import is
//! replaced, and anything else of that name makes the import fail.

use std::path::PathBuf;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use uuid::Uuid;

use super::fault;
use super::{ImportError, ReportingConfig};
use crate::db::Database;

/// The first key of the advisory lock on a reporting database name, so it never
/// shares a lock with the engine's single-key locks.
const NAME_LOCK_CLASS: i32 = 0x7265_706f;

/// How long an import waits for another session working on the same reporting
/// database name.
const NAME_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

const POSTGRES_SCHEMA: &str = include_str!("../../migrations/reporting/postgres.sql");
const SQLITE_SCHEMA: &str = include_str!("../../migrations/reporting/sqlite.sql");

/// PostgreSQL truncates longer identifiers, so a longer name would not be the one
/// stored in the tenant row.
const MAX_POSTGRES_NAME_BYTES: usize = 63;

/// The reporting database of one tenant, whether or not it exists yet.
#[derive(Debug, Clone)]
pub(super) struct ReportingTarget {
    /// The database name (PostgreSQL) or file name (SQLite).
    pub name: String,
    tenant_guid: Uuid,
    place: Place,
}

#[derive(Debug, Clone)]
enum Place {
    Postgres { server: Box<PgConnectOptions> },
    Sqlite { path: PathBuf },
}

impl ReportingTarget {
    /// Names the reporting database of `tenant_guid` for the configuration database `db`.
    pub(super) fn new(
        db: &Database,
        config: &ReportingConfig,
        tenant_guid: Uuid,
    ) -> Result<Self, ImportError> {
        check_prefix(&config.name_prefix)?;
        let base = format!("{}{}", config.name_prefix, tenant_guid.simple());
        let (name, place) = match db {
            Database::Postgres(pool) => {
                let server = match &config.server_url {
                    Some(url) => parse_server_url(url)?,
                    None => pool.connect_options().as_ref().clone(),
                };
                check_postgres_name(&config.name_prefix, &base)?;
                (
                    base,
                    Place::Postgres {
                        server: Box::new(server),
                    },
                )
            }
            Database::Sqlite(pool) => {
                let file = format!("{base}.db");
                let config_file = pool.connect_options().get_filename().to_path_buf();
                let folder = config_file.parent().map(PathBuf::from).unwrap_or_default();
                let path = folder.join(&file);
                (file, Place::Sqlite { path })
            }
        };
        Ok(Self {
            name,
            tenant_guid,
            place,
        })
    }

    /// Makes sure a fresh reporting database exists: a leftover made by this
    /// configuration database for this tenant is dropped and created again, and a
    /// foreign database of that name is left alone and fails the call.
    pub(super) async fn prepare(&self, database_id: Uuid) -> Result<(), ImportError> {
        let mut guard = self.lock_name().await?;
        let prepared = self.replace_and_create(database_id, guard.as_mut()).await;
        if let Some(guard) = guard {
            // Closing the session releases its advisory lock.
            guard.close().await?;
        }
        prepared
    }

    /// Takes a session advisory lock on the reporting server for this database name and
    /// returns the session, which then runs CREATE DATABASE itself. A killed import's
    /// server session may still be running that statement. It keeps the lock until the
    /// statement ends, so a retry waits for it instead of colliding with it.
    async fn lock_name(&self) -> Result<Option<PgConnection>, ImportError> {
        let Place::Postgres { server } = &self.place else {
            return Ok(None);
        };
        let mut guard = PgConnection::connect_with(server).await?;
        let timeout = format!("SET lock_timeout = '{}s'", NAME_LOCK_TIMEOUT.as_secs());
        guard.execute(timeout.as_str()).await?;
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(NAME_LOCK_CLASS)
            .bind(&self.name)
            .execute(&mut guard)
            .await?;
        Ok(Some(guard))
    }

    async fn replace_and_create(
        &self,
        database_id: Uuid,
        guard: Option<&mut PgConnection>,
    ) -> Result<(), ImportError> {
        if self.exists().await? {
            self.check_owner(database_id).await?;
            tracing::info!(
                reporting_database = self.name,
                tenant_guid = %self.tenant_guid,
                "replacing the reporting database left by an interrupted import"
            );
            self.remove().await?;
        }
        self.create(database_id, guard).await
    }

    /// Drops the reporting database if it exists and this configuration database made
    /// it for this tenant.
    pub(super) async fn drop_if_owned(&self, database_id: Uuid) -> Result<(), ImportError> {
        if !self.exists().await? {
            return Ok(());
        }
        self.check_owner(database_id).await?;
        self.remove().await
    }

    /// Removes the database or file, with no ownership check; used for the database
    /// this import created itself.
    pub(super) async fn remove(&self) -> Result<(), ImportError> {
        match &self.place {
            Place::Postgres { server } => {
                let mut admin = PgConnection::connect_with(server).await?;
                let statement =
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&self.name));
                admin.execute(statement.as_str()).await?;
                admin.close().await?;
            }
            Place::Sqlite { path } => {
                for suffix in ["", "-journal", "-wal", "-shm"] {
                    let mut name = path.as_os_str().to_owned();
                    name.push(suffix);
                    remove_file(PathBuf::from(name))?;
                }
            }
        }
        Ok(())
    }

    async fn exists(&self) -> Result<bool, ImportError> {
        match &self.place {
            Place::Postgres { server } => {
                let mut admin = PgConnection::connect_with(server).await?;
                let exists = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(&self.name)
                .fetch_one(&mut admin)
                .await?;
                admin.close().await?;
                Ok(exists)
            }
            Place::Sqlite { path } => Ok(path.exists()),
        }
    }

    async fn check_owner(&self, database_id: Uuid) -> Result<(), ImportError> {
        let expected = (self.tenant_guid, database_id);
        if self.read_owner().await == Some(expected) {
            return Ok(());
        }
        // CREATE DATABASE cannot run in the transaction that writes the schema and the
        // `reporting_meta` row, so a crash between the two leaves a database with no
        // tables. Such a database contains no data, so replacing it loses nothing.
        if self.is_empty().await {
            tracing::info!(
                reporting_database = self.name,
                tenant_guid = %self.tenant_guid,
                "reporting database has no tables, treating it as left by an interrupted creation"
            );
            return Ok(());
        }
        Err(ImportError::ForeignReportingDatabase {
            name: self.name.clone(),
        })
    }

    /// Returns whether the database has no tables, views, sequences or functions
    /// outside the system schemas. A database that cannot be read counts as not
    /// empty.
    async fn is_empty(&self) -> bool {
        match &self.place {
            Place::Postgres { server } => {
                let options = server.as_ref().clone().database(&self.name);
                let Ok(mut conn) = PgConnection::connect_with(&options).await else {
                    return false;
                };
                let empty = sqlx::query_scalar(
                    "SELECT NOT EXISTS (SELECT 1 FROM pg_class c \
                       JOIN pg_namespace n ON n.oid = c.relnamespace \
                       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                         AND n.nspname NOT LIKE 'pg\\_toast%' \
                         AND n.nspname NOT LIKE 'pg\\_temp\\_%') \
                     AND NOT EXISTS (SELECT 1 FROM pg_proc p \
                       JOIN pg_namespace n ON n.oid = p.pronamespace \
                       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap_or(false);
                let _ = conn.close().await;
                empty
            }
            Place::Sqlite { path } => {
                // Opened for writing, so SQLite can roll back the hot journal that a
                // crash inside the schema transaction leaves.
                let options = SqliteConnectOptions::new().filename(path);
                let Ok(mut conn) = SqliteConnection::connect_with(&options).await else {
                    return false;
                };
                let empty = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM sqlite_master)")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap_or(false);
                let _ = conn.close().await;
                empty
            }
        }
    }

    /// Returns the tenant GUID and configuration database id of the `reporting_meta`
    /// row, or `None` when the database has no readable row.
    async fn read_owner(&self) -> Option<(Uuid, Uuid)> {
        match &self.place {
            Place::Postgres { server } => {
                let options = server.as_ref().clone().database(&self.name);
                let mut conn = PgConnection::connect_with(&options).await.ok()?;
                let row =
                    sqlx::query_as("SELECT tenant_guid, config_database_id FROM reporting_meta")
                        .fetch_one(&mut conn)
                        .await
                        .ok();
                let _ = conn.close().await;
                row
            }
            Place::Sqlite { path } => {
                let options = SqliteConnectOptions::new().filename(path).read_only(true);
                let mut conn = SqliteConnection::connect_with(&options).await.ok()?;
                let row: Option<(String, String)> =
                    sqlx::query_as("SELECT tenant_guid, config_database_id FROM reporting_meta")
                        .fetch_one(&mut conn)
                        .await
                        .ok();
                let _ = conn.close().await;
                let (tenant, database) = row?;
                Some((
                    Uuid::parse_str(&tenant).ok()?,
                    Uuid::parse_str(&database).ok()?,
                ))
            }
        }
    }

    /// Creates the database on `guard`, the session that holds the name's lock, and
    /// writes its schema.
    async fn create(
        &self,
        database_id: Uuid,
        guard: Option<&mut PgConnection>,
    ) -> Result<(), ImportError> {
        if let Some(guard) = guard {
            let statement = format!("CREATE DATABASE {}", quote(&self.name));
            guard.execute(statement.as_str()).await?;
        }
        fault::point("reporting:empty").await;
        if let Err(error) = self.write_schema(database_id).await {
            self.remove().await?;
            return Err(error);
        }
        Ok(())
    }

    async fn write_schema(&self, database_id: Uuid) -> Result<(), ImportError> {
        match &self.place {
            Place::Postgres { server } => {
                let options = server.as_ref().clone().database(&self.name);
                let mut conn = PgConnection::connect_with(&options).await?;
                let mut tx = conn.begin().await?;
                // Executor::execute returns a boxed future. The async `RawSql::execute` would
                // make the import future fail the Send check (an HRTB limitation of rustc).
                (&mut *tx).execute(sqlx::raw_sql(POSTGRES_SCHEMA)).await?;
                fault::point("reporting:schema").await;
                sqlx::query(
                    "INSERT INTO reporting_meta (tenant_guid, config_database_id) VALUES ($1, $2)",
                )
                .bind(self.tenant_guid)
                .bind(database_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                conn.close().await?;
            }
            Place::Sqlite { path } => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let mut conn = SqliteConnection::connect_with(&options).await?;
                let mut tx = conn.begin().await?;
                (&mut *tx).execute(sqlx::raw_sql(SQLITE_SCHEMA)).await?;
                fault::point("reporting:schema").await;
                sqlx::query(
                    "INSERT INTO reporting_meta (singleton, tenant_guid, config_database_id) \
                     VALUES (1, ?1, ?2)",
                )
                .bind(self.tenant_guid.hyphenated().to_string())
                .bind(database_id.hyphenated().to_string())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                conn.close().await?;
            }
        }
        Ok(())
    }
}

/// Parses the reporting server URL. sqlx accepts any scheme here, so the scheme is
/// checked first, and the URL never appears in the error because it may carry a
/// password.
fn parse_server_url(url: &str) -> Result<PgConnectOptions, ImportError> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    if !matches!(scheme, "postgres" | "postgresql") {
        return Err(ImportError::InvalidReportingServer);
    }
    url.parse().map_err(|_| ImportError::InvalidReportingServer)
}

/// Quotes a PostgreSQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Accepts prefixes of ASCII letters, digits, `_` and `-`, so the name is a plain file
/// name on SQLite and needs no more than quoting on PostgreSQL.
fn check_prefix(prefix: &str) -> Result<(), ImportError> {
    let valid = prefix
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if valid {
        return Ok(());
    }
    Err(ImportError::InvalidReportingPrefix {
        prefix: prefix.to_owned(),
        reason: "only ASCII letters, digits, '_' and '-' are allowed".to_owned(),
    })
}

fn check_postgres_name(prefix: &str, name: &str) -> Result<(), ImportError> {
    if name.len() <= MAX_POSTGRES_NAME_BYTES {
        return Ok(());
    }
    Err(ImportError::InvalidReportingPrefix {
        prefix: prefix.to_owned(),
        reason: format!(
            "with the 32-digit GUID the name has {} bytes, above PostgreSQL's maximum of \
             {MAX_POSTGRES_NAME_BYTES}",
            name.len()
        ),
    })
}

fn remove_file(path: PathBuf) -> Result<(), ImportError> {
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ImportError::RemoveReportingFile { path, source }),
    }
}
