//! The archive writer and generator: deterministic output that the reader accepts in
//! every format version, and objects that survive a round trip.

mod support;

use std::collections::HashSet;
use std::io::Cursor;
use std::process::Command;

use serde_json::json;
use tenant_operator::archive::writer::{ArchiveOrigin, ArchiveWriter, WriteError};
use tenant_operator::archive::{Archive, ArchiveError, Limits};
use tenant_operator::generator::{self, GenerateError, GenerateOptions};
use tenant_operator::model::{
    AccessNumber, ConfigObject, Media, NumberRange, TenantIdentity, TenantRecord, TenantStatus,
};
use uuid::Uuid;

fn options(format: u32) -> GenerateOptions {
    GenerateOptions {
        seed: 42,
        objects: 57,
        ranges: 4,
        numbers: 31,
        format,
        tenant_url: "gen.cc.example.com".to_owned(),
        tenant_name: "Générée: Zoë's".to_owned(),
        number_start: "0049301234000".to_owned(),
    }
}

fn generate_bytes(options: &GenerateOptions) -> Vec<u8> {
    generator::generate(options, Cursor::new(Vec::new()))
        .expect("generate archive")
        .into_inner()
}

fn objects_of(archive: &Archive) -> Vec<ConfigObject> {
    let mut objects = Vec::new();
    archive
        .for_each_object_batch(10, |batch| -> Result<(), ArchiveError> {
            objects.extend(batch.into_iter().map(|located| located.object));
            Ok(())
        })
        .expect("stream objects");
    objects
}

#[test]
fn generator_is_deterministic() {
    for format in 1..=3 {
        let first = generate_bytes(&options(format));
        let second = generate_bytes(&options(format));
        assert_eq!(first, second, "format {format}");
        let other_seed = generate_bytes(&GenerateOptions {
            seed: 43,
            ..options(format)
        });
        assert_ne!(first, other_seed, "format {format}");
    }
}

#[test]
fn generated_archives_open_in_every_format() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut object_sets = Vec::new();
    for format in 1..=3 {
        let path = dir.path().join(format!("generated-v{format}.zip"));
        generator::generate_file(&options(format), &path).expect("generate archive");
        let archive = Archive::open(&path, &Limits::default())
            .unwrap_or_else(|error| panic!("format {format}: {error}"));
        assert_eq!(archive.format_version, format);
        assert_eq!(archive.tenant.identity.url, "gen.cc.example.com");
        assert_eq!(archive.tenant.identity.name, "Générée: Zoë's");
        assert_eq!(archive.summary.objects, 57);
        assert_eq!(archive.summary.ranges, 4);
        assert_eq!(archive.summary.numbers, 31);
        assert_eq!(archive.ranges[0].first.to_string(), "0049301234000");
        assert_eq!(archive.ranges[3].len(), 1, "last range is a single number");
        for pair in archive.ranges.windows(2) {
            assert!(pair[1].first.value > pair[0].last.value + 1, "no gap");
        }
        object_sets.push(objects_of(&archive));
    }

    // Every format carries the same objects, only spelled differently.
    assert_eq!(object_sets[0], object_sets[1]);
    assert_eq!(object_sets[1], object_sets[2]);

    let objects = &object_sets[2];
    let types: HashSet<&str> = objects.iter().map(|o| o.object_type.as_str()).collect();
    assert_eq!(types.len(), generator::OBJECT_TYPES.len());
    let guids: HashSet<Uuid> = objects.iter().map(|o| o.guid).collect();
    assert_eq!(guids.len(), objects.len(), "GUIDs are unique");
    let user = objects
        .iter()
        .find(|o| o.object_type == "user")
        .expect("a user");
    let team = user.attributes["team"].as_str().expect("team reference");
    let team = Uuid::parse_str(team).expect("team GUID");
    assert!(guids.contains(&team), "reference points into the archive");
    assert!(
        objects.iter().any(|o| !o.name.is_ascii()),
        "non-ASCII names"
    );
}

#[test]
fn generator_rejects_impossible_layouts() {
    let too_few = GenerateOptions {
        numbers: 3,
        ..options(3)
    };
    let error = generator::generate(&too_few, Cursor::new(Vec::new())).expect_err("accepted");
    assert!(
        matches!(
            error,
            GenerateError::InvalidOption {
                option: "numbers",
                ..
            }
        ),
        "{error}"
    );

    let no_room = GenerateOptions {
        number_start: "9990".to_owned(),
        ..options(3)
    };
    let error = generator::generate(&no_room, Cursor::new(Vec::new())).expect_err("accepted");
    assert!(
        matches!(error, GenerateError::NumbersDoNotFit { .. }),
        "{error}"
    );

    let bad_url = GenerateOptions {
        tenant_url: "not a url".to_owned(),
        ..options(3)
    };
    let error = generator::generate(&bad_url, Cursor::new(Vec::new())).expect_err("accepted");
    assert!(error.to_string().contains("--tenant-url"), "{error}");
}

#[test]
fn generate_command_writes_archive() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("cli.zip");
    let status = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .args([
            "generate",
            "--seed",
            "5",
            "--objects",
            "30",
            "--ranges",
            "3",
        ])
        .args(["--numbers", "12", "--format", "2", "-o"])
        .arg(&path)
        .status()
        .expect("run tenant-operator");
    assert!(status.success(), "{status}");
    let archive = Archive::open(&path, &Limits::default()).expect("open generated archive");
    assert_eq!(archive.format_version, 2);
    assert_eq!(archive.summary.objects, 30);
    assert_eq!(archive.summary.numbers, 12);
}

fn tenant() -> TenantRecord {
    let mut settings = serde_json::Map::new();
    settings.insert("b".to_owned(), json!({"nested": [1, 2]}));
    settings.insert("a".to_owned(), json!("Zoë"));
    TenantRecord {
        identity: TenantIdentity {
            guid: Uuid::from_u128(7),
            url: "rt.cc.example.com".to_owned(),
            name: "Round Trip".to_owned(),
        },
        status: TenantStatus::Inactive,
        sip_domain: Some("rt.sip.example.com".to_owned()),
        created_at: Some("2020-01-01T00:00:00Z".to_owned()),
        settings,
    }
}

fn object(guid: u128, object_type: &str) -> ConfigObject {
    let mut attributes = serde_json::Map::new();
    attributes.insert(
        "ref".to_owned(),
        json!(Uuid::from_u128(guid + 1).to_string()),
    );
    ConfigObject {
        guid: Uuid::from_u128(guid),
        object_type: object_type.to_owned(),
        name: format!("{object_type} \"{guid}\", Łódź"),
        attributes,
    }
}

#[test]
fn writer_round_trips_format_3() {
    let number = |text: &str| AccessNumber::parse(text).expect("number");
    let ranges = vec![
        NumberRange::new(
            number("100"),
            number("199"),
            Media::Text,
            Some("t1".to_owned()),
        )
        .expect("range"),
        NumberRange::new(number("0100"), number("0100"), Media::VoiceText, None).expect("range"),
    ];
    let objects = vec![object(1, "skill"), object(2, "skill"), object(3, "user")];
    let origin = ArchiveOrigin {
        format_version: 3,
        schema_version: 12,
        exported_at: "2026-12-01T00:00:00Z".to_owned(),
        source_cluster: Some("eu-west".to_owned()),
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("round-trip.zip");
    let file = std::fs::File::create(&path).expect("create archive");
    let mut writer = ArchiveWriter::new(file, origin, &tenant(), &ranges).expect("start archive");
    for object in &objects {
        writer.write_object(object).expect("write object");
    }
    writer.finish().expect("finish archive");

    let archive = Archive::open(&path, &Limits::default()).expect("open archive");
    assert_eq!(archive.tenant, tenant());
    assert_eq!(archive.ranges, ranges);
    assert_eq!(objects_of(&archive), objects);
}

#[test]
fn writer_requires_grouped_types() {
    let origin = ArchiveOrigin {
        format_version: 3,
        schema_version: 12,
        exported_at: "2026-12-01T00:00:00Z".to_owned(),
        source_cluster: None,
    };
    let mut writer =
        ArchiveWriter::new(Cursor::new(Vec::new()), origin, &tenant(), &[]).expect("start");
    writer.write_object(&object(1, "user")).expect("first user");
    writer.write_object(&object(2, "team")).expect("team");
    let error = writer
        .write_object(&object(3, "user"))
        .expect_err("accepted");
    assert!(
        matches!(error, WriteError::ObjectsNotGrouped { .. }),
        "{error}"
    );
    let error = writer
        .write_object(&object(4, "Bad_Type"))
        .expect_err("accepted");
    assert!(matches!(error, WriteError::InvalidType { .. }), "{error}");
}

#[test]
fn committed_sample_matches_generator() {
    let sample = GenerateOptions {
        seed: 7,
        objects: 36,
        ranges: 3,
        numbers: 25,
        format: 3,
        tenant_url: "sample.cc.example.com".to_owned(),
        tenant_name: "Sample Support".to_owned(),
        number_start: "14155559000".to_owned(),
    };
    let path = support::own_example();
    let committed = std::fs::read(&path).expect("read examples/sample-tenant-v3.zip");
    assert!(
        committed == generate_bytes(&sample),
        "examples/sample-tenant-v3.zip is stale; regenerate it with the command in docs/archive-format.md"
    );
    let archive = Archive::open(&path, &Limits::default()).expect("open sample");
    assert_eq!(archive.summary.objects, 36);
    assert_eq!(archive.summary.ranges, 3);
    assert_eq!(archive.ranges[2].len(), 1);
}
