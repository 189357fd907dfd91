//! The tenant archive reader: ZIP structure, limits, format versions 1 to 3.
//!
//! [`ArchiveHeader::open`] checks the ZIP structure against the [`Limits`] and reads the
//! small files (manifest, tenant, access numbers). [`ArchiveHeader::validate`] then
//! makes one validation pass over every object, so an invalid archive is rejected
//! before anything is written. [`Archive::open`] does both.
//! [`Archive::for_each_object_batch`] then streams the objects again, in batches, for
//! the import engine. Older formats are upgraded to [`crate::model`] while reading.

mod entry;
mod json;
mod limits;
mod text;
mod v1;
mod v2;
mod v3;
mod values;
pub mod writer;

pub use entry::RATIO_CHECK_MIN_BYTES;
pub use limits::Limits;
pub use values::{MAX_OBJECT_NAME_CHARS, MAX_OBJECT_TYPE_CHARS};

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::model::{ConfigObject, NumberRange, TenantRecord};
use entry::{Contents, EntryReader, OpenedFile, Zip, invalid_archive, invalid_file};

/// The newest archive format this reader understands.
pub const CURRENT_FORMAT_VERSION: u32 = 3;

/// The place in an archive where a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The archive as a whole (its ZIP structure).
    Archive,
    /// One entry of the archive.
    File(String),
    /// One line of an entry, counted from 1.
    Line {
        /// Entry name.
        file: String,
        /// Line number.
        line: u64,
    },
    /// One field of an entry, as a JSON-pointer-like path (`accessNumbers[3].count`).
    Field {
        /// Entry name.
        file: String,
        /// Line number, for line-based files.
        line: Option<u64>,
        /// Field path.
        field: String,
    },
}

/// An archive that breaks a rule of the format; the message names where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct InvalidArchive {
    /// The place of the problem.
    pub location: Location,
    /// The problem, and where useful the value that would be right.
    pub problem: String,
}

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive breaks a rule of the format or a limit.
    #[error("invalid archive: {0}")]
    Invalid(#[from] InvalidArchive),
    /// The archive file could not be read from disk.
    #[error("failed to read archive {path}")]
    Io {
        /// The archive file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One object of an archive with where it was found, so a later check (a GUID that
/// appears twice) can name the line.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedObject {
    /// Where the object is: a line of a JSON Lines or CSV file, or an array element.
    pub location: Location,
    /// The object, upgraded to the current model.
    pub object: ConfigObject,
}

/// Counts of what an archive holds, found by the validation pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Number of configuration objects.
    pub objects: u64,
    /// Number of access-number ranges.
    pub ranges: u64,
    /// Number of access numbers over all ranges.
    pub numbers: u64,
}

/// A validated tenant archive on local disk.
#[derive(Debug)]
pub struct Archive {
    /// The archive file.
    pub path: PathBuf,
    /// Format version, 1 to 3.
    pub format_version: u32,
    /// Schema version of the source cluster's configuration database.
    pub schema_version: u32,
    /// SHA-256 of the whole archive file, lower-case hex.
    pub sha256: String,
    /// Size of the archive file in bytes.
    pub size: u64,
    /// The tenant, upgraded to the current model.
    pub tenant: TenantRecord,
    /// The access-number ranges, checked not to overlap each other.
    pub ranges: Vec<NumberRange>,
    /// Counts found by the validation pass.
    pub summary: ArchiveSummary,
    limits: Limits,
    layout: Layout,
}

/// What a format reader found out while reading the small files.
pub(crate) struct Header {
    tenant: TenantRecord,
    ranges: Vec<NumberRange>,
    range_places: RangePlaces,
    layout: Layout,
}

/// Where each range of an archive was found, kept compact because an archive may have
/// millions of ranges and the places are only needed for a message.
pub(crate) enum RangePlaces {
    /// Element `index` of a JSON array in `file`, as `{prefix}[index]`.
    Elements {
        file: &'static str,
        prefix: &'static str,
    },
    /// One line of a CSV file per range.
    Lines { file: &'static str, lines: Vec<u64> },
}

impl RangePlaces {
    /// Returns the location of the range at `index`.
    fn location(&self, index: usize) -> Location {
        match self {
            Self::Elements { file, prefix } => Location::Field {
                file: (*file).to_owned(),
                line: None,
                field: format!("{prefix}[{index}]"),
            },
            Self::Lines { file, lines } => Location::Line {
                file: (*file).to_owned(),
                line: lines.get(index).copied().unwrap_or_default(),
            },
        }
    }
}

/// Where the objects of an archive are, per format version.
#[derive(Debug, Clone)]
enum Layout {
    V1,
    V2,
    V3(v3::Layout),
}

/// Why streaming objects stopped.
enum Stop<E> {
    Invalid(InvalidArchive),
    Sink(E),
}

/// `manifest.json` of formats 2 and 3, before its fields are checked.
#[derive(Debug, Deserialize)]
struct RawManifest {
    #[serde(rename = "formatVersion")]
    format_version: Option<Value>,
    #[serde(rename = "schemaVersion")]
    schema_version: Option<Value>,
    tenant: Option<values::RawIdentity>,
    files: Option<Vec<v3::RawListedFile>>,
}

/// Where the format version was found.
enum Detected {
    Manifest(RawManifest),
    Properties(v1::Properties),
}

impl std::fmt::Display for Location {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Archive => write!(formatter, "archive"),
            Self::File(file) => write!(formatter, "{file}"),
            Self::Line { file, line } => write!(formatter, "{file} line {line}"),
            Self::Field {
                file,
                line: Some(line),
                field,
            } => write!(formatter, "{file} line {line}, field {field}"),
            Self::Field {
                file,
                line: None,
                field,
            } => write!(formatter, "{file}, field {field}"),
        }
    }
}

impl Archive {
    /// Opens and validates the archive at `path`: ZIP structure and limits, format and
    /// schema version, tenant, access numbers, every object, and the checksums.
    ///
    /// # Errors
    ///
    /// Returns [`ArchiveError::Invalid`] for any broken rule or exceeded limit, and
    /// [`ArchiveError::Io`] when the file cannot be read.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self, ArchiveError> {
        ArchiveHeader::open(path, limits)?.validate()
    }

    /// Streams every object of the archive to `sink` in batches of at most
    /// `batch_size`, re-checking what the validation pass checked (the file may have
    /// changed on disk since). Object GUIDs are not checked for uniqueness here: the
    /// engine does that in the database, so memory does not grow with the archive.
    ///
    /// # Errors
    ///
    /// Returns the first error of the archive or of `sink`.
    pub fn for_each_object_batch<E>(
        &self,
        batch_size: usize,
        mut sink: impl FnMut(Vec<LocatedObject>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ArchiveError>,
    {
        let batch_size = batch_size.max(1);
        let mut batch = Vec::with_capacity(batch_size.min(4096));
        self.walk(&mut |object: LocatedObject| -> Result<(), E> {
            batch.push(object);
            if batch.len() >= batch_size {
                sink(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            sink(batch)?;
        }
        Ok(())
    }

    /// Reopens the archive, checks that it is the file that was validated and that its
    /// structure still holds, and passes every object to `sink`, one at a time.
    fn walk<E: From<ArchiveError>>(
        &self,
        sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut zip, contents, opened) = entry::open_zip(&self.path, &self.limits)?;
        let digest = opened.digest()?;
        if digest.sha256 != self.sha256 {
            let changed = invalid_archive(format!(
                "archive file changed since it was validated: its SHA-256 is now {}, not {}; import it again",
                digest.sha256, self.sha256
            ));
            return Err(E::from(ArchiveError::Invalid(changed)));
        }
        self.walk_in(&mut zip, &contents, sink)
    }

    /// Passes every object of an open archive to `sink`, one at a time.
    fn walk_in<E: From<ArchiveError>>(
        &self,
        zip: &mut Zip,
        contents: &Contents,
        sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = match &self.layout {
            Layout::V1 => v1::walk_objects(zip, contents, &self.limits, sink),
            Layout::V2 => v2::walk_objects(zip, contents, &self.limits, sink),
            Layout::V3(layout) => layout.walk_objects(zip, contents, &self.limits, sink),
        };
        result.map_err(|stop| match stop {
            Stop::Invalid(invalid) => E::from(ArchiveError::Invalid(invalid)),
            Stop::Sink(error) => error,
        })
    }
}

/// An archive whose ZIP structure, limits, versions, tenant and access numbers are
/// checked, and whose objects are not yet. It is what the engine needs to decide
/// tenant conflicts, which takes milliseconds, before the pass over every object,
/// which takes seconds for a large tenant. Nothing here reads the whole file:
/// [`ArchiveHeader::sha256`] hashes it on demand and [`ArchiveHeader::validate`] makes
/// the pass over the objects.
#[derive(Debug)]
pub struct ArchiveHeader {
    /// The archive so far; its `sha256` is empty until the file is hashed.
    archive: Archive,
    zip: Zip,
    contents: Contents,
    file: OpenedFile,
}

impl ArchiveHeader {
    /// Opens the archive at `path` and checks everything but the objects and the
    /// files that only the pass over the objects reads.
    ///
    /// # Errors
    ///
    /// Returns [`ArchiveError::Invalid`] for any broken rule or exceeded limit, and
    /// [`ArchiveError::Io`] when the file cannot be read.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self, ArchiveError> {
        let (mut zip, contents, file) = entry::open_zip(path, limits)?;
        let (format_version, schema_version, header) = read_header(&mut zip, &contents, limits)?;
        let summary = ArchiveSummary {
            objects: 0,
            ranges: header.ranges.len() as u64,
            numbers: header.ranges.iter().map(|range| range.len() as u64).sum(),
        };
        let archive = Archive {
            path: path.to_owned(),
            format_version,
            schema_version,
            sha256: String::new(),
            size: file.size(),
            tenant: header.tenant,
            ranges: header.ranges,
            summary,
            limits: limits.clone(),
            layout: header.layout,
        };
        Ok(Self {
            archive,
            zip,
            contents,
            file,
        })
    }

    /// Returns the tenant, upgraded to the current model.
    #[must_use]
    pub fn tenant(&self) -> &TenantRecord {
        &self.archive.tenant
    }

    /// Returns the format version, 1 to 3.
    #[must_use]
    pub fn format_version(&self) -> u32 {
        self.archive.format_version
    }

    /// Returns the size of the archive file in bytes when it was opened.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.archive.size
    }

    /// Returns the SHA-256 of the whole archive file, lower-case hex, reading the
    /// file the first time.
    ///
    /// # Errors
    ///
    /// Returns [`ArchiveError::Io`] when the file cannot be read.
    pub fn sha256(&mut self) -> Result<&str, ArchiveError> {
        if self.archive.sha256.is_empty() {
            let digest = self.file.digest()?;
            self.archive.sha256 = digest.sha256;
            self.archive.size = digest.size;
        }
        Ok(&self.archive.sha256)
    }

    /// Hashes the file unless it is already hashed, then makes the validation pass
    /// over every object and the remaining listed files.
    ///
    /// # Errors
    ///
    /// Returns [`ArchiveError::Invalid`] for the first broken rule, and
    /// [`ArchiveError::Io`] when the file cannot be read.
    pub fn validate(mut self) -> Result<Archive, ArchiveError> {
        self.sha256()?;
        let Self {
            mut archive,
            mut zip,
            contents,
            ..
        } = self;
        let mut objects = 0_u64;
        archive.walk_in(
            &mut zip,
            &contents,
            &mut |_object: LocatedObject| -> Result<(), ArchiveError> {
                objects += 1;
                Ok(())
            },
        )?;
        archive.summary.objects = objects;
        if let Layout::V3(layout) = &archive.layout {
            layout.verify_other_files(&mut zip, &contents)?;
        }
        Ok(archive)
    }
}

impl<E> From<InvalidArchive> for Stop<E> {
    fn from(invalid: InvalidArchive) -> Self {
        Self::Invalid(invalid)
    }
}

/// Detects the format, checks the schema version and reads tenant and ranges.
fn read_header(
    zip: &mut Zip,
    contents: &Contents,
    limits: &Limits,
) -> Result<(u32, u32, Header), InvalidArchive> {
    let (format_version, schema_version, header) = match detect(zip, contents, limits)? {
        Detected::Manifest(manifest) => {
            let format = version_field(manifest.format_version.as_ref(), "formatVersion")?;
            check_format(format, "manifest.json", "formatVersion")?;
            let schema = version_field(manifest.schema_version.as_ref(), "schemaVersion")?;
            check_schema(format, schema, "manifest.json", "schemaVersion")?;
            let header = match format {
                2 => v2::read_header(zip, contents, manifest, limits)?,
                3 => v3::read_header(zip, contents, manifest, limits)?,
                _ => {
                    let properties = v1::Properties::read(zip, contents, limits)?;
                    v1::read_header(zip, contents, &properties, limits)?
                }
            };
            (format, schema, header)
        }
        Detected::Properties(properties) => {
            let format = properties.format_version()?;
            check_format(format, v1::PROPERTIES, "format.version")?;
            if format != 1 {
                return Err(invalid_archive(format!(
                    "format {format} archives need manifest.json, which is missing"
                )));
            }
            let schema = properties.schema_version()?;
            check_schema(format, schema, v1::PROPERTIES, "schema.version")?;
            (
                format,
                schema,
                v1::read_header(zip, contents, &properties, limits)?,
            )
        }
    };

    if let Some((first, second)) = values::find_overlap(&header.ranges) {
        let (left, right) = (&header.ranges[first], &header.ranges[second]);
        return Err(InvalidArchive {
            location: header.range_places.location(second),
            problem: format!(
                "range {}-{} overlaps range {}-{} at {}; ranges of one archive must not share numbers",
                right.first,
                right.last,
                left.first,
                left.last,
                header.range_places.location(first)
            ),
        });
    }
    check_number_count(&header, limits.max_access_numbers)?;
    Ok((format_version, schema_version, header))
}

/// Rejects an archive whose ranges together cover more than `max_numbers` access
/// numbers, naming the range that crosses the limit.
fn check_number_count(header: &Header, max_numbers: u64) -> Result<(), InvalidArchive> {
    let mut total: u64 = 0;
    for (index, range) in header.ranges.iter().enumerate() {
        total = total.saturating_add(u64::try_from(range.len()).unwrap_or(u64::MAX));
        if total > max_numbers {
            return Err(InvalidArchive {
                location: header.range_places.location(index),
                problem: format!(
                    "range {}-{} brings the archive to {total} access numbers, more than the maximum of {max_numbers}; raise --archive-max-access-numbers if the archive is genuine",
                    range.first, range.last
                ),
            });
        }
    }
    Ok(())
}

/// Finds the format version: from manifest.json when it has one, else from
/// export.properties.
fn detect(zip: &mut Zip, contents: &Contents, limits: &Limits) -> Result<Detected, InvalidArchive> {
    if let Some(info) = contents.get("manifest.json") {
        let max_bytes = max_manifest_bytes(limits);
        if info.size > max_bytes {
            return Err(invalid_file(
                "manifest.json",
                format!(
                    "file declares {} bytes, more than the {max_bytes} bytes that a manifest of at most {} files needs (--archive-max-entries)",
                    info.size, limits.max_entries
                ),
            ));
        }
        let mut reader = EntryReader::open(zip, info)?;
        let manifest: RawManifest = json::read_document(&mut reader, limits.max_json_depth)?;
        reader.finish()?;
        if manifest.format_version.is_some() || !contents.contains(v1::PROPERTIES) {
            return Ok(Detected::Manifest(manifest));
        }
    }
    if contents.contains(v1::PROPERTIES) {
        return Ok(Detected::Properties(v1::Properties::read(
            zip, contents, limits,
        )?));
    }
    Err(invalid_archive(
        "manifest.json and export.properties are both missing; this is not a tenant archive"
            .to_owned(),
    ))
}

/// Returns the largest manifest a valid archive can have: 64 KiB for the identity,
/// versions and other fields, plus, for each entry, its path with every byte escaped, a
/// SHA-256, a size and indentation. Reading a larger one could only spend memory on a
/// hostile value.
fn max_manifest_bytes(limits: &Limits) -> u64 {
    const FIXED_BYTES: u64 = 64 * 1024;
    const LISTED_FILE_BYTES: u64 = 2 * entry::MAX_ENTRY_NAME_BYTES as u64 + 256;
    FIXED_BYTES.saturating_add(limits.max_entries.saturating_mul(LISTED_FILE_BYTES))
}

fn version_field(value: Option<&Value>, field: &str) -> Result<u32, InvalidArchive> {
    let problem = match value {
        None | Some(Value::Null) => "field is missing".to_owned(),
        Some(Value::Number(number)) => match number.as_u64().map(u32::try_from) {
            Some(Ok(version)) => return Ok(version),
            _ => format!("{number} is not a valid version; expected a positive integer"),
        },
        Some(other) => format!("expected an integer, found {}", values::kind(other)),
    };
    Err(field_problem("manifest.json", None, field, problem))
}

fn check_format(format: u32, file: &str, field: &str) -> Result<(), InvalidArchive> {
    if (1..=CURRENT_FORMAT_VERSION).contains(&format) {
        return Ok(());
    }
    let problem = if format > CURRENT_FORMAT_VERSION {
        format!(
            "format version {format} is newer than {CURRENT_FORMAT_VERSION}, the newest this tenant-operator reads; upgrade tenant-operator"
        )
    } else {
        format!("format version {format} is invalid; expected 1 to {CURRENT_FORMAT_VERSION}")
    };
    Err(field_problem(file, None, field, problem))
}

/// Checks that the schema version fits the format and is not newer than this cluster's.
fn check_schema(format: u32, schema: u32, file: &str, field: &str) -> Result<(), InvalidArchive> {
    let cluster = crate::db::SCHEMA_VERSION;
    let (low, high) = match format {
        1 => (1, 7),
        2 => (8, 11),
        _ => (12, u32::MAX),
    };
    let problem = if schema > cluster && schema >= low {
        format!(
            "schema version {schema} is newer than this cluster's {cluster}; import the archive into a cluster of schema {schema} or later"
        )
    } else if schema < low || schema > high {
        let span = if high == u32::MAX {
            format!("{low} or later")
        } else {
            format!("{low} to {high}")
        };
        format!("schema version {schema} does not fit format {format}, which expects {span}")
    } else {
        return Ok(());
    };
    Err(field_problem(file, None, field, problem))
}

/// Builds a problem located at a field of a file.
pub(crate) fn field_problem(
    file: &str,
    line: Option<u64>,
    field: impl Into<String>,
    problem: impl Into<String>,
) -> InvalidArchive {
    InvalidArchive {
        location: Location::Field {
            file: file.to_owned(),
            line,
            field: field.into(),
        },
        problem: problem.into(),
    }
}

/// Requires an entry, naming the format that needs it when it is missing.
pub(crate) fn require<'a>(
    contents: &'a Contents,
    name: &str,
    format: u32,
) -> Result<&'a entry::EntryInfo, InvalidArchive> {
    contents.get(name).ok_or_else(|| {
        invalid_file(
            name,
            format!("required file is missing; format {format} archives must contain it"),
        )
    })
}
