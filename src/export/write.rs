//! Writing the exported tenant with the format-3 [`ArchiveWriter`], to a temporary
//! file that is renamed into place only when complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::ExportError;
use crate::archive::writer::{ArchiveOrigin, ArchiveWriter};
use crate::db::SCHEMA_VERSION;
use crate::model::{ConfigObject, NumberRange, TenantRecord};

/// The format version this exporter writes.
const FORMAT_VERSION: u32 = 3;

/// The tenant and the origin that the archive records.
pub(super) struct Source {
    /// The tenant.
    pub tenant: TenantRecord,
    /// The configuration database's id, written as the source cluster.
    pub database_id: uuid::Uuid,
}

/// Writes the archive to `target` and returns the number of objects written. The
/// objects arrive on `receiver` grouped by type.
pub(super) fn archive(
    target: &Path,
    source: &Source,
    ranges: &[NumberRange],
    receiver: mpsc::Receiver<Vec<ConfigObject>>,
) -> Result<u64, ExportError> {
    let partial = partial_path(target);
    let finished = write_all(&partial, source, ranges, receiver).and_then(|objects| {
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
    let write_error = |source: std::io::Error| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(write_error)?;
    let origin = ArchiveOrigin {
        format_version: FORMAT_VERSION,
        schema_version: SCHEMA_VERSION,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source_cluster: Some(source.database_id.to_string()),
    };
    let mut writer = ArchiveWriter::new(BufWriter::new(file), origin, &source.tenant, ranges)?;
    while let Some(batch) = receiver.blocking_recv() {
        for object in &batch {
            writer.write_object(object)?;
        }
    }
    let objects = writer.objects_written();
    let output = writer.finish()?;
    let file = output
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?;
    file.sync_all().map_err(write_error)?;
    Ok(objects)
}

/// Returns the temporary path the archive is written to before it is renamed.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}
