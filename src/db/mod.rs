//! The configuration database through sqlx: PostgreSQL in production, SQLite as the
//! embedded default. Migrations live in `migrations/postgres` and `migrations/sqlite`.
//!
//! [`Database::connect`] picks the backend from the URL scheme, [`Database::migrate`]
//! brings the schema to [`SCHEMA_VERSION`], and [`StandaloneLock`] serialises imports
//! into one database when no Kubernetes Lease is in use.

mod lock;
mod postgres;
mod sqlite;

pub use lock::{STANDALONE_LOCK_KEY, StandaloneLock, lock_file_path};
pub use sqlite::BUSY_TIMEOUT as SQLITE_BUSY_TIMEOUT;

use std::path::PathBuf;

pub mod admin;

use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

/// The schema version of the configuration database this build creates and accepts
/// archives up to.
pub const SCHEMA_VERSION: u32 = 12;

/// The default embedded database, used when no URL is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tenant-operator-data/config.db";

/// A connection pool to the configuration database.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite, embedded.
    Sqlite(SqlitePool),
}

/// The contents of the `cluster_info` row of a migrated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Newest archive schema version the database accepts.
    pub schema_version: u32,
    /// Identifies this configuration database; reporting databases record it.
    pub database_id: Uuid,
}

/// The reason the configuration database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `postgres://` nor `sqlite://`.
    #[error("database URL scheme {scheme:?} is not supported; use postgres:// or sqlite://")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// The folder of an SQLite database file could not be created.
    #[error("failed to create the database folder {path}; check its permissions")]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A database operation failed.
    #[error("database operation failed")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The file that serialises SQLite migrations could not be locked.
    #[error("failed to lock {path} for the schema migration; check the folder's permissions")]
    MigrationLock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The `cluster_info` row contains a value this build cannot use.
    #[error("cluster_info is invalid: {0}; run `tenant-operator migrate` on a fresh database")]
    ClusterInfo(String),
}

impl Database {
    /// Connects to the database at `url`, creating an SQLite file and its folder when
    /// missing.
    ///
    /// # Errors
    ///
    /// Returns [`DbError`] when the URL is unsupported or the database unreachable.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        match scheme {
            "postgres" | "postgresql" => Ok(Self::Postgres(postgres::connect(url).await?)),
            "sqlite" => Ok(Self::Sqlite(sqlite::connect(url).await?)),
            other => Err(DbError::UnsupportedScheme {
                scheme: other.to_owned(),
            }),
        }
    }

    /// Creates the schema or upgrades it to [`SCHEMA_VERSION`], then checks that the
    /// `cluster_info` row is readable.
    ///
    /// # Errors
    ///
    /// Returns [`DbError::Migrate`] when a migration fails,
    /// [`DbError::MigrationLock`] when the lock file that serialises SQLite migrations
    /// cannot be locked, and [`DbError::ClusterInfo`] when the row is invalid.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Self::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Self::Sqlite(pool) => sqlite::migrate(pool).await?,
        }
        let info = self.cluster_info().await?;
        tracing::debug!(
            schema_version = info.schema_version,
            database_id = %info.database_id,
            "configuration database migrated"
        );
        Ok(())
    }

    /// Reads the schema version and database id of a migrated database.
    ///
    /// # Errors
    ///
    /// Returns [`DbError::Sqlx`] when the query fails, and [`DbError::ClusterInfo`]
    /// when the row contains an invalid value.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, DbError> {
        let (schema_version, database_id) = match self {
            Self::Postgres(pool) => postgres::cluster_info(pool).await?,
            Self::Sqlite(pool) => sqlite::cluster_info(pool).await?,
        };
        let schema_version = u32::try_from(schema_version)
            .map_err(|_| DbError::ClusterInfo(format!("schema_version {schema_version}")))?;
        Ok(ClusterInfo {
            schema_version,
            database_id,
        })
    }

    /// Returns the lock that serialises imports into this database when no outer lock
    /// (a Kubernetes Lease) is in use.
    pub fn standalone_lock(&self) -> StandaloneLock {
        StandaloneLock::new(self.clone())
    }

    /// Returns the path of the SQLite database file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match self {
            Self::Postgres(_) => None,
            Self::Sqlite(pool) => Some(pool.connect_options().get_filename().to_path_buf()),
        }
    }
}
