//! Format 3: manifest with checksums, tenant.json, access-numbers.json and one JSON
//! Lines file per object type.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufReader;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use super::entry::{Contents, EntryDigest, EntryReader, Zip, invalid_file};
use super::json::{self, LineError, LineReader};
use super::text::{self, TextEncoding};
use super::values::{self, FieldProblem, GuidForm, RawIdentity, RawObject, RawTenant};
use super::{
    Header, InvalidArchive, Layout as AnyLayout, Limits, LocatedObject, Location, RangePlaces,
    RawManifest, Stop, field_problem, require,
};
use crate::model::{AccessNumber, NumberRange};

const MANIFEST: &str = "manifest.json";
const TENANT: &str = "tenant.json";

/// Maximum size of `tenant.json`. It contains one tenant, whose settings are the only
/// free-form part, so a larger file can only spend memory on a hostile value.
pub const MAX_TENANT_BYTES: u64 = 1 << 20;
const ACCESS_NUMBERS: &str = "access-numbers.json";
const OBJECTS_PREFIX: &str = "objects/";
const OBJECTS_SUFFIX: &str = ".jsonl";

/// Object files of a format 3 archive and the checksums they must match.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Object files as (entry name, type), in central-directory order.
    object_files: Vec<(String, String)>,
    /// Size and SHA-256 of every file that the manifest lists.
    listed: BTreeMap<String, EntryDigest>,
}

/// One element of the manifest's `files`, before its fields are checked.
#[derive(Debug, Deserialize)]
pub(crate) struct RawListedFile {
    path: Option<Value>,
    sha256: Option<Value>,
    size: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawRange {
    first: Option<Value>,
    last: Option<Value>,
    media: Option<Value>,
    trunk: Option<Value>,
}

/// Converts the elements of the access-numbers array one at a time, so the raw JSON of
/// millions of ranges is never held at once.
struct RangesSeed<'s> {
    ranges: &'s mut Vec<NumberRange>,
    invalid: &'s mut Option<InvalidArchive>,
}

impl<'de> DeserializeSeed<'de> for RangesSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RangesSeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of access-number ranges")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<RawRange>()? {
            let index = self.ranges.len();
            match range(&raw) {
                Ok(range) => self.ranges.push(range),
                Err(problem) => {
                    *self.invalid =
                        Some(at_element(ACCESS_NUMBERS, &format!("[{index}]"), problem));
                    return Err(de::Error::custom("invalid range"));
                }
            }
        }
        Ok(())
    }
}

impl Layout {
    /// Streams the objects of every object file, checking each file's checksum.
    pub fn walk_objects<E>(
        &self,
        zip: &mut Zip,
        contents: &Contents,
        limits: &Limits,
        sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
    ) -> Result<(), Stop<E>> {
        for (name, object_type) in &self.object_files {
            let info = require(contents, name, 3)?;
            let mut entry = EntryReader::open(zip, info)?;
            let streamed = walk_file(&mut entry, object_type, limits, sink);
            match streamed {
                Ok(()) => {}
                Err(FileStop::Io(error)) => {
                    return Err(Stop::Invalid(entry.read_failure(&error)));
                }
                Err(FileStop::Invalid(invalid)) => return Err(Stop::Invalid(invalid)),
                Err(FileStop::Sink(error)) => return Err(Stop::Sink(error)),
            }
            let digest = entry.finish()?;
            self.verify(name, &digest)?;
        }
        Ok(())
    }

    /// Reads and checks every listed file that is neither tenant, access numbers nor
    /// an object file, so a tampered extra file is caught too.
    pub fn verify_other_files(
        &self,
        zip: &mut Zip,
        contents: &Contents,
    ) -> Result<(), InvalidArchive> {
        for name in self.listed.keys() {
            let is_objects = self.object_files.iter().any(|(file, _)| file == name);
            if name == TENANT || name == ACCESS_NUMBERS || is_objects {
                continue;
            }
            let info = require(contents, name, 3)?;
            let digest = EntryReader::open(zip, info)?.finish()?;
            self.verify(name, &digest)?;
        }
        Ok(())
    }

    fn verify(&self, name: &str, digest: &EntryDigest) -> Result<(), InvalidArchive> {
        let Some(expected) = self.listed.get(name) else {
            return Ok(());
        };
        if expected.size != digest.size {
            return Err(invalid_file(
                name,
                format!(
                    "file has {} bytes but manifest.json lists {}; the archive is corrupted or was changed after export",
                    digest.size, expected.size
                ),
            ));
        }
        if expected.sha256 != digest.sha256 {
            return Err(invalid_file(
                name,
                format!(
                    "SHA-256 is {} but manifest.json lists {}; the archive is corrupted or was changed after export",
                    digest.sha256, expected.sha256
                ),
            ));
        }
        Ok(())
    }
}

enum FileStop<E> {
    Io(std::io::Error),
    Invalid(InvalidArchive),
    Sink(E),
}

fn walk_file<E>(
    entry: &mut EntryReader<'_>,
    object_type: &str,
    limits: &Limits,
    sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
) -> Result<(), FileStop<E>> {
    let name = entry.name().to_owned();
    let text = text::open_text(entry, TextEncoding::Utf8).map_err(FileStop::Invalid)?;
    let mut lines = LineReader::new(BufReader::new(text), limits.max_line_bytes);
    loop {
        let (line, bytes) = match lines.next_line() {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(()),
            Err(LineError::Io(error)) => return Err(FileStop::Io(error)),
            Err(LineError::TooLong) => {
                return Err(FileStop::Invalid(InvalidArchive {
                    location: Location::Line {
                        file: name,
                        line: lines.line(),
                    },
                    problem: format!(
                        "line is longer than the limit of {} bytes (--archive-max-line-bytes)",
                        limits.max_line_bytes
                    ),
                }));
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw: RawObject = json::parse_line(&name, line, bytes, limits.max_json_depth)
            .map_err(FileStop::Invalid)?;
        let object = values::object_from_json(raw, GuidForm::Plain, Some(object_type))
            .map_err(|problem| FileStop::Invalid(at(&name, Some(line), problem)))?;
        let location = Location::Line {
            file: name.clone(),
            line,
        };
        sink(LocatedObject { location, object }).map_err(FileStop::Sink)?;
    }
}

/// Reads and checks the manifest's file list, tenant.json and access-numbers.json.
pub(crate) fn read_header(
    zip: &mut Zip,
    contents: &Contents,
    manifest: RawManifest,
    limits: &Limits,
) -> Result<Header, InvalidArchive> {
    let tenant_info = require(contents, TENANT, 3)?;
    let numbers_info = require(contents, ACCESS_NUMBERS, 3)?;
    let listed = listed_files(manifest.files, contents)?;
    let manifest_identity = manifest_identity(manifest.tenant, GuidForm::Plain)?;

    let layout = Layout {
        object_files: object_files(contents)?,
        listed,
    };

    if tenant_info.size > MAX_TENANT_BYTES {
        return Err(invalid_file(
            TENANT,
            format!(
                "file declares {} bytes, more than the maximum of {MAX_TENANT_BYTES}",
                tenant_info.size
            ),
        ));
    }
    let mut entry = EntryReader::open(zip, tenant_info)?;
    let raw: RawTenant<IgnoredAny> = json::read_document(&mut entry, limits.max_json_depth)?;
    layout.verify(TENANT, &entry.finish()?)?;
    let (tenant, _) =
        values::tenant_record(raw, values::status).map_err(|problem| at(TENANT, None, problem))?;
    if !values::same_identity(&tenant.identity, &manifest_identity) {
        return Err(field_problem(
            MANIFEST,
            None,
            "tenant",
            "tenant identity differs from the one in tenant.json; guid, url and name must match",
        ));
    }

    let mut entry = EntryReader::open(zip, numbers_info)?;
    let mut ranges = Vec::new();
    let mut invalid = None;
    let seed = RangesSeed {
        ranges: &mut ranges,
        invalid: &mut invalid,
    };
    let read = json::read_document_with(
        &mut entry,
        limits.max_json_depth,
        &json::ByteBudget::default(),
        seed,
    );
    if let Some(invalid) = invalid {
        return Err(invalid);
    }
    read?;
    layout.verify(ACCESS_NUMBERS, &entry.finish()?)?;

    Ok(Header {
        tenant,
        ranges,
        range_places: RangePlaces::Elements {
            file: ACCESS_NUMBERS,
            prefix: "",
        },
        layout: AnyLayout::V3(layout),
    })
}

/// Checks the identity in a manifest.
pub(crate) fn manifest_identity(
    raw: Option<RawIdentity>,
    form: GuidForm,
) -> Result<crate::model::TenantIdentity, InvalidArchive> {
    let raw = raw.ok_or_else(|| field_problem(MANIFEST, None, "tenant", "field is missing"))?;
    values::identity(&raw, form).map_err(|problem| {
        field_problem(
            MANIFEST,
            None,
            format!("tenant.{}", problem.field),
            problem.problem,
        )
    })
}

fn listed_files(
    files: Option<Vec<RawListedFile>>,
    contents: &Contents,
) -> Result<BTreeMap<String, EntryDigest>, InvalidArchive> {
    let files = files.ok_or_else(|| field_problem(MANIFEST, None, "files", "field is missing"))?;
    let mut listed = BTreeMap::new();
    for (index, file) in files.into_iter().enumerate() {
        let field = |name: &str| format!("files[{index}].{name}");
        let path = values::required_string(file.path.as_ref(), "path")
            .map_err(|problem| field_problem(MANIFEST, None, field("path"), problem.problem))?;
        let sha256 = values::required_string(file.sha256.as_ref(), "sha256")
            .map_err(|problem| field_problem(MANIFEST, None, field("sha256"), problem.problem))?;
        let sha256 = sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(field_problem(
                MANIFEST,
                None,
                field("sha256"),
                "SHA-256 is invalid; expected 64 hexadecimal digits",
            ));
        }
        let size = file.size.as_ref().and_then(Value::as_u64).ok_or_else(|| {
            field_problem(
                MANIFEST,
                None,
                field("size"),
                "expected a size in bytes, a non-negative integer",
            )
        })?;
        if !contents.contains(path) {
            return Err(field_problem(
                MANIFEST,
                None,
                field("path"),
                format!(
                    "listed file {:?} is missing from the archive",
                    crate::model::truncate_for_message(path)
                ),
            ));
        }
        let digest = EntryDigest { size, sha256 };
        if listed.insert(path.to_owned(), digest).is_some() {
            return Err(field_problem(
                MANIFEST,
                None,
                field("path"),
                format!(
                    "file {:?} is listed twice",
                    crate::model::truncate_for_message(path)
                ),
            ));
        }
    }

    for entry in &contents.entries {
        let lower = entry.name.to_ascii_lowercase();
        let is_data = lower.ends_with(".json") || lower.ends_with(OBJECTS_SUFFIX);
        if is_data && entry.name != MANIFEST && !listed.contains_key(&entry.name) {
            return Err(invalid_file(
                &entry.name,
                "data file is not listed in manifest.json; every .json and .jsonl file must be listed with its size and SHA-256".to_owned(),
            ));
        }
    }
    Ok(listed)
}

fn object_files(contents: &Contents) -> Result<Vec<(String, String)>, InvalidArchive> {
    let mut files = Vec::new();
    for entry in &contents.entries {
        let Some(object_type) = entry
            .name
            .strip_prefix(OBJECTS_PREFIX)
            .and_then(|rest| rest.strip_suffix(OBJECTS_SUFFIX))
        else {
            continue;
        };
        values::check_type(object_type).map_err(|problem| {
            invalid_file(
                &entry.name,
                format!("object file name gives an invalid {problem}; name object files objects/<type>.jsonl"),
            )
        })?;
        files.push((entry.name.clone(), object_type.to_owned()));
    }
    Ok(files)
}

fn range(raw: &RawRange) -> Result<NumberRange, FieldProblem> {
    let number = |value: Option<&Value>, field: &'static str| {
        let text = values::required_string(value, field)?;
        AccessNumber::parse(text).map_err(|error| FieldProblem::new(field, error.0))
    };
    let first = number(raw.first.as_ref(), "first")?;
    let last = number(raw.last.as_ref(), "last")?;
    let media = values::required_string(raw.media.as_ref(), "media")?;
    let media = values::media(media).map_err(|problem| FieldProblem::new("media", problem))?;
    let trunk = values::optional_string(raw.trunk.as_ref(), "trunk")?;
    NumberRange::new(first, last, media, trunk).map_err(|error| FieldProblem::new("last", error.0))
}

/// Locates a field problem at a line of a JSON Lines file.
fn at(file: &str, line: Option<u64>, problem: FieldProblem) -> InvalidArchive {
    field_problem(file, line, problem.field, problem.problem)
}

/// Locates a field problem inside an array element such as `[3]` or `accessNumbers[3]`.
pub(crate) fn at_element(file: &str, prefix: &str, problem: FieldProblem) -> InvalidArchive {
    field_problem(
        file,
        None,
        format!("{prefix}.{}", problem.field),
        problem.problem,
    )
}
