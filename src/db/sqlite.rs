//! SQLite connection set-up: the file and its folder are created when missing, with
//! WAL journaling, foreign keys and a busy timeout.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use uuid::Uuid;

use super::DbError;

/// How long a statement waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a pool to the SQLite database at `url`, creating the file and its folder.
pub(super) async fn connect(url: &str) -> Result<SqlitePool, DbError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    create_folder(options.get_filename())?;
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Runs the migrations while holding an exclusive lock on the file
/// `<database file>.migrate-lock`. sqlx takes no lock for SQLite migrations, so
/// without it two processes that start on a fresh file both create the schema, and
/// all but one fail with "table already exists".
pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), DbError> {
    let mut name = pool.connect_options().get_filename().as_os_str().to_owned();
    name.push(".migrate-lock");
    let path = PathBuf::from(name);
    let lock_error = |source| DbError::MigrationLock {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    // The lock is held only while the schema is checked or created, and the
    // operating system frees it when a process dies, so the wait is short.
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|error| lock_error(std::io::Error::other(error)))?
        .map_err(lock_error)?;
    let result = sqlx::migrate!("migrations/sqlite").run(pool).await;
    if let Err(error) = file.unlock() {
        tracing::warn!(error = %error, path = %path.display(), "failed to unlock the migration lock file");
    }
    Ok(result?)
}

/// Reads `cluster_info`: the schema version and the database id.
pub(super) async fn cluster_info(pool: &SqlitePool) -> Result<(i32, Uuid), DbError> {
    let (version, id): (i32, String) =
        sqlx::query_as("SELECT schema_version, database_id FROM cluster_info")
            .fetch_one(pool)
            .await?;
    let id = Uuid::parse_str(&id)
        .map_err(|error| DbError::ClusterInfo(format!("database_id {id:?}: {error}")))?;
    Ok((version, id))
}

fn create_folder(file: &Path) -> Result<(), DbError> {
    let Some(folder) = file
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    else {
        return Ok(());
    };
    std::fs::create_dir_all(folder).map_err(|source| DbError::CreateFolder {
        path: folder.to_path_buf(),
        source,
    })
}
