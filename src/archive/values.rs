//! Checks of single values shared by the format readers: GUID spellings, object
//! fields, tenant identity and range overlap.

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{
    ConfigObject, Media, NumberRange, TenantIdentity, TenantRecord, TenantStatus,
    truncate_for_message, validate_name, validate_url,
};

/// Maximum length of an object name, in characters.
pub const MAX_OBJECT_NAME_CHARS: usize = 1024;
/// Maximum length of an object type, in characters.
pub const MAX_OBJECT_TYPE_CHARS: usize = 64;

/// GUID spelling of a format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuidForm {
    /// Upper-case, hyphenated, in braces: `{0B6F1C5E-6A3D-4C1E-9B8E-2F4D6A8C0E12}`.
    Braced,
    /// Lower-case, hyphenated, without braces: `0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0e12`.
    Plain,
}

/// A problem with one named field; the caller adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldProblem {
    /// Field name, such as `guid`.
    pub field: &'static str,
    /// Description of the problem.
    pub problem: String,
}

/// An object as a JSON format writes it, before its fields are checked.
#[derive(Debug, Deserialize)]
pub(crate) struct RawObject {
    guid: Option<Value>,
    #[serde(rename = "type")]
    object_type: Option<Value>,
    name: Option<Value>,
    attributes: Option<Value>,
}

/// The tenant fields of tenant.json in formats 2 and 3, before they are checked. `N` is
/// the type of `accessNumbers`, which only format 2 keeps in this file; serde skips
/// every other field (such as the format 2 `objects`) without keeping it.
#[derive(Debug, Deserialize)]
pub(crate) struct RawTenant<N> {
    guid: Option<Value>,
    url: Option<Value>,
    name: Option<Value>,
    status: Option<Value>,
    #[serde(rename = "sipDomain")]
    sip_domain: Option<Value>,
    #[serde(rename = "createdAt")]
    created_at: Option<Value>,
    settings: Option<Value>,
    #[serde(rename = "accessNumbers")]
    pub access_numbers: Option<N>,
}

/// The identity as a JSON format writes it, before its fields are checked.
#[derive(Debug, Deserialize)]
pub(crate) struct RawIdentity {
    pub guid: Option<Value>,
    pub url: Option<Value>,
    pub name: Option<Value>,
}

impl FieldProblem {
    /// Builds a problem with `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// Parses a GUID in the spelling of its format version.
pub(crate) fn parse_guid(text: &str, form: GuidForm) -> Result<Uuid, String> {
    let (inner, expected) = match form {
        GuidForm::Braced => (
            text.strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}')),
            "upper-case hex in braces, like {0B6F1C5E-6A3D-4C1E-9B8E-2F4D6A8C0E12}",
        ),
        GuidForm::Plain => (
            Some(text),
            "lower-case hex without braces, like 0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0e12",
        ),
    };
    let well_formed = inner.is_some_and(|inner| {
        inner.len() == 36
            && inner.char_indices().all(|(position, c)| match position {
                8 | 13 | 18 | 23 => c == '-',
                _ => match form {
                    GuidForm::Braced => c.is_ascii_digit() || ('A'..='F').contains(&c),
                    GuidForm::Plain => c.is_ascii_digit() || ('a'..='f').contains(&c),
                },
            })
    });
    let invalid = || {
        format!(
            "GUID {:?} is invalid; expected {expected}",
            truncate_for_message(text)
        )
    };
    match inner {
        Some(inner) if well_formed => Uuid::parse_str(inner).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// Returns the text of a required string field.
pub(crate) fn required_string<'a>(
    value: Option<&'a Value>,
    field: &'static str,
) -> Result<&'a str, FieldProblem> {
    match value {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err(FieldProblem::new(field, "field is missing")),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

/// Returns the text of an optional string field.
pub(crate) fn optional_string(
    value: Option<&Value>,
    field: &'static str,
) -> Result<Option<String>, FieldProblem> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

/// Returns an optional JSON object field, `{}` when absent.
pub(crate) fn optional_object(
    value: Option<Value>,
    field: &'static str,
) -> Result<Map<String, Value>, FieldProblem> {
    match value {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("expected a JSON object, found {}", kind(&other)),
        )),
    }
}

/// Returns a JSON type name for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks a tenant identity: GUID spelling, URL and name rules.
pub(crate) fn identity(raw: &RawIdentity, form: GuidForm) -> Result<TenantIdentity, FieldProblem> {
    let guid_text = required_string(raw.guid.as_ref(), "guid")?;
    let guid = parse_guid(guid_text, form).map_err(|problem| FieldProblem::new("guid", problem))?;
    let url = required_string(raw.url.as_ref(), "url")?;
    validate_url(url).map_err(|error| FieldProblem::new("url", error.0))?;
    let name = required_string(raw.name.as_ref(), "name")?;
    let name = validate_name(name).map_err(|error| FieldProblem::new("name", error.0))?;
    Ok(TenantIdentity {
        guid,
        url: url.to_owned(),
        name,
    })
}

/// Checks the tenant fields of tenant.json, with the status spelling of the format.
pub(crate) fn tenant_record<N>(
    raw: RawTenant<N>,
    parse_status: fn(&str) -> Result<TenantStatus, String>,
) -> Result<(TenantRecord, Option<N>), FieldProblem> {
    let identity = identity(
        &RawIdentity {
            guid: raw.guid,
            url: raw.url,
            name: raw.name,
        },
        GuidForm::Plain,
    )?;
    let status = required_string(raw.status.as_ref(), "status")?;
    let status = parse_status(status).map_err(|problem| FieldProblem::new("status", problem))?;
    let record = TenantRecord {
        identity,
        status,
        sip_domain: optional_string(raw.sip_domain.as_ref(), "sipDomain")?,
        created_at: optional_string(raw.created_at.as_ref(), "createdAt")?,
        settings: optional_object(raw.settings, "settings")?,
    };
    Ok((record, raw.access_numbers))
}

/// Parses the format 3 status: `active` or `inactive`.
pub(crate) fn status(text: &str) -> Result<TenantStatus, String> {
    TenantStatus::parse(text).map_err(|_| {
        format!(
            "status {:?} is invalid; expected \"active\" or \"inactive\"",
            truncate_for_message(text)
        )
    })
}

/// Parses the status of formats 1 and 2: `ACTIVE` or `INACTIVE`.
pub(crate) fn legacy_status(text: &str) -> Result<TenantStatus, String> {
    match text {
        "ACTIVE" => Ok(TenantStatus::Active),
        "INACTIVE" => Ok(TenantStatus::Inactive),
        other => Err(format!(
            "status {:?} is invalid; expected \"ACTIVE\" or \"INACTIVE\"",
            truncate_for_message(other)
        )),
    }
}

/// Parses the format 3 media: `voice`, `text` or `voice_text`.
pub(crate) fn media(text: &str) -> Result<Media, String> {
    Media::parse(text).map_err(|_| {
        format!(
            "media {:?} is invalid; expected \"voice\", \"text\" or \"voice_text\"",
            truncate_for_message(text)
        )
    })
}

/// Parses the media of formats 1 and 2: `VOICE`, `TEXT` or `VOICE_AND_TEXT`.
pub(crate) fn legacy_media(text: &str) -> Result<Media, String> {
    Media::parse_legacy(text).map_err(|_| {
        format!(
            "media {:?} is invalid; expected \"VOICE\", \"TEXT\" or \"VOICE_AND_TEXT\"",
            truncate_for_message(text)
        )
    })
}

/// Returns whether two identities are the same tenant: GUIDs by value, URL and name
/// by their uniqueness keys.
pub(crate) fn same_identity(left: &TenantIdentity, right: &TenantIdentity) -> bool {
    left.guid == right.guid
        && left.url_key() == right.url_key()
        && left.name_key() == right.name_key()
}

/// Checks an object type: 1 to 64 lower-case ASCII letters, digits and `-`.
pub(crate) fn check_type(object_type: &str) -> Result<(), String> {
    let valid = !object_type.is_empty()
        && object_type.len() <= MAX_OBJECT_TYPE_CHARS
        && object_type
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "type {:?} is invalid; expected 1 to {MAX_OBJECT_TYPE_CHARS} lower-case letters, digits and '-'",
            truncate_for_message(object_type)
        ))
    }
}

/// Checks an object name: 1 to 1024 characters.
pub(crate) fn check_object_name(name: &str) -> Result<(), String> {
    let length = name.chars().count();
    if length == 0 {
        return Err("name is empty; expected 1 to 1024 characters".to_owned());
    }
    if length > MAX_OBJECT_NAME_CHARS {
        return Err(format!(
            "name {:?} has {length} characters, more than the maximum of {MAX_OBJECT_NAME_CHARS}",
            truncate_for_message(name)
        ));
    }
    Ok(())
}

/// Checks an object of a JSON format; `file_type` is the type its file name gives.
pub(crate) fn object_from_json(
    raw: RawObject,
    form: GuidForm,
    file_type: Option<&str>,
) -> Result<ConfigObject, FieldProblem> {
    let guid_text = required_string(raw.guid.as_ref(), "guid")?;
    let guid = parse_guid(guid_text, form).map_err(|problem| FieldProblem::new("guid", problem))?;
    let object_type = required_string(raw.object_type.as_ref(), "type")?;
    check_type(object_type).map_err(|problem| FieldProblem::new("type", problem))?;
    if let Some(file_type) = file_type
        && object_type != file_type
    {
        return Err(FieldProblem::new(
            "type",
            format!(
                "type {:?} does not match the file's type {file_type:?}",
                truncate_for_message(object_type)
            ),
        ));
    }
    let name = required_string(raw.name.as_ref(), "name")?;
    check_object_name(name).map_err(|problem| FieldProblem::new("name", problem))?;
    let object_type = object_type.to_owned();
    let name = name.to_owned();
    let attributes = optional_object(raw.attributes, "attributes")?;
    Ok(ConfigObject {
        guid,
        object_type,
        name,
        attributes,
    })
}

/// Checks that no two ranges overlap; returns the indexes of the first overlapping
/// pair found, in their order in the archive.
pub(crate) fn find_overlap(ranges: &[NumberRange]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|index| (ranges[*index].first, ranges[*index].last));
    order.windows(2).find_map(|pair| {
        let (left, right) = (pair[0], pair[1]);
        ranges[left]
            .overlaps(&ranges[right])
            .then(|| (left.min(right), left.max(right)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccessNumber;

    #[test]
    fn guid_forms_are_per_version() {
        let plain = "0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0e12";
        let braced = "{0B6F1C5E-6A3D-4C1E-9B8E-2F4D6A8C0E12}";
        assert_eq!(
            parse_guid(plain, GuidForm::Plain).ok(),
            parse_guid(braced, GuidForm::Braced).ok()
        );
        assert!(parse_guid(braced, GuidForm::Plain).is_err());
        assert!(parse_guid(plain, GuidForm::Braced).is_err());
        assert!(parse_guid(&plain.to_uppercase(), GuidForm::Plain).is_err());
        assert!(parse_guid("{0b6f1c5e-6a3d-4c1e-9b8e-2f4d6a8c0e12}", GuidForm::Braced).is_err());
        assert!(parse_guid("0b6f1c5e6a3d4c1e9b8e2f4d6a8c0e12", GuidForm::Plain).is_err());
    }

    #[test]
    fn types_allow_letters_digits_hyphen() {
        assert!(check_type("directory-entry").is_ok());
        assert!(check_type("User").is_err());
        assert!(check_type("a_b").is_err());
        assert!(check_type("").is_err());
    }

    #[test]
    fn overlap_names_archive_order() {
        let range = |first: &str, last: &str| {
            let first = AccessNumber::parse(first).ok();
            let last = AccessNumber::parse(last).ok();
            first
                .zip(last)
                .and_then(|(first, last)| NumberRange::new(first, last, Media::Voice, None).ok())
        };
        let ranges: Vec<NumberRange> = [
            range("500", "599"),
            range("100", "199"),
            range("150", "150"),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(find_overlap(&ranges), Some((1, 2)));
        assert_eq!(find_overlap(&ranges[..2]), None);
    }
}
