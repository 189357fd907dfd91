//! Format 2: manifest.json without checksums, and tenant.json holding the whole
//! tenant. The objects array is streamed with a serde visitor, never held in memory.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::entry::{Contents, EntryReader, Zip};
use super::json;
use super::v3::{at_element, manifest_identity};
use super::values::{self, FieldProblem, GuidForm, RawObject, RawTenant};
use super::{
    Header, InvalidArchive, Layout, Limits, LocatedObject, Location, RangePlaces, RawManifest,
    Stop, field_problem, require,
};
use crate::model::{AccessNumber, NumberRange};

const TENANT: &str = "tenant.json";

#[derive(Debug, Deserialize)]
struct RawRange {
    number: Option<Value>,
    count: Option<Value>,
    media: Option<Value>,
    trunk: Option<Value>,
}

/// The `accessNumbers` array, converted one element at a time so the raw JSON of
/// millions of ranges is never held at once. Only the first invalid element is kept.
struct StreamedRanges {
    ranges: Vec<NumberRange>,
    invalid: Option<(usize, FieldProblem)>,
}

struct StreamedRangesVisitor;

/// Visits the top-level object of tenant.json and streams its `objects` array.
struct TenantSeed<'s, E> {
    objects: ObjectsSeed<'s, E>,
}

struct ObjectsSeed<'s, E> {
    sink: &'s mut dyn FnMut(LocatedObject) -> Result<(), E>,
    stop: &'s mut Option<Stop<E>>,
    seen: &'s mut bool,
    budget: &'s json::ByteBudget,
    max_object_bytes: u64,
}

/// Reads manifest identity, tenant fields and access numbers.
pub(crate) fn read_header(
    zip: &mut Zip,
    contents: &Contents,
    manifest: RawManifest,
    limits: &Limits,
) -> Result<Header, InvalidArchive> {
    let info = require(contents, TENANT, 2)?;
    let manifest_identity = manifest_identity(manifest.tenant, GuidForm::Plain)?;

    let mut entry = EntryReader::open(zip, info)?;
    let raw: RawTenant<StreamedRanges> = json::read_document(&mut entry, limits.max_json_depth)?;
    entry.finish()?;

    let (tenant, raw_ranges) = values::tenant_record(raw, values::legacy_status)
        .map_err(|problem| field_problem(TENANT, None, problem.field, problem.problem))?;
    if !values::same_identity(&tenant.identity, &manifest_identity) {
        return Err(field_problem(
            "manifest.json",
            None,
            "tenant",
            "tenant identity differs from the one in tenant.json; guid, url and name must match",
        ));
    }

    let streamed = raw_ranges
        .ok_or_else(|| field_problem(TENANT, None, "accessNumbers", "field is missing"))?;
    if let Some((index, problem)) = streamed.invalid {
        return Err(at_element(
            TENANT,
            &format!("accessNumbers[{index}]"),
            problem,
        ));
    }
    Ok(Header {
        tenant,
        ranges: streamed.ranges,
        range_places: RangePlaces::Elements {
            file: TENANT,
            prefix: "accessNumbers",
        },
        layout: Layout::V2,
    })
}

/// Streams the `objects` array of tenant.json.
pub(crate) fn walk_objects<E>(
    zip: &mut Zip,
    contents: &Contents,
    limits: &Limits,
    sink: &mut dyn FnMut(LocatedObject) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    let info = require(contents, TENANT, 2)?;
    let mut entry = EntryReader::open(zip, info)?;

    let mut stop = None;
    let mut seen = false;
    let budget = json::ByteBudget::default();
    let seed = TenantSeed {
        objects: ObjectsSeed {
            sink,
            stop: &mut stop,
            seen: &mut seen,
            budget: &budget,
            max_object_bytes: limits.max_line_bytes,
        },
    };
    let read = json::read_document_with(&mut entry, limits.max_json_depth, &budget, seed);
    if let Some(stop) = stop {
        return Err(stop);
    }
    read?;
    entry.finish()?;
    if !seen {
        return Err(field_problem(
            TENANT,
            None,
            "objects",
            "field is missing; expected an array of objects",
        )
        .into());
    }
    Ok(())
}

fn range(raw: &RawRange) -> Result<NumberRange, FieldProblem> {
    let number = values::required_string(raw.number.as_ref(), "number")?;
    let first =
        AccessNumber::parse(number).map_err(|error| FieldProblem::new("number", error.0))?;
    let count = match raw.count.as_ref() {
        Some(Value::Number(count)) => count.as_i64().ok_or_else(|| {
            FieldProblem::new(
                "count",
                format!("count {count} is invalid; expected an integer of 1 or more"),
            )
        })?,
        None | Some(Value::Null) => return Err(FieldProblem::new("count", "field is missing")),
        Some(other) => {
            return Err(FieldProblem::new(
                "count",
                format!("expected an integer, found {}", values::kind(other)),
            ));
        }
    };
    let media = values::required_string(raw.media.as_ref(), "media")?;
    let media =
        values::legacy_media(media).map_err(|problem| FieldProblem::new("media", problem))?;
    let trunk = values::optional_string(raw.trunk.as_ref(), "trunk")?;
    NumberRange::from_count(first, count, media, trunk)
        .map_err(|error| FieldProblem::new("count", error.0))
}

impl<'de> Deserialize<'de> for StreamedRanges {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(StreamedRangesVisitor)
    }
}

impl<'de> Visitor<'de> for StreamedRangesVisitor {
    type Value = StreamedRanges;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of access-number ranges")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StreamedRanges, A::Error> {
        let mut streamed = StreamedRanges {
            ranges: Vec::new(),
            invalid: None,
        };
        while let Some(raw) = seq.next_element::<RawRange>()? {
            if streamed.invalid.is_some() {
                continue;
            }
            match range(&raw) {
                Ok(range) => streamed.ranges.push(range),
                Err(problem) => streamed.invalid = Some((streamed.ranges.len(), problem)),
            }
        }
        Ok(streamed)
    }
}

impl<'de, E> DeserializeSeed<'de> for TenantSeed<'_, E> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, E> Visitor<'de> for TenantSeed<'_, E> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object holding the tenant")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut objects = Some(self.objects);
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), objects.take()) {
                ("objects", Some(seed)) => map.next_value_seed(seed)?,
                (_, seed) => {
                    objects = seed;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, E> DeserializeSeed<'de> for ObjectsSeed<'_, E> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, E> Visitor<'de> for ObjectsSeed<'_, E> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        *self.seen = true;
        let mut index = 0_usize;
        loop {
            // One object is held to the size limit of one line of format 3, so what
            // one format accepts the other does too, and memory stays bounded.
            self.budget.start(self.max_object_bytes);
            let element = seq.next_element::<Value>();
            self.budget.stop();
            let element = match element {
                Ok(Some(element)) => element,
                Ok(None) => break,
                Err(error) => {
                    if self.budget.exceeded() {
                        *self.stop = Some(Stop::Invalid(field_problem(
                            TENANT,
                            None,
                            format!("objects[{index}]"),
                            format!(
                                "object is larger than the limit of {} bytes (--archive-max-line-bytes)",
                                self.max_object_bytes
                            ),
                        )));
                    }
                    return Err(error);
                }
            };
            let prefix = format!("objects[{index}]");
            let object = serde_json::from_value::<RawObject>(element)
                .map_err(|error| {
                    field_problem(
                        TENANT,
                        None,
                        prefix.clone(),
                        format!("expected an object with guid, type, name and attributes: {error}"),
                    )
                })
                .and_then(|raw| {
                    values::object_from_json(raw, GuidForm::Plain, None)
                        .map_err(|problem| at_element(TENANT, &prefix, problem))
                });
            let object = match object {
                Ok(object) => object,
                Err(invalid) => {
                    *self.stop = Some(Stop::Invalid(invalid));
                    return Err(de::Error::custom("invalid object"));
                }
            };
            let location = Location::Field {
                file: TENANT.to_owned(),
                line: None,
                field: prefix,
            };
            if let Err(error) = (self.sink)(LocatedObject { location, object }) {
                *self.stop = Some(Stop::Sink(error));
                return Err(de::Error::custom("import stopped"));
            }
            index += 1;
        }
        Ok(())
    }
}
