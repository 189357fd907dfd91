//! The import flow: read the archive's header, replay a committed import id or decide
//! a tenant conflict, validate every object, take the lock, then write everything in
//! one fenced transaction, and undo every step on failure.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::fault;
use super::journal::{self, Entry};
use super::numbers::{self, NumbersResult};
use super::objects::{self, StageError};
use super::reporting::ReportingTarget;
use super::tenant;
use super::transaction::{Conn, ConnectionSlot, ImportTx, is_fence_timeout};
use super::{Collision, Engine, ImportError, ImportReport, ImportRequest, NumberCounts, Outcome};
use crate::archive::{Archive, ArchiveError, ArchiveHeader, InvalidArchive};
use crate::lock::{ImportLock, LockError, LockGuard};
use crate::model::TenantIdentity;

/// The inputs of the writing steps besides the transaction and the archive.
struct WriteContext<'a> {
    engine: &'a Engine,
    request: &'a ImportRequest,
    database_id: uuid::Uuid,
    started_at: DateTime<Utc>,
}

/// Why the transaction stopped before its commit: a verdict for the caller, or a
/// failure. Either way the transaction is rolled back.
enum Halt {
    Verdict(Box<ImportReport>),
    Failure(ImportError),
}

impl From<ImportError> for Halt {
    fn from(error: ImportError) -> Self {
        Self::Failure(error)
    }
}

impl From<sqlx::Error> for Halt {
    fn from(error: sqlx::Error) -> Self {
        Self::Failure(ImportError::Database(error))
    }
}

/// Runs one import; see [`Engine::import`].
pub(super) async fn import(
    engine: &Engine,
    request: &ImportRequest,
    lock: &dyn ImportLock,
) -> Result<ImportReport, ImportError> {
    let path = request.archive.clone();
    let limits = engine.limits.clone();
    let header = match read_archive(move || ArchiveHeader::open(&path, &limits)).await? {
        Ok(header) => header,
        Err(invalid) => {
            tracing::info!(error = %invalid, "archive is invalid");
            return Ok(invalid_report(None, &invalid));
        }
    };
    let tenant = &header.tenant().identity;
    let span = tracing::info_span!("import", tenant_guid = %tenant.guid, tenant_url = tenant.url);
    import_archive(engine, request, lock, header)
        .instrument(span)
        .await
}

async fn import_archive(
    engine: &Engine,
    request: &ImportRequest,
    lock: &dyn ImportLock,
    header: ArchiveHeader,
) -> Result<ImportReport, ImportError> {
    // A committed import id and a tenant conflict need only the header, so they are
    // decided in milliseconds, before the pass over every object and without waiting
    // for the lock. The transaction decides both again under the fence.
    let header = match decide_early(engine, request, header).await? {
        Early::Decided(report) => {
            if report.replayed {
                tracing::info!("import id already committed, returning the recorded report");
            } else {
                tracing::info!(outcome = ?report.outcome, "import ended before validating objects");
            }
            return Ok(*report);
        }
        Early::Undecided(header) => *header,
    };
    let mut rejected = verdict((&header).into(), Outcome::Invalid, String::new());
    let archive = match read_archive(move || header.validate()).await? {
        Ok(archive) => Arc::new(archive),
        Err(invalid) => {
            tracing::info!(error = %invalid, "archive is invalid");
            rejected.message = format!("invalid archive: {invalid}");
            return Ok(rejected);
        }
    };

    let guard = match lock.acquire(request.lock_timeout).await {
        Ok(guard) => guard,
        Err(error @ LockError::Timeout { .. }) => {
            tracing::info!(error = %error, "import lock wait timed out");
            return Ok(verdict(
                archive.as_ref().into(),
                Outcome::LockTimeout,
                error.to_string(),
            ));
        }
        Err(error) => return Err(ImportError::Lock(error)),
    };
    fault::point("lock:acquired").await;
    let result = import_locked(engine, request, archive, guard.as_ref()).await;
    if matches!(&result, Ok(report) if report.outcome == Outcome::Imported && !report.replayed) {
        fault::point("commit:after").await;
    }
    if let Err(error) = guard.release().await {
        tracing::warn!(error = %error, "failed to release the import lock");
    }
    fault::point("lock:released").await;
    result
}

async fn import_locked(
    engine: &Engine,
    request: &ImportRequest,
    archive: Arc<Archive>,
    guard: &dyn LockGuard,
) -> Result<ImportReport, ImportError> {
    // Read before the transaction, so the import needs no second connection while it
    // holds SQLite's write lock.
    let info = engine
        .db
        .cluster_info()
        .await
        .map_err(ImportError::ClusterInfo)?;
    let mut slot = ConnectionSlot::default();
    let mut tx = match ImportTx::begin(&engine.db, request.lock_timeout, &mut slot).await {
        Ok(tx) => tx,
        Err(error) if is_fence_timeout(&error) => {
            let message = "timed out waiting for the import fence held by another import";
            return Ok(verdict(
                archive.as_ref().into(),
                Outcome::LockTimeout,
                message.to_owned(),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let started_at = Utc::now();
    fault::point("fence:taken").await;
    let mut created = None;
    let context = WriteContext {
        engine,
        request,
        database_id: info.database_id,
        started_at,
    };
    match write(&context, &mut tx, &archive, &mut created).await {
        Ok(report) => commit(tx, created, report, guard).await,
        Err(halt) => {
            undo(tx, created).await;
            match halt {
                Halt::Verdict(report) => {
                    tracing::info!(outcome = ?report.outcome, "import ended without writing");
                    Ok(*report)
                }
                Halt::Failure(error) => Err(error),
            }
        }
    }
}

/// Writes the whole import into `tx`. `created` receives the reporting database as
/// soon as it exists, so a failure after that point can remove it.
async fn write(
    context: &WriteContext<'_>,
    tx: &mut ImportTx<'_>,
    archive: &Arc<Archive>,
    created: &mut Option<ReportingTarget>,
) -> Result<ImportReport, Halt> {
    let request = context.request;
    let engine = context.engine;
    let guid = archive.tenant.identity.guid;
    let target = ReportingTarget::new(&engine.db, &engine.reporting, guid)?;
    if let Some(import_id) = &request.import_id
        && let Some(report) = journal::find(tx.conn(), import_id, &archive.sha256).await?
    {
        return Err(Halt::Verdict(Box::new(report)));
    }
    fault::point("journal:replay-checked").await;
    check_tenant(tx.conn(), archive).await?;
    fault::point("tenant:checked").await;

    // The reporting database is made over connections of its own, so the server
    // creates it while this transaction writes the objects and access numbers. When
    // the bulk writes end in a verdict or a failure, `undo` removes it through
    // `created`.
    let (written, prepared) =
        tokio::join!(write_bulk(tx, archive), target.prepare(context.database_id));
    let name = target.name.clone();
    if prepared.is_ok() {
        *created = Some(target);
    }
    let (objects, numbers) = written?;
    prepared?;
    fault::point("reporting:created").await;
    tenant::set_reporting_database(tx.conn(), guid, &name).await?;
    fault::point("reporting:recorded").await;

    let report = imported_report(archive, objects, numbers, name);
    let entry = Entry {
        import_id: request.import_id.as_deref(),
        tenant_guid: guid,
        archive_sha256: &archive.sha256,
        started_at: context.started_at,
        finished_at: Utc::now(),
        report: &report,
    };
    fault::point("journal:before").await;
    journal::insert(tx.conn(), &entry).await?;
    fault::point("journal:written").await;
    Ok(report)
}

/// Writes the tenant, its objects and its access numbers.
async fn write_bulk(
    tx: &mut ImportTx<'_>,
    archive: &Arc<Archive>,
) -> Result<(u64, NumbersResult), Halt> {
    let objects = write_objects(tx, archive).await?;
    let numbers = numbers::import(tx.conn(), archive.tenant.identity.guid, &archive.ranges).await?;
    fault::point("numbers:done").await;
    Ok((objects, numbers))
}

/// Stops with a conflict when the tenant's GUID, URL or name exists.
async fn check_tenant(conn: Conn<'_>, archive: &Archive) -> Result<(), Halt> {
    match tenant_conflict(conn, archive.into()).await? {
        Some(report) => Err(Halt::Verdict(Box::new(report))),
        None => Ok(()),
    }
}

/// Returns the Conflict report when a tenant with the archive's GUID, URL or name
/// exists.
async fn tenant_conflict(
    conn: Conn<'_>,
    archive: ArchiveFacts<'_>,
) -> Result<Option<ImportReport>, sqlx::Error> {
    let collisions = tenant::collisions(conn, archive.tenant).await?;
    if collisions.is_empty() {
        return Ok(None);
    }
    let message = tenant_conflict_message(&collisions);
    let mut report = verdict(archive, Outcome::Conflict, message);
    report.collisions = collisions;
    Ok(Some(report))
}

/// Stages, checks and inserts the objects, then the tenant row before them. Returns
/// the number of objects.
async fn write_objects(tx: &mut ImportTx<'_>, archive: &Arc<Archive>) -> Result<u64, Halt> {
    match objects::stage(tx.conn(), archive.clone()).await {
        Ok(_) => {}
        Err(StageError::Invalid(invalid)) => {
            return Err(Halt::Verdict(Box::new(invalid_report(
                Some(archive),
                &invalid,
            ))));
        }
        Err(StageError::Failed(error)) => return Err(error.into()),
    }
    fault::point("objects:staged").await;
    if let Some(duplicate) = objects::find_duplicate(tx.conn()).await? {
        let message = format!(
            "invalid archive: object GUID {} appears twice, at {} and at {}; \
             object GUIDs must be unique across the archive",
            duplicate.guid, duplicate.first, duplicate.second
        );
        return Err(Halt::Verdict(Box::new(verdict(
            archive.as_ref().into(),
            Outcome::Invalid,
            message,
        ))));
    }
    let existing = objects::collisions(tx.conn()).await?;
    if !existing.is_empty() {
        return Err(Halt::Verdict(Box::new(object_conflict(archive, existing))));
    }
    fault::point("objects:checked").await;
    tenant::insert(tx.conn(), &archive.tenant).await?;
    fault::point("tenant:inserted").await;
    let inserted = objects::insert(tx.conn(), archive.tenant.identity.guid).await?;
    fault::point("objects:inserted").await;
    Ok(inserted)
}

/// Commits the import unless the outer lock was lost meanwhile.
async fn commit(
    tx: ImportTx<'_>,
    created: Option<ReportingTarget>,
    report: ImportReport,
    guard: &dyn LockGuard,
) -> Result<ImportReport, ImportError> {
    fault::point("commit:before").await;
    // The fence alone keeps two writers apart. A holder that has learned of the loss
    // still stops, because the new holder took the lock expecting to import alone.
    if !guard.is_held() {
        tracing::error!("import lock lost before commit; rolling back");
        undo(tx, created).await;
        return Err(ImportError::LockLost);
    }
    if let Err(error) = tx.commit().await {
        remove_reporting(created).await;
        return Err(error.into());
    }
    tracing::info!(
        objects = report.objects,
        created = report.access_numbers.created,
        assigned = report.access_numbers.assigned,
        skipped = report.access_numbers.skipped,
        "tenant imported"
    );
    Ok(report)
}

async fn undo(tx: ImportTx<'_>, created: Option<ReportingTarget>) {
    if let Err(error) = tx.rollback().await {
        tracing::warn!(error = %error, "failed to roll back the import transaction");
    }
    remove_reporting(created).await;
}

async fn remove_reporting(created: Option<ReportingTarget>) {
    let Some(target) = created else {
        return;
    };
    if let Err(error) = target.remove().await {
        tracing::error!(
            error = %error,
            reporting_database = target.name,
            "failed to remove the reporting database of a failed import; remove it by hand"
        );
    }
}

/// Runs one step of the archive reader on a blocking thread. An invalid archive is
/// the inner error; a file that cannot be read is the outer one.
async fn read_archive<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<Result<T, InvalidArchive>, ImportError> {
    let read = tokio::task::spawn_blocking(step)
        .await
        .map_err(|error| ImportError::Other(format!("the archive reader task failed: {error}")))?;
    match read {
        Ok(value) => Ok(Ok(value)),
        Err(ArchiveError::Invalid(invalid)) => Ok(Err(invalid)),
        Err(error) => Err(ImportError::Archive(error)),
    }
}

/// The result of the checks that need only the archive's header.
enum Early {
    /// The import ends with this report.
    Decided(Box<ImportReport>),
    /// The import goes on with the archive.
    Undecided(Box<ArchiveHeader>),
}

/// Reads, on a pooled connection and without the lock, whether the request's import id
/// was already committed (the recorded report) or a tenant with the archive's GUID,
/// URL or name exists (a Conflict report). The archive file is hashed only when the
/// journal has the import id, to check that it records this archive.
async fn decide_early(
    engine: &Engine,
    request: &ImportRequest,
    header: ArchiveHeader,
) -> Result<Early, ImportError> {
    let (recorded, conflict) = match &engine.db {
        crate::db::Database::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            read_early(Conn::Postgres(&mut conn), request, &header).await?
        }
        crate::db::Database::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            read_early(Conn::Sqlite(&mut conn), request, &header).await?
        }
    };
    if let (Some(recorded), Some(import_id)) = (recorded, &request.import_id) {
        let mut header = tokio::task::spawn_blocking(move || {
            let mut header = header;
            header.sha256()?;
            Ok(header)
        })
        .await
        .map_err(|error| ImportError::Other(format!("the archive hashing task failed: {error}")))?
        .map_err(ImportError::Archive)?;
        let sha256 = header.sha256().map_err(ImportError::Archive)?;
        let report = recorded.replay(import_id, sha256)?;
        return Ok(Early::Decided(Box::new(report)));
    }
    Ok(match conflict {
        Some(report) => Early::Decided(Box::new(report)),
        None => Early::Undecided(Box::new(header)),
    })
}

/// Reads the journal entry of the request's import id and, when there is none, the
/// tenant conflict.
async fn read_early(
    mut conn: Conn<'_>,
    request: &ImportRequest,
    header: &ArchiveHeader,
) -> Result<(Option<journal::Recorded>, Option<ImportReport>), sqlx::Error> {
    if let Some(import_id) = &request.import_id
        && let Some(recorded) = journal::recorded(conn.reborrow(), import_id).await?
    {
        return Ok((Some(recorded), None));
    }
    Ok((None, tenant_conflict(conn, header.into()).await?))
}

/// The facts about an archive that a report carries. The SHA-256 is absent while only
/// the header is read.
#[derive(Clone, Copy)]
struct ArchiveFacts<'a> {
    tenant: &'a TenantIdentity,
    format_version: u32,
    sha256: Option<&'a str>,
    size: u64,
}

impl<'a> From<&'a Archive> for ArchiveFacts<'a> {
    fn from(archive: &'a Archive) -> Self {
        Self {
            tenant: &archive.tenant.identity,
            format_version: archive.format_version,
            sha256: Some(&archive.sha256),
            size: archive.size,
        }
    }
}

impl<'a> From<&'a ArchiveHeader> for ArchiveFacts<'a> {
    fn from(header: &'a ArchiveHeader) -> Self {
        Self {
            tenant: &header.tenant().identity,
            format_version: header.format_version(),
            sha256: None,
            size: header.size(),
        }
    }
}

/// Builds a report about `archive` for a verdict that wrote nothing.
fn verdict(archive: ArchiveFacts<'_>, outcome: Outcome, message: String) -> ImportReport {
    ImportReport {
        outcome,
        tenant: Some(archive.tenant.clone()),
        access_numbers: NumberCounts::default(),
        skipped_ranges: Vec::new(),
        reporting_database: None,
        collisions: Vec::new(),
        objects: 0,
        format_version: Some(archive.format_version),
        archive_sha256: archive.sha256.map(str::to_owned),
        archive_size: Some(archive.size),
        replayed: false,
        message,
    }
}

fn invalid_report(archive: Option<&Archive>, invalid: &InvalidArchive) -> ImportReport {
    let message = format!("invalid archive: {invalid}");
    match archive {
        Some(archive) => verdict(archive.into(), Outcome::Invalid, message),
        None => ImportReport::without_archive(Outcome::Invalid, message),
    }
}

fn imported_report(
    archive: &Archive,
    objects: u64,
    numbers: NumbersResult,
    reporting_database: String,
) -> ImportReport {
    let counts = numbers.counts;
    let message = format!(
        "tenant {} imported: {objects} objects; access numbers {} created, {} assigned, {} skipped",
        archive.tenant.identity.url, counts.created, counts.assigned, counts.skipped
    );
    let mut report = verdict(archive.into(), Outcome::Imported, message);
    report.objects = objects;
    report.access_numbers = counts;
    report.skipped_ranges = numbers.skipped_ranges;
    report.reporting_database = Some(reporting_database);
    report
}

fn tenant_conflict_message(collisions: &[Collision]) -> String {
    let fields: Vec<&str> = collisions
        .iter()
        .filter_map(|collision| match collision {
            Collision::TenantGuid => Some("GUID"),
            Collision::TenantUrl => Some("URL"),
            Collision::TenantName => Some("name"),
            Collision::ObjectGuid { .. } => None,
        })
        .collect();
    format!(
        "a tenant with the same {} already exists in the target; nothing was written. \
         Delete that tenant first or import into another cluster",
        fields.join(" and ")
    )
}

fn object_conflict(archive: &Archive, existing: Vec<uuid::Uuid>) -> ImportReport {
    let listed = existing.len();
    let more = if listed as i64 >= objects::MAX_LISTED_COLLISIONS {
        " or more"
    } else {
        ""
    };
    let first = existing
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let message = format!(
        "{listed}{more} object GUIDs of the archive already exist in the target, the first \
         being {first}; nothing was written"
    );
    let mut report = verdict(archive.into(), Outcome::Conflict, message);
    report.collisions = existing
        .into_iter()
        .map(|guid| Collision::ObjectGuid { guid })
        .collect();
    report
}
