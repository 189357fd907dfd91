//! Builds the corpus of hostile tenant archives: each one is a small valid archive from
//! `archives.rs` with one hostile change, written to a folder, together with the phrases
//! that the rejection message must contain. [`CORPUS`] lists every case, and the
//! command line, HTTP and controller tests all run it.
//!
//! Include it with `#[path = "support/hostile.rs"] mod hostile;` next to `mod support;`
//! and `#[path = "support/archives.rs"] mod archives;`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::archives::{ArchiveBuilder, Method, TENANT_GUID, TENANT_GUID_BRACED, ZipEntry};

/// Bytes in a mebibyte.
pub const MIB: u64 = 1 << 20;

/// Length of the long strings of the corpus: 10 MB.
pub const LONG_STRING_BYTES: usize = 10_000_000;

/// Uncompressed size of the deflate bombs: 3 GiB, more than any default limit.
pub const BOMB_BYTES: u64 = 3 << 30;

/// A hostile archive on disk and what its rejection message must contain.
#[derive(Debug, Clone)]
pub struct HostileArchive {
    /// The archive file.
    pub path: PathBuf,
    /// Phrases that must all appear in the message, compared without regard to case.
    pub phrases: Vec<&'static str>,
    /// Extra command-line options of the import, such as a lower limit.
    pub options: Vec<String>,
}

impl HostileArchive {
    /// Panics, naming `what`, unless `message` contains every phrase of this archive,
    /// compared without regard to case.
    pub fn assert_message(&self, message: &str, what: &str) {
        let lower = message.to_lowercase();
        for phrase in &self.phrases {
            assert!(
                lower.contains(&phrase.to_lowercase()),
                "{what}: the message {message:?} lacks {phrase:?}"
            );
        }
    }
}

/// Builds one hostile archive in a folder.
pub type BuildCase = fn(&Path) -> HostileArchive;

fn write(builder: &ArchiveBuilder, dir: &Path, phrases: &[&'static str]) -> HostileArchive {
    HostileArchive {
        path: builder.write(dir, "hostile.zip"),
        phrases: phrases.to_vec(),
        options: Vec::new(),
    }
}

fn write_bytes(bytes: &[u8], dir: &Path, phrases: &[&'static str]) -> HostileArchive {
    let path = dir.join("hostile.zip");
    std::fs::write(&path, bytes).expect("write archive");
    HostileArchive {
        path,
        phrases: phrases.to_vec(),
        options: Vec::new(),
    }
}

/// Returns raw deflate data that inflates to `mebibytes` MiB of zero bytes, at a ratio
/// of about 1000. One sync-flushed block of 1 MiB of zeros is repeated: every block
/// after the first copies zeros from the window, so the repetition is a valid stream.
pub fn deflate_zeros(mebibytes: u64) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&vec![0_u8; MIB as usize])
        .expect("deflate");
    encoder.flush().expect("deflate");
    let block = encoder.get_ref().clone();

    let mut stream = Vec::with_capacity(block.len() * mebibytes as usize + 2);
    for _ in 0..mebibytes {
        stream.extend_from_slice(&block);
    }
    // A final fixed-Huffman block holding only the end-of-block code.
    stream.extend([0x03, 0x00]);
    stream
}

/// Returns `len` pseudo-random ASCII letters, so a long string does not compress well
/// enough to trip the compression ratio limit before a parser reads it.
pub fn letters(len: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

/// Returns `depth` nested JSON arrays around a zero.
pub fn nested_arrays(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

/// Sets the tenant name, URL or GUID in both `manifest.json` and `tenant.json` of a
/// format 3 archive, so only the value itself is wrong.
fn v3_identity(field: &str, value: Value) -> ArchiveBuilder {
    let in_tenant = value.clone();
    ArchiveBuilder::v3()
        .edit_manifest(|manifest| manifest["tenant"][field] = value)
        .edit_json("tenant.json", |tenant| tenant[field] = in_tenant)
}

/// Expands to `$then! { CASE, ... }` with the name of every case of the corpus, in
/// order. Each name is the function of this module that builds the case, so this list
/// is the only one: [`CORPUS`] and the per-case tests are made from it.
#[macro_export]
macro_rules! hostile_case_names {
    ($then:ident) => {
        $then! {
            bomb_declared_size,
            bomb_lying_size,
            bomb_ratio,
            bomb_total_size,
            nested_archive_by_name,
            nested_archive_by_content,
            huge_entry_count,
            archive_over_size_limit,
            name_traversal,
            name_absolute,
            name_backslash,
            name_drive_letter,
            name_invalid_utf8,
            name_duplicate,
            name_duplicate_v2,
            name_duplicate_v1,
            name_duplicate_fake_end_record,
            name_differs_in_case,
            central_directory_truncated,
            file_truncated,
            crc_mismatch_v2,
            crc_mismatch_v1,
            manifest_checksum_mismatch,
            manifest_size_mismatch,
            zip_size_mismatch,
            manifest_file_unlisted,
            invalid_utf8_json,
            invalid_utf8_csv,
            json_deep_document,
            json_deep_line,
            long_object_name,
            long_tenant_name,
            long_tenant_settings,
            long_manifest,
            long_attribute_v2,
            long_attribute_v1,
            number_too_long,
            number_too_long_v1,
            range_count_overflow,
            range_count_huge,
            ranges_overlap,
            ranges_many_overlap,
            ranges_many_overlap_v2,
            range_huge,
            guid_repeated_object,
            object_type_mismatch,
            guid_braced_v3,
            guid_upper_case_v3,
            guid_unbraced_v1,
            guid_lower_case_v1,
            guid_not_uuid,
            guid_empty,
            future_format_version,
            future_schema_version,
            missing_v3_manifest,
            missing_v3_tenant,
            missing_v3_access_numbers,
            missing_v2_tenant,
            missing_v1_properties,
            missing_v1_access_numbers,
            missing_v1_objects,
            sql_in_url,
            control_character_in_name,
            control_character_in_url,
            control_character_in_name_v1,
        }
    };
}

macro_rules! corpus_table {
    ($($case:ident),* $(,)?) => {
        /// Every case of the corpus: its name and the function that builds it.
        pub const CORPUS: &[(&str, BuildCase)] = &[$((stringify!($case), $case)),*];
    };
}

hostile_case_names!(corpus_table);

/// A case of the corpus, built.
#[derive(Debug)]
pub struct BuiltCase {
    /// The case's name in [`CORPUS`].
    pub name: &'static str,
    /// The archive and its expected message.
    pub archive: HostileArchive,
}

/// The built cases that share one set of extra options.
#[derive(Debug)]
pub struct OptionGroup {
    /// The extra command-line options, empty for the default limits.
    pub options: Vec<String>,
    /// The cases, in corpus order.
    pub cases: Vec<BuiltCase>,
}

/// Builds every case of [`CORPUS`], each in a folder of its own under `dir`, and groups
/// them by their extra options in corpus order. A server or a controller applies one
/// set of limits to every archive it reads, so each group needs a process of its own.
pub fn build_corpus_by_options(dir: &Path) -> Vec<OptionGroup> {
    let mut groups: Vec<OptionGroup> = Vec::new();
    for (name, build) in CORPUS {
        let case_dir = dir.join(name);
        std::fs::create_dir(&case_dir).expect("case folder");
        let archive = build(&case_dir);
        let case = BuiltCase { name, archive };
        match groups
            .iter_mut()
            .find(|group| group.options == case.archive.options)
        {
            Some(group) => group.cases.push(case),
            None => groups.push(OptionGroup {
                options: case.archive.options.clone(),
                cases: vec![case],
            }),
        }
    }
    groups
}

// ZIP structure and size limits.

/// One entry that inflates to 3 GiB of zeros and declares that size honestly.
pub fn bomb_declared_size(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().with_entry("objects/user.jsonl", |entry| {
        entry.compressed = Some(deflate_zeros(BOMB_BYTES / MIB));
        entry.declared_size = Some(BOMB_BYTES as u32);
    });
    write(&builder, dir, &["objects/user.jsonl", "limit"])
}

/// One entry that inflates to 3 GiB of zeros but declares 1000 bytes.
pub fn bomb_lying_size(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().with_entry("objects/user.jsonl", |entry| {
        entry.compressed = Some(deflate_zeros(BOMB_BYTES / MIB));
        entry.declared_size = Some(1000);
    });
    write(
        &builder,
        dir,
        &["objects/user.jsonl", "more than the 1000 bytes"],
    )
}

/// 100 MiB of zeros, under the size limits but far above the compression ratio limit.
pub fn bomb_ratio(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().push(ZipEntry {
        compressed: Some(deflate_zeros(100)),
        declared_size: Some((100 * MIB) as u32),
        ..ZipEntry::new("padding.txt", Vec::new())
    });
    write(&builder, dir, &["padding.txt", "zip bomb"])
}

/// Five stored entries of 300 kB each against a total uncompressed limit of 1 MB:
/// every entry is under the entry limit and compresses at a ratio of 1.
pub fn bomb_total_size(dir: &Path) -> HostileArchive {
    let mut builder = ArchiveBuilder::v2();
    for index in 0..5 {
        builder = builder.push(ZipEntry {
            method: Method::Stored,
            ..ZipEntry::new(&format!("padding/{index}.txt"), letters(300_000))
        });
    }
    let mut archive = write(&builder, dir, &["1000000 uncompressed bytes in total"]);
    archive.options = vec![
        "--archive-max-uncompressed-bytes".to_owned(),
        "1000000".to_owned(),
    ];
    archive
}

/// A `.zip` entry inside the archive.
pub fn nested_archive_by_name(dir: &Path) -> HostileArchive {
    let inner = ArchiveBuilder::v3().bytes();
    let builder = ArchiveBuilder::v3().push(ZipEntry::new("objects/inner.zip", inner));
    write(&builder, dir, &["objects/inner.zip", "nested archive"])
}

/// An entry with an innocent name whose content is a ZIP archive.
pub fn nested_archive_by_content(dir: &Path) -> HostileArchive {
    let inner = ArchiveBuilder::v2().bytes();
    let builder = ArchiveBuilder::v2().push(ZipEntry::new("notes.txt", inner));
    write(&builder, dir, &["notes.txt", "nested archives"])
}

/// 20,000 empty entries, twice the default entry limit.
pub fn huge_entry_count(dir: &Path) -> HostileArchive {
    let mut builder = ArchiveBuilder::v2();
    for index in 0..20_000 {
        builder = builder.push(ZipEntry {
            method: Method::Stored,
            ..ZipEntry::new(&format!("extra/{index}.txt"), Vec::new())
        });
    }
    write(&builder, dir, &["20002 entries", "limit"])
}

/// The limit on the archive file's size, in bytes, of [`archive_over_size_limit`].
pub const SMALL_ARCHIVE_LIMIT: u64 = 1000;

/// Writes a valid format 3 archive that is larger than an archive size limit of
/// [`SMALL_ARCHIVE_LIMIT`] bytes. Sent over HTTP, it is a body over the upload limit.
pub fn archive_over_size_limit(dir: &Path) -> HostileArchive {
    let mut archive = write(&ArchiveBuilder::v3(), dir, &["the limit of 1000 bytes"]);
    let size = std::fs::metadata(&archive.path)
        .expect("archive size")
        .len();
    assert!(
        size > SMALL_ARCHIVE_LIMIT,
        "the base archive has {size} bytes"
    );
    archive.options = vec![
        "--archive-max-bytes".to_owned(),
        SMALL_ARCHIVE_LIMIT.to_string(),
    ];
    archive
}

// Entry names.

fn extra_entry(name: &[u8], phrases: &[&'static str], dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().push(ZipEntry {
        name: name.to_vec(),
        ..ZipEntry::new("placeholder", "x")
    });
    write(&builder, dir, phrases)
}

/// An entry named `../x`.
pub fn name_traversal(dir: &Path) -> HostileArchive {
    extra_entry(b"../x", &["\"../x\"", "'..' segment"], dir)
}

/// An entry named `/x`.
pub fn name_absolute(dir: &Path) -> HostileArchive {
    extra_entry(b"/x", &["\"/x\"", "starts with '/'"], dir)
}

/// An entry whose name uses a backslash as separator.
pub fn name_backslash(dir: &Path) -> HostileArchive {
    extra_entry(b"objects\\evil.jsonl", &["objects", "backslash"], dir)
}

/// An entry whose name starts with a drive letter.
pub fn name_drive_letter(dir: &Path) -> HostileArchive {
    extra_entry(b"C:/x", &["\"C:/x\"", "drive letter"], dir)
}

/// An entry name that is not valid UTF-8.
pub fn name_invalid_utf8(dir: &Path) -> HostileArchive {
    extra_entry(b"objects/\xFF\xFE.jsonl", &["entry name", "UTF-8"], dir)
}

/// `tenant.json` twice in format 3, where the manifest also lists it twice.
pub fn name_duplicate(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().push(ZipEntry::new("tenant.json", "{}"));
    write(&builder, dir, &["\"tenant.json\"", "appears twice"])
}

/// `tenant.json` twice in format 2, which has no list of files: the second copy names
/// another tenant, so a reader that kept either one silently would import it.
pub fn name_duplicate_v2(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().push(other_tenant_json());
    write(&builder, dir, &["\"tenant.json\"", "appears twice"])
}

/// Returns a second format 2 `tenant.json` entry that names the tenant "Other Tenant".
fn other_tenant_json() -> ZipEntry {
    let data = ArchiveBuilder::v2()
        .replace("tenant.json", "Acme Support", "Other Tenant")
        .entry_mut("tenant.json")
        .data
        .clone();
    ZipEntry::new("tenant.json", data)
}

/// `objects.csv` twice in format 1.
pub fn name_duplicate_v1(dir: &Path) -> HostileArchive {
    let builder =
        ArchiveBuilder::v1().push(ZipEntry::new("objects.csv", "guid,type,name,attributes\n"));
    write(&builder, dir, &["\"objects.csv\"", "appears twice"])
}

/// `tenant.json` and `TENANT.json`.
pub fn name_differs_in_case(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().push(ZipEntry::new("TENANT.json", "{}"));
    write(&builder, dir, &["TENANT.json", "appears twice"])
}

// Corruption.

/// The end of the central directory is kept, but half of the directory is cut away.
pub fn central_directory_truncated(dir: &Path) -> HostileArchive {
    let bytes = ArchiveBuilder::v3().bytes();
    let end = bytes.len() - 22;
    let directory_size = u32::from_le_bytes(bytes[end + 12..end + 16].try_into().expect("4"));
    let directory_offset = u32::from_le_bytes(bytes[end + 16..end + 20].try_into().expect("4"));
    let cut = (directory_offset + directory_size / 2) as usize;
    let mut truncated = bytes[..cut].to_vec();
    truncated.extend_from_slice(&bytes[end..]);
    write_bytes(&truncated, dir, &["ZIP", "central directory"])
}

/// The file ends in the middle of an entry, as an interrupted download does.
pub fn file_truncated(dir: &Path) -> HostileArchive {
    let bytes = ArchiveBuilder::v3().bytes();
    write_bytes(
        &bytes[..bytes.len() / 2],
        dir,
        &["ZIP", "central directory"],
    )
}

/// Flips a letter of a stored entry's data and keeps the CRC of the original data. The
/// JSON stays valid, so only the CRC can tell.
fn flip_stored_letter(builder: ArchiveBuilder, name: &str, text: &str) -> ArchiveBuilder {
    builder.with_entry(name, |entry| {
        entry.method = Method::Stored;
        let mut crc = flate2::Crc::new();
        crc.update(&entry.data);
        entry.crc = Some(crc.sum());
        let at = entry
            .data
            .windows(text.len())
            .position(|window| window == text.as_bytes())
            .expect("text in entry");
        let mut data = entry.data.clone();
        data[at] ^= 0x04;
        entry.compressed = Some(data);
    })
}

/// A CRC mismatch in `tenant.json` of format 2.
pub fn crc_mismatch_v2(dir: &Path) -> HostileArchive {
    let builder = flip_stored_letter(ArchiveBuilder::v2(), "tenant.json", "acme.sip");
    write(&builder, dir, &["tenant.json", "checksum"])
}

/// A CRC mismatch in `objects.csv` of format 1.
pub fn crc_mismatch_v1(dir: &Path) -> HostileArchive {
    let builder = flip_stored_letter(ArchiveBuilder::v1(), "objects.csv", "french");
    write(&builder, dir, &["objects.csv", "checksum"])
}

/// `tenant.json` changed after the manifest's checksums were computed, same size.
pub fn manifest_checksum_mismatch(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().freeze_manifest().replace(
        "tenant.json",
        "America/New_York",
        "America/Chicago_",
    );
    write(&builder, dir, &["tenant.json", "SHA-256"])
}

/// The manifest lists `access-numbers.json` with a size one byte too large.
pub fn manifest_size_mismatch(dir: &Path) -> HostileArchive {
    let mut builder = ArchiveBuilder::v3().freeze_manifest();
    if let Some(Value::Array(files)) = &mut builder.frozen_files {
        for file in files {
            if file["path"] == "access-numbers.json" {
                let size = file["size"].as_u64().expect("size");
                file["size"] = json!(size + 1);
            }
        }
    }
    write(
        &builder,
        dir,
        &["access-numbers.json", "has 290 bytes", "lists 291"],
    )
}

/// The ZIP header of `tenant.json` declares fewer bytes than the entry holds.
pub fn zip_size_mismatch(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().with_entry("tenant.json", |entry| {
        entry.declared_size = Some(100);
    });
    write(&builder, dir, &["tenant.json", "more than the 100 bytes"])
}

/// A data file present in the archive but missing from the manifest's list.
pub fn manifest_file_unlisted(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().freeze_manifest().set(
        "objects/skill.jsonl",
        format!(
            "{}\n",
            crate::archives::object_line("5d1e0000-0000-4000-8000-000000000009", "skill", "x")
        ),
    );
    write(&builder, dir, &["objects/skill.jsonl", "not listed"])
}

// Text and JSON.

/// A byte that is not UTF-8 in the tenant name of format 3.
pub fn invalid_utf8_json(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().with_entry("tenant.json", |entry| {
        let at = entry
            .data
            .windows(4)
            .position(|window| window == b"Acme")
            .expect("name");
        entry.data[at + 1] = 0xFF;
    });
    write(&builder, dir, &["tenant.json", "UTF-8"])
}

/// A byte sequence that is not UTF-8 in an object name of format 1.
pub fn invalid_utf8_csv(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().with_entry("objects.csv", |entry| {
        let at = entry
            .data
            .windows(6)
            .position(|window| window == b"french")
            .expect("name");
        entry.data[at] = 0xC3;
        entry.data[at + 1] = 0x28;
    });
    write(&builder, dir, &["objects.csv", "UTF-8"])
}

/// Tenant settings nested 100,000 levels deep.
pub fn json_deep_document(dir: &Path) -> HostileArchive {
    let deep = nested_arrays(100_000);
    let builder = ArchiveBuilder::v3()
        .replace("tenant.json", "\"America/New_York\"", &deep)
        .with_entry("tenant.json", |entry| entry.method = Method::Stored);
    write(&builder, dir, &["tenant.json", "nest"])
}

/// Object attributes nested 100,000 levels deep on one line of format 3.
pub fn json_deep_line(dir: &Path) -> HostileArchive {
    let deep = nested_arrays(100_000);
    let builder = ArchiveBuilder::v3()
        .replace("objects/team.jsonl", "\"Zoë\"", &deep)
        .with_entry("objects/team.jsonl", |entry| entry.method = Method::Stored);
    write(&builder, dir, &["objects/team.jsonl line 1", "nest"])
}

/// A 10 MB object name on one line of format 3.
pub fn long_object_name(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().replace(
        "objects/team.jsonl",
        "\"support\"",
        &format!("\"{}\"", letters(LONG_STRING_BYTES)),
    );
    write(&builder, dir, &["objects/team.jsonl line 1", "limit"])
}

/// A 10 MB tenant name in the manifest and `tenant.json`.
pub fn long_tenant_name(dir: &Path) -> HostileArchive {
    let builder = v3_identity("name", json!(letters(LONG_STRING_BYTES)));
    write(&builder, dir, &["tenant name", "at most 255"])
}

/// A 2 MB string in the manifest, against a limit of 100 entries that makes the
/// largest valid manifest about 300 kB.
pub fn long_manifest(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3()
        .edit_manifest(|manifest| manifest["sourceCluster"] = json!(letters(2_000_000)));
    let mut archive = write(&builder, dir, &["manifest.json", "100 files"]);
    archive.options = vec!["--archive-max-entries".to_owned(), "100".to_owned()];
    archive
}

/// A 10 MB string in the tenant settings of format 3.
pub fn long_tenant_settings(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().edit_json("tenant.json", |tenant| {
        tenant["settings"]["note"] = json!(letters(LONG_STRING_BYTES));
    });
    write(&builder, dir, &["tenant.json", "maximum of 1048576"])
}

/// A 10 MB attribute of an object in the single document of format 2.
pub fn long_attribute_v2(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().edit_json("tenant.json", |tenant| {
        tenant["objects"][0]["attributes"]["note"] = json!(letters(LONG_STRING_BYTES));
    });
    write(&builder, dir, &["tenant.json", "objects[0]", "limit"])
}

/// A 10 MB attribute of an object in format 1's CSV.
pub fn long_attribute_v1(dir: &Path) -> HostileArchive {
    let long = letters(LONG_STRING_BYTES);
    let builder = ArchiveBuilder::v1().replace(
        "objects.csv",
        ",french,{}",
        &format!(",french,\"{{\"\"note\"\": \"\"{long}\"\"}}\""),
    );
    write(&builder, dir, &["objects.csv", "limit"])
}

// Access numbers.

/// A 16-digit access number in format 3.
pub fn number_too_long(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3()
        .replace("access-numbers.json", "14155550100", "1415555010000000")
        .replace("access-numbers.json", "14155550199", "1415555019900000");
    write(&builder, dir, &["access-numbers.json", "1 to 15"])
}

/// A 20-digit access number in format 1.
pub fn number_too_long_v1(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().replace(
        "access_numbers.csv",
        "16505550100,",
        "16505550100000000000,",
    );
    write(&builder, dir, &["access_numbers.csv", "1 to 15"])
}

/// A format 2 range whose count runs past the number's length.
pub fn range_count_overflow(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().edit_json("tenant.json", |tenant| {
        tenant["accessNumbers"][0] =
            json!({"number": "99999999990", "count": 20, "media": "VOICE"});
    });
    write(&builder, dir, &["tenant.json", "count"])
}

/// A format 2 range whose count is the largest 64-bit integer.
pub fn range_count_huge(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().edit_json("tenant.json", |tenant| {
        tenant["accessNumbers"][0] =
            json!({"number": "12125550000", "count": u64::MAX, "media": "VOICE"});
    });
    write(&builder, dir, &["tenant.json", "count"])
}

/// Two format 3 ranges that share numbers.
pub fn ranges_overlap(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().edit_json("access-numbers.json", |ranges| {
        if let Value::Array(ranges) = ranges {
            ranges.push(json!({"first": "14155550150", "last": "14155550250", "media": "voice"}));
        }
    });
    write(&builder, dir, &["access-numbers.json", "overlaps"])
}

// GUIDs.

/// An object GUID in braces in format 3.
pub fn guid_braced_v3(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().replace(
        "objects/user.jsonl",
        "\"5d1e0000-0000-4000-8000-000000000001\"",
        "\"{5d1e0000-0000-4000-8000-000000000001}\"",
    );
    write(&builder, dir, &["objects/user.jsonl line 1", "guid"])
}

/// The tenant GUID in upper case in format 3.
pub fn guid_upper_case_v3(dir: &Path) -> HostileArchive {
    let builder = v3_identity("guid", json!(TENANT_GUID.to_ascii_uppercase()));
    write(&builder, dir, &["guid", "lower-case"])
}

/// The tenant GUID without braces in format 1.
pub fn guid_unbraced_v1(dir: &Path) -> HostileArchive {
    let unbraced = TENANT_GUID_BRACED.trim_matches(|c| c == '{' || c == '}');
    let builder = ArchiveBuilder::v1().replace("export.properties", TENANT_GUID_BRACED, unbraced);
    write(&builder, dir, &["tenant.guid", "braces"])
}

/// The tenant GUID in lower case in format 1.
pub fn guid_lower_case_v1(dir: &Path) -> HostileArchive {
    let lower = TENANT_GUID_BRACED.to_ascii_lowercase();
    let builder = ArchiveBuilder::v1().replace("export.properties", TENANT_GUID_BRACED, &lower);
    write(&builder, dir, &["tenant.guid", "upper-case"])
}

/// A tenant GUID that is not a UUID.
pub fn guid_not_uuid(dir: &Path) -> HostileArchive {
    let builder = v3_identity("guid", json!("0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0eZZ"));
    write(
        &builder,
        dir,
        &[
            "tenant.guid",
            "\"0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0eZZ\" is invalid",
        ],
    )
}

/// An empty object GUID in format 2.
pub fn guid_empty(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().edit_json("tenant.json", |tenant| {
        tenant["objects"][1]["guid"] = json!("");
    });
    write(&builder, dir, &["objects[1].guid"])
}

// Versions.

/// `formatVersion` 4.
pub fn future_format_version(dir: &Path) -> HostileArchive {
    let builder =
        ArchiveBuilder::v3().edit_manifest(|manifest| manifest["formatVersion"] = json!(4));
    write(&builder, dir, &["formatVersion", "newer"])
}

/// `schemaVersion` 13, one above this cluster's.
pub fn future_schema_version(dir: &Path) -> HostileArchive {
    let builder =
        ArchiveBuilder::v3().edit_manifest(|manifest| manifest["schemaVersion"] = json!(13));
    write(&builder, dir, &["schemaVersion", "newer"])
}

// Missing required files.

/// Format 3 without `manifest.json`.
pub fn missing_v3_manifest(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().remove("manifest.json");
    write(&builder, dir, &["manifest.json", "missing"])
}

/// Format 3 without `tenant.json`.
pub fn missing_v3_tenant(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().remove("tenant.json");
    write(&builder, dir, &["tenant.json", "missing"])
}

/// Format 3 without `access-numbers.json`.
pub fn missing_v3_access_numbers(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().remove("access-numbers.json");
    write(&builder, dir, &["access-numbers.json", "missing"])
}

/// Format 2 without `tenant.json`.
pub fn missing_v2_tenant(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2().remove("tenant.json");
    write(&builder, dir, &["tenant.json", "missing"])
}

/// Format 1 without `export.properties`.
pub fn missing_v1_properties(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().remove("export.properties");
    write(&builder, dir, &["export.properties", "missing"])
}

/// Format 1 without `access_numbers.csv`.
pub fn missing_v1_access_numbers(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().remove("access_numbers.csv");
    write(&builder, dir, &["access_numbers.csv", "missing"])
}

/// Format 1 without `objects.csv`.
pub fn missing_v1_objects(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().remove("objects.csv");
    write(&builder, dir, &["objects.csv", "missing"])
}

// Tenant names and URLs.

/// A tenant URL that reads as SQL.
pub fn sql_in_url(dir: &Path) -> HostileArchive {
    let builder = v3_identity("url", json!("acme'; DROP TABLE tenants; --"));
    write(&builder, dir, &["tenant URL", "DROP TABLE"])
}

/// A tenant name with a bell character.
pub fn control_character_in_name(dir: &Path) -> HostileArchive {
    let builder = v3_identity("name", json!("Acme\u{7}Support"));
    write(&builder, dir, &["tenant name", "control character"])
}

/// A tenant URL with a line feed.
pub fn control_character_in_url(dir: &Path) -> HostileArchive {
    let builder = v3_identity("url", json!("acme\ncc.example.com"));
    write(&builder, dir, &["tenant URL", "invalid"])
}

/// A format 1 tenant name with an escaped NUL character.
pub fn control_character_in_name_v1(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v1().replace("export.properties", "Initech", "Ini\\u0000tech");
    write(&builder, dir, &["tenant name", "control character"])
}

/// A valid archive whose tenant name reads as SQL: it must be imported as plain text.
pub fn sql_in_name(dir: &Path) -> PathBuf {
    v3_identity("name", json!(SQL_NAME)).write(dir, "sql-name.zip")
}

/// The SQL-looking tenant name of [`sql_in_name`].
pub const SQL_NAME: &str = "Acme'; DROP TABLE tenants; --";

/// A format 3 range of 900 trillion numbers, each of them valid on its own.
pub fn range_huge(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3()
        .replace("access-numbers.json", "14155550100", "100000000000000")
        .replace("access-numbers.json", "14155550199", "999999999999999");
    write(
        &builder,
        dir,
        &["access-numbers.json", "more than the maximum of 10000000"],
    )
}

/// Two objects of format 3 with the same GUID, in different files.
pub fn guid_repeated_object(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().replace(
        "objects/team.jsonl",
        "5d1e0000-0000-4000-8000-000000000003",
        "5d1e0000-0000-4000-8000-000000000001",
    );
    write(
        &builder,
        dir,
        &["5d1e0000-0000-4000-8000-000000000001", "twice"],
    )
}

/// An object of type `team` in the file of type `user`.
pub fn object_type_mismatch(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v3().replace("objects/user.jsonl", "\"user\"", "\"team\"");
    write(&builder, dir, &["objects/user.jsonl line 1", "type"])
}

/// `tenant.json` twice in format 2, with a second end of central directory record in
/// the archive comment that declares only the first entry. The later copy names the
/// tenant that the manifest names. The repeat check and the ZIP library both take the
/// fake record, so they see one entry and no manifest.
pub fn name_duplicate_fake_end_record(dir: &Path) -> HostileArchive {
    let builder = ArchiveBuilder::v2()
        .push(other_tenant_json())
        .edit_manifest(|manifest| manifest["tenant"]["name"] = json!("Other Tenant"));
    let mut bytes = builder.bytes();

    let end = bytes.len() - 22;
    let mut fake = bytes[end..].to_vec();
    fake[8..10].copy_from_slice(&1_u16.to_le_bytes());
    fake[10..12].copy_from_slice(&1_u16.to_le_bytes());
    let comment_len = fake.len() as u16;
    let real_len = bytes.len();
    bytes[real_len - 2..].copy_from_slice(&comment_len.to_le_bytes());
    bytes.extend_from_slice(&fake);
    write_bytes(&bytes, dir, &["manifest.json", "missing"])
}

/// Number of single-number ranges in the many-ranges cases.
const MANY_RANGES: u64 = 400_000;

/// Returns `MANY_RANGES` single-number ranges as JSON array elements, each followed by a
/// comma, written by `element` from the number.
fn many_ranges(element: impl Fn(u64) -> String) -> String {
    let mut text = String::new();
    for index in 0..MANY_RANGES {
        text.push_str(&element(10_000_000_000 + index * 2));
        text.push(',');
    }
    text
}

/// 400,000 single-number ranges in format 3, the last one repeating the first. The
/// archive is rejected for the overlap only after every range was read, so the peak
/// memory shows what reading a large array of ranges costs.
pub fn ranges_many_overlap(dir: &Path) -> HostileArchive {
    let mut text = String::from("[");
    text.push_str(&many_ranges(|number| {
        format!("{{\"first\":\"{number}\",\"last\":\"{number}\",\"media\":\"voice\"}}")
    }));
    text.push_str("{\"first\":\"10000000000\",\"last\":\"10000000000\",\"media\":\"voice\"}]");
    let builder = ArchiveBuilder::v3().set("access-numbers.json", text);
    write(&builder, dir, &["field [400000]", "overlaps"])
}

/// The format 2 form of [`ranges_many_overlap`]: 400,000 ranges in `accessNumbers`
/// before the two ranges of the base archive, the last of them repeating the first.
pub fn ranges_many_overlap_v2(dir: &Path) -> HostileArchive {
    let mut ranges = many_ranges(|number| {
        format!("{{\"number\":\"{number}\",\"count\":1,\"media\":\"VOICE\"}}")
    });
    ranges.push_str("{\"number\":\"10000000000\",\"count\":1,\"media\":\"VOICE\"},");
    let builder = ArchiveBuilder::v2().replace(
        "tenant.json",
        "\"accessNumbers\": [",
        &format!("\"accessNumbers\": [{ranges}"),
    );
    write(&builder, dir, &["accessNumbers[400000]", "overlaps"])
}
