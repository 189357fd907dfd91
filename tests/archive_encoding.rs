//! Text files saved in the wrong encoding. Every text file of every format version,
//! re-encoded as UTF-16 or UTF-32 with a byte-order mark, makes the archive invalid
//! with a message that names the file and the encoding. A UTF-8 byte-order mark is
//! still accepted in each file.

#[path = "support/archives.rs"]
mod archives;

use archives::ArchiveBuilder;
use tenant_operator::archive::{Archive, ArchiveError, Limits, Location};

const MANIFEST: &str = "manifest.json";
const PROPERTIES: &str = "export.properties";

/// The text the message gives as the rule for files that must be UTF-8.
const UTF8_RULE: &str = "tenant archive text files must be UTF-8";
/// The text the message gives as the rule for `export.properties`.
const PROPERTIES_RULE: &str = "export.properties must be ISO-8859-1 with \\uXXXX escapes";

/// A Unicode encoding form that a Windows editor may save a file in, with its
/// byte-order mark.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

const ENCODINGS: [Encoding; 4] = [
    Encoding::Utf16Le,
    Encoding::Utf16Be,
    Encoding::Utf32Le,
    Encoding::Utf32Be,
];

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::Utf32Le => "UTF-32LE",
            Self::Utf32Be => "UTF-32BE",
        }
    }

    /// Encodes `text` with a byte-order mark first.
    fn encode(self, text: &str) -> Vec<u8> {
        let text = format!("\u{FEFF}{text}");
        let mut bytes = Vec::new();
        match self {
            Self::Utf16Le => text
                .encode_utf16()
                .for_each(|unit| bytes.extend(unit.to_le_bytes())),
            Self::Utf16Be => text
                .encode_utf16()
                .for_each(|unit| bytes.extend(unit.to_be_bytes())),
            Self::Utf32Le => text
                .chars()
                .for_each(|char| bytes.extend(u32::from(char).to_le_bytes())),
            Self::Utf32Be => text
                .chars()
                .for_each(|char| bytes.extend(u32::from(char).to_be_bytes())),
        }
        bytes
    }
}

/// Returns the valid archives of formats 1 to 3, each with the names of its text files.
fn archives_and_text_files() -> Vec<(ArchiveBuilder, Vec<&'static str>)> {
    vec![
        (
            ArchiveBuilder::v1(),
            vec![PROPERTIES, "access_numbers.csv", "objects.csv"],
        ),
        (ArchiveBuilder::v2(), vec![MANIFEST, "tenant.json"]),
        (
            ArchiveBuilder::v3(),
            vec![
                MANIFEST,
                "tenant.json",
                "access-numbers.json",
                "objects/user.jsonl",
                "objects/team.jsonl",
            ],
        ),
    ]
}

/// Replaces the bytes of `file` with `change` of them. When the file is the manifest,
/// the manifest becomes an ordinary entry first. Otherwise its `files` list is computed
/// from the changed bytes, so format 3 checksums still match.
fn change_file(
    builder: &ArchiveBuilder,
    file: &str,
    change: impl FnOnce(&[u8]) -> Vec<u8>,
) -> ArchiveBuilder {
    let builder = if file == MANIFEST {
        builder.clone().manifest_as_entry()
    } else {
        builder.clone()
    };
    builder.with_entry(file, |entry| entry.data = change(&entry.data))
}

fn reencode(encoding: Encoding) -> impl FnOnce(&[u8]) -> Vec<u8> {
    move |bytes| encoding.encode(std::str::from_utf8(bytes).expect("UTF-8 entry"))
}

#[test]
fn foreign_byte_order_marks_are_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut failures = Vec::new();
    let mut count = 0;
    for (builder, files) in archives_and_text_files() {
        for file in files {
            for encoding in ENCODINGS {
                count += 1;
                let case = format!("format {} {file} in {}", builder.format, encoding.name());
                let path =
                    change_file(&builder, file, reencode(encoding)).write(dir.path(), "case.zip");
                let invalid = match Archive::open(&path, &Limits::default()) {
                    Ok(_) => {
                        failures.push(format!("{case}: accepted"));
                        continue;
                    }
                    Err(ArchiveError::Invalid(invalid)) => invalid,
                    Err(other) => {
                        failures.push(format!("{case}: not invalid but {other}"));
                        continue;
                    }
                };
                let expected = Location::Line {
                    file: file.to_owned(),
                    line: 1,
                };
                let rule = if file == PROPERTIES {
                    PROPERTIES_RULE
                } else {
                    UTF8_RULE
                };
                let mark = format!("starts with a {} byte-order mark", encoding.name());
                if invalid.location != expected {
                    failures.push(format!(
                        "{case}: location {} (expected {expected}): {}",
                        invalid.location, invalid.problem
                    ));
                } else if !invalid.problem.contains(&mark) {
                    failures.push(format!("{case}: {:?} lacks {mark:?}", invalid.problem));
                } else if !invalid.problem.contains(rule) {
                    failures.push(format!("{case}: {:?} lacks {rule:?}", invalid.problem));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn foreign_mark_message_names_remedy() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let cases = [
        (
            ArchiveBuilder::v1(),
            PROPERTIES,
            "invalid archive: export.properties line 1: file starts with a UTF-16LE \
             byte-order mark, but export.properties must be ISO-8859-1 with \\uXXXX escapes; \
             save it as ISO-8859-1 and write other characters as \\uXXXX escapes",
        ),
        (
            ArchiveBuilder::v3(),
            "objects/user.jsonl",
            "invalid archive: objects/user.jsonl line 1: file starts with a UTF-16LE \
             byte-order mark, but tenant archive text files must be UTF-8; save the file \
             as UTF-8",
        ),
    ];
    for (builder, file, expected) in cases {
        let path =
            change_file(&builder, file, reencode(Encoding::Utf16Le)).write(dir.path(), "case.zip");
        let error = Archive::open(&path, &Limits::default()).expect_err("archive accepted");
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn foreign_mark_alone_is_rejected() {
    // A file of only the mark, or of the mark and part of a character, is shorter
    // than the longest mark the reader looks for.
    let dir = tempfile::tempdir().expect("temporary folder");
    let cases: [(&[u8], &str); 3] = [
        (b"\xFF\xFE", "UTF-16LE"),
        (b"\xFE\xFF\x00", "UTF-16BE"),
        (b"\x00\x00\xFE\xFF", "UTF-32BE"),
    ];
    for (bytes, encoding) in cases {
        let path = change_file(&ArchiveBuilder::v3(), "objects/user.jsonl", |_| {
            bytes.to_vec()
        })
        .write(dir.path(), "case.zip");
        let error = Archive::open(&path, &Limits::default()).expect_err("archive accepted");
        let ArchiveError::Invalid(invalid) = error else {
            panic!("{encoding}: expected invalid, got {error}");
        };
        assert!(invalid.problem.contains(encoding), "{}", invalid.problem);
    }
}

#[test]
fn utf8_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let add_mark = |bytes: &[u8]| [b"\xEF\xBB\xBF".as_slice(), bytes].concat();
    for (builder, files) in archives_and_text_files() {
        for file in files {
            let case = format!("format {} {file}", builder.format);
            let path = change_file(&builder, file, add_mark).write(dir.path(), "case.zip");
            let archive = Archive::open(&path, &Limits::default())
                .unwrap_or_else(|error| panic!("{case}: {error}"));
            assert_eq!(archive.summary.objects, 3, "{case}");
            assert_eq!(archive.format_version, builder.format, "{case}");
        }
    }
}
