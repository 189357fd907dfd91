//! The encoding of archive text files. Every text file passes through [`check_bom`],
//! directly or through [`open_text`], before a parser reads it. A UTF-8 byte-order mark
//! is skipped. A UTF-16 or UTF-32 one, which a Windows editor writes, makes the file
//! invalid with a message that names the encoding, because a parser that read such a
//! file as UTF-8 or ISO-8859-1 would report a misleading problem.

use std::io::{self, Read};

use super::entry::EntryReader;
use super::{InvalidArchive, Location};

/// The UTF-8 byte-order mark, which any text file may start with.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Byte-order marks of the encodings that archives must not use, with the names of
/// the encodings. The UTF-32LE mark starts with the UTF-16LE one, so it comes first.
const FOREIGN_BOMS: [(&[u8], &str); 4] = [
    (b"\xFF\xFE\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xFE\xFF", "UTF-32BE"),
    (b"\xFF\xFE", "UTF-16LE"),
    (b"\xFE\xFF", "UTF-16BE"),
];

/// Length of the longest byte-order mark.
const MAX_BOM_BYTES: u64 = 4;

/// The encoding that a text file of an archive must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    /// UTF-8, the encoding of every text file except format 1's export.properties.
    Utf8,
    /// ISO-8859-1 with `\uXXXX` escapes for other characters, the encoding of
    /// export.properties.
    Latin1Escaped,
}

/// Reader of a text entry after its byte-order mark: the rest of the bytes that were
/// read to check the mark, then the rest of the entry.
pub(crate) type TextReader<'e, 'z> = io::Chain<io::Cursor<Vec<u8>>, &'e mut EntryReader<'z>>;

/// Reads the first bytes of a text entry and checks them with [`check_bom`]. Returns a
/// reader of the text after a UTF-8 byte-order mark.
pub(crate) fn open_text<'e, 'z>(
    entry: &'e mut EntryReader<'z>,
    encoding: TextEncoding,
) -> Result<TextReader<'e, 'z>, InvalidArchive> {
    let mut head = Vec::new();
    if let Err(error) = (&mut *entry).take(MAX_BOM_BYTES).read_to_end(&mut head) {
        return Err(entry.read_failure(&error));
    }
    let skipped = head.len() - check_bom(entry.name(), encoding, &head)?.len();
    let mut cursor = io::Cursor::new(head);
    cursor.set_position(skipped as u64);
    Ok(cursor.chain(entry))
}

/// Checks the start of the text file `file` and returns the text after a UTF-8
/// byte-order mark, or all of it when there is no mark.
///
/// # Errors
///
/// Returns a problem at line 1 of `file` when the text starts with a UTF-16 or UTF-32
/// byte-order mark.
// NOTE: UTF-16 or UTF-32 text without a byte-order mark passes, and the parser then
// reports what it misreads.
pub(crate) fn check_bom<'b>(
    file: &str,
    encoding: TextEncoding,
    bytes: &'b [u8],
) -> Result<&'b [u8], InvalidArchive> {
    let foreign = FOREIGN_BOMS.iter().find(|(bom, _)| bytes.starts_with(bom));
    if let Some((_, found)) = foreign {
        return Err(foreign_bom(file, encoding, found));
    }
    Ok(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes))
}

fn foreign_bom(file: &str, encoding: TextEncoding, found: &str) -> InvalidArchive {
    let rule = match encoding {
        TextEncoding::Utf8 => {
            "tenant archive text files must be UTF-8; save the file as UTF-8".to_owned()
        }
        TextEncoding::Latin1Escaped => format!(
            "{file} must be ISO-8859-1 with \\uXXXX escapes; save it as ISO-8859-1 and write other characters as \\uXXXX escapes"
        ),
    };
    InvalidArchive {
        location: Location::Line {
            file: file.to_owned(),
            line: 1,
        },
        problem: format!("file starts with a {found} byte-order mark, but {rule}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_encoding(bytes: &[u8]) -> Option<String> {
        let error = check_bom("a.json", TextEncoding::Utf8, bytes).err()?;
        let problem = error.problem.strip_prefix("file starts with a ")?;
        problem.split_once(' ').map(|(name, _)| name.to_owned())
    }

    #[test]
    fn check_bom_names_each_foreign_mark() {
        let cases: [(&[u8], &str); 5] = [
            (b"\xFF\xFE{\x00", "UTF-16LE"),
            (b"\xFE\xFF\x00{", "UTF-16BE"),
            (b"\xFF\xFE\x00\x00{\x00\x00\x00", "UTF-32LE"),
            (b"\x00\x00\xFE\xFF\x00\x00\x00{", "UTF-32BE"),
            (b"\xFF\xFE", "UTF-16LE"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                found_encoding(bytes).as_deref(),
                Some(expected),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn check_bom_skips_utf8_mark() {
        let text = check_bom("a.json", TextEncoding::Utf8, b"\xEF\xBB\xBF{}").ok();
        assert_eq!(text, Some(&b"{}"[..]));
    }

    #[test]
    fn check_bom_keeps_text_without_mark() {
        for bytes in [&b""[..], b"\xFF", b"\xEF\xBB", b"\x00\x00\xFE", b"{}"] {
            let text = check_bom("a.json", TextEncoding::Utf8, bytes).ok();
            assert_eq!(text, Some(bytes));
        }
    }

    #[test]
    fn check_bom_locates_line_one() {
        let error = check_bom(
            "export.properties",
            TextEncoding::Latin1Escaped,
            b"\xFE\xFF",
        );
        let location = error.err().map(|error| error.location);
        assert_eq!(
            location,
            Some(Location::Line {
                file: "export.properties".to_owned(),
                line: 1
            })
        );
    }
}
