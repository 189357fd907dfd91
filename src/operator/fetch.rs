//! Fetches an archive from object storage into a temporary file.
//!
//! The archive is streamed to disk while its SHA-256 is computed, so it is never held
//! whole in memory, and the download stops as soon as it passes the size limit.
//! Credentials come from the resource's Secret, whose keys are object_store options
//! (`aws_access_key_id`, `google_service_account_key`, `azure_storage_account_key`,
//! ...); without a Secret, the S3, GCS and Azure clients read the usual environment
//! variables of the operator's pod.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreScheme};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::crd::ArchiveSource;

/// Why an archive could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one that object_store can read.
    #[error(
        "archive URL {url:?} is invalid: {reason}; use s3://, gs://, az://, file:// or http(s)://"
    )]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store rejected or failed the request (unreachable, missing object,
    /// denied).
    #[error("failed to read archive {url} from object storage")]
    Store {
        /// The URL.
        url: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// The archive is larger than the limit.
    #[error(
        "archive {url} is larger than the limit of {limit} bytes; raise --archive-max-bytes if it is genuine"
    )]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The archive's SHA-256 differs from the pinned one.
    #[error("archive {url} has SHA-256 {actual}, but spec.source.sha256 pins {expected}")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: String,
        /// The digest of the fetched bytes.
        actual: String,
    },
    /// The temporary file could not be written.
    #[error("failed to write the archive to a temporary file")]
    Spool(#[source] std::io::Error),
}

impl FetchError {
    /// Tells whether fetching again may succeed without a change to the resource.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store { .. } | Self::Spool(_))
    }
}

/// An archive on local disk, removed when dropped.
#[derive(Debug)]
pub struct FetchedArchive {
    /// The temporary file.
    pub path: tempfile::TempPath,
    /// SHA-256 of the archive, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Fetches the archive that `source` names into a temporary file in `spool_dir` (the
/// system's temporary folder when `None`), rejecting it above `max_bytes` and when its
/// digest differs from the pin.
///
/// # Errors
///
/// Returns [`FetchError`]; see [`FetchError::is_retryable`] for which ones may pass.
pub async fn fetch_archive(
    source: &ArchiveSource,
    credentials: &BTreeMap<String, String>,
    max_bytes: u64,
    spool_dir: Option<&FsPath>,
) -> Result<FetchedArchive, FetchError> {
    let url = source.url.clone();
    let (store, path) = open_store(source, credentials)?;
    let store_error = |source| FetchError::Store {
        url: url.clone(),
        source,
    };

    let result = store.get(&path).await.map_err(store_error)?;
    if result.meta.size > max_bytes {
        return Err(FetchError::TooLarge {
            url,
            limit: max_bytes,
        });
    }

    let file = match spool_dir {
        Some(dir) => tempfile::NamedTempFile::new_in(dir),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(FetchError::Spool)?;
    let (file, temp_path) = file.into_parts();
    let mut writer = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.try_next().await.map_err(store_error)? {
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(FetchError::TooLarge {
                url,
                limit: max_bytes,
            });
        }
        hasher.update(&chunk);
        writer.write_all(&chunk).await.map_err(FetchError::Spool)?;
    }
    writer.flush().await.map_err(FetchError::Spool)?;

    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = &source.sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        return Err(FetchError::DigestMismatch {
            url,
            expected: expected.clone(),
            actual: sha256,
        });
    }
    Ok(FetchedArchive {
        path: temp_path,
        sha256,
        size,
    })
}

/// Builds the object store client for `source` and the archive's path in it.
fn open_store(
    source: &ArchiveSource,
    credentials: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path), FetchError> {
    let invalid = |reason: String| FetchError::InvalidUrl {
        url: source.url.clone(),
        reason,
    };
    let url = Url::parse(&source.url).map_err(|e| invalid(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|e| invalid(e.to_string()))?;
    let allow_http = source.allow_http.unwrap_or(false);
    let build_error = |e: object_store::Error| invalid(e.to_string());

    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
            builder = apply_options(builder, credentials, |b, key, value| {
                key.parse().ok().map(|key| b.with_config(key, value))
            });
            if let Some(endpoint) = &source.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &source.region {
                builder = builder.with_region(region);
            }
            if let Some(path_style) = source.force_path_style {
                builder = builder.with_virtual_hosted_style_request(!path_style);
            }
            Arc::new(
                builder
                    .with_allow_http(allow_http)
                    .build()
                    .map_err(build_error)?,
            )
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let builder =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            let builder = apply_options(builder, credentials, |b, key, value| {
                key.parse().ok().map(|key| b.with_config(key, value))
            });
            Arc::new(builder.build().map_err(build_error)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            builder = apply_options(builder, credentials, |b, key, value| {
                key.parse().ok().map(|key| b.with_config(key, value))
            });
            if let Some(endpoint) = &source.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            Arc::new(
                builder
                    .with_allow_http(allow_http)
                    .build()
                    .map_err(build_error)?,
            )
        }
        ObjectStoreScheme::Http => {
            let base = &url[..url::Position::BeforePath];
            let options = ClientOptions::new().with_allow_http(allow_http);
            let builder = object_store::http::HttpBuilder::new()
                .with_url(base)
                .with_client_options(options);
            Arc::new(builder.build().map_err(build_error)?)
        }
        other => return Err(invalid(format!("scheme {other:?} is not supported"))),
    };
    Ok((store, path))
}

/// Applies each credential whose key the builder knows, compared case-insensitively,
/// and skips the others.
fn apply_options<B>(
    builder: B,
    credentials: &BTreeMap<String, String>,
    apply: impl Fn(B, &str, &str) -> Option<B>,
) -> B
where
    B: Clone,
{
    credentials.iter().fold(builder, |builder, (key, value)| {
        let key = key.to_ascii_lowercase();
        match apply(builder.clone(), &key, value) {
            Some(next) => next,
            None => {
                tracing::debug!(
                    key,
                    "ignoring credentials key that the object store does not use"
                );
                builder
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str) -> ArchiveSource {
        ArchiveSource {
            url: url.to_owned(),
            credentials_secret_ref: None,
            endpoint: None,
            region: None,
            force_path_style: None,
            allow_http: None,
            sha256: None,
        }
    }

    fn write_archive(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        std::io::Write::write_all(&mut file, bytes).expect("write");
        file
    }

    #[tokio::test]
    async fn file_url_is_spooled_with_digest() {
        let file = write_archive(b"archive bytes");
        let url = format!("file://{}", file.path().display());

        let fetched = fetch_archive(&source(&url), &BTreeMap::new(), 1024, None)
            .await
            .expect("fetch");

        assert_eq!(fetched.size, 13);
        assert_eq!(
            fetched.sha256,
            hex::encode(Sha256::digest(b"archive bytes"))
        );
        let copy = std::fs::read(&fetched.path).expect("read spooled file");
        assert_eq!(copy, b"archive bytes");
    }

    #[tokio::test]
    async fn oversized_archive_is_rejected() {
        let file = write_archive(&[0_u8; 100]);
        let url = format!("file://{}", file.path().display());

        let error = fetch_archive(&source(&url), &BTreeMap::new(), 99, None)
            .await
            .expect_err("over the limit");

        assert!(
            matches!(error, FetchError::TooLarge { limit: 99, .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn pinned_digest_mismatch_is_rejected() {
        let file = write_archive(b"archive bytes");
        let mut pinned = source(&format!("file://{}", file.path().display()));
        pinned.sha256 = Some("0".repeat(64));

        let error = fetch_archive(&pinned, &BTreeMap::new(), 1024, None)
            .await
            .expect_err("digest differs");

        assert!(
            matches!(error, FetchError::DigestMismatch { .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn missing_file_is_retryable() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("file://{}/absent.zip", dir.path().display());

        let error = fetch_archive(&source(&url), &BTreeMap::new(), 1024, None)
            .await
            .expect_err("missing file");

        assert!(error.is_retryable(), "{error:?}");
    }

    #[tokio::test]
    async fn unsupported_scheme_is_invalid_url() {
        let error = fetch_archive(&source("ftp://host/a.zip"), &BTreeMap::new(), 1024, None)
            .await
            .expect_err("unsupported scheme");

        assert!(matches!(error, FetchError::InvalidUrl { .. }), "{error:?}");
    }
}
