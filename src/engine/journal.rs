//! The import journal: one row per committed import, written in the import's own
//! transaction, so a retry of a committed import id finds the recorded report.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::transaction::{Conn, guid_text};
use super::{ImportError, ImportReport};

/// A committed import as the journal records it.
pub(super) struct Entry<'a> {
    /// The caller's import id, if any.
    pub import_id: Option<&'a str>,
    /// The imported tenant.
    pub tenant_guid: Uuid,
    /// SHA-256 of the archive file.
    pub archive_sha256: &'a str,
    /// When the import passed the fence.
    pub started_at: DateTime<Utc>,
    /// When the import finished writing.
    pub finished_at: DateTime<Utc>,
    /// The report returned to the caller.
    pub report: &'a ImportReport,
}

/// A committed import as the journal recorded it.
pub(super) struct Recorded {
    archive_sha256: String,
    report: String,
}

/// Returns the recorded report of `import_id`, marked as replayed, or `None` when no
/// committed import has that id.
///
/// A recorded id with a different archive is [`ImportError::ImportIdReused`].
pub(super) async fn find(
    conn: Conn<'_>,
    import_id: &str,
    archive_sha256: &str,
) -> Result<Option<ImportReport>, ImportError> {
    match recorded(conn, import_id).await? {
        Some(recorded) => recorded.replay(import_id, archive_sha256).map(Some),
        None => Ok(None),
    }
}

/// Returns the journal entry of `import_id`, or `None` when no committed import has
/// that id.
pub(super) async fn recorded(
    conn: Conn<'_>,
    import_id: &str,
) -> Result<Option<Recorded>, sqlx::Error> {
    let row: Option<(String, String)> = match conn {
        Conn::Postgres(conn) => {
            sqlx::query_as(
                "SELECT archive_sha256, report::text FROM import_journal WHERE import_id = $1",
            )
            .bind(import_id)
            .fetch_optional(conn)
            .await?
        }
        Conn::Sqlite(conn) => {
            sqlx::query_as("SELECT archive_sha256, report FROM import_journal WHERE import_id = ?1")
                .bind(import_id)
                .fetch_optional(conn)
                .await?
        }
    };
    Ok(row.map(|(archive_sha256, report)| Recorded {
        archive_sha256,
        report,
    }))
}

impl Recorded {
    /// Returns the recorded report, marked as replayed, when the entry is of the
    /// archive with `archive_sha256`.
    ///
    /// A different archive is [`ImportError::ImportIdReused`].
    pub(super) fn replay(
        self,
        import_id: &str,
        archive_sha256: &str,
    ) -> Result<ImportReport, ImportError> {
        if self.archive_sha256 != archive_sha256 {
            return Err(ImportError::ImportIdReused {
                import_id: import_id.to_owned(),
            });
        }
        let mut report: ImportReport = serde_json::from_str(&self.report).map_err(|error| {
            ImportError::Other(format!(
                "the journal entry of import id {import_id:?} is unreadable: {error}"
            ))
        })?;
        report.replayed = true;
        Ok(report)
    }
}

/// Records a committed import.
pub(super) async fn insert(conn: Conn<'_>, entry: &Entry<'_>) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query(
                "INSERT INTO import_journal (import_id, tenant_guid, archive_sha256, started_at, \
                 finished_at, report) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(entry.import_id)
            .bind(entry.tenant_guid)
            .bind(entry.archive_sha256)
            .bind(entry.started_at)
            .bind(entry.finished_at)
            .bind(Json(entry.report))
            .execute(conn)
            .await?;
        }
        Conn::Sqlite(conn) => {
            sqlx::query(
                "INSERT INTO import_journal (import_id, tenant_guid, archive_sha256, started_at, \
                 finished_at, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(entry.import_id)
            .bind(guid_text(entry.tenant_guid))
            .bind(entry.archive_sha256)
            .bind(rfc3339(entry.started_at))
            .bind(rfc3339(entry.finished_at))
            .bind(Json(entry.report))
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}
