//! Builds tenant archives for tests: a small valid archive of each format version,
//! changed one rule at a time. The ZIP writer here can also produce what a normal
//! writer rejects: lying sizes, bad CRCs, symbolic links and encryption flags.
//!
//! Include it with `#[path = "support/archives.rs"] mod archives;` next to
//! `mod support;`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Tenant GUID of the built archives, lower-case.
pub const TENANT_GUID: &str = "0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0e12";
/// Tenant GUID of the built archives, as format 1 writes it.
pub const TENANT_GUID_BRACED: &str = "{0B6F1C5E-6A3D-4C1E-9B8E-2F4D6A8C0E12}";
/// Tenant URL of the built archives.
pub const TENANT_URL: &str = "acme.cc.example.com";
/// Tenant name of the built archives.
pub const TENANT_NAME: &str = "Acme Support";

/// How an entry's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// No compression.
    Stored,
    /// Raw deflate.
    Deflate,
    /// Another method number, written with the data stored as is.
    Other(u16),
}

/// One ZIP entry with every field a test may want to falsify.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    /// Name bytes, written as given.
    pub name: Vec<u8>,
    /// Uncompressed data.
    pub data: Vec<u8>,
    /// Compression method.
    pub method: Method,
    /// Uncompressed size to declare instead of the real one.
    pub declared_size: Option<u32>,
    /// CRC-32 to declare instead of the real one.
    pub crc: Option<u32>,
    /// Whether to set the encryption flag.
    pub encrypted: bool,
    /// Unix mode to record (`0o120777` makes a symbolic link).
    pub unix_mode: u32,
    /// Bytes to write as the compressed data instead of compressing `data`.
    pub compressed: Option<Vec<u8>>,
}

/// A tenant archive under construction.
#[derive(Debug, Clone)]
pub struct ArchiveBuilder {
    /// Format version of the starting archive.
    pub format: u32,
    /// Entries other than the manifest, in order.
    pub entries: Vec<ZipEntry>,
    /// Manifest without `files`; written last, as `manifest.json`. `None` leaves it out.
    pub manifest: Option<Value>,
    /// Whether `files` is computed from the entries when the archive is built.
    pub list_files: bool,
    /// A `files` list fixed earlier by [`ArchiveBuilder::freeze_manifest`].
    pub frozen_files: Option<Value>,
}

impl ZipEntry {
    /// Builds a deflated entry with honest sizes.
    pub fn new(name: &str, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            data: data.into(),
            method: Method::Deflate,
            declared_size: None,
            crc: None,
            encrypted: false,
            unix_mode: 0o100644,
            compressed: None,
        }
    }
}

/// Returns one object line of format 3.
pub fn object_line(guid: &str, object_type: &str, name: &str) -> String {
    json!({"guid": guid, "type": object_type, "name": name, "attributes": {"note": "Zoë"}})
        .to_string()
}

impl ArchiveBuilder {
    /// Returns a valid format 3 archive: 3 objects, 3 ranges of 100 + 1 + 50 numbers.
    pub fn v3() -> Self {
        let tenant = json!({
            "guid": TENANT_GUID, "url": TENANT_URL, "name": TENANT_NAME, "status": "active",
            "sipDomain": "acme.sip.example.com", "createdAt": "2021-03-04T10:00:00Z",
            "settings": {"timeZone": "America/New_York"}
        });
        let numbers = json!([
            {"first": "14155550100", "last": "14155550199", "media": "voice"},
            {"first": "18005550123", "last": "18005550123", "media": "voice_text", "trunk": "carrier-a"},
            {"first": "442071838750", "last": "442071838799", "media": "text"}
        ]);
        let users = format!(
            "{}\n{}\n",
            object_line("5d1e0000-0000-4000-8000-000000000001", "user", "jdoe"),
            object_line(
                "5d1e0000-0000-4000-8000-000000000002",
                "user",
                "Zoë Łódź 東京"
            ),
        );
        let teams = format!(
            "{}\n",
            object_line("5d1e0000-0000-4000-8000-000000000003", "team", "support")
        );
        Self {
            format: 3,
            entries: vec![
                ZipEntry::new("tenant.json", pretty(&tenant)),
                ZipEntry::new("access-numbers.json", pretty(&numbers)),
                ZipEntry::new("objects/user.jsonl", users),
                ZipEntry::new("objects/team.jsonl", teams),
            ],
            manifest: Some(json!({
                "formatVersion": 3, "schemaVersion": 12, "exportedAt": "2026-11-30T08:15:00Z",
                "sourceCluster": "us-east-prod",
                "tenant": {"guid": TENANT_GUID, "url": TENANT_URL, "name": TENANT_NAME}
            })),
            list_files: true,
            frozen_files: None,
        }
    }

    /// Returns a valid format 2 archive: 3 objects, 2 ranges of 20 + 1 numbers.
    pub fn v2() -> Self {
        let tenant = json!({
            "guid": TENANT_GUID, "url": TENANT_URL, "name": TENANT_NAME, "status": "INACTIVE",
            "sipDomain": "acme.sip.example.com", "settings": {},
            "accessNumbers": [
                {"number": "12125550000", "count": 20, "media": "VOICE"},
                {"number": "12125550900", "count": 1, "media": "VOICE_AND_TEXT"}
            ],
            "objects": [
                {"guid": "5d1e0000-0000-4000-8000-000000000001", "type": "user", "name": "jdoe", "attributes": {}},
                {"guid": "5d1e0000-0000-4000-8000-000000000002", "type": "team", "name": "Zoë", "attributes": {"x": [1]}},
                {"guid": "5d1e0000-0000-4000-8000-000000000003", "type": "skill", "name": "french", "extra": true}
            ]
        });
        Self {
            format: 2,
            entries: vec![ZipEntry::new("tenant.json", pretty(&tenant))],
            manifest: Some(json!({
                "formatVersion": 2, "schemaVersion": 9, "exportedAt": "2024-02-01T00:00:00Z",
                "tenant": {"guid": TENANT_GUID, "url": TENANT_URL, "name": TENANT_NAME}
            })),
            list_files: false,
            frozen_files: None,
        }
    }

    /// Returns a valid format 1 archive: 3 objects, 2 ranges of 10 + 1 numbers.
    pub fn v1() -> Self {
        let properties = format!(
            "#Tenant export\nformat.version=1\nschema.version=5\ntenant.guid={TENANT_GUID_BRACED}\n\
             tenant.url={TENANT_URL}\ntenant.name : Initech\\: Zo\\u00EB's Help Desk\n\
             exported.at=2018-02-05T10:00:00Z\n"
        );
        let numbers = "number,count,media\n16505550000,10,\n16505550100,,VOICE_AND_TEXT\n";
        let objects = "guid,type,name,attributes\n\
             {5D1E0000-0000-4000-8000-000000000001},user,jdoe,\"{\"\"team\"\": \"\"x\"\"}\"\n\
             {5D1E0000-0000-4000-8000-000000000002},team,\"Zoë, Łódź\",\n\
             {5D1E0000-0000-4000-8000-000000000003},skill,french,{}\n";
        Self {
            format: 1,
            entries: vec![
                ZipEntry::new("export.properties", properties),
                ZipEntry::new("access_numbers.csv", numbers),
                ZipEntry::new("objects.csv", objects),
            ],
            manifest: None,
            list_files: false,
            frozen_files: None,
        }
    }

    /// Returns the entry called `name`.
    ///
    /// # Panics
    ///
    /// Panics when there is no such entry.
    pub fn entry_mut(&mut self, name: &str) -> &mut ZipEntry {
        self.entries
            .iter_mut()
            .find(|entry| entry.name == name.as_bytes())
            .unwrap_or_else(|| panic!("no entry {name}"))
    }

    /// Replaces the data of entry `name`, or adds the entry.
    pub fn set(mut self, name: &str, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        match self
            .entries
            .iter_mut()
            .find(|entry| entry.name == name.as_bytes())
        {
            Some(entry) => entry.data = data,
            None => self.entries.push(ZipEntry::new(name, data)),
        }
        self
    }

    /// Adds an entry as given.
    pub fn push(mut self, entry: ZipEntry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Changes the text of entry `name`.
    pub fn edit(mut self, name: &str, change: impl FnOnce(String) -> String) -> Self {
        let entry = self.entry_mut(name);
        let text = String::from_utf8(std::mem::take(&mut entry.data)).expect("UTF-8 entry");
        entry.data = change(text).into_bytes();
        self
    }

    /// Replaces one text with another in entry `name`, failing when it is absent.
    pub fn replace(self, name: &str, from: &str, to: &str) -> Self {
        self.edit(name, |text| {
            assert!(text.contains(from), "{from:?} not in {name}");
            text.replacen(from, to, 1)
        })
    }

    /// Changes a JSON entry through its parsed value.
    pub fn edit_json(self, name: &str, change: impl FnOnce(&mut Value)) -> Self {
        self.edit(name, |text| {
            let mut value: Value = serde_json::from_str(&text).expect("JSON entry");
            change(&mut value);
            pretty(&value)
        })
    }

    /// Changes the manifest.
    pub fn edit_manifest(mut self, change: impl FnOnce(&mut Value)) -> Self {
        if let Some(manifest) = &mut self.manifest {
            change(manifest);
        }
        self
    }

    /// Changes one entry in place.
    pub fn with_entry(mut self, name: &str, change: impl FnOnce(&mut ZipEntry)) -> Self {
        change(self.entry_mut(name));
        self
    }

    /// Stores every entry without compression, for large repetitive test data that
    /// would otherwise break the compression ratio limit.
    pub fn store_all(mut self) -> Self {
        for entry in &mut self.entries {
            entry.method = Method::Stored;
        }
        self
    }

    /// Removes entry `name` (`manifest.json` removes the manifest).
    pub fn remove(mut self, name: &str) -> Self {
        if name == "manifest.json" {
            self.manifest = None;
        }
        self.entries.retain(|entry| entry.name != name.as_bytes());
        self
    }

    /// Fixes the manifest's `files` to the entries as they are now, so later changes
    /// break the checksums.
    pub fn freeze_manifest(mut self) -> Self {
        self.frozen_files = Some(self.files_list());
        self
    }

    fn files_list(&self) -> Value {
        let files: Vec<Value> = self
            .entries
            .iter()
            .filter(|entry| {
                let name = String::from_utf8_lossy(&entry.name).to_ascii_lowercase();
                name.ends_with(".json") || name.ends_with(".jsonl")
            })
            .map(|entry| {
                json!({
                    "path": String::from_utf8_lossy(&entry.name),
                    "sha256": hex::encode(Sha256::digest(&entry.data)),
                    "size": entry.data.len(),
                })
            })
            .collect();
        Value::Array(files)
    }

    /// Turns the manifest, with `files` as it would be written now, into the last
    /// ordinary entry, so a test can change its bytes like those of any other entry.
    /// Later changes to other entries no longer update `files`.
    pub fn manifest_as_entry(mut self) -> Self {
        if let Some(entry) = self.manifest_entry() {
            self.entries.push(entry);
            self.manifest = None;
        }
        self
    }

    fn manifest_entry(&self) -> Option<ZipEntry> {
        let mut manifest = self.manifest.clone()?;
        let files = match &self.frozen_files {
            Some(files) => Some(files.clone()),
            None if self.list_files => Some(self.files_list()),
            None => None,
        };
        if let (Some(files), Some(object)) = (files, manifest.as_object_mut()) {
            object.insert("files".to_owned(), files);
        }
        Some(ZipEntry::new("manifest.json", pretty(&manifest)))
    }

    /// Returns the ZIP bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        entries.extend(self.manifest_entry());
        write_zip(&entries)
    }

    /// Writes the archive to `dir/file_name` and returns the path.
    pub fn write(&self, dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        std::fs::write(&path, self.bytes()).expect("write archive");
        path
    }
}

/// Serializes JSON with indentation and a final newline.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("serialize JSON");
    text.push('\n');
    text
}

/// Writes a ZIP file from entries, honouring every falsified field.
pub fn write_zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = out.len() as u32;
        let mut crc = flate2::Crc::new();
        crc.update(&entry.data);
        let crc = entry.crc.unwrap_or(crc.sum());
        let (method, stored) = match entry.method {
            Method::Stored => (0_u16, entry.data.clone()),
            Method::Deflate => {
                let mut encoder =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(&entry.data).expect("deflate");
                (8, encoder.finish().expect("deflate"))
            }
            Method::Other(number) => (number, entry.data.clone()),
        };
        let stored = entry.compressed.clone().unwrap_or(stored);
        let size = entry.declared_size.unwrap_or(entry.data.len() as u32);
        let flags: u16 = (1 << 11) | u16::from(entry.encrypted);
        let name_len = entry.name.len() as u16;

        out.extend(0x0403_4b50_u32.to_le_bytes());
        out.extend(20_u16.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend(method.to_le_bytes());
        out.extend(0_u16.to_le_bytes());
        out.extend(0x21_u16.to_le_bytes());
        out.extend(crc.to_le_bytes());
        out.extend((stored.len() as u32).to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(name_len.to_le_bytes());
        out.extend(0_u16.to_le_bytes());
        out.extend(&entry.name);
        out.extend(&stored);

        central.extend(0x0201_4b50_u32.to_le_bytes());
        central.extend((3_u16 << 8 | 20).to_le_bytes());
        central.extend(20_u16.to_le_bytes());
        central.extend(flags.to_le_bytes());
        central.extend(method.to_le_bytes());
        central.extend(0_u16.to_le_bytes());
        central.extend(0x21_u16.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend((stored.len() as u32).to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(name_len.to_le_bytes());
        central.extend([0_u8; 8]);
        central.extend((entry.unix_mode << 16).to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(&entry.name);
    }
    let central_offset = out.len() as u32;
    let count = entries.len() as u16;
    out.extend(&central);
    out.extend(0x0605_4b50_u32.to_le_bytes());
    out.extend([0_u8; 4]);
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0_u16.to_le_bytes());
    out
}

/// Returns raw deflate data that decompresses to `len` newlines and then turns into
/// garbage: a reader that decompresses all of it fails with a corruption error.
pub fn deflate_then_garbage(len: usize) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&vec![b'\n'; len]).expect("deflate");
    encoder.flush().expect("deflate");
    let mut bytes = encoder.get_ref().clone();
    bytes.extend([0xFF; 64]);
    bytes
}
