//! Export of one tenant as a format-3 archive.
//!
//! The tenant row and its access numbers (merged back into ranges) are read first.
//! The objects then stream in `(type, guid)` order from the database through a
//! bounded channel to a blocking thread that writes the ZIP, so memory does not grow
//! with the number of objects. The archive is written to a temporary file beside the
//! target and renamed into place only when complete.

mod ranges;
mod read;
mod write;

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::db::Database;

/// Objects per batch sent from the database reader to the archive writer.
const BATCH_SIZE: usize = 500;

/// Batches in flight between the reader and the writer.
const CHANNEL_DEPTH: usize = 4;

/// Counts of what an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Number of objects written.
    pub objects: u64,
    /// Number of access numbers written.
    pub numbers: u64,
}

/// The reasons an export fails.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No tenant has the URL, compared case-insensitively.
    #[error("tenant {url:?} was not found; check the URL against the imported tenants")]
    TenantNotFound {
        /// The requested URL.
        url: String,
    },
    /// A stored value could not be read back.
    #[error("stored tenant data is invalid: {0}")]
    InvalidData(String),
    /// The `cluster_info` row of the configuration database could not be read.
    #[error("failed to read the configuration database's cluster_info")]
    ClusterInfo(#[source] crate::db::DbError),
    /// The configuration database failed.
    #[error("database operation failed")]
    Database(#[from] sqlx::Error),
    /// The archive file could not be written.
    #[error("failed to write archive {path}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive writer rejected a value or failed to write.
    #[error("failed to write the archive")]
    Archive(#[from] crate::archive::writer::WriteError),
    /// The archive writer thread failed.
    #[error("the archive writer task failed: {0}")]
    Task(String),
}

/// Writes the tenant with URL `tenant_url` to a format-3 archive at `path`.
///
/// # Errors
///
/// Returns [`ExportError::TenantNotFound`] when no tenant has that URL, and other
/// [`ExportError`] variants when the database or the disk fails.
pub async fn export_tenant(
    db: &Database,
    tenant_url: &str,
    path: &Path,
) -> Result<ExportSummary, ExportError> {
    let tenant = read::tenant(db, tenant_url).await?;
    let guid = tenant.identity.guid;
    let info = db.cluster_info().await.map_err(ExportError::ClusterInfo)?;
    let source = write::Source {
        tenant,
        database_id: info.database_id,
    };
    let ranges = read::ranges(db, guid).await?;
    let numbers = ranges.iter().map(|range| range.len().unsigned_abs()).sum();

    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let target = path.to_path_buf();
    let writer =
        tokio::task::spawn_blocking(move || write::archive(&target, &source, &ranges, receiver));
    let streamed = read::objects(db, guid, BATCH_SIZE, sender).await;
    let written = writer
        .await
        .map_err(|error| ExportError::Task(error.to_string()))?;
    // A writer failure closes the channel, so it is the cause of a send failure.
    let objects = written?;
    streamed?;
    Ok(ExportSummary { objects, numbers })
}
