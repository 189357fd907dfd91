//! Format 1: export.properties (Java properties in ISO-8859-1), access_numbers.csv
//! and objects.csv (RFC 4180).

use std::collections::HashMap;
use std::io::{self, Read};

use serde_json::{Map, Value};

use super::entry::{Contents, EntryReader, Zip, invalid_file};
use super::json;
use super::text::{self, TextEncoding};
use super::values::{self, GuidForm, RawIdentity};
use super::{
    Header, InvalidArchive, Layout, Limits, LocatedObject, Location, RangePlaces, Stop,
    field_problem, require,
};
use crate::model::{AccessNumber, ConfigObject, Media, NumberRange, TenantRecord, TenantStatus};

/// Name of the properties file that contains the tenant of a format 1 archive.
pub(crate) const PROPERTIES: &str = "export.properties";
const ACCESS_NUMBERS: &str = "access_numbers.csv";
const OBJECTS: &str = "objects.csv";
const NUMBER_HEADER: [&str; 3] = ["number", "count", "media"];
const OBJECT_HEADER: [&str; 4] = ["guid", "type", "name", "attributes"];

/// Maximum size of export.properties, which contains a handful of short values.
pub const MAX_PROPERTIES_BYTES: u64 = 1 << 20;

/// The key-value pairs of export.properties.
#[derive(Debug, Default)]
pub(crate) struct Properties {
    values: HashMap<String, String>,
}

enum RowStop<E> {
    Io(io::Error),
    Stop(Stop<E>),
}

impl<E> From<InvalidArchive> for RowStop<E> {
    fn from(invalid: InvalidArchive) -> Self {
        Self::Stop(Stop::Invalid(invalid))
    }
}

impl Properties {
    /// Reads export.properties as ISO-8859-1 with `\uXXXX` escapes.
    pub fn read(
        zip: &mut Zip,
        contents: &Contents,
        _limits: &Limits,
    ) -> Result<Self, InvalidArchive> {
        let info = require(contents, PROPERTIES, 1)?;
        if info.size > MAX_PROPERTIES_BYTES {
            return Err(invalid_file(
                PROPERTIES,
                format!(
                    "file has {} bytes, more than the maximum of {MAX_PROPERTIES_BYTES}",
                    info.size
                ),
            ));
        }
        let mut entry = EntryReader::open(zip, info)?;
        let mut bytes = Vec::new();
        if let Err(error) = entry.read_to_end(&mut bytes) {
            return Err(entry.read_failure(&error));
        }
        entry.finish()?;
        Self::parse(text::check_bom(
            PROPERTIES,
            TextEncoding::Latin1Escaped,
            &bytes,
        )?)
    }

    /// Parses properties text in ISO-8859-1. Bytes 0x80 to 0x9F, control characters in
    /// ISO-8859-1 that a Windows-1252 file uses for letters, are rejected.
    fn parse(bytes: &[u8]) -> Result<Self, InvalidArchive> {
        if let Some(position) = bytes.iter().position(|byte| (0x80..=0x9F).contains(byte)) {
            let line = bytes[..position]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count() as u64
                + 1;
            return Err(InvalidArchive {
                location: Location::Line {
                    file: PROPERTIES.to_owned(),
                    line,
                },
                problem: format!(
                    "byte 0x{:02X} is a control character in ISO-8859-1; write other characters as \\uXXXX escapes",
                    bytes[position]
                ),
            });
        }

        // ISO-8859-1 maps each byte to the code point of the same value. The parser gets
        // the text as UTF-8, whose first byte is then never 0xEF, 0xFE or 0xFF. Its decoder
        // sniffs for a byte-order mark and panics when it still buffers such bytes at the end
        // of the input, as for a file of only 0xFF.
        let mut text: String = bytes.iter().copied().map(char::from).collect();

        // Java's Properties.load keeps a last line that ends in a continuation backslash,
        // without the backslash. java-properties drops that line, so it gets a line break
        // to continue onto.
        let trailing_backslashes = text.bytes().rev().take_while(|byte| *byte == b'\\').count();
        if trailing_backslashes % 2 == 1 {
            text.push('\n');
        }

        let mut values = HashMap::new();
        java_properties::PropertiesIter::new_with_encoding(text.as_bytes(), encoding_rs::UTF_8)
            .read_into(|key, value| {
                values.insert(key, value);
            })
            .map_err(|error| InvalidArchive {
                location: match error.line_number() {
                    Some(line) => Location::Line {
                        file: PROPERTIES.to_owned(),
                        line: line as u64,
                    },
                    None => Location::File(PROPERTIES.to_owned()),
                },
                problem: format!("invalid properties syntax: {}", describe(&error)),
            })?;
        Ok(Self { values })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, InvalidArchive> {
        self.get(key)
            .ok_or_else(|| field_problem(PROPERTIES, None, key, "property is missing"))
    }

    fn number(&self, key: &str) -> Result<u32, InvalidArchive> {
        let text = self.required(key)?;
        text.trim().parse().map_err(|_| {
            field_problem(
                PROPERTIES,
                None,
                key,
                format!(
                    "{:?} is not a valid version; expected a positive integer",
                    crate::model::truncate_for_message(text)
                ),
            )
        })
    }

    /// Returns `format.version`.
    pub fn format_version(&self) -> Result<u32, InvalidArchive> {
        self.number("format.version")
    }

    /// Returns `schema.version`.
    pub fn schema_version(&self) -> Result<u32, InvalidArchive> {
        self.number("schema.version")
    }
}

fn describe(error: &java_properties::PropertiesError) -> String {
    let text = error.to_string();
    text.rsplit_once(" (line_number")
        .map_or(text.clone(), |(message, _)| message.to_owned())
}

/// Reads the tenant from export.properties and the ranges from access_numbers.csv.
pub(crate) fn read_header(
    zip: &mut Zip,
    contents: &Contents,
    properties: &Properties,
    limits: &Limits,
) -> Result<Header, InvalidArchive> {
    require(contents, PROPERTIES, 1)?;
    let numbers_info = require(contents, ACCESS_NUMBERS, 1)?;
    require(contents, OBJECTS, 1)?;

    let text = |key: &str| {
        properties
            .get(key)
            .map(|value| Value::String(value.to_owned()))
    };
    let raw = RawIdentity {
        guid: text("tenant.guid"),
        url: text("tenant.url"),
        name: text("tenant.name"),
    };
    let identity = values::identity(&raw, GuidForm::Braced).map_err(|problem| {
        field_problem(
            PROPERTIES,
            None,
            format!("tenant.{}", problem.field),
            problem.problem,
        )
    })?;
    let status = match properties.get("tenant.status") {
        None => TenantStatus::Active,
        Some(status) => values::legacy_status(status)
            .map_err(|problem| field_problem(PROPERTIES, None, "tenant.status", problem))?,
    };
    let tenant = TenantRecord {
        identity,
        status,
        sip_domain: None,
        created_at: None,
        settings: Map::new(),
    };

    let mut ranges = Vec::new();
    let mut lines = Vec::new();
    let mut entry = EntryReader::open(zip, numbers_info)?;
    let read =
        for_each_row::<InvalidArchive>(&mut entry, &NUMBER_HEADER, limits, |line, fields| {
            ranges.push(range(line, fields)?);
            lines.push(line);
            Ok(())
        });
    finish_rows(&mut entry, read).map_err(|stop| match stop {
        Stop::Invalid(invalid) | Stop::Sink(invalid) => invalid,
    })?;
    entry.finish()?;

    Ok(Header {
        tenant,
        ranges,
        range_places: RangePlaces::Lines {
            file: ACCESS_NUMBERS,
            lines,
        },
        layout: Layout::V1,
    })
}

/// Streams the rows of objects.csv.
pub(crate) fn walk_objects<E>(
    zip: &mut Zip,
    contents: &Contents,
    limits: &Limits,
    sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    let info = require(contents, OBJECTS, 1)?;
    let mut entry = EntryReader::open(zip, info)?;
    let read = for_each_row(&mut entry, &OBJECT_HEADER, limits, |line, fields| {
        let object = object(line, fields, limits)?;
        let location = Location::Line {
            file: OBJECTS.to_owned(),
            line,
        };
        sink(LocatedObject { location, object }).map_err(|error| RowStop::Stop(Stop::Sink(error)))
    });
    finish_rows(&mut entry, read)?;
    entry.finish()?;
    Ok(())
}

fn finish_rows<E>(
    entry: &mut EntryReader<'_>,
    read: Result<(), RowStop<E>>,
) -> Result<(), Stop<E>> {
    match read {
        Ok(()) => Ok(()),
        Err(RowStop::Stop(stop)) => Err(stop),
        Err(RowStop::Io(error)) => Err(Stop::Invalid(entry.read_failure(&error))),
    }
}

/// Reads the CSV rows of an entry after checking its header, passing each row's line
/// number and fields to `row`.
fn for_each_row<E>(
    entry: &mut EntryReader<'_>,
    header: &[&str],
    limits: &Limits,
    mut row: impl FnMut(u64, &[&str]) -> Result<(), RowStop<E>>,
) -> Result<(), RowStop<E>> {
    let file = entry.name().to_owned();
    let text = text::open_text(entry, TextEncoding::Utf8)?;
    let limited = RowLimitedReader::new(text, limits.max_line_bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(limited);
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                if let Some(line) = reader.get_ref().exceeded_at_line {
                    return Err(InvalidArchive {
                        location: Location::Line { file, line },
                        problem: format!(
                            "row is longer than the limit of {} bytes (--archive-max-line-bytes)",
                            limits.max_line_bytes
                        ),
                    }
                    .into());
                }
                return Err(csv_error(&file, error));
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        let mut fields = Vec::with_capacity(header.len());
        for (index, field) in record.iter().enumerate() {
            let name = header.get(index).copied().unwrap_or("?");
            let text = std::str::from_utf8(field).map_err(|error| {
                field_problem(
                    &file,
                    Some(line),
                    name,
                    format!(
                        "value is not valid UTF-8 (at byte {}); text must be UTF-8",
                        error.valid_up_to() + 1
                    ),
                )
            })?;
            fields.push(text);
        }
        if first {
            first = false;
            if fields != header {
                return Err(InvalidArchive {
                    location: Location::Line { file, line },
                    problem: format!(
                        "header is {:?}; expected {:?}",
                        crate::model::truncate_for_message(&fields.join(",")),
                        header.join(",")
                    ),
                }
                .into());
            }
            continue;
        }
        row(line, &fields)?;
    }
    if first {
        return Err(invalid_file(
            &file,
            format!("file is empty; expected the header {}", header.join(",")),
        )
        .into());
    }
    Ok(())
}

/// Passes CSV bytes through and fails once one row, quoted line breaks included, is
/// longer than the limit, so the CSV parser never buffers an oversized row.
// NOTE: a lone quote inside an unquoted field, which the CSV parser takes literally,
// makes this reader count the following lines as one row until the next quote.
struct RowLimitedReader<R> {
    inner: R,
    max_bytes: u64,
    row_bytes: u64,
    in_quotes: bool,
    line: u64,
    row_line: u64,
    exceeded_at_line: Option<u64>,
}

impl<R: Read> RowLimitedReader<R> {
    fn new(inner: R, max_bytes: u64) -> Self {
        Self {
            inner,
            max_bytes,
            row_bytes: 0,
            in_quotes: false,
            line: 1,
            row_line: 1,
            exceeded_at_line: None,
        }
    }
}

impl<R: Read> Read for RowLimitedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let too_long = || io::Error::new(io::ErrorKind::InvalidData, "row too long");
        if self.exceeded_at_line.is_some() {
            return Err(too_long());
        }
        let count = self.inner.read(buffer)?;
        for &byte in &buffer[..count] {
            // A doubled quote inside a quoted field toggles twice, so the state stays right.
            if byte == b'"' {
                self.in_quotes = !self.in_quotes;
            }
            if byte == b'\n' {
                self.line += 1;
                if !self.in_quotes {
                    self.row_bytes = 0;
                    self.row_line = self.line;
                    continue;
                }
            }
            self.row_bytes += 1;
            if self.row_bytes > self.max_bytes {
                self.exceeded_at_line = Some(self.row_line);
                return Err(too_long());
            }
        }
        Ok(count)
    }
}

fn csv_error<E>(file: &str, error: csv::Error) -> RowStop<E> {
    let line = error.position().map(csv::Position::line);
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(error) => RowStop::Io(error),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => InvalidArchive {
            location: Location::Line {
                file: file.to_owned(),
                line: line.unwrap_or(0),
            },
            problem: format!("row has {len} fields; expected {expected_len}"),
        }
        .into(),
        _ => InvalidArchive {
            location: match line {
                Some(line) => Location::Line {
                    file: file.to_owned(),
                    line,
                },
                None => Location::File(file.to_owned()),
            },
            problem: format!("invalid CSV: {message}"),
        }
        .into(),
    }
}

fn range<E>(line: u64, fields: &[&str]) -> Result<NumberRange, RowStop<E>> {
    let at =
        |field: &str, problem: String| field_problem(ACCESS_NUMBERS, Some(line), field, problem);
    let first = AccessNumber::parse(fields[0]).map_err(|error| at("number", error.0))?;
    let count = match fields[1] {
        "" => 1,
        text => text.parse::<i64>().map_err(|_| {
            at(
                "count",
                format!("count {:?} is invalid; expected an integer of 1 or more, or empty for a single number", crate::model::truncate_for_message(text)),
            )
        })?,
    };
    let media = match fields[2] {
        "" => Media::Voice,
        text => values::legacy_media(text).map_err(|problem| at("media", problem))?,
    };
    Ok(NumberRange::from_count(first, count, media, None).map_err(|error| at("count", error.0))?)
}

fn object<E>(line: u64, fields: &[&str], limits: &Limits) -> Result<ConfigObject, RowStop<E>> {
    let at = |field: &str, problem: String| field_problem(OBJECTS, Some(line), field, problem);
    let guid =
        values::parse_guid(fields[0], GuidForm::Braced).map_err(|problem| at("guid", problem))?;
    values::check_type(fields[1]).map_err(|problem| at("type", problem))?;
    values::check_object_name(fields[2]).map_err(|problem| at("name", problem))?;
    let attributes = if fields[3].is_empty() {
        Map::new()
    } else {
        match json::parse_field_json::<Value>(fields[3], limits.max_json_depth) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(at(
                    "attributes",
                    format!("expected a JSON object, found {}", values::kind(&other)),
                )
                .into());
            }
            Err(problem) => return Err(at("attributes", problem).into()),
        }
    };
    Ok(ConfigObject {
        guid,
        object_type: fields[1].to_owned(),
        name: fields[2].to_owned(),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_decode_escapes_and_separators() {
        let text = b"# comment\n! other\ntenant.name : Initech\\: Zo\\u00EB's \\\n  Help Desk\nkey=caf\xE9\n";
        let properties = Properties::parse(text).ok().unwrap_or_default();
        assert_eq!(
            properties.get("tenant.name"),
            Some("Initech: Zoë's Help Desk")
        );
        assert_eq!(properties.get("key"), Some("café"));
    }

    #[test]
    fn row_limit_counts_quoted_line_breaks() {
        let text = b"a,b\n\"1\n2\n3\n4\",x\nshort\n";
        let mut reader = RowLimitedReader::new(&text[..], 8);
        let mut sink = Vec::new();
        assert!(reader.read_to_end(&mut sink).is_err());
        assert_eq!(reader.exceeded_at_line, Some(2));

        let mut reader = RowLimitedReader::new(&text[..], 11);
        assert!(reader.read_to_end(&mut sink).is_ok());
    }

    #[test]
    fn properties_reject_c1_controls() {
        let error = Properties::parse(b"a=1\nb=\x85\n").err();
        assert_eq!(
            error.map(|error| error.location),
            Some(Location::Line {
                file: PROPERTIES.to_owned(),
                line: 2
            })
        );
    }
}
