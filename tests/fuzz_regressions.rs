//! Regression tests for archive inputs that the reader handled wrongly, found by the
//! fuzz targets under fuzz/ or by probing the format-1 parsers by hand. Each input is
//! built in code, and each test states the behavior the reader must keep.

#[path = "../fuzz/fuzz_targets/common.rs"]
mod fuzz_common;
mod support;

use std::io::Write;

use tenant_operator::archive::{Archive, ArchiveError, Limits};

/// The properties of a valid format-1 tenant, without `tenant.name`.
const PROPERTIES_HEAD: &str = "format.version=1\nschema.version=5\n\
    tenant.guid={3BB427C1-A1DA-459D-AAD1-245C92010B38}\ntenant.url=initech.cc.example.com\n";
const NUMBERS: &[u8] = b"number,count,media\n16505550000,10,\n";
const OBJECTS: &[u8] = b"guid,type,name,attributes\n\
    {E158FB57-A6E0-4B64-BA9D-969146FC8893},disposition,Resolved,\"{\"\"code\"\": 1}\"\n";

/// Writes a format-1 archive of the three files, stored without compression, to a
/// temporary file.
fn format1_archive(properties: &[u8], numbers: &[u8], objects: &[u8]) -> tempfile::NamedTempFile {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, contents) in [
        ("export.properties", properties),
        ("access_numbers.csv", numbers),
        ("objects.csv", objects),
    ] {
        writer.start_file(name, options).expect("start entry");
        writer.write_all(contents).expect("write entry");
    }
    let bytes = writer.finish().expect("finish archive").into_inner();
    let mut file = tempfile::NamedTempFile::new().expect("create archive file");
    file.write_all(&bytes).expect("write archive file");
    file
}

/// Opens a format-1 archive whose properties end with `last_line`.
fn open_with_last_property(last_line: &str) -> Result<Archive, ArchiveError> {
    let properties = format!("{PROPERTIES_HEAD}{last_line}");
    let file = format1_archive(properties.as_bytes(), NUMBERS, OBJECTS);
    Archive::open(file.path(), &Limits::default())
}

#[test]
fn properties_last_line_continuation_kept() {
    // The last line ends in a continuation backslash and no line break. Java reads the
    // value without the backslash, and the reader used to drop the property.
    let archive = open_with_last_property("tenant.name=Initech\\").expect("archive opens");
    assert_eq!(archive.tenant.identity.name, "Initech");
    assert_eq!(archive.summary.objects, 1);
    assert_eq!(archive.summary.numbers, 10);
}

#[test]
fn properties_last_line_escaped_backslash_kept() {
    // Two backslashes are one escaped backslash, not a continuation.
    let archive = open_with_last_property("tenant.name=Initech\\\\").expect("archive opens");
    assert_eq!(archive.tenant.identity.name, "Initech\\");
}

#[test]
fn properties_continuation_before_line_break_joins() {
    let archive =
        open_with_last_property("tenant.name=Initech \\\n    Help Desk\\").expect("archive opens");
    assert_eq!(archive.tenant.identity.name, "Initech Help Desk");
}

#[test]
fn properties_byte_order_mark_bytes_rejected() {
    // The parser's decoder buffered these bytes while it looked for a byte-order mark,
    // and panicked at the end of the input. The first case is the input the fuzzer found.
    let cases: [(&str, &[u8]); 4] = [
        ("UTF-16 mark and an odd byte", b"\xFE\xFF\xFF\xB8\xDF"),
        ("one 0xFF byte", b"\xFF"),
        ("half a UTF-8 mark", b"\xEF\xBB"),
        ("UTF-16 little-endian mark", b"\xFF\xFEf\x00=\x001\x00"),
    ];
    for (case, properties) in cases {
        let file = format1_archive(properties, NUMBERS, OBJECTS);
        let result = Archive::open(file.path(), &Limits::default());
        assert!(
            matches!(result, Err(ArchiveError::Invalid(_))),
            "{case}: {result:?}"
        );
    }
}

#[test]
fn properties_decoded_as_latin1() {
    // 0xFE is þ and 0xF3 is ó in ISO-8859-1.
    let mut properties = PROPERTIES_HEAD.as_bytes().to_vec();
    properties.extend_from_slice(b"tenant.name=\xFE\xF3rr\n");
    let file = format1_archive(&properties, NUMBERS, OBJECTS);
    let archive = Archive::open(file.path(), &Limits::default()).expect("archive opens");
    assert_eq!(archive.tenant.identity.name, "þórr");
}

/// The fuzz targets start from the sample archives, so their small limits must accept
/// them, and the fuzz harness must stream every one of them without a panic.
#[test]
fn fuzz_limits_accept_samples() {
    let mut samples = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/sample-tenant-v3.zip"
    ))];
    if let Some(dir) = support::shared_examples() {
        let entries = std::fs::read_dir(&dir).expect("list the sample archives");
        let paths = entries.map(|entry| entry.expect("read a folder entry").path());
        samples.extend(paths.filter(|path| path.extension().is_some_and(|ext| ext == "zip")));
    }
    for sample in samples {
        let archive = Archive::open(&sample, &fuzz_common::small_limits());
        assert!(archive.is_ok(), "{}: {archive:?}", sample.display());
        let bytes = std::fs::read(&sample).expect("read sample archive");
        fuzz_common::open_and_stream(&bytes, 7);
    }
}
