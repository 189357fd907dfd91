//! Streaming writers of tenant archives.
//!
//! [`ArchiveWriter`] writes format 3, the format that export produces, and formats 1
//! and 2 for tests and the generator. It takes the tenant and its ranges first, then
//! the objects one at a time, grouped by type, and writes each entry as the objects
//! arrive: memory does not grow with the number of objects. For format 3 it computes
//! each entry's size and SHA-256 while writing and writes `manifest.json` last.
//!
//! Output is deterministic: every entry carries the same fixed timestamp
//! (1980-01-01 00:00, the earliest a ZIP can record) and keys come in a fixed order.

use std::collections::BTreeSet;
use std::io::{Seek, Write};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::model::{ConfigObject, NumberRange, TenantRecord, TenantStatus};

/// Origin of an archive: format, source schema, export time and source cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOrigin {
    /// Format version to write: 1, 2 or 3.
    pub format_version: u32,
    /// Schema version of the source cluster. It must fit the format version: 1-7 for
    /// format 1, 8-11 for format 2, 12 or later for format 3.
    pub schema_version: u32,
    /// When the archive was exported, RFC 3339 (`2026-11-30T08:15:00Z`).
    pub exported_at: String,
    /// Name of the source cluster; format 3 only.
    pub source_cluster: Option<String>,
}

/// Errors of the archive writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The ZIP writer failed.
    #[error("failed to write the ZIP archive")]
    Zip(#[from] zip::result::ZipError),
    /// Writing to the output failed.
    #[error("failed to write the archive")]
    Io(#[from] std::io::Error),
    /// A value could not be serialized to JSON.
    #[error("failed to serialize a value to JSON")]
    Json(#[from] serde_json::Error),
    /// The format version is not 1, 2 or 3.
    #[error("format version {0} is not supported; write 1, 2 or 3")]
    UnsupportedFormat(u32),
    /// Objects of one type arrived after objects of another type had followed them.
    #[error(
        "objects of type {object_type:?} arrived after other types; pass objects grouped by type"
    )]
    ObjectsNotGrouped {
        /// The type that came back.
        object_type: String,
    },
    /// An object type would not make a valid file name.
    #[error("object type {object_type:?} is invalid; expected lower-case letters, digits and '-'")]
    InvalidType {
        /// The rejected type.
        object_type: String,
    },
}

/// A streaming writer of one tenant archive.
pub struct ArchiveWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    origin: ArchiveOrigin,
    tenant: TenantRecord,
    listed: Vec<ListedFile>,
    open_file: Option<OpenFile>,
    current_type: Option<String>,
    finished_types: BTreeSet<String>,
    objects_written: u64,
}

struct OpenFile {
    path: String,
    hasher: Sha256,
    size: u64,
}

#[derive(Serialize)]
struct ListedFile {
    path: String,
    sha256: String,
    size: u64,
}

#[derive(Serialize)]
struct IdentityJson<'a> {
    guid: String,
    url: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct ManifestJson<'a> {
    #[serde(rename = "formatVersion")]
    format_version: u32,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "exportedAt")]
    exported_at: &'a str,
    #[serde(rename = "sourceCluster", skip_serializing_if = "Option::is_none")]
    source_cluster: Option<&'a str>,
    tenant: IdentityJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<&'a [ListedFile]>,
}

#[derive(Serialize)]
struct TenantJson<'a> {
    guid: String,
    url: &'a str,
    name: &'a str,
    status: &'a str,
    #[serde(rename = "sipDomain", skip_serializing_if = "Option::is_none")]
    sip_domain: Option<&'a str>,
    #[serde(rename = "createdAt", skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
    settings: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct RangeJson<'a> {
    first: String,
    last: String,
    media: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trunk: Option<&'a str>,
}

#[derive(Serialize)]
struct LegacyRangeJson<'a> {
    number: String,
    count: i64,
    media: &'a str,
}

#[derive(Serialize)]
struct ObjectJson<'a> {
    guid: String,
    #[serde(rename = "type")]
    object_type: &'a str,
    name: &'a str,
    attributes: &'a Map<String, Value>,
}

impl<W: Write + Seek> ArchiveWriter<W> {
    /// Starts an archive: writes the tenant and its access numbers.
    ///
    /// # Errors
    ///
    /// Returns [`WriteError::UnsupportedFormat`] for a format other than 1 to 3, or the
    /// error of the output.
    pub fn new(
        output: W,
        origin: ArchiveOrigin,
        tenant: &TenantRecord,
        ranges: &[NumberRange],
    ) -> Result<Self, WriteError> {
        if !(1..=3).contains(&origin.format_version) {
            return Err(WriteError::UnsupportedFormat(origin.format_version));
        }
        let mut writer = Self {
            zip: ZipWriter::new(output),
            origin,
            tenant: tenant.clone(),
            listed: Vec::new(),
            open_file: None,
            current_type: None,
            finished_types: BTreeSet::new(),
            objects_written: 0,
        };
        match writer.origin.format_version {
            1 => writer.start_v1(ranges)?,
            2 => writer.start_v2(ranges)?,
            _ => writer.start_v3(ranges)?,
        }
        Ok(writer)
    }

    /// Writes one object. Objects of one type must come together (format 3 writes one
    /// file per type); export passes them in (type, GUID) order.
    ///
    /// # Errors
    ///
    /// Returns [`WriteError::ObjectsNotGrouped`] when a type comes back after another,
    /// [`WriteError::InvalidType`] for a type that is not a valid file name, or the
    /// error of the output.
    pub fn write_object(&mut self, object: &ConfigObject) -> Result<(), WriteError> {
        if crate::archive::values::check_type(&object.object_type).is_err() {
            return Err(WriteError::InvalidType {
                object_type: object.object_type.clone(),
            });
        }
        if self.current_type.as_deref() != Some(object.object_type.as_str()) {
            if self.finished_types.contains(&object.object_type) {
                return Err(WriteError::ObjectsNotGrouped {
                    object_type: object.object_type.clone(),
                });
            }
            if let Some(previous) = self.current_type.replace(object.object_type.clone()) {
                self.finished_types.insert(previous);
            }
            if self.origin.format_version == 3 {
                self.close_file()?;
                self.open(&format!("objects/{}.jsonl", object.object_type))?;
            }
        }
        match self.origin.format_version {
            1 => self.write_v1_object(object)?,
            2 => self.write_v2_object(object)?,
            _ => {
                let mut line = serde_json::to_vec(&object_json(object, false))?;
                line.push(b'\n');
                self.write_bytes(&line)?;
            }
        }
        self.objects_written += 1;
        Ok(())
    }

    /// Returns how many objects were written so far.
    pub fn objects_written(&self) -> u64 {
        self.objects_written
    }

    /// Closes the last file, writes the manifest (format 3) and the ZIP central
    /// directory, and returns the output.
    ///
    /// # Errors
    ///
    /// Returns the error of the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        match self.origin.format_version {
            2 => self.write_bytes(b"]}\n")?,
            3 => {
                self.close_file()?;
                let files = std::mem::take(&mut self.listed);
                let manifest = ManifestJson {
                    format_version: 3,
                    schema_version: self.origin.schema_version,
                    exported_at: &self.origin.exported_at,
                    source_cluster: self.origin.source_cluster.as_deref(),
                    tenant: identity_json(&self.tenant, false),
                    files: Some(&files),
                };
                let mut text = serde_json::to_vec_pretty(&manifest)?;
                text.push(b'\n');
                self.open("manifest.json")?;
                self.write_bytes(&text)?;
                self.open_file = None;
            }
            _ => {}
        }
        Ok(self.zip.finish()?)
    }

    fn start_v3(&mut self, ranges: &[NumberRange]) -> Result<(), WriteError> {
        let tenant = tenant_json(&self.tenant, false);
        let mut text = serde_json::to_vec_pretty(&tenant)?;
        text.push(b'\n');
        self.open("tenant.json")?;
        self.write_bytes(&text)?;

        let ranges: Vec<RangeJson<'_>> = ranges
            .iter()
            .map(|range| RangeJson {
                first: range.first.to_string(),
                last: range.last.to_string(),
                media: range.media.as_str(),
                trunk: range.trunk.as_deref(),
            })
            .collect();
        let mut text = serde_json::to_vec_pretty(&ranges)?;
        text.push(b'\n');
        self.close_file()?;
        self.open("access-numbers.json")?;
        self.write_bytes(&text)?;
        self.close_file()
    }

    fn start_v2(&mut self, ranges: &[NumberRange]) -> Result<(), WriteError> {
        let manifest = ManifestJson {
            format_version: 2,
            schema_version: self.origin.schema_version,
            exported_at: &self.origin.exported_at,
            source_cluster: None,
            tenant: identity_json(&self.tenant, false),
            files: None,
        };
        let text = serde_json::to_vec(&manifest)?;
        self.open("manifest.json")?;
        self.write_bytes(&text)?;

        // The tenant fields come first and the objects array last, so the objects can
        // be appended as they arrive.
        let tenant = tenant_json(&self.tenant, true);
        let mut text = serde_json::to_vec(&tenant)?;
        text.pop();
        let ranges: Vec<LegacyRangeJson<'_>> = ranges
            .iter()
            .map(|range| LegacyRangeJson {
                number: range.first.to_string(),
                count: range.len(),
                media: range.media.as_legacy_str(),
            })
            .collect();
        text.extend_from_slice(b",\"accessNumbers\":");
        text.extend(serde_json::to_vec(&ranges)?);
        text.extend_from_slice(b",\"objects\":[");
        self.open("tenant.json")?;
        self.write_bytes(&text)
    }

    fn write_v2_object(&mut self, object: &ConfigObject) -> Result<(), WriteError> {
        if self.objects_written > 0 {
            self.write_bytes(b",\n")?;
        } else {
            self.write_bytes(b"\n")?;
        }
        let text = serde_json::to_vec(&object_json(object, false))?;
        self.write_bytes(&text)
    }

    fn start_v1(&mut self, ranges: &[NumberRange]) -> Result<(), WriteError> {
        let tenant = &self.tenant;
        let status = match tenant.status {
            TenantStatus::Active => "ACTIVE",
            TenantStatus::Inactive => "INACTIVE",
        };
        let mut text = String::from("#Tenant export\n");
        for (key, value) in [
            ("format.version", "1".to_owned()),
            ("schema.version", self.origin.schema_version.to_string()),
            ("tenant.guid", braced_guid(tenant.identity.guid)),
            ("tenant.url", tenant.identity.url.clone()),
            ("tenant.name", tenant.identity.name.clone()),
            ("tenant.status", status.to_owned()),
            ("exported.at", self.origin.exported_at.clone()),
        ] {
            text.push_str(&escape_property(key));
            text.push('=');
            text.push_str(&escape_property(&value));
            text.push('\n');
        }
        self.open("export.properties")?;
        self.write_bytes(text.as_bytes())?;

        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(["number", "count", "media"])?;
        for range in ranges {
            // A single number leaves count empty and voice leaves media empty, as
            // format 1 writers did.
            let count = if range.len() == 1 {
                String::new()
            } else {
                range.len().to_string()
            };
            let media = match range.media {
                crate::model::Media::Voice => "",
                other => other.as_legacy_str(),
            };
            csv.write_record([range.first.to_string().as_str(), &count, media])?;
        }
        let bytes = csv.into_inner().map_err(|error| error.into_error())?;
        self.open("access_numbers.csv")?;
        self.write_bytes(&bytes)?;

        self.open("objects.csv")?;
        self.write_bytes(b"guid,type,name,attributes\r\n")
    }

    fn write_v1_object(&mut self, object: &ConfigObject) -> Result<(), WriteError> {
        let attributes = if object.attributes.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&object.attributes)?
        };
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record([
            braced_guid(object.guid).as_str(),
            &object.object_type,
            &object.name,
            &attributes,
        ])?;
        let bytes = csv.into_inner().map_err(|error| error.into_error())?;
        self.write_bytes(&bytes)
    }

    fn open(&mut self, path: &str) -> Result<(), WriteError> {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        self.zip.start_file(path, options)?;
        self.open_file = Some(OpenFile {
            path: path.to_owned(),
            hasher: Sha256::new(),
            size: 0,
        });
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), WriteError> {
        if let Some(file) = self.open_file.take() {
            self.listed.push(ListedFile {
                path: file.path,
                sha256: hex::encode(file.hasher.finalize()),
                size: file.size,
            });
        }
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.zip.write_all(bytes)?;
        if let Some(file) = &mut self.open_file {
            file.hasher.update(bytes);
            file.size += bytes.len() as u64;
        }
        Ok(())
    }
}

impl From<csv::Error> for WriteError {
    fn from(error: csv::Error) -> Self {
        Self::Io(error.into())
    }
}

fn identity_json(tenant: &TenantRecord, braced: bool) -> IdentityJson<'_> {
    IdentityJson {
        guid: guid_text(tenant.identity.guid, braced),
        url: &tenant.identity.url,
        name: &tenant.identity.name,
    }
}

fn tenant_json(tenant: &TenantRecord, legacy: bool) -> TenantJson<'_> {
    let status = match (tenant.status, legacy) {
        (TenantStatus::Active, true) => "ACTIVE",
        (TenantStatus::Inactive, true) => "INACTIVE",
        (status, false) => status.as_str(),
    };
    TenantJson {
        guid: guid_text(tenant.identity.guid, false),
        url: &tenant.identity.url,
        name: &tenant.identity.name,
        status,
        sip_domain: tenant.sip_domain.as_deref(),
        created_at: tenant.created_at.as_deref(),
        settings: &tenant.settings,
    }
}

fn object_json(object: &ConfigObject, braced: bool) -> ObjectJson<'_> {
    ObjectJson {
        guid: guid_text(object.guid, braced),
        object_type: &object.object_type,
        name: &object.name,
        attributes: &object.attributes,
    }
}

fn guid_text(guid: Uuid, braced: bool) -> String {
    if braced {
        braced_guid(guid)
    } else {
        guid.hyphenated().to_string()
    }
}

/// Returns the format 1 spelling of a GUID: upper-case, in braces.
pub fn braced_guid(guid: Uuid) -> String {
    format!("{{{}}}", guid.hyphenated().to_string().to_uppercase())
}

/// Escapes a key or value for a Java properties file in ISO-8859-1: everything outside
/// printable ASCII becomes `\uXXXX` (UTF-16 units), and separators, comment characters
/// and leading spaces get a backslash.
pub fn escape_property(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for (position, c) in text.chars().enumerate() {
        match c {
            '\\' | ':' | '=' | '#' | '!' => {
                escaped.push('\\');
                escaped.push(c);
            }
            ' ' if position == 0 => escaped.push_str("\\ "),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\u{c}' => escaped.push_str("\\f"),
            ' '..='~' => escaped.push(c),
            _ => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    escaped.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_non_ascii_and_separators() {
        assert_eq!(escape_property("Initech: Zoë's"), "Initech\\: Zo\\u00EB's");
        assert_eq!(escape_property(" a=b"), "\\ a\\=b");
        assert_eq!(escape_property("😀"), "\\uD83D\\uDE00");
    }

    #[test]
    fn braced_guid_is_upper_case() {
        let guid = Uuid::from_u128(0x0b6f1c5e_6a3d_4c1e_9b8e_2f4d6a8c0e12);
        assert_eq!(braced_guid(guid), "{0B6F1C5E-6A3D-4C1E-9B8E-2F4D6A8C0E12}");
    }
}
