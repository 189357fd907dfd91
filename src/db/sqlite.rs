//! SQLite connection set-up: the file and its folder are created when missing, with
//! WAL journaling, foreign keys and a busy timeout.

use std::path::Path;
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
