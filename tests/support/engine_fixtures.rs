//! Small tenant archives built in the test, in formats 1, 2 and 3, for the engine
//! tests: a tenant with chosen identity, objects and access-number ranges.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zip::write::SimpleFileOptions;

/// One access-number range of a fixture, in format-3 spelling.
#[derive(Debug, Clone)]
pub struct FixtureRange {
    /// First number.
    pub first: String,
    /// Last number.
    pub last: String,
    /// `voice`, `text` or `voice_text`.
    pub media: String,
    /// Source trunk name, informational.
    pub trunk: Option<String>,
}

/// One object of a fixture.
#[derive(Debug, Clone)]
pub struct FixtureObject {
    /// GUID.
    pub guid: Uuid,
    /// Type.
    pub object_type: String,
    /// Name.
    pub name: String,
    /// Attributes.
    pub attributes: Value,
}

/// A tenant to write as an archive.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    /// GUID.
    pub guid: Uuid,
    /// URL.
    pub url: String,
    /// Name.
    pub name: String,
    /// Access-number ranges.
    pub ranges: Vec<FixtureRange>,
    /// Objects.
    pub objects: Vec<FixtureObject>,
}

impl TenantFixture {
    /// Creates a tenant with a random GUID, the URL `<label>.cc.test`, the name `<label> Care`,
    /// `objects` objects of two types and no access numbers.
    pub fn new(label: &str, objects: usize) -> Self {
        let objects = (0..objects)
            .map(|index| FixtureObject {
                guid: Uuid::new_v4(),
                object_type: if index % 2 == 0 { "user" } else { "team" }.to_owned(),
                name: format!("{label}-object-{index}-Zoë"),
                attributes: json!({"index": index, "nested": {"list": [1, "two", null]}}),
            })
            .collect();
        Self {
            guid: Uuid::new_v4(),
            url: format!("{label}.cc.test"),
            name: format!("{label} Care"),
            ranges: Vec::new(),
            objects,
        }
    }

    /// Adds a range.
    pub fn with_range(mut self, first: &str, last: &str, media: &str) -> Self {
        self.ranges.push(FixtureRange {
            first: first.to_owned(),
            last: last.to_owned(),
            media: media.to_owned(),
            trunk: None,
        });
        self
    }

    /// Writes the tenant as a format-3 archive in `dir`.
    pub fn write_v3(&self, dir: &Path) -> PathBuf {
        let tenant = json!({
            "guid": self.guid, "url": self.url, "name": self.name, "status": "active",
            "sipDomain": format!("sip.{}", self.url), "createdAt": "2021-03-04T10:00:00Z",
            "settings": {"timeZone": "Europe/Berlin", "flags": [true, false]},
        });
        let ranges: Vec<Value> = self
            .ranges
            .iter()
            .map(|range| {
                let mut value =
                    json!({"first": range.first, "last": range.last, "media": range.media});
                if let Some(trunk) = &range.trunk {
                    value["trunk"] = json!(trunk);
                }
                value
            })
            .collect();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("tenant.json".to_owned(), tenant.to_string().into_bytes()),
            (
                "access-numbers.json".to_owned(),
                Value::from(ranges).to_string().into_bytes(),
            ),
        ];
        let mut types: Vec<&str> = self
            .objects
            .iter()
            .map(|o| o.object_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        for object_type in types {
            let mut lines = String::new();
            for object in self.objects.iter().filter(|o| o.object_type == object_type) {
                let line = json!({
                    "guid": object.guid, "type": object.object_type,
                    "name": object.name, "attributes": object.attributes,
                });
                lines.push_str(&line.to_string());
                lines.push('\n');
            }
            files.push((format!("objects/{object_type}.jsonl"), lines.into_bytes()));
        }
        let listed: Vec<Value> = files
            .iter()
            .map(|(path, bytes)| {
                json!({"path": path, "sha256": hex::encode(Sha256::digest(bytes)), "size": bytes.len()})
            })
            .collect();
        let manifest = json!({
            "formatVersion": 3, "schemaVersion": 12, "exportedAt": "2026-11-30T08:15:00Z",
            "sourceCluster": "test-cluster",
            "tenant": {"guid": self.guid, "url": self.url, "name": self.name},
            "files": listed,
        });
        files.insert(
            0,
            (
                "manifest.json".to_owned(),
                manifest.to_string().into_bytes(),
            ),
        );
        write_zip(&dir.join(format!("{}-v3.zip", self.url)), &files)
    }

    /// Writes the tenant as a format-2 archive in `dir`.
    pub fn write_v2(&self, dir: &Path) -> PathBuf {
        let manifest = json!({
            "formatVersion": 2, "schemaVersion": 9, "exportedAt": "2024-02-01T00:00:00Z",
            "tenant": {"guid": self.guid, "url": self.url, "name": self.name},
        });
        let numbers: Vec<Value> = self
            .ranges
            .iter()
            .map(|range| json!({"number": range.first, "count": count(range), "media": legacy_media(&range.media)}))
            .collect();
        let objects: Vec<Value> = self
            .objects
            .iter()
            .map(|o| json!({"guid": o.guid, "type": o.object_type, "name": o.name, "attributes": o.attributes}))
            .collect();
        let tenant = json!({
            "guid": self.guid, "url": self.url, "name": self.name, "status": "ACTIVE",
            "sipDomain": format!("sip.{}", self.url), "settings": {},
            "accessNumbers": numbers, "objects": objects,
        });
        let files = vec![
            (
                "manifest.json".to_owned(),
                manifest.to_string().into_bytes(),
            ),
            ("tenant.json".to_owned(), tenant.to_string().into_bytes()),
        ];
        write_zip(&dir.join(format!("{}-v2.zip", self.url)), &files)
    }

    /// Writes the tenant as a format-1 archive in `dir`, with GUIDs upper-case in braces.
    pub fn write_v1(&self, dir: &Path) -> PathBuf {
        let properties = format!(
            "format.version=1\nschema.version=5\ntenant.guid={}\ntenant.url={}\n\
             tenant.name={}\ntenant.status=ACTIVE\nexported.at=2018-02-05T10:00:00Z\n",
            braced(self.guid),
            self.url,
            self.name
        );
        let mut numbers = String::from("number,count,media\n");
        for range in &self.ranges {
            numbers.push_str(&format!(
                "{},{},{}\n",
                range.first,
                count(range),
                legacy_media(&range.media)
            ));
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(["guid", "type", "name", "attributes"])
            .expect("csv header");
        for object in &self.objects {
            let attributes = object.attributes.to_string();
            let guid = braced(object.guid);
            writer
                .write_record([
                    guid.as_str(),
                    &object.object_type,
                    &object.name,
                    &attributes,
                ])
                .expect("csv record");
        }
        let objects = writer.into_inner().expect("csv bytes");
        let files = vec![
            ("export.properties".to_owned(), properties.into_bytes()),
            ("access_numbers.csv".to_owned(), numbers.into_bytes()),
            ("objects.csv".to_owned(), objects),
        ];
        write_zip(&dir.join(format!("{}-v1.zip", self.url)), &files)
    }
}

/// Returns a GUID as format 1 writes it: upper-case, in braces.
pub fn braced(guid: Uuid) -> String {
    format!("{{{}}}", guid.hyphenated().to_string().to_uppercase())
}

fn count(range: &FixtureRange) -> i64 {
    let first: i64 = range.first.parse().expect("numeric first");
    let last: i64 = range.last.parse().expect("numeric last");
    last - first + 1
}

fn legacy_media(media: &str) -> &'static str {
    match media {
        "voice" => "VOICE",
        "text" => "TEXT",
        _ => "VOICE_AND_TEXT",
    }
}

fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let file = std::fs::File::create(path).expect("create archive");
    let mut zip = zip::ZipWriter::new(file);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), SimpleFileOptions::default())
            .expect("start entry");
        zip.write_all(bytes).expect("write entry");
    }
    zip.finish().expect("finish archive");
    path.to_path_buf()
}
