//! Writing a format-3 archive: `tenant.json`, `access-numbers.json`, one
//! `objects/<type>.jsonl` per object type, and `manifest.json` with the size and
//! SHA-256 of every data file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::ExportError;
use crate::db::SCHEMA_VERSION;
use crate::model::{ConfigObject, NumberRange, TenantIdentity, TenantRecord};

/// The format version this exporter writes.
const FORMAT_VERSION: u32 = 3;

/// One data file as the manifest lists it.
#[derive(Debug, Serialize)]
struct FileEntry {
    path: String,
    sha256: String,
    size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    format_version: u32,
    schema_version: u32,
    exported_at: String,
    source_cluster: String,
    tenant: &'a TenantIdentity,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantDocument<'a> {
    guid: uuid::Uuid,
    url: &'a str,
    name: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip_domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
    settings: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct RangeDocument<'a> {
    first: String,
    last: String,
    media: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trunk: Option<&'a str>,
}

/// A ZIP being written, with the entry that is open and its running digest.
struct ArchiveWriter {
    zip: ZipWriter<BufWriter<File>>,
    path: PathBuf,
    files: Vec<FileEntry>,
    open: Option<(String, Sha256, u64)>,
}

/// What the manifest says about the export besides the files.
pub(super) struct Source {
    /// The tenant.
    pub tenant: TenantRecord,
    /// The configuration database's id, written as the source cluster.
    pub database_id: uuid::Uuid,
}

/// Writes the archive to `target` and returns the number of objects written. The
/// objects arrive on `receiver` sorted by type.
pub(super) fn archive(
    target: &Path,
    source: &Source,
    ranges: &[NumberRange],
    receiver: mpsc::Receiver<Vec<ConfigObject>>,
) -> Result<u64, ExportError> {
    let partial = partial_path(target);
    let result = write_all(&partial, source, ranges, receiver);
    let finished = result.and_then(|objects| {
        std::fs::rename(&partial, target).map_err(|source| ExportError::Write {
            path: target.to_path_buf(),
            source,
        })?;
        Ok(objects)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

fn write_all(
    path: &Path,
    source: &Source,
    ranges: &[NumberRange],
    mut receiver: mpsc::Receiver<Vec<ConfigObject>>,
) -> Result<u64, ExportError> {
    let tenant = &source.tenant;
    let mut writer = ArchiveWriter::create(path)?;
    writer.write_json("tenant.json", &tenant_document(tenant))?;
    let ranges: Vec<RangeDocument<'_>> = ranges.iter().map(range_document).collect();
    writer.write_json("access-numbers.json", &ranges)?;

    let mut objects = 0;
    let mut current_type: Option<String> = None;
    while let Some(batch) = receiver.blocking_recv() {
        for object in batch {
            if current_type.as_deref() != Some(object.object_type.as_str()) {
                writer.finish_entry()?;
                writer.start_entry(&format!("objects/{}.jsonl", object.object_type))?;
                current_type = Some(object.object_type.clone());
            }
            let mut line = serde_json::to_vec(&object).map_err(|error| writer.io_error(error))?;
            line.push(b'\n');
            writer.write(&line)?;
            objects += 1;
        }
    }
    writer.finish_entry()?;
    writer.finish(&tenant.identity, source.database_id)?;
    Ok(objects)
}

impl ArchiveWriter {
    fn create(path: &Path) -> Result<Self, ExportError> {
        let file = File::create(path).map_err(|source| ExportError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            zip: ZipWriter::new(BufWriter::new(file)),
            path: path.to_path_buf(),
            files: Vec::new(),
            open: None,
        })
    }

    fn write_json(&mut self, name: &str, value: &impl Serialize) -> Result<(), ExportError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|error| self.io_error(error))?;
        self.start_entry(name)?;
        self.write(&bytes)?;
        self.finish_entry()
    }

    fn start_entry(&mut self, name: &str) -> Result<(), ExportError> {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        self.zip
            .start_file(name, options)
            .map_err(|error| self.io_error(error))?;
        self.open = Some((name.to_owned(), Sha256::new(), 0));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        if let Some((_, digest, size)) = &mut self.open {
            digest.update(bytes);
            *size += bytes.len() as u64;
        }
        self.zip
            .write_all(bytes)
            .map_err(|source| ExportError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn finish_entry(&mut self) -> Result<(), ExportError> {
        if let Some((path, digest, size)) = self.open.take() {
            self.files.push(FileEntry {
                path,
                sha256: hex::encode(digest.finalize()),
                size,
            });
        }
        Ok(())
    }

    fn finish(
        mut self,
        tenant: &TenantIdentity,
        database_id: uuid::Uuid,
    ) -> Result<(), ExportError> {
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            schema_version: SCHEMA_VERSION,
            exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source_cluster: database_id.to_string(),
            tenant,
            files: std::mem::take(&mut self.files),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|error| self.io_error(error))?;
        self.start_entry("manifest.json")?;
        self.write(&bytes)?;
        self.open = None;
        let path = self.path.clone();
        let write_error = |source: std::io::Error| ExportError::Write {
            path: path.clone(),
            source,
        };
        let file = self
            .zip
            .finish()
            .map_err(|error| write_error(std::io::Error::other(error)))?;
        let file = file
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        file.sync_all().map_err(write_error)
    }

    fn io_error(&self, error: impl std::error::Error + Send + Sync + 'static) -> ExportError {
        ExportError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(error),
        }
    }
}

fn tenant_document(tenant: &TenantRecord) -> TenantDocument<'_> {
    TenantDocument {
        guid: tenant.identity.guid,
        url: &tenant.identity.url,
        name: &tenant.identity.name,
        status: tenant.status.as_str(),
        sip_domain: tenant.sip_domain.as_deref(),
        created_at: tenant.created_at.as_deref(),
        settings: &tenant.settings,
    }
}

fn range_document(range: &NumberRange) -> RangeDocument<'_> {
    RangeDocument {
        first: range.first.to_string(),
        last: range.last.to_string(),
        media: range.media.as_str(),
        trunk: range.trunk.as_deref(),
    }
}

/// Returns the temporary path the archive is written to before it is renamed.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}
