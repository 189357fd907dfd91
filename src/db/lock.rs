//! The standalone import lock: one import at a time per configuration database.
//!
//! On PostgreSQL it is a session-level advisory lock held by a dedicated connection.
//! The wait uses `lock_timeout`, so it ends as soon as the holder releases. On SQLite
//! it is an exclusive file lock on a lock file beside the database file. Either way
//! the lock is freed when the guard is released or dropped, or the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};

use super::Database;
use crate::lock::{ImportLock, LockError, LockGuard};

/// Key of the session-level advisory lock that serialises imports on PostgreSQL.
/// The engine's transaction fence uses a different key.
pub const STANDALONE_LOCK_KEY: i64 = 0x7465_6e61_6e74_0001;

/// How often an SQLite import polls the lock file while it waits.
const FILE_LOCK_POLL: Duration = Duration::from_millis(25);

/// The holder named in a timeout, since neither backend records who holds the lock.
const UNKNOWN_HOLDER: &str = "another import";

/// PostgreSQL SQLSTATE `lock_not_available`, raised when `lock_timeout` runs out.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// One import at a time per configuration database, without Kubernetes.
#[derive(Debug, Clone)]
pub struct StandaloneLock {
    db: Database,
}

struct PgGuard {
    connection: PgConnection,
}

struct FileGuard {
    file: File,
}

impl StandaloneLock {
    /// Creates the lock of `db`; nothing is taken until [`ImportLock::acquire`].
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl ImportLock for StandaloneLock {
    async fn acquire(&self, timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        match &self.db {
            Database::Postgres(pool) => acquire_advisory(pool, timeout).await,
            Database::Sqlite(pool) => {
                let path = lock_file_path(pool.connect_options().get_filename());
                acquire_file(path, timeout).await
            }
        }
    }
}

#[async_trait::async_trait]
impl LockGuard for PgGuard {
    fn is_held(&self) -> bool {
        true
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        let mut connection = self.connection;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(STANDALONE_LOCK_KEY)
            .execute(&mut connection)
            .await
            .map_err(backend)?;
        connection.close().await.map_err(backend)
    }
}

#[async_trait::async_trait]
impl LockGuard for FileGuard {
    fn is_held(&self) -> bool {
        true
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        self.file.unlock().map_err(backend)
    }
}

/// Returns the lock file of the SQLite database file `database`: the same path with
/// `.import-lock` appended.
pub fn lock_file_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".import-lock");
    PathBuf::from(name)
}

async fn acquire_advisory(
    pool: &PgPool,
    timeout: Duration,
) -> Result<Box<dyn LockGuard>, LockError> {
    let options = pool.connect_options().as_ref().clone();
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(backend)?;
    let taken = if timeout.is_zero() {
        // A lock_timeout of 0 disables the timeout, so a zero wait only tries once.
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(STANDALONE_LOCK_KEY)
            .fetch_one(&mut connection)
            .await
            .map_err(backend)?
    } else {
        wait_advisory(&mut connection, timeout).await?
    };
    if taken {
        Ok(Box::new(PgGuard { connection }))
    } else {
        Err(timed_out(timeout))
    }
}

async fn wait_advisory(
    connection: &mut PgConnection,
    timeout: Duration,
) -> Result<bool, LockError> {
    let millis = timeout.as_millis().max(1);
    sqlx::query(&format!("SET lock_timeout = {millis}"))
        .execute(&mut *connection)
        .await
        .map_err(backend)?;
    let result = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(STANDALONE_LOCK_KEY)
        .execute(&mut *connection)
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error))
            if error.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
        {
            Ok(false)
        }
        Err(error) => Err(backend(error)),
    }
}

async fn acquire_file(path: PathBuf, timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(backend)?;
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Box::new(FileGuard { file })),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(error)) => return Err(backend(error)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(timeout));
        }
        tokio::time::sleep(FILE_LOCK_POLL.min(deadline - now)).await;
    }
}

fn timed_out(waited: Duration) -> LockError {
    LockError::Timeout {
        waited,
        holder: UNKNOWN_HOLDER.to_owned(),
    }
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> LockError {
    LockError::Backend(Box::new(error))
}
