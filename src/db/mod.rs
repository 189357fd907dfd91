//! The configuration database through sqlx: PostgreSQL in production, SQLite as the
//! embedded default. Migrations live in `migrations/postgres` and `migrations/sqlite`.

pub mod admin;

use sqlx::{PgPool, SqlitePool};

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

/// Why the configuration database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `postgres://` nor `sqlite://`.
    #[error("database URL scheme {scheme:?} is not supported; use postgres:// or sqlite://")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// A database operation failed.
    #[error("database operation failed")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Database {
    /// Connects to the database at `url`, creating an SQLite file and its folder when
    /// missing.
    ///
    /// # Errors
    ///
    /// Returns [`DbError`] when the URL is unsupported or the database unreachable.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let _ = url;
        unimplemented!("database layer")
    }

    /// Creates the schema or upgrades it to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    ///
    /// Returns [`DbError::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<(), DbError> {
        unimplemented!("database layer")
    }

    /// Returns the lock that serialises imports into this database when no outer lock
    /// (a Kubernetes Lease) is in use.
    pub fn standalone_lock(&self) -> StandaloneLock {
        StandaloneLock { db: self.clone() }
    }
}

/// One import at a time per configuration database, without Kubernetes.
#[derive(Debug, Clone)]
pub struct StandaloneLock {
    db: Database,
}

#[async_trait::async_trait]
impl crate::lock::ImportLock for StandaloneLock {
    async fn acquire(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Box<dyn crate::lock::LockGuard>, crate::lock::LockError> {
        let _ = (timeout, &self.db);
        unimplemented!("database layer")
    }
}
