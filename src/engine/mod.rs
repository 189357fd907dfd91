//! The import engine, shared by the command line, the HTTP shim and the controller.
//!
//! An import takes the lock and opens one transaction on the configuration database,
//! fenced by a transaction-level lock. It decides conflicts before any bulk work, then
//! writes the tenant, its objects and its access numbers while the tenant's reporting
//! database is created. It records the import in the journal and commits. Any failure
//! rolls back and removes the reporting database it created.

pub mod fault;
mod journal;
mod numbers;
mod objects;
mod reporting;
mod run;
mod tenant;
mod transaction;

pub use objects::MAX_LISTED_COLLISIONS;
pub use transaction::FENCE_KEY;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::archive::{ArchiveError, Limits};
use crate::db::{Database, DbError};
use crate::lock::ImportLock;
use crate::model::TenantIdentity;

/// The default time an import waits for the lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of an import that ran to a verdict. Infrastructure failures are
/// [`ImportError`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The tenant was imported and committed.
    Imported,
    /// The tenant or one of its objects already exists; nothing was written.
    Conflict,
    /// Another import held the lock for the whole wait; nothing was written.
    LockTimeout,
    /// The archive breaks a rule of the format; nothing was written.
    Invalid,
}

/// An identity of the archive that already exists in the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Collision {
    /// A tenant with the same GUID exists.
    TenantGuid,
    /// A tenant with the same URL, compared case-insensitively, exists.
    TenantUrl,
    /// A tenant with the same trimmed name, compared case-insensitively, exists.
    TenantName,
    /// An object with this GUID of the archive exists.
    ObjectGuid {
        /// The archive's object GUID.
        guid: Uuid,
    },
}

/// Access-number counts of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberCounts {
    /// Numbers that did not exist and were created, with no trunk.
    pub created: u64,
    /// Numbers that existed free and were assigned, keeping their trunk.
    pub assigned: u64,
    /// Numbers not taken because their range contains a number owned by another tenant.
    pub skipped: u64,
}

/// The bounds of a skipped range, as written in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeBounds {
    /// First number.
    pub first: String,
    /// Last number.
    pub last: String,
}

/// The result of an import, which the command line prints and the HTTP shim returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The verdict.
    pub outcome: Outcome,
    /// The archive's tenant, when the archive was readable that far.
    pub tenant: Option<TenantIdentity>,
    /// Access-number counts; zero unless imported.
    pub access_numbers: NumberCounts,
    /// Ranges skipped whole because another tenant owns one of their numbers.
    pub skipped_ranges: Vec<RangeBounds>,
    /// Name of the tenant's reporting database, when imported.
    pub reporting_database: Option<String>,
    /// Collisions that made the import a conflict.
    pub collisions: Vec<Collision>,
    /// Number of objects imported.
    pub objects: u64,
    /// Format version of the archive, when readable.
    pub format_version: Option<u32>,
    /// SHA-256 of the archive file, lower-case hex.
    pub archive_sha256: Option<String>,
    /// Size of the archive file in bytes.
    pub archive_size: Option<u64>,
    /// Whether the result was recorded by an earlier attempt with the same import id.
    pub replayed: bool,
    /// One human sentence about the verdict.
    pub message: String,
}

impl ImportReport {
    /// Builds the report of a verdict reached before the archive could be read: no
    /// tenant, no counts, no archive facts.
    pub fn without_archive(outcome: Outcome, message: String) -> Self {
        Self {
            outcome,
            tenant: None,
            access_numbers: NumberCounts::default(),
            skipped_ranges: Vec::new(),
            reporting_database: None,
            collisions: Vec::new(),
            objects: 0,
            format_version: None,
            archive_sha256: None,
            archive_size: None,
            replayed: false,
            message,
        }
    }
}

/// An import that failed for a reason other than its verdict: the caller may retry.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The archive file could not be read.
    #[error(transparent)]
    Archive(ArchiveError),
    /// The configuration or reporting database failed.
    #[error("database operation failed")]
    Database(#[from] sqlx::Error),
    /// The `cluster_info` row of the configuration database could not be read.
    #[error("failed to read the configuration database's cluster_info")]
    ClusterInfo(#[source] DbError),
    /// The lock backend failed.
    #[error("import lock failed")]
    Lock(#[source] crate::lock::LockError),
    /// The outer import lock was lost before commit, so the transaction was rolled
    /// back. The engine's fence kept the imports apart either way, so a retry is safe.
    #[error(
        "the import lock was lost before commit, so the import was rolled back and nothing \
         was written; retry the import"
    )]
    LockLost,
    /// The import id was committed before with a different archive.
    #[error(
        "import id {import_id:?} was already used for a different archive; \
         use a new import id for a new archive"
    )]
    ImportIdReused {
        /// The import id.
        import_id: String,
    },
    /// A database or file of the reporting database's name exists and was not made by
    /// this configuration database for this tenant, so it was left untouched.
    #[error(
        "reporting database {name} exists but was not created by this configuration database \
         for this tenant, so it was left untouched; drop or rename it, or choose another \
         reporting database prefix, then retry"
    )]
    ForeignReportingDatabase {
        /// The database name, or the file name on SQLite.
        name: String,
    },
    /// The reporting database prefix cannot make a valid name.
    #[error("reporting database prefix {prefix:?} is invalid: {reason}; choose another prefix")]
    InvalidReportingPrefix {
        /// The configured prefix.
        prefix: String,
        /// The rule the name breaks.
        reason: String,
    },
    /// The reporting server URL is not a PostgreSQL URL.
    #[error("the reporting database server URL is invalid; expected postgres://USER@HOST:PORT")]
    InvalidReportingServer,
    /// A file of an SQLite reporting database could not be removed.
    #[error("failed to remove reporting database file {path}; remove it by hand, then retry")]
    RemoveReportingFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else, with a message naming it.
    #[error("{0}")]
    Other(String),
}

/// One import request.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The archive on local disk.
    pub archive: PathBuf,
    /// An id that makes retries safe: a retry of a committed import id returns the
    /// recorded report instead of a conflict.
    pub import_id: Option<String>,
    /// How long to wait for the lock.
    pub lock_timeout: Duration,
}

/// The location and naming of reporting databases.
#[derive(Debug, Clone)]
pub struct ReportingConfig {
    /// PostgreSQL server URL for reporting databases; `None` uses the configuration
    /// database's server. Ignored on SQLite, which puts a file beside the database.
    pub server_url: Option<String>,
    /// Prefix of reporting database names; the rest is the tenant GUID in hex.
    pub name_prefix: String,
}

/// The import engine over one configuration database.
#[derive(Clone)]
pub struct Engine {
    db: Database,
    limits: Limits,
    reporting: ReportingConfig,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        Self {
            server_url: None,
            name_prefix: "tenant_report_".to_owned(),
        }
    }
}

impl Engine {
    /// Creates an engine over a migrated database.
    pub fn new(db: Database, limits: Limits, reporting: ReportingConfig) -> Self {
        Self {
            db,
            limits,
            reporting,
        }
    }

    /// Returns the configuration database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Returns the archive limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Imports one archive under `lock`.
    ///
    /// # Errors
    ///
    /// Returns [`ImportError`] when the database, the lock backend or the disk fails;
    /// verdicts (conflict, lock timeout, invalid archive) are [`ImportReport`]s.
    pub async fn import(
        &self,
        request: &ImportRequest,
        lock: &dyn ImportLock,
    ) -> Result<ImportReport, ImportError> {
        run::import(self, request, lock).await
    }

    /// Drops the reporting database of `tenant_guid` when it exists and this
    /// configuration database created it for that tenant; a missing one is no error.
    ///
    /// # Errors
    ///
    /// Returns [`ImportError::ForeignReportingDatabase`] when a database of that name
    /// was not created by this configuration database for this tenant, and other
    /// [`ImportError`] variants when a database or the disk fails.
    pub async fn drop_reporting_database(&self, tenant_guid: Uuid) -> Result<(), ImportError> {
        let target = reporting::ReportingTarget::new(&self.db, &self.reporting, tenant_guid)?;
        let info = self
            .db
            .cluster_info()
            .await
            .map_err(ImportError::ClusterInfo)?;
        target.drop_if_owned(info.database_id).await
    }

    /// Returns the name the reporting database of `tenant_guid` has or would have.
    ///
    /// # Errors
    ///
    /// Returns [`ImportError::InvalidReportingPrefix`] when the configured prefix
    /// cannot make a valid name.
    pub fn reporting_database_name(&self, tenant_guid: Uuid) -> Result<String, ImportError> {
        Ok(reporting::ReportingTarget::new(&self.db, &self.reporting, tenant_guid)?.name)
    }
}
