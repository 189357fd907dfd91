//! Spooling of an uploaded archive to a temporary file.
//!
//! The body is streamed chunk by chunk to disk, never held whole in memory. The
//! upload stops with 413 as soon as it passes the size limit (at once when
//! `Content-Length` already declares more), and with 408 when no data arrives for the read
//! timeout. The temporary file is removed when the returned handle is dropped, whatever
//! the outcome of the import.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// The content types accepted for an archive upload.
const ARCHIVE_CONTENT_TYPES: [&str; 2] = ["application/zip", "application/octet-stream"];

/// Rejects a request whose content type is not a ZIP archive.
///
/// # Errors
///
/// Returns [`ApiError::UnsupportedMediaType`] naming the type received.
pub fn check_archive_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    if ARCHIVE_CONTENT_TYPES
        .iter()
        .any(|accepted| essence.eq_ignore_ascii_case(accepted))
    {
        return Ok(());
    }
    let received = if value.is_empty() {
        "no Content-Type".to_owned()
    } else {
        format!(
            "Content-Type {:?}",
            crate::model::truncate_for_message(value)
        )
    };
    Err(ApiError::UnsupportedMediaType(format!(
        "the archive was sent with {received}; send it as application/zip or application/octet-stream"
    )))
}

/// Writes the request body to a new temporary file in `dir` and returns the file.
///
/// # Errors
///
/// Returns [`ApiError::PayloadTooLarge`] when the body passes `max_bytes`,
/// [`ApiError::RequestTimeout`] when no data arrives for `read_timeout`,
/// [`ApiError::BadRequest`] when the client breaks off the upload, and
/// [`ApiError::Internal`] when the disk fails.
pub async fn spool_body(
    headers: &HeaderMap,
    body: Body,
    max_bytes: u64,
    read_timeout: Duration,
    dir: &std::path::Path,
) -> Result<NamedTempFile, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes) {
        return Err(ApiError::PayloadTooLarge { limit: max_bytes });
    }

    let temp = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".zip")
        .tempfile_in(dir)
        .map_err(ApiError::internal)?;
    let std_file = temp.reopen().map_err(ApiError::internal)?;
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(std_file));

    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    loop {
        let next = tokio::time::timeout(read_timeout, stream.next()).await;
        let chunk = match next {
            Err(_) => {
                return Err(ApiError::RequestTimeout(format!(
                    "no upload data arrived for {} seconds after {received} bytes; send the archive in one request without pauses",
                    read_timeout.as_secs()
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                tracing::warn!(error = %error, received, "upload broke off");
                return Err(ApiError::BadRequest(format!(
                    "the upload broke off after {received} bytes"
                )));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        received = received.saturating_add(chunk.len() as u64);
        if received > max_bytes {
            return Err(ApiError::PayloadTooLarge { limit: max_bytes });
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.into_inner()
        .sync_all()
        .await
        .map_err(ApiError::internal)?;
    tracing::debug!(bytes = received, "upload spooled");
    Ok(temp)
}
