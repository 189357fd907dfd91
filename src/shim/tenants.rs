//! The tenant routes: import, export, delete, activate, deactivate and list.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::error::ApiError;
use super::state::AppState;
use super::telemetry::TenantUrl;
use super::upload::{check_archive_content_type, spool_body};
use crate::db::admin::{self, AdminError, TenantSummary};
use crate::engine::{DEFAULT_LOCK_TIMEOUT, ImportError, ImportReport, ImportRequest, Outcome};
use crate::export::ExportError;
use crate::model::TenantStatus;

/// The maximum lock wait a request may set, in seconds.
const MAX_LOCK_TIMEOUT_SECONDS: u64 = 3600;
/// The request header that carries an id making import retries safe.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `PUT /configapi/v2/tenant?lockTimeout=N`: imports the archive in the body.
pub async fn import(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let lock_timeout = parse_lock_timeout(query.as_deref())?;
    let import_id = idempotency_key(&headers)?;
    check_archive_content_type(&headers)?;
    let archive = spool_body(&headers, body, &state.upload).await?;

    let result = run_import(&state, archive, import_id, lock_timeout).await;
    let outcome = match &result {
        Ok(report) => Some(report.outcome),
        Err(ApiError::InvalidArchive(_)) => Some(Outcome::Invalid),
        Err(ApiError::Conflict { .. }) => Some(Outcome::Conflict),
        Err(_) => None,
    };
    state.metrics.record_import(outcome);
    let report = result?;
    let tenant_url = report.tenant.as_ref().map(|tenant| tenant.url.clone());
    let mut response = report_response(report).unwrap_or_else(IntoResponse::into_response);
    if let Some(url) = tenant_url {
        response.extensions_mut().insert(TenantUrl(url));
    }
    Ok(response)
}

/// Runs the import on a task of its own, so that it finishes (or rolls back) even when
/// the client disconnects, and shutdown waits for it.
async fn run_import(
    state: &AppState,
    archive: tempfile::NamedTempFile,
    import_id: Option<String>,
    lock_timeout: Duration,
) -> Result<ImportReport, ApiError> {
    let state = state.clone();
    let running = state.imports.start().await;
    let in_progress = state.metrics.track_import();
    let task = async move {
        let _running = running;
        let _in_progress = in_progress;
        let started = Instant::now();
        let Some(_turn) = state.imports.wait_turn(lock_timeout).await else {
            return Ok(lock_timeout_report(lock_timeout));
        };
        let request = ImportRequest {
            archive: archive.path().to_path_buf(),
            import_id,
            lock_timeout: lock_timeout.saturating_sub(started.elapsed()),
        };
        let lock = state.locking.lock();
        let result = state.engine.import(&request, lock.as_ref()).await;
        drop(archive);
        result.map_err(import_error)
    };
    tokio::spawn(task.instrument(tracing::Span::current()))
        .await
        .map_err(ApiError::internal)?
}

/// Converts an import failure to its response.
fn import_error(error: ImportError) -> ApiError {
    match error {
        ImportError::Archive(crate::archive::ArchiveError::Invalid(invalid)) => {
            ApiError::InvalidArchive(format!("invalid archive: {invalid}"))
        }
        ImportError::LockLost => ApiError::LockLost(error.to_string()),
        ImportError::ImportIdReused { .. } | ImportError::ForeignReportingDatabase { .. } => {
            ApiError::Conflict {
                message: error.to_string(),
                collisions: Vec::new(),
            }
        }
        other => ApiError::internal(other),
    }
}

/// Builds the report of an import that waited for this process's turn for the whole timeout.
fn lock_timeout_report(waited: Duration) -> ImportReport {
    let message = format!(
        "timed out after {} seconds waiting for another import to finish; retry later or raise lockTimeout",
        waited.as_secs()
    );
    ImportReport::without_archive(Outcome::LockTimeout, message)
}

/// Converts an import verdict to its response: 200 with the report, or an error.
fn report_response(report: ImportReport) -> Result<Response, ApiError> {
    match report.outcome {
        Outcome::Imported => Ok((StatusCode::OK, Json(report)).into_response()),
        Outcome::Conflict => Err(ApiError::Conflict {
            message: report.message,
            collisions: report.collisions,
        }),
        Outcome::LockTimeout => Err(ApiError::LockTimeout(report.message)),
        Outcome::Invalid => Err(ApiError::InvalidArchive(report.message)),
    }
}

/// Reads `lockTimeout` (or its misspelling `lockTime`) in seconds from the query.
fn parse_lock_timeout(query: Option<&str>) -> Result<Duration, ApiError> {
    let mut value: Option<(String, String)> = None;
    for (name, text) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "lockTimeout" || name == "lockTime" {
            if value.is_some() {
                return Err(ApiError::BadRequest(
                    "give lockTimeout once (lockTime is the same parameter)".to_owned(),
                ));
            }
            value = Some((name.into_owned(), text.into_owned()));
        }
    }
    let Some((name, text)) = value else {
        return Ok(DEFAULT_LOCK_TIMEOUT);
    };
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds <= MAX_LOCK_TIMEOUT_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(ApiError::BadRequest(format!(
            "{name} {:?} is invalid; expected whole seconds from 0 to {MAX_LOCK_TIMEOUT_SECONDS}",
            crate::model::truncate_for_message(&text)
        ))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    let valid = !key.is_empty() && key.len() <= 255 && key.chars().all(|c| c.is_ascii_graphic());
    if !valid {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// `GET /configapi/v2/tenant/{tenant_url}`: exports the tenant as a format-3 archive.
pub async fn export(
    State(state): State<AppState>,
    Path(tenant_url): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = require_tenant(&state, &tenant_url).await?;
    let temp = tempfile::Builder::new()
        .prefix("export-")
        .suffix(".zip")
        .tempfile_in(&state.upload.dir)
        .map_err(ApiError::internal)?;
    let summary = crate::export::export_tenant(&state.db, &tenant.url, temp.path())
        .await
        .map_err(|error| match error {
            ExportError::TenantNotFound { .. } => ApiError::NotFound(error.to_string()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(
        tenant_url = tenant.url,
        objects = summary.objects,
        numbers = summary.numbers,
        "tenant exported"
    );

    // The open handle keeps the file's data after the temporary path is removed.
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(ApiError::internal)?;
    let length = file.metadata().await.map_err(ApiError::internal)?.len();
    drop(temp);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let disposition = format!("attachment; filename=\"{}.zip\"", tenant.url);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response.extensions_mut().insert(TenantUrl(tenant.url));
    Ok(response)
}

/// `DELETE /configapi/v2/tenant/{tenant_url}?keepAccessNumbers=true`: deletes an
/// inactive tenant, its objects and its reporting database.
pub async fn delete(
    State(state): State<AppState>,
    Path(tenant_url): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let keep_numbers = parse_keep_access_numbers(query.as_deref())?;
    let deleted = admin::delete_tenant(&state.db, &tenant_url, keep_numbers)
        .await
        .map_err(admin_error)?;
    if deleted.reporting_database.is_some() {
        drop_reporting_database(&state, &deleted.tenant.guid).await?;
    }
    tracing::info!(
        tenant_url = deleted.tenant.url,
        tenant_guid = deleted.tenant.guid,
        numbers_deleted = deleted.numbers_deleted,
        numbers_freed = deleted.numbers_freed,
        objects_deleted = deleted.objects_deleted,
        "tenant deleted"
    );
    let body = serde_json::json!({
        "tenant": deleted.tenant,
        "accessNumbersDeleted": deleted.numbers_deleted,
        "accessNumbersFreed": deleted.numbers_freed,
        "objectsDeleted": deleted.objects_deleted,
        "reportingDatabaseDropped": deleted.reporting_database,
    });
    let mut response = Json(body).into_response();
    response
        .extensions_mut()
        .insert(TenantUrl(deleted.tenant.url));
    Ok(response)
}

/// `POST /configapi/v2/tenant/{tenant_url}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    Path(tenant_url): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&state, &tenant_url, TenantStatus::Active).await
}

/// `POST /configapi/v2/tenant/{tenant_url}/deactivate`.
pub async fn deactivate(
    State(state): State<AppState>,
    Path(tenant_url): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&state, &tenant_url, TenantStatus::Inactive).await
}

/// `GET /configapi/v2/tenants`: every tenant, ordered by URL.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<TenantSummary>>, ApiError> {
    let tenants = admin::list_tenants(&state.db).await.map_err(admin_error)?;
    Ok(Json(tenants))
}

async fn set_status(
    state: &AppState,
    tenant_url: &str,
    status: TenantStatus,
) -> Result<Response, ApiError> {
    let tenant = admin::set_tenant_status(&state.db, tenant_url, status)
        .await
        .map_err(admin_error)?;
    tracing::info!(
        tenant_url = tenant.url,
        status = status.as_str(),
        "tenant status set"
    );
    let url = tenant.url.clone();
    let mut response = Json(tenant).into_response();
    response.extensions_mut().insert(TenantUrl(url));
    Ok(response)
}

async fn require_tenant(state: &AppState, tenant_url: &str) -> Result<TenantSummary, ApiError> {
    admin::find_tenant(&state.db, tenant_url)
        .await
        .map_err(admin_error)?
        .ok_or_else(|| {
            admin_error(AdminError::TenantNotFound {
                url: tenant_url.to_owned(),
            })
        })
}

fn parse_keep_access_numbers(query: Option<&str>) -> Result<bool, ApiError> {
    let mut keep = false;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "keepAccessNumbers" {
            continue;
        }
        keep = match value.as_ref() {
            "true" => true,
            "false" => false,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "keepAccessNumbers {:?} is invalid; expected true or false",
                    crate::model::truncate_for_message(other)
                )));
            }
        };
    }
    Ok(keep)
}

/// Drops a deleted tenant's reporting database, after the tenant's rows are gone.
async fn drop_reporting_database(state: &AppState, tenant_guid: &str) -> Result<(), ApiError> {
    let guid = Uuid::parse_str(tenant_guid).map_err(ApiError::internal)?;
    state
        .engine
        .drop_reporting_database(guid)
        .await
        .map_err(ApiError::internal)
}

/// Converts an administration error to its response.
pub fn admin_error(error: AdminError) -> ApiError {
    match error {
        AdminError::TenantNotFound { .. } | AdminError::NumbersNotFound { .. } => {
            ApiError::NotFound(error.to_string())
        }
        AdminError::TenantActive { .. }
        | AdminError::TrunkNotFound { .. }
        | AdminError::InvalidArgument(_) => ApiError::BadRequest(error.to_string()),
        AdminError::TrunkExists { .. } | AdminError::NumbersExist { .. } => ApiError::Conflict {
            message: error.to_string(),
            collisions: Vec::new(),
        },
        AdminError::Database(source) => ApiError::internal(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeout_accepts_both_spellings() {
        assert_eq!(
            parse_lock_timeout(None).expect("default"),
            DEFAULT_LOCK_TIMEOUT
        );
        let seconds = |query| parse_lock_timeout(Some(query)).expect("valid").as_secs();
        assert_eq!(seconds("lockTimeout=7"), 7);
        assert_eq!(seconds("lockTime=3"), 3);
        assert_eq!(seconds("other=1"), 120);
    }

    #[test]
    fn lock_timeout_rejects_bad_values() {
        for query in [
            "lockTimeout=-1",
            "lockTimeout=abc",
            "lockTimeout=3601",
            "lockTimeout=1&lockTime=2",
        ] {
            assert!(parse_lock_timeout(Some(query)).is_err(), "{query} accepted");
        }
    }

    #[test]
    fn keep_access_numbers_parses_booleans() {
        assert!(!parse_keep_access_numbers(None).expect("default"));
        assert!(parse_keep_access_numbers(Some("keepAccessNumbers=true")).expect("true"));
        assert!(parse_keep_access_numbers(Some("keepAccessNumbers=yes")).is_err());
    }
}
