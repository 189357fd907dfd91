//! The reconcile of one TenantImport: decide, fetch, lock, import, record.
//!
//! Each attempt first marks the status as in progress with the attempt number, so an
//! operator that stops during an import leaves a trace and the next attempt counts
//! on. The resource's uid (and the re-run value) is the engine's import id, so an
//! attempt that repeats a committed import reports Imported instead of Conflict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};

use super::crd::{
    AccessNumberSummary, ArchiveSummary, ImportOutcome, RERUN_ANNOTATION, SecretKeyRef,
    SkippedRange, TenantImport, TenantImportStatus, TenantSummary,
};
use super::decision::{self, Backoff, Decision, reason};
use super::fetch::{FetchError, FetchedArchive, fetch_archive};
use super::lease::LeaseLock;
use super::metrics::Metrics;
use crate::archive::Limits;
use crate::db::Database;
use crate::engine::{Engine, ImportError, ImportReport, ImportRequest, Outcome, ReportingConfig};
use crate::lock::{ImportLock, LockError, LockGuard};

/// Settings shared by every reconcile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The namespace of the import Leases.
    pub lease_namespace: String,
    /// This replica's identity in Leases.
    pub holder_identity: String,
    /// How long a Lease lasts without renewal.
    pub lease_duration: Duration,
    /// Archive limits.
    pub limits: Limits,
    /// Prefix of reporting database names.
    pub reporting_prefix: String,
    /// Folder for downloaded archives; the system's temporary folder when `None`.
    pub spool_dir: Option<PathBuf>,
    /// Retry schedule of LockTimeout and Failed.
    pub backoff: Backoff,
}

/// The shared state of every reconcile.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events about TenantImports.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Settings from the command line.
    pub settings: Settings,
}

/// The failure of a reconcile before it could record a result.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The resource has no namespace, which a namespaced kind always has.
    #[error("TenantImport {name} has no namespace")]
    MissingNamespace {
        /// The resource name.
        name: String,
    },
    /// Reading or writing the TenantImport failed.
    #[error("API request on TenantImport {namespace}/{name} failed")]
    Api {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// The result of one attempt, before it is written to the status.
#[derive(Debug)]
struct Verdict {
    outcome: ImportOutcome,
    reason: &'static str,
    message: String,
    report: Option<ImportReport>,
    archive: Option<ArchiveSummary>,
}

impl Verdict {
    fn failed(reason: &'static str, message: String) -> Self {
        Self {
            outcome: ImportOutcome::Failed,
            reason,
            message,
            report: None,
            archive: None,
        }
    }

    fn invalid(reason: &'static str, message: String) -> Self {
        Self {
            outcome: ImportOutcome::Invalid,
            ..Self::failed(reason, message)
        }
    }
}

/// Reconciles one TenantImport.
///
/// # Errors
///
/// Returns [`ReconcileError`] when the resource cannot be read or its status cannot
/// be written. The controller retries those through [`error_policy`].
pub async fn reconcile(
    resource: Arc<TenantImport>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let name = resource.name_any();
    let namespace = resource
        .namespace()
        .ok_or_else(|| ReconcileError::MissingNamespace { name: name.clone() })?;
    let api: Api<TenantImport> = Api::namespaced(ctx.client.clone(), &namespace);
    let api_error = |source| ReconcileError::Api {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };

    // The watch cache can lag behind this controller's own status writes, so the
    // decision reads the current object.
    let Some(current) = api.get_opt(&name).await.map_err(api_error)? else {
        return Ok(Action::await_change());
    };
    let generation = current.metadata.generation;
    let rerun = current.annotations().get(RERUN_ANNOTATION).cloned();
    let backoff = ctx.settings.backoff;
    let decision = decision::decide(
        generation,
        rerun.as_deref(),
        current.status.as_ref(),
        backoff,
        Utc::now(),
    );

    match decision {
        Decision::Done => Ok(Action::await_change()),
        Decision::Wait(delay) => Ok(Action::requeue(delay)),
        Decision::Import { attempt, fresh } => {
            let mut status = if fresh {
                TenantImportStatus::default()
            } else {
                current.status.clone().unwrap_or_default()
            };
            status.observed_generation = generation;
            status.observed_rerun = rerun.clone();
            status.attempts = attempt;
            run_attempt(&api, &current, status, fresh, &ctx)
                .await
                .map_err(api_error)
        }
    }
}

/// Requeues a reconcile that failed on the API server after the initial backoff.
#[allow(clippy::needless_pass_by_value)] // kube-runtime fixes this signature
pub fn error_policy(
    resource: Arc<TenantImport>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(
        namespace = resource.namespace().unwrap_or_default(),
        name = resource.name_any(),
        error = %error,
        "reconcile failed; retrying"
    );
    Action::requeue(ctx.settings.backoff.initial)
}

async fn run_attempt(
    api: &Api<TenantImport>,
    resource: &TenantImport,
    mut status: TenantImportStatus,
    fresh: bool,
    ctx: &Context,
) -> Result<Action, kube::Error> {
    let name = resource.name_any();
    let generation = resource.metadata.generation;
    let started_at = Utc::now();
    if fresh {
        status.started_at = Some(Time(started_at));
    }
    status.outcome = None;
    status.completed_at = None;
    status.message = Some(format!("attempt {} is running", status.attempts));
    let message = status.message.clone().unwrap_or_default();
    decision::set_conditions(
        &mut status,
        None,
        reason::IMPORTING,
        &message,
        generation,
        started_at,
    );
    patch_status(api, &name, &status).await?;
    tracing::info!(attempt = status.attempts, "import attempt started");

    let in_flight = ctx.metrics.start_import();
    let clock = Instant::now();
    let verdict = attempt(resource, ctx, status.observed_rerun.as_deref()).await;
    ctx.metrics.record_import(verdict.outcome, clock.elapsed());
    drop(in_flight);

    let now = Utc::now();
    record_verdict(&mut status, &verdict, generation, now);
    patch_status(api, &name, &status).await?;
    publish_event(ctx, resource, &verdict).await;
    tracing::info!(
        outcome = ?verdict.outcome,
        reason = verdict.reason,
        attempt = status.attempts,
        message = verdict.message,
        "import attempt ended"
    );

    if decision::is_final(verdict.outcome) {
        Ok(Action::await_change())
    } else {
        Ok(Action::requeue(ctx.settings.backoff.delay(status.attempts)))
    }
}

fn record_verdict(
    status: &mut TenantImportStatus,
    verdict: &Verdict,
    generation: Option<i64>,
    now: chrono::DateTime<Utc>,
) {
    status.outcome = Some(verdict.outcome);
    status.message = Some(verdict.message.clone());
    status.last_attempt_at = Some(Time(now));
    if decision::is_final(verdict.outcome) {
        status.completed_at = Some(Time(now));
    }
    if verdict.archive.is_some() {
        status.archive = verdict.archive.clone();
    }
    if let Some(report) = &verdict.report {
        status.tenant = report.tenant.as_ref().map(|tenant| TenantSummary {
            guid: tenant.guid.to_string(),
            url: tenant.url.clone(),
            name: tenant.name.clone(),
        });
        if report.outcome == Outcome::Imported {
            let numbers = report.access_numbers;
            status.access_numbers = Some(AccessNumberSummary {
                created: numbers.created,
                assigned: numbers.assigned,
                skipped: numbers.skipped,
            });
            status.skipped_ranges = report
                .skipped_ranges
                .iter()
                .map(|range| SkippedRange {
                    first: range.first.clone(),
                    last: range.last.clone(),
                })
                .collect();
        }
    }
    decision::set_conditions(
        status,
        Some(verdict.outcome),
        verdict.reason,
        &verdict.message,
        generation,
        now,
    );
}

/// Runs one attempt and turns every failure into a verdict.
async fn attempt(resource: &TenantImport, ctx: &Context, rerun: Option<&str>) -> Verdict {
    let namespace = resource.namespace().unwrap_or_default();
    let spec = &resource.spec;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);

    let database_url = match read_secret_key(&secrets, &spec.target.database_secret_ref).await {
        Ok(url) => url,
        Err(verdict) => return verdict,
    };
    let reporting_url = match &spec.target.reporting_database_secret_ref {
        Some(reference) => match read_secret_key(&secrets, reference).await {
            Ok(url) => Some(url),
            Err(verdict) => return verdict,
        },
        None => None,
    };
    let credentials = match &spec.source.credentials_secret_ref {
        Some(reference) => match read_secret(&secrets, &reference.name).await {
            Ok(data) => data,
            Err(verdict) => return verdict,
        },
        None => BTreeMap::new(),
    };

    let settings = &ctx.settings;
    let max_bytes = settings.limits.max_archive_bytes;
    let fetched = match fetch_archive(
        &spec.source,
        &credentials,
        max_bytes,
        settings.spool_dir.as_deref(),
    )
    .await
    {
        Ok(fetched) => fetched,
        Err(error) => return fetch_verdict(&error),
    };
    let archive = ArchiveSummary {
        sha256: fetched.sha256.clone(),
        size: fetched.size,
        format_version: None,
    };

    let mut verdict = import(resource, ctx, &fetched, &database_url, reporting_url, rerun).await;
    let format_version = verdict.report.as_ref().and_then(|r| r.format_version);
    verdict.archive = Some(ArchiveSummary {
        format_version,
        ..archive
    });
    verdict
}

async fn import(
    resource: &TenantImport,
    ctx: &Context,
    fetched: &FetchedArchive,
    database_url: &str,
    reporting_url: Option<String>,
    rerun: Option<&str>,
) -> Verdict {
    let database = match connect(database_url).await {
        Ok(database) => database,
        Err(message) => return Verdict::failed(reason::DATABASE_UNAVAILABLE, message),
    };
    let settings = &ctx.settings;
    let lock = TimedLock {
        inner: LeaseLock::with_duration(
            ctx.client.clone(),
            &settings.lease_namespace,
            &resource.spec.target.cluster,
            &settings.holder_identity,
            settings.lease_duration,
        ),
        metrics: ctx.metrics.clone(),
    };
    let reporting = ReportingConfig {
        server_url: reporting_url,
        name_prefix: settings.reporting_prefix.clone(),
    };
    let engine = Engine::new(database.clone(), settings.limits.clone(), reporting);
    let request = ImportRequest {
        archive: fetched.path.to_path_buf(),
        import_id: Some(import_id(resource, rerun)),
        lock_timeout: Duration::from_secs(u64::from(resource.spec.lock_timeout_seconds)),
    };

    let result = engine.import(&request, &lock).await;
    close(database).await;
    match result {
        Ok(report) => report_verdict(report),
        Err(error) => import_error_verdict(&error),
    }
}

/// Returns the engine's import id: the uid, and the re-run value when set.
fn import_id(resource: &TenantImport, rerun: Option<&str>) -> String {
    let uid = resource.uid().unwrap_or_else(|| resource.name_any());
    match rerun {
        Some(value) => format!("{uid}/rerun={value}"),
        None => uid,
    }
}

async fn connect(url: &str) -> Result<Database, String> {
    let database = Database::connect(url).await.map_err(|e| error_chain(&e))?;
    if let Err(error) = database.migrate().await {
        close(database).await;
        return Err(error_chain(&error));
    }
    Ok(database)
}

async fn close(database: Database) {
    match database {
        Database::Postgres(pool) => pool.close().await,
        Database::Sqlite(pool) => pool.close().await,
    }
}

fn report_verdict(report: ImportReport) -> Verdict {
    let (outcome, reason) = match report.outcome {
        Outcome::Imported => (ImportOutcome::Imported, reason::IMPORTED),
        Outcome::Conflict => (ImportOutcome::Conflict, reason::CONFLICT),
        Outcome::LockTimeout => (ImportOutcome::LockTimeout, reason::LOCK_TIMEOUT),
        Outcome::Invalid => (ImportOutcome::Invalid, reason::INVALID_ARCHIVE),
    };
    Verdict {
        outcome,
        reason,
        message: report.message.clone(),
        report: Some(report),
        archive: None,
    }
}

fn import_error_verdict(error: &ImportError) -> Verdict {
    let reason = match error {
        ImportError::Database(_) => reason::DATABASE_UNAVAILABLE,
        ImportError::Lock(_) => reason::LOCK_UNAVAILABLE,
        ImportError::LockLost => reason::LOCK_LOST,
        _ => reason::IMPORT_FAILED,
    };
    Verdict::failed(reason, error_chain(error))
}

fn fetch_verdict(error: &FetchError) -> Verdict {
    let message = error_chain(error);
    match error {
        FetchError::Store { .. } | FetchError::Spool(_) => {
            Verdict::failed(reason::SOURCE_UNAVAILABLE, message)
        }
        FetchError::InvalidUrl { .. } => Verdict::invalid(reason::INVALID_SOURCE, message),
        FetchError::TooLarge { .. } => Verdict::invalid(reason::ARCHIVE_TOO_LARGE, message),
        FetchError::DigestMismatch { .. } => Verdict::invalid(reason::DIGEST_MISMATCH, message),
    }
}

async fn read_secret(
    secrets: &Api<Secret>,
    name: &str,
) -> Result<BTreeMap<String, String>, Verdict> {
    let secret = match secrets.get_opt(name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            let message =
                format!("Secret {name} not found in the TenantImport's namespace; create it");
            return Err(Verdict::failed(reason::SECRET_NOT_FOUND, message));
        }
        Err(error) => {
            let message = format!("failed to read Secret {name}: {}", error_chain(&error));
            return Err(Verdict::failed(reason::SECRET_NOT_FOUND, message));
        }
    };
    let mut values = BTreeMap::new();
    for (key, bytes) in secret.data.unwrap_or_default() {
        match String::from_utf8(bytes.0) {
            Ok(value) => values.insert(key, value),
            Err(_) => {
                let message = format!("key {key} of Secret {name} is not UTF-8 text");
                return Err(Verdict::failed(reason::SECRET_NOT_FOUND, message));
            }
        };
    }
    values.extend(secret.string_data.unwrap_or_default());
    Ok(values)
}

async fn read_secret_key(
    secrets: &Api<Secret>,
    reference: &SecretKeyRef,
) -> Result<String, Verdict> {
    let mut values = read_secret(secrets, &reference.name).await?;
    values.remove(&reference.key).ok_or_else(|| {
        let message = format!(
            "Secret {} has no key {}; add the database URL under that key",
            reference.name, reference.key
        );
        Verdict::failed(reason::SECRET_NOT_FOUND, message)
    })
}

/// Writes the whole status with a merge patch. Absent optional fields are sent as
/// null, so a field of an earlier attempt does not survive a fresh one.
async fn patch_status(
    api: &Api<TenantImport>,
    name: &str,
    status: &TenantImportStatus,
) -> Result<(), kube::Error> {
    let mut value = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    if let Some(map) = value.as_object_mut() {
        let optional = [
            "outcome",
            "observedRerun",
            "tenant",
            "accessNumbers",
            "skippedRanges",
            "archive",
            "startedAt",
            "lastAttemptAt",
            "completedAt",
            "message",
        ];
        for field in optional {
            map.entry(field).or_insert(serde_json::Value::Null);
        }
    }
    let patch = serde_json::json!({ "status": value });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn publish_event(ctx: &Context, resource: &TenantImport, verdict: &Verdict) {
    let type_ = if verdict.outcome == ImportOutcome::Imported {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let event = Event {
        type_,
        reason: verdict.reason.to_owned(),
        note: Some(truncate(&verdict.message, 1000)),
        action: "Import".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx
        .recorder
        .publish(&event, &resource.object_ref(&()))
        .await
    {
        tracing::warn!(error = %error, "failed to publish event");
    }
}

fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Formats an error with its sources, outermost first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A Lease lock that records how long acquiring took.
struct TimedLock {
    inner: LeaseLock,
    metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl ImportLock for TimedLock {
    async fn acquire(&self, timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        let started = Instant::now();
        let result = self.inner.acquire(timeout).await;
        self.metrics.record_lock_wait(started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_errors_map_to_outcomes() {
        let too_large = FetchError::TooLarge {
            url: "s3://b/a.zip".to_owned(),
            limit: 10,
        };
        let mismatch = FetchError::DigestMismatch {
            url: "s3://b/a.zip".to_owned(),
            expected: "a".repeat(64),
            actual: "b".repeat(64),
        };
        let spool = FetchError::Spool(std::io::Error::other("disk full"));
        let cases = [
            (too_large, ImportOutcome::Invalid, reason::ARCHIVE_TOO_LARGE),
            (mismatch, ImportOutcome::Invalid, reason::DIGEST_MISMATCH),
            (spool, ImportOutcome::Failed, reason::SOURCE_UNAVAILABLE),
        ];
        for (error, outcome, expected_reason) in cases {
            let verdict = fetch_verdict(&error);
            assert_eq!(verdict.outcome, outcome, "{error:?}");
            assert_eq!(verdict.reason, expected_reason, "{error:?}");
        }
    }

    #[test]
    fn error_chain_includes_sources() {
        let error = FetchError::Spool(std::io::Error::other("disk full"));
        assert_eq!(
            error_chain(&error),
            "failed to write the archive to a temporary file: disk full"
        );
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
