//! The import transaction and its fence.
//!
//! On PostgreSQL the transaction takes `pg_advisory_xact_lock` on [`FENCE_KEY`], a key
//! different from the standalone lock's, so two imports never write at once even when
//! an outer lock (a Kubernetes Lease) was lost. On SQLite the transaction starts with
//! `BEGIN IMMEDIATE`, which takes the database's write lock at once and is the fence.
//! Both wait for the fence up to the request's lock timeout.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Postgres, Sqlite, Transaction};

use crate::db::{Database, SQLITE_BUSY_TIMEOUT};

/// Key of the transaction-level advisory lock that fences imports on PostgreSQL.
pub const FENCE_KEY: i64 = 0x7465_6e61_6e74_0002;

/// Memory each sort or hash of the import transaction may use on the PostgreSQL
/// server before it spills to disk.
const IMPORT_WORK_MEM: &str = "64MB";

/// PostgreSQL SQLSTATE `lock_not_available`, raised when `lock_timeout` runs out.
const POSTGRES_LOCK_NOT_AVAILABLE: &str = "55P03";

/// SQLite result codes of a lock wait that ran out: `SQLITE_BUSY` and its extended
/// codes `SQLITE_BUSY_RECOVERY`, `SQLITE_BUSY_SNAPSHOT` and `SQLITE_BUSY_TIMEOUT`.
const SQLITE_BUSY_CODES: [&str; 4] = ["5", "261", "517", "773"];

/// A connection of either backend, borrowed from a pool or a transaction.
pub(super) enum Conn<'a> {
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
}

/// The pooled SQLite connection that an SQLite import transaction borrows, so the
/// connection's busy timeout can be set to the lock timeout before `BEGIN IMMEDIATE`.
/// The connection is closed, not returned to the pool, when the slot is dropped.
#[derive(Default)]
pub(super) struct ConnectionSlot(Option<PoolConnection<Sqlite>>);

/// The open import transaction.
pub(super) enum ImportTx<'c> {
    /// PostgreSQL, fenced by the advisory transaction lock.
    Postgres(Transaction<'static, Postgres>),
    /// SQLite, holding the write lock since `BEGIN IMMEDIATE`.
    Sqlite(Transaction<'c, Sqlite>),
}

impl<'c> ImportTx<'c> {
    /// Begins the transaction and waits up to `fence_timeout` for the fence. An SQLite
    /// transaction keeps its connection in `slot`.
    pub(super) async fn begin(
        db: &Database,
        fence_timeout: Duration,
        slot: &'c mut ConnectionSlot,
    ) -> Result<Self, sqlx::Error> {
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
                // The duplicate check groups and the collision check joins every
                // staged object. With the default of 4 MB those spill to disk from
                // roughly 50,000 objects on, an estimate from the row width.
                sqlx::query(&format!("SET LOCAL work_mem = '{IMPORT_WORK_MEM}'"))
                    .execute(&mut *tx)
                    .await?;
                Ok(Self::Postgres(tx))
            }
            Database::Sqlite(pool) => {
                let conn = slot.0.insert(pool.acquire().await?);
                // The connection leaves the pool with the import, so its changed busy
                // timeout never reaches another caller, and a cancelled import cannot
                // return it with an open transaction.
                conn.close_on_drop();
                set_busy_timeout(conn, fence_timeout).await?;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                set_busy_timeout(&mut tx, SQLITE_BUSY_TIMEOUT).await?;
                Ok(Self::Sqlite(tx))
            }
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

/// Returns whether `error` means that the fence's wait ran out.
pub(super) fn is_fence_timeout(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    let Some(code) = error.code() else {
        return false;
    };
    code == POSTGRES_LOCK_NOT_AVAILABLE || SQLITE_BUSY_CODES.contains(&code.as_ref())
}

/// Returns the text form that SQLite stores a GUID in: lower-case and hyphenated.
pub(super) fn guid_text(guid: uuid::Uuid) -> String {
    guid.hyphenated().to_string()
}

async fn set_busy_timeout(
    conn: &mut SqliteConnection,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let millis = timeout.as_millis().max(1);
    sqlx::query(&format!("PRAGMA busy_timeout = {millis}"))
        .execute(conn)
        .await?;
    Ok(())
}
