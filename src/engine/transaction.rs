//! The import transaction and its fence.
//!
//! On PostgreSQL the transaction takes `pg_advisory_xact_lock` on [`FENCE_KEY`], a key
//! different from the standalone lock's, so two imports never write at once even when
//! an outer lock (a Kubernetes Lease) was lost. On SQLite the transaction starts with
//! `BEGIN IMMEDIATE`, which takes the database's write lock at once and is the fence.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::db::Database;

/// Key of the transaction-level advisory lock that fences imports on PostgreSQL.
pub const FENCE_KEY: i64 = 0x7465_6e61_6e74_0002;

/// A connection of either backend, borrowed from a pool or a transaction.
pub(super) enum Conn<'a> {
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
}

/// The open import transaction.
pub(super) enum ImportTx {
    /// PostgreSQL, fenced by the advisory transaction lock.
    Postgres(Transaction<'static, Postgres>),
    /// SQLite, holding the write lock since `BEGIN IMMEDIATE`.
    Sqlite(Transaction<'static, Sqlite>),
}

impl ImportTx {
    /// Begins the transaction and waits up to `fence_timeout` for the fence.
    pub(super) async fn begin(db: &Database, fence_timeout: Duration) -> Result<Self, sqlx::Error> {
        match db {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let millis = fence_timeout.as_millis().max(1);
                sqlx::query(&format!("SET LOCAL lock_timeout = {millis}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(FENCE_KEY)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("SET LOCAL lock_timeout = DEFAULT")
                    .execute(&mut *tx)
                    .await?;
                Ok(Self::Postgres(tx))
            }
            Database::Sqlite(pool) => Ok(Self::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
        }
    }

    /// Borrows the transaction's connection.
    pub(super) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(tx) => Conn::Postgres(tx),
            Self::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    /// Commits the transaction.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(tx) => tx.commit().await,
            Self::Sqlite(tx) => tx.commit().await,
        }
    }

    /// Rolls the transaction back.
    pub(super) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(tx) => tx.rollback().await,
            Self::Sqlite(tx) => tx.rollback().await,
        }
    }
}

impl Conn<'_> {
    /// Reborrows the connection for one call, so it can be used again afterwards.
    pub(super) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(conn) => Conn::Postgres(conn),
            Self::Sqlite(conn) => Conn::Sqlite(conn),
        }
    }
}

/// Returns the text form that SQLite stores a GUID in: lower-case and hyphenated.
pub(super) fn guid_text(guid: uuid::Uuid) -> String {
    guid.hyphenated().to_string()
}
