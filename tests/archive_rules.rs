//! Every rule of the archive reader, one failing archive per rule, plus valid archives
//! of each format version and the sample archives.

#[path = "support/archives.rs"]
mod archives;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use archives::{ArchiveBuilder, Method, ZipEntry, object_line};
use serde_json::{Value, json};
use tenant_operator::archive::{Archive, ArchiveError, Limits, Location};
use tenant_operator::model::{Media, TenantStatus};

#[derive(Clone)]
struct Case {
    name: &'static str,
    archive: ArchiveBuilder,
    limits: Limits,
    location: Location,
    phrase: &'static str,
}

fn file(name: &str) -> Location {
    Location::File(name.to_owned())
}

fn line(name: &str, line: u64) -> Location {
    Location::Line {
        file: name.to_owned(),
        line,
    }
}

fn field(name: &str, field: &str) -> Location {
    Location::Field {
        file: name.to_owned(),
        line: None,
        field: field.to_owned(),
    }
}

fn line_field(name: &str, line: u64, field: &str) -> Location {
    Location::Field {
        file: name.to_owned(),
        line: Some(line),
        field: field.to_owned(),
    }
}

fn case(
    name: &'static str,
    archive: ArchiveBuilder,
    location: Location,
    phrase: &'static str,
) -> Case {
    Case {
        name,
        archive,
        limits: Limits::default(),
        location,
        phrase,
    }
}

fn limited(mut case: Case, change: impl FnOnce(&mut Limits)) -> Case {
    change(&mut case.limits);
    case
}

fn open(path: &Path, limits: &Limits) -> Result<Archive, ArchiveError> {
    Archive::open(path, limits)
}

const USER_FILE: &str = "objects/user.jsonl";

fn structure_cases() -> Vec<Case> {
    let v3 = ArchiveBuilder::v3;
    let bomb = ZipEntry::new("objects/skill.jsonl", vec![b' '; 20 << 20]);
    let mut lying = ZipEntry::new("objects/skill.jsonl", vec![b' '; 4 << 20]);
    lying.declared_size = Some(100);
    let mut symlink = ZipEntry::new("link", "/etc/passwd");
    symlink.unix_mode = 0o120777;
    let mut encrypted = ZipEntry::new("secret.txt", "x");
    encrypted.encrypted = true;
    let mut bzip2 = ZipEntry::new("notes.txt", "x");
    bzip2.method = Method::Other(12);
    vec![
        limited(
            case(
                "archive too large",
                v3(),
                Location::Archive,
                "more than the limit",
            ),
            |limits| limits.max_archive_bytes = 100,
        ),
        limited(
            case(
                "too many entries",
                v3(),
                Location::Archive,
                "entries, more than the limit",
            ),
            |limits| limits.max_entries = 3,
        ),
        limited(
            case(
                "entry too large",
                v3(),
                file("tenant.json"),
                "uncompressed bytes, more than the limit",
            ),
            |limits| limits.max_entry_bytes = 100,
        ),
        limited(
            case("total too large", v3(), Location::Archive, "in total"),
            |limits| limits.max_total_uncompressed_bytes = 400,
        ),
        case(
            "compression ratio",
            v3().push(bomb),
            file("objects/skill.jsonl"),
            "ratio above the limit of 200",
        ),
        case(
            "lying declared size",
            v3().push(lying),
            file("objects/skill.jsonl"),
            "more than the 100 bytes its ZIP header declares",
        ),
        case(
            "CRC mismatch",
            v3().with_entry(USER_FILE, |entry| entry.crc = Some(7)),
            file(USER_FILE),
            "corrupted",
        ),
        case(
            "parent segment",
            v3().set("../evil.txt", "x"),
            Location::Archive,
            "'..' segment",
        ),
        case(
            "backslash",
            v3().set("a\\b.txt", "x"),
            Location::Archive,
            "backslash",
        ),
        case(
            "leading slash",
            v3().set("/abs.txt", "x"),
            Location::Archive,
            "starts with '/'",
        ),
        case(
            "drive letter",
            v3().set("C:/x.txt", "x"),
            Location::Archive,
            "drive letter",
        ),
        case(
            "empty segment",
            v3().set("a//b.txt", "x"),
            Location::Archive,
            "empty segment",
        ),
        case(
            "entry name too long",
            v3().set(&"n".repeat(1025), "x"),
            Location::Archive,
            "more than the maximum of 1024",
        ),
        case(
            "control character",
            v3().set("a\u{7}b.txt", "x"),
            Location::Archive,
            "control character",
        ),
        case(
            "names equal without case",
            v3().set("TENANT.JSON", "{}"),
            file("TENANT.JSON"),
            "appears twice",
        ),
        case(
            "symbolic link",
            v3().push(symlink),
            file("link"),
            "symbolic link",
        ),
        case(
            "encrypted entry",
            v3().push(encrypted),
            file("secret.txt"),
            "encrypted",
        ),
        case(
            "other compression",
            v3().push(bzip2),
            file("notes.txt"),
            "only stored and deflate",
        ),
        case(
            "nested archive name",
            v3().set("inner.zip", "x"),
            file("inner.zip"),
            "nested archive",
        ),
        case(
            "nested archive content",
            v3().set(
                "data.bin",
                archives::write_zip(&[ZipEntry::new("a.txt", "a")]),
            ),
            file("data.bin"),
            "nested archives are not allowed",
        ),
        case(
            "invalid UTF-8 line",
            v3().set(
                USER_FILE,
                [
                    object_line("5d1e0000-0000-4000-8000-000000000001", "user", "a").into_bytes(),
                    b"\n{\"name\": \"\xFF\"}\n".to_vec(),
                ]
                .concat(),
            ),
            line(USER_FILE, 2),
            "not valid UTF-8",
        ),
        case(
            "invalid UTF-8 document",
            v3().set("tenant.json", b"{\n\"name\": \"\xC3\x28\"}".to_vec()),
            line("tenant.json", 2),
            "invalid JSON",
        ),
        limited(
            case(
                "line too long",
                v3(),
                line(USER_FILE, 1),
                "longer than the limit of 100 bytes",
            ),
            |limits| limits.max_line_bytes = 100,
        ),
        case(
            "invalid JSON line",
            v3().edit(USER_FILE, |text| text + "{\"guid\": \n"),
            line(USER_FILE, 3),
            "invalid JSON",
        ),
        case(
            "deep JSON line",
            v3().edit(USER_FILE, |text| text + &"[".repeat(65)),
            line(USER_FILE, 3),
            "limit of 64 levels",
        ),
    ]
}

fn format_cases() -> Vec<Case> {
    let (v1, v2, v3) = (ArchiveBuilder::v1, ArchiveBuilder::v2, ArchiveBuilder::v3);
    vec![
        case(
            "future format",
            v3().edit_manifest(|m| m["formatVersion"] = json!(4)),
            field("manifest.json", "formatVersion"),
            "newer than 3",
        ),
        case(
            "format zero",
            v3().edit_manifest(|m| m["formatVersion"] = json!(0)),
            field("manifest.json", "formatVersion"),
            "expected 1 to 3",
        ),
        case(
            "schema newer than cluster",
            v3().edit_manifest(|m| m["schemaVersion"] = json!(13)),
            field("manifest.json", "schemaVersion"),
            "newer than this cluster's 12",
        ),
        case(
            "schema below format 3",
            v3().edit_manifest(|m| m["schemaVersion"] = json!(11)),
            field("manifest.json", "schemaVersion"),
            "does not fit format 3",
        ),
        case(
            "schema above format 2",
            v2().edit_manifest(|m| m["schemaVersion"] = json!(12)),
            field("manifest.json", "schemaVersion"),
            "does not fit format 2",
        ),
        case(
            "schema above format 1",
            v1().replace("export.properties", "schema.version=5", "schema.version=8"),
            field("export.properties", "schema.version"),
            "does not fit format 1",
        ),
        case(
            "format from properties",
            v1().replace("export.properties", "format.version=1", "format.version=2"),
            Location::Archive,
            "need manifest.json",
        ),
        case(
            "no manifest or properties",
            v3().remove("manifest.json"),
            Location::Archive,
            "both missing",
        ),
        case(
            "missing format 3 file",
            v3().remove("access-numbers.json"),
            file("access-numbers.json"),
            "required file is missing",
        ),
        case(
            "missing format 2 file",
            v2().remove("tenant.json"),
            file("tenant.json"),
            "required file is missing",
        ),
        case(
            "missing format 1 file",
            v1().remove("objects.csv"),
            file("objects.csv"),
            "required file is missing",
        ),
        case(
            "checksum size",
            v3().freeze_manifest().edit(USER_FILE, |text| text + "\n"),
            file(USER_FILE),
            "manifest.json lists",
        ),
        case(
            "checksum hash",
            v3().freeze_manifest().replace(USER_FILE, "jdoe", "jdoX"),
            file(USER_FILE),
            "SHA-256",
        ),
        case(
            "checksum of extra file",
            v3().set("extra.json", "{}")
                .freeze_manifest()
                .set("extra.json", "[]"),
            file("extra.json"),
            "SHA-256",
        ),
        case(
            "listed file missing",
            v3().freeze_manifest().remove("objects/team.jsonl"),
            field("manifest.json", "files[3].path"),
            "missing from the archive",
        ),
        case(
            "unlisted data file",
            v3().freeze_manifest().set("notes.json", "{}"),
            file("notes.json"),
            "not listed",
        ),
        case(
            "manifest tenant differs",
            v3().edit_manifest(|m| m["tenant"]["name"] = json!("Other")),
            field("manifest.json", "tenant"),
            "differs",
        ),
        case(
            "manifest tenant braced",
            v3().edit_manifest(|m| m["tenant"]["guid"] = json!(archives::TENANT_GUID_BRACED)),
            field("manifest.json", "tenant.guid"),
            "lower-case",
        ),
        case(
            "v2 manifest tenant differs",
            v2().edit_manifest(|m| m["tenant"]["url"] = json!("other.example.com")),
            field("manifest.json", "tenant"),
            "differs",
        ),
    ]
}

fn tenant_cases() -> Vec<Case> {
    let (v1, v2, v3) = (ArchiveBuilder::v1, ArchiveBuilder::v2, ArchiveBuilder::v3);
    let set = |file: &'static str, key: &'static str, value: Value| {
        move |builder: ArchiveBuilder| builder.edit_json(file, |json| json[key] = value)
    };
    vec![
        case(
            "v3 tenant GUID upper-case",
            set(
                "tenant.json",
                "guid",
                json!(archives::TENANT_GUID.to_uppercase()),
            )(v3()),
            field("tenant.json", "guid"),
            "lower-case",
        ),
        case(
            "v2 tenant GUID braced",
            set("tenant.json", "guid", json!(archives::TENANT_GUID_BRACED))(v2()),
            field("tenant.json", "guid"),
            "lower-case",
        ),
        case(
            "v1 tenant GUID plain",
            v1().replace(
                "export.properties",
                archives::TENANT_GUID_BRACED,
                archives::TENANT_GUID,
            ),
            field("export.properties", "tenant.guid"),
            "braces",
        ),
        case(
            "v1 tenant GUID lower-case braced",
            v1().replace("export.properties", "0B6F1C5E", "0b6f1c5e"),
            field("export.properties", "tenant.guid"),
            "upper-case",
        ),
        case(
            "tenant URL",
            set("tenant.json", "url", json!("acme_cc"))(v3()),
            field("tenant.json", "url"),
            "not allowed",
        ),
        case(
            "tenant name blank",
            set("tenant.json", "name", json!("   "))(v3()),
            field("tenant.json", "name"),
            "blank",
        ),
        case(
            "tenant name missing",
            v3().edit_json("tenant.json", |json| {
                json.as_object_mut().map(|object| object.remove("name"));
            }),
            field("tenant.json", "name"),
            "missing",
        ),
        case(
            "v3 status spelling",
            set("tenant.json", "status", json!("ACTIVE"))(v3()),
            field("tenant.json", "status"),
            "\"active\" or \"inactive\"",
        ),
        case(
            "v2 status spelling",
            set("tenant.json", "status", json!("active"))(v2()),
            field("tenant.json", "status"),
            "\"ACTIVE\" or \"INACTIVE\"",
        ),
        case(
            "v1 status spelling",
            v1().edit("export.properties", |text| text + "tenant.status=active\n"),
            field("export.properties", "tenant.status"),
            "\"ACTIVE\"",
        ),
        case(
            "settings not an object",
            set("tenant.json", "settings", json!([1]))(v3()),
            field("tenant.json", "settings"),
            "JSON object",
        ),
        case(
            "deep tenant document",
            v3().set("tenant.json", "[".repeat(100_000))
                .with_entry("tenant.json", |entry| entry.method = Method::Stored),
            line("tenant.json", 1),
            "limit of 64 levels",
        ),
    ]
}

fn number_cases() -> Vec<Case> {
    let (v1, v2, v3) = (ArchiveBuilder::v1, ArchiveBuilder::v2, ArchiveBuilder::v3);
    let numbers = "access-numbers.json";
    let range = |index: usize, key: &'static str, value: Value| {
        move |builder: ArchiveBuilder| {
            builder.edit_json("access-numbers.json", |json| json[index][key] = value)
        }
    };
    let v2_range = |index: usize, key: &'static str, value: Value| {
        move |builder: ArchiveBuilder| {
            builder.edit_json("tenant.json", |json| {
                json["accessNumbers"][index][key] = value;
            })
        }
    };
    vec![
        case(
            "v3 media spelling",
            range(0, "media", json!("VOICE"))(v3()),
            field(numbers, "[0].media"),
            "\"voice\"",
        ),
        case(
            "v2 media spelling",
            v2_range(1, "media", json!("voice_text"))(v2()),
            field("tenant.json", "accessNumbers[1].media"),
            "VOICE_AND_TEXT",
        ),
        case(
            "v1 media spelling",
            v1().replace("access_numbers.csv", "VOICE_AND_TEXT", "voice"),
            line_field("access_numbers.csv", 3, "media"),
            "\"VOICE\"",
        ),
        case(
            "digits",
            range(0, "first", json!("1415555O100"))(v3()),
            field(numbers, "[0].first"),
            "ASCII digits",
        ),
        case(
            "too many digits",
            range(1, "last", json!("1800555012345678"))(v3()),
            field(numbers, "[1].last"),
            "1 to 15",
        ),
        case(
            "lengths differ",
            range(0, "last", json!("141555501999"))(v3()),
            field(numbers, "[0].last"),
            "same number of digits",
        ),
        case(
            "first after last",
            range(0, "last", json!("14155550099"))(v3()),
            field(numbers, "[0].last"),
            "greater than last",
        ),
        case(
            "number not a string",
            range(0, "first", json!(14155550100_u64))(v3()),
            field(numbers, "[0].first"),
            "expected a string",
        ),
        case(
            "count overflow",
            v2_range(0, "number", json!("99999999990"))(v2()),
            field("tenant.json", "accessNumbers[0].count"),
            "overflows",
        ),
        case(
            "count zero",
            v2_range(0, "count", json!(0))(v2()),
            field("tenant.json", "accessNumbers[0].count"),
            "1 or more",
        ),
        case(
            "count not a number",
            v2_range(0, "count", json!("20"))(v2()),
            field("tenant.json", "accessNumbers[0].count"),
            "expected an integer",
        ),
        case(
            "v1 count invalid",
            v1().replace("access_numbers.csv", "16505550000,10,", "16505550000,ten,"),
            line_field("access_numbers.csv", 2, "count"),
            "empty for a single number",
        ),
        case(
            "v1 number header",
            v1().replace("access_numbers.csv", "number,count,media", "number,count"),
            line("access_numbers.csv", 1),
            "header",
        ),
        case(
            "overlap",
            range(2, "first", json!("14155550150"))(range(2, "last", json!("14155550150"))(v3())),
            field(numbers, "[2]"),
            "overlaps range 14155550100-14155550199 at access-numbers.json, field [0]",
        ),
        case(
            "v2 overlap",
            v2_range(1, "number", json!("12125550019"))(v2()),
            field("tenant.json", "accessNumbers[1]"),
            "overlaps",
        ),
    ]
}

fn object_cases() -> Vec<Case> {
    let (v1, v2, v3) = (ArchiveBuilder::v1, ArchiveBuilder::v2, ArchiveBuilder::v3);
    let user = |line: &str| {
        v3().set(
            USER_FILE,
            format!(
                "{}\n{line}\n",
                object_line("5d1e0000-0000-4000-8000-000000000001", "user", "a")
            ),
        )
    };
    let v2_object = |key: &'static str, value: Value| {
        v2().edit_json("tenant.json", |json| json["objects"][1][key] = value)
    };
    vec![
        case(
            "type differs from file",
            user(&object_line(
                "5d1e0000-0000-4000-8000-000000000009",
                "team",
                "b",
            )),
            line_field(USER_FILE, 2, "type"),
            "does not match the file's type \"user\"",
        ),
        case(
            "type file name",
            v3().set("objects/Agent.jsonl", "").freeze_manifest(),
            file("objects/Agent.jsonl"),
            "objects/<type>.jsonl",
        ),
        case(
            "v3 object GUID upper-case",
            user(&object_line(
                "5D1E0000-0000-4000-8000-000000000009",
                "user",
                "b",
            )),
            line_field(USER_FILE, 2, "guid"),
            "lower-case",
        ),
        case(
            "object GUID missing",
            user(r#"{"type": "user", "name": "b"}"#),
            line_field(USER_FILE, 2, "guid"),
            "missing",
        ),
        case(
            "object name empty",
            user(&object_line(
                "5d1e0000-0000-4000-8000-000000000009",
                "user",
                "",
            )),
            line_field(USER_FILE, 2, "name"),
            "empty",
        ),
        case(
            "object name too long",
            user(&object_line(
                "5d1e0000-0000-4000-8000-000000000009",
                "user",
                &"é".repeat(1025),
            )),
            line_field(USER_FILE, 2, "name"),
            "more than the maximum of 1024",
        ),
        case(
            "object name not a string",
            user(r#"{"guid": "5d1e0000-0000-4000-8000-000000000009", "type": "user", "name": 7}"#),
            line_field(USER_FILE, 2, "name"),
            "expected a string",
        ),
        case(
            "attributes not an object",
            user(
                r#"{"guid": "5d1e0000-0000-4000-8000-000000000009", "type": "user", "name": "b", "attributes": [1]}"#,
            ),
            line_field(USER_FILE, 2, "attributes"),
            "JSON object",
        ),
        case(
            "object not an object",
            user("[1, 2]"),
            line(USER_FILE, 2),
            "invalid JSON",
        ),
        case(
            "v2 object GUID braced",
            v2_object("guid", json!("{5D1E0000-0000-4000-8000-000000000002}")),
            field("tenant.json", "objects[1].guid"),
            "lower-case",
        ),
        case(
            "v2 object type",
            v2_object("type", json!("Team")),
            field("tenant.json", "objects[1].type"),
            "lower-case letters",
        ),
        case(
            "v2 objects missing",
            v2().edit_json("tenant.json", |json| {
                json.as_object_mut().map(|object| object.remove("objects"));
            }),
            field("tenant.json", "objects"),
            "missing",
        ),
        case(
            "v1 object GUID lower-case",
            v1().replace(
                "objects.csv",
                "{5D1E0000-0000-4000-8000-000000000002}",
                "{5d1e0000-0000-4000-8000-000000000002}",
            ),
            line_field("objects.csv", 3, "guid"),
            "upper-case",
        ),
        case(
            "v1 attributes invalid",
            v1().replace("objects.csv", ",french,{}", ",french,{x"),
            line_field("objects.csv", 4, "attributes"),
            "invalid JSON",
        ),
        case(
            "v1 attributes array",
            v1().replace("objects.csv", ",french,{}", ",french,[]"),
            line_field("objects.csv", 4, "attributes"),
            "JSON object",
        ),
        case(
            "v1 attributes deep",
            v1().replace(
                "objects.csv",
                ",french,{}",
                &format!(",french,{}", "[".repeat(100)),
            ),
            line_field("objects.csv", 4, "attributes"),
            "limit of 64 levels",
        ),
        case(
            "v1 object header",
            v1().replace(
                "objects.csv",
                "guid,type,name,attributes",
                "guid,kind,name,attributes",
            ),
            line("objects.csv", 1),
            "expected \"guid,type,name,attributes\"",
        ),
        limited(
            case(
                "v1 row too long",
                v1().replace(
                    "objects.csv",
                    ",french,{}",
                    &format!(",french,\"{{\"\"a\"\": \"\"{}\"\"}}\"", "line\n".repeat(60)),
                ),
                line("objects.csv", 4),
                "longer than the limit of 200 bytes",
            ),
            |limits| limits.max_line_bytes = 200,
        ),
        case(
            "v1 field count",
            v1().replace("objects.csv", ",french,{}", ",french"),
            line("objects.csv", 4),
            "3 fields; expected 4",
        ),
        case(
            "v1 invalid UTF-8",
            v1().edit("objects.csv", |text| {
                text + "{5D1E0000-0000-4000-8000-000000000004},skill,\u{FFFD},\n"
            })
            .with_entry("objects.csv", |entry| {
                let at = entry.data.len() - 5;
                entry.data.splice(at..at + 3, [0xFF]);
            }),
            line_field("objects.csv", 5, "name"),
            "not valid UTF-8",
        ),
    ]
}

#[test]
fn every_rule_rejects_its_archive() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let cases = [
        structure_cases(),
        format_cases(),
        tenant_cases(),
        number_cases(),
        object_cases(),
    ]
    .concat();
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let path = case.archive.write(dir.path(), &format!("case-{index}.zip"));
        match open(&path, &case.limits) {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(ArchiveError::Invalid(invalid)) => {
                if invalid.location != case.location {
                    failures.push(format!(
                        "{}: location {} (expected {}): {}",
                        case.name, invalid.location, case.location, invalid.problem
                    ));
                } else if !invalid.problem.contains(case.phrase) {
                    failures.push(format!(
                        "{}: problem {:?} lacks {:?}",
                        case.name, invalid.problem, case.phrase
                    ));
                }
            }
            Err(other) => failures.push(format!("{}: not invalid but {other}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn truncated_central_directory_is_invalid() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut bytes = ArchiveBuilder::v3().bytes();
    bytes.truncate(bytes.len() - 30);
    let path = dir.path().join("truncated.zip");
    std::fs::write(&path, bytes).expect("write archive");
    let error = open(&path, &Limits::default()).expect_err("truncated archive accepted");
    let ArchiveError::Invalid(invalid) = error else {
        panic!("expected invalid, got {error}");
    };
    assert_eq!(invalid.location, Location::Archive);
    assert!(
        invalid.problem.contains("not a readable ZIP"),
        "{}",
        invalid.problem
    );
}

#[test]
fn declared_entry_count_is_checked_first() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut bytes = ArchiveBuilder::v3().bytes();
    // The end of central directory record is the last 22 bytes; its total entry
    // count sits at offset 10.
    let count_at = bytes.len() - 12;
    bytes[count_at..count_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    let path = dir.path().join("many-entries.zip");
    std::fs::write(&path, bytes).expect("write archive");
    let error = open(&path, &Limits::default()).expect_err("accepted");
    let ArchiveError::Invalid(invalid) = error else {
        panic!("expected invalid, got {error}");
    };
    assert_eq!(invalid.location, Location::Archive);
    assert!(
        invalid
            .problem
            .contains("65535 entries, more than the limit of 10000"),
        "{}",
        invalid.problem
    );
}

#[test]
fn missing_file_is_io_error() {
    let error =
        open(Path::new("/nonexistent/archive.zip"), &Limits::default()).expect_err("opened");
    assert!(matches!(error, ArchiveError::Io { .. }), "{error}");
}

#[test]
fn deep_json_fails_fast() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v3()
        .set("tenant.json", "[".repeat(100_000) + &"]".repeat(100_000))
        .with_entry("tenant.json", |entry| entry.method = Method::Stored)
        .write(dir.path(), "deep.zip");
    let started = Instant::now();
    let error = open(&path, &Limits::default()).expect_err("deep JSON accepted");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("limit of 64 levels"), "{error}");
}

#[test]
fn zip_bomb_fails_before_decompressing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    // The compressed data is garbage, so a reader that decompressed anything would
    // report corruption; the ratio comes from the central directory alone.
    let mut bomb = ZipEntry::new("objects/skill.jsonl", "");
    bomb.declared_size = Some(200 << 20);
    bomb.compressed = Some(vec![0xFF; 1000]);
    let path = ArchiveBuilder::v3()
        .push(bomb)
        .write(dir.path(), "bomb.zip");
    let error = open(&path, &Limits::default()).expect_err("bomb accepted");
    let ArchiveError::Invalid(invalid) = error else {
        panic!("expected invalid, got {error}");
    };
    assert_eq!(
        invalid.location,
        Location::File("objects/skill.jsonl".to_owned())
    );
    assert!(invalid.problem.contains("zip bomb"), "{}", invalid.problem);
}

#[test]
fn lying_size_stops_at_declared_size() {
    let dir = tempfile::tempdir().expect("temporary folder");
    // 2 MiB of valid data, then garbage: reading past the declared 1 MiB would end in
    // a corruption error instead of the size error.
    let mut entry = ZipEntry::new("objects/skill.jsonl", "");
    entry.declared_size = Some(1 << 20);
    entry.compressed = Some(archives::deflate_then_garbage(2 << 20));
    let path = ArchiveBuilder::v3()
        .push(entry)
        .write(dir.path(), "lying.zip");
    let error = open(&path, &Limits::default()).expect_err("lying size accepted");
    let ArchiveError::Invalid(invalid) = error else {
        panic!("expected invalid, got {error}");
    };
    assert_eq!(
        invalid.location,
        Location::File("objects/skill.jsonl".to_owned())
    );
    assert!(
        invalid.problem.contains("more than the 1048576 bytes"),
        "{}",
        invalid.problem
    );
}

#[test]
fn valid_v3_opens_with_counts() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v3().write(dir.path(), "v3.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    assert_eq!(archive.format_version, 3);
    assert_eq!(archive.schema_version, 12);
    assert_eq!(archive.tenant.identity.url, archives::TENANT_URL);
    assert_eq!(
        archive.tenant.identity.guid.to_string(),
        archives::TENANT_GUID
    );
    assert_eq!(archive.tenant.status, TenantStatus::Active);
    assert_eq!(
        archive.tenant.sip_domain.as_deref(),
        Some("acme.sip.example.com")
    );
    assert_eq!(archive.summary.objects, 3);
    assert_eq!(archive.summary.ranges, 3);
    assert_eq!(archive.summary.numbers, 151);
    assert_eq!(archive.ranges[1].trunk.as_deref(), Some("carrier-a"));
    assert_eq!(archive.ranges[2].media, Media::Text);
    let bytes = std::fs::read(&path).expect("read archive");
    assert_eq!(archive.size, bytes.len() as u64);
    assert_eq!(archive.sha256, sha256_hex(&bytes));
}

#[test]
fn valid_v2_is_upgraded() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v2().write(dir.path(), "v2.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    assert_eq!(archive.format_version, 2);
    assert_eq!(archive.tenant.status, TenantStatus::Inactive);
    assert_eq!(archive.summary.objects, 3);
    assert_eq!(archive.summary.numbers, 21);
    assert_eq!(archive.ranges[0].last.to_string(), "12125550019");
    assert_eq!(archive.ranges[1].media, Media::VoiceText);
    let objects = collect(&archive);
    assert_eq!(objects[2].object.object_type, "skill");
    assert!(objects[2].object.attributes.is_empty());
    assert_eq!(
        objects[1].location.to_string(),
        "tenant.json, field objects[1]"
    );
}

#[test]
fn valid_v1_is_upgraded() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v1().write(dir.path(), "v1.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    assert_eq!(archive.format_version, 1);
    assert_eq!(archive.schema_version, 5);
    assert_eq!(archive.tenant.identity.name, "Initech: Zoë's Help Desk");
    assert_eq!(
        archive.tenant.identity.guid.to_string(),
        archives::TENANT_GUID
    );
    assert_eq!(archive.tenant.status, TenantStatus::Active);
    assert_eq!(archive.summary.numbers, 11);
    assert_eq!(archive.ranges[0].media, Media::Voice);
    assert_eq!(archive.ranges[1].len(), 1);
    let objects = collect(&archive);
    assert_eq!(objects.len(), 3);
    assert_eq!(
        objects[0].object.guid.to_string(),
        "5d1e0000-0000-4000-8000-000000000001"
    );
    assert_eq!(objects[0].object.attributes["team"], json!("x"));
    assert_eq!(objects[1].object.name, "Zoë, Łódź");
    assert!(objects[1].object.attributes.is_empty());
    assert_eq!(objects[2].location.to_string(), "objects.csv line 4");
}

#[test]
fn tolerated_variations_are_accepted() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v3()
        .edit(USER_FILE, |text| {
            format!(
                "\u{FEFF}\n{}\n   \n",
                text.replace("\"attributes\"", "\"unknown\": 1, \"attributes\"")
            )
        })
        .edit("tenant.json", |text| format!("\u{FEFF}{text}"))
        .edit_json("access-numbers.json", |json| {
            json[0]["note"] = json!("kept out");
        })
        .set("README.txt", "not data")
        .write(dir.path(), "variations.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    assert_eq!(archive.summary.objects, 3);
    let v1 = ArchiveBuilder::v1()
        .edit("objects.csv", |text| format!("\u{FEFF}{text}"))
        .write(dir.path(), "v1-bom.zip");
    assert_eq!(
        open(&v1, &Limits::default())
            .expect("valid archive")
            .summary
            .objects,
        3
    );
}

#[test]
fn batches_respect_size_and_errors() {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (format, builder) in [
        (1, ArchiveBuilder::v1()),
        (2, ArchiveBuilder::v2()),
        (3, ArchiveBuilder::v3()),
    ] {
        let path = builder.write(dir.path(), &format!("v{format}.zip"));
        let archive = open(&path, &Limits::default()).expect("valid archive");
        check_batches(&archive);
    }
}

fn check_batches(archive: &Archive) {
    let mut sizes = Vec::new();
    archive
        .for_each_object_batch(2, |batch| -> Result<(), ArchiveError> {
            sizes.push(batch.len());
            Ok(())
        })
        .expect("stream objects");
    assert_eq!(sizes.iter().sum::<usize>(), 3);
    assert!(sizes.iter().all(|size| *size <= 2), "{sizes:?}");

    let stopped: Result<(), StreamError> =
        archive.for_each_object_batch(1, |_| Err(StreamError::Sink));
    assert!(matches!(stopped, Err(StreamError::Sink)));
}

#[test]
fn messages_shorten_long_values() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let huge = "x".repeat(1 << 20);
    let cases = [
        ArchiveBuilder::v3()
            .edit_json("access-numbers.json", |json| json[0]["media"] = json!(huge)),
        ArchiveBuilder::v3().edit_json("tenant.json", |json| json["status"] = json!(huge)),
        ArchiveBuilder::v3().set("access-numbers.json", json!(huge).to_string()),
        ArchiveBuilder::v2().edit_json("tenant.json", |json| {
            json["accessNumbers"][0]["media"] = json!(huge);
        }),
    ];
    for (index, builder) in cases.into_iter().enumerate() {
        let path = builder
            .store_all()
            .write(dir.path(), &format!("long-{index}.zip"));
        let error = open(&path, &Limits::default()).expect_err("accepted");
        let message = error.to_string();
        assert!(!message.contains("zip bomb"), "case {index}: {message}");
        assert!(message.len() < 400, "case {index}: {} bytes", message.len());
    }
}

#[test]
fn replaced_file_fails_while_streaming() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v2().write(dir.path(), "v2.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    // A valid archive of another tenant takes the place of the validated one.
    ArchiveBuilder::v2()
        .replace("tenant.json", "jdoe", "mallory")
        .write(dir.path(), "v2.zip");
    let result = archive.for_each_object_batch(100, |_| Ok::<(), ArchiveError>(()));
    let error = result.expect_err("replaced archive streamed");
    assert!(
        error.to_string().contains("changed since it was validated"),
        "{error}"
    );
}

#[test]
fn changed_file_fails_while_streaming() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = ArchiveBuilder::v3().write(dir.path(), "v3.zip");
    let archive = open(&path, &Limits::default()).expect("valid archive");
    ArchiveBuilder::v3()
        .freeze_manifest()
        .replace(USER_FILE, "jdoe", "jdoX")
        .write(dir.path(), "v3.zip");
    let result = archive.for_each_object_batch(100, |_| Ok::<(), ArchiveError>(()));
    let error = result.expect_err("changed archive streamed");
    assert!(error.to_string().contains("SHA-256"), "{error}");
}

#[test]
fn sample_archives_open_with_their_counts() {
    let Some(dir) = support::shared_examples() else {
        return;
    };
    let expected = [
        (
            "acme-v3.zip",
            3,
            "acme.cc.example.com",
            "Acme Support",
            400,
            3,
            151,
        ),
        (
            "globex-v2.zip",
            2,
            "globex.cc.example.com",
            "Globex Corporation",
            150,
            2,
            21,
        ),
        (
            "initech-v1.zip",
            1,
            "initech.cc.example.com",
            "Initech: Zoë's Help Desk",
            80,
            2,
            11,
        ),
        (
            "umbrella-v3.zip",
            3,
            "umbrella.cc.example.com",
            "Umbrella Care",
            60,
            2,
            25,
        ),
    ];
    for (file, format, url, name, objects, ranges, numbers) in expected {
        let archive = open(&dir.join(file), &Limits::default())
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        assert_eq!(archive.format_version, format, "{file}");
        assert_eq!(archive.tenant.identity.url, url, "{file}");
        assert_eq!(archive.tenant.identity.name, name, "{file}");
        assert_eq!(archive.summary.objects, objects, "{file}");
        assert_eq!(archive.summary.ranges, ranges, "{file}");
        assert_eq!(archive.summary.numbers, numbers, "{file}");
        assert_eq!(collect(&archive).len() as u64, objects, "{file}");
    }
}

#[derive(Debug)]
enum StreamError {
    Archive,
    Sink,
}

impl From<ArchiveError> for StreamError {
    fn from(_: ArchiveError) -> Self {
        Self::Archive
    }
}

fn collect(archive: &Archive) -> Vec<tenant_operator::archive::LocatedObject> {
    let mut objects = Vec::new();
    archive
        .for_each_object_batch(2, |batch| -> Result<(), ArchiveError> {
            objects.extend(batch);
            Ok(())
        })
        .expect("stream objects");
    objects
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
