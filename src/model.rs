//! The tenant model that every archive format version is upgraded to.
//!
//! The archive reader produces these types, the import engine writes them to the
//! configuration database, and the exporter reads them back. Validation of single
//! values (URL, name, digits, media) lives here, so every front end applies the same
//! rules.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Maximum length of a tenant URL, in characters.
pub const MAX_URL_LEN: usize = 253;
/// Maximum length of a tenant name, in characters.
pub const MAX_NAME_LEN: usize = 255;
/// Maximum number of digits of an access number (E.164 without `+`).
pub const MAX_DIGITS: usize = 15;

/// A problem with one value, without the location; the caller adds the file and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// The identity of a tenant: what a conflict is decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantIdentity {
    /// The tenant's GUID, unchanged from the source cluster.
    pub guid: Uuid,
    /// The tenant URL as written in the archive (case preserved).
    pub url: String,
    /// The tenant name, trimmed of surrounding white space.
    pub name: String,
}

/// Whether a tenant serves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// The tenant serves traffic.
    Active,
    /// The tenant is configured but serves no traffic.
    Inactive,
}

/// A tenant with every field that the configuration database keeps for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// GUID, URL and name.
    pub identity: TenantIdentity,
    /// Active or inactive.
    pub status: TenantStatus,
    /// The SIP domain; format 1 archives have none.
    pub sip_domain: Option<String>,
    /// When the tenant was created in its first cluster, as written in the archive (RFC 3339).
    pub created_at: Option<String>,
    /// Free-form settings, kept as they are; `{}` when the archive has none.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// The kind of traffic an access number carries to its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    /// Voice calls.
    Voice,
    /// Text messages.
    Text,
    /// Voice calls and text messages.
    VoiceText,
}

/// An access number: 1 to 15 ASCII digits. Numbers of different lengths are different
/// numbers, so `0123` and `123` never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessNumber {
    /// Number of digits, 1 to 15.
    pub digits: u8,
    /// The digits read as a decimal number.
    pub value: i64,
}

/// A contiguous run of access numbers of one length, `first <= last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRange {
    /// First number of the range.
    pub first: AccessNumber,
    /// Last number of the range, of the same length as `first`.
    pub last: AccessNumber,
    /// Media of every number of the range.
    pub media: Media,
    /// The trunk the numbers used in the source cluster; informational only, because
    /// trunks belong to a cluster and an import does not carry them over.
    pub trunk: Option<String>,
}

/// One configuration object (user, team, skill, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigObject {
    /// The object's GUID, unique across the archive and the cluster.
    pub guid: Uuid,
    /// The object type: lower-case letters, digits and `-`.
    #[serde(rename = "type")]
    pub object_type: String,
    /// The object's name.
    pub name: String,
    /// Free-form attributes, kept as they are.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl TenantIdentity {
    /// Returns the key that URL uniqueness is decided on: the URL in lower case.
    pub fn url_key(&self) -> String {
        url_key(&self.url)
    }

    /// Returns the key that name uniqueness is decided on: the trimmed name in lower case.
    pub fn name_key(&self) -> String {
        name_key(&self.name)
    }
}

impl TenantStatus {
    /// Returns the lower-case spelling used by format 3, the database and the APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    /// Parses the lower-case spelling used by format 3 and the database.
    ///
    /// # Errors
    ///
    /// Returns an error naming the value when it is neither `active` nor `inactive`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        match value {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            other => Err(ValueError(format!(
                "status {:?} is invalid; expected \"active\" or \"inactive\"",
                truncate_for_message(other)
            ))),
        }
    }
}

impl Media {
    /// Returns the spelling used by format 3, the database and the APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Text => "text",
            Self::VoiceText => "voice_text",
        }
    }

    /// Parses the format 3 spelling: `voice`, `text` or `voice_text`.
    ///
    /// # Errors
    ///
    /// Returns an error naming the value and the accepted spellings.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        match value {
            "voice" => Ok(Self::Voice),
            "text" => Ok(Self::Text),
            "voice_text" => Ok(Self::VoiceText),
            other => Err(ValueError(format!(
                "media {:?} is invalid; expected \"voice\", \"text\" or \"voice_text\"",
                truncate_for_message(other)
            ))),
        }
    }

    /// Parses the spelling of formats 1 and 2 and of the provider API:
    /// `VOICE`, `TEXT` or `VOICE_AND_TEXT`.
    ///
    /// # Errors
    ///
    /// Returns an error naming the value and the accepted spellings.
    pub fn parse_legacy(value: &str) -> Result<Self, ValueError> {
        match value {
            "VOICE" => Ok(Self::Voice),
            "TEXT" => Ok(Self::Text),
            "VOICE_AND_TEXT" => Ok(Self::VoiceText),
            other => Err(ValueError(format!(
                "media {:?} is invalid; expected \"VOICE\", \"TEXT\" or \"VOICE_AND_TEXT\"",
                truncate_for_message(other)
            ))),
        }
    }

    /// Returns the spelling of formats 1 and 2 and of the provider API.
    pub fn as_legacy_str(self) -> &'static str {
        match self {
            Self::Voice => "VOICE",
            Self::Text => "TEXT",
            Self::VoiceText => "VOICE_AND_TEXT",
        }
    }
}

impl AccessNumber {
    /// Parses a string of 1 to 15 ASCII digits.
    ///
    /// # Errors
    ///
    /// Returns an error naming the value when it is empty, too long or not all digits.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_DIGITS
            && text.bytes().all(|byte| byte.is_ascii_digit());
        if !valid {
            return Err(ValueError(format!(
                "access number {:?} is invalid; expected 1 to {MAX_DIGITS} ASCII digits",
                truncate_for_message(text)
            )));
        }
        let value = text
            .parse::<i64>()
            .map_err(|error| ValueError(format!("access number {text:?} is invalid: {error}")))?;
        Ok(Self {
            digits: text.len() as u8,
            value,
        })
    }

    /// Returns the number `offset` places after this one, or `None` when it would need
    /// more digits than this number has.
    pub fn checked_add(self, offset: i64) -> Option<Self> {
        let value = self.value.checked_add(offset)?;
        (value >= 0 && value < 10_i64.pow(u32::from(self.digits))).then_some(Self {
            digits: self.digits,
            value,
        })
    }
}

impl fmt::Display for AccessNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:0width$}",
            self.value,
            width = usize::from(self.digits)
        )
    }
}

impl Serialize for AccessNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccessNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl NumberRange {
    /// Builds a range from its first and last number.
    ///
    /// # Errors
    ///
    /// Returns an error when the two numbers differ in length or `first > last`.
    pub fn new(
        first: AccessNumber,
        last: AccessNumber,
        media: Media,
        trunk: Option<String>,
    ) -> Result<Self, ValueError> {
        if first.digits != last.digits {
            return Err(ValueError(format!(
                "range {first}-{last} is invalid: first and last must have the same number of digits"
            )));
        }
        if first.value > last.value {
            return Err(ValueError(format!(
                "range {first}-{last} is invalid: first is greater than last"
            )));
        }
        Ok(Self {
            first,
            last,
            media,
            trunk,
        })
    }

    /// Builds a range from a first number and a count, as formats 1 and 2 write it.
    ///
    /// # Errors
    ///
    /// Returns an error when the count is below 1 or the last number would need more
    /// digits than the first.
    pub fn from_count(
        first: AccessNumber,
        count: i64,
        media: Media,
        trunk: Option<String>,
    ) -> Result<Self, ValueError> {
        if count < 1 {
            return Err(ValueError(format!(
                "count {count} is invalid; expected 1 or more"
            )));
        }
        let last = first.checked_add(count - 1).ok_or_else(|| {
            ValueError(format!(
                "count {count} from {first} overflows the number's {} digits",
                first.digits
            ))
        })?;
        Self::new(first, last, media, trunk)
    }

    /// Returns how many numbers the range covers.
    pub fn len(&self) -> i64 {
        self.last.value - self.first.value + 1
    }

    /// Returns `false`: a valid range always contains at least one number.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Returns whether the two ranges share a number.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.first.digits == other.first.digits
            && self.first.value <= other.last.value
            && other.first.value <= self.last.value
    }
}

/// Returns the key that URL uniqueness is decided on.
pub fn url_key(url: &str) -> String {
    url.to_ascii_lowercase()
}

/// Returns the key that name uniqueness is decided on.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Checks a tenant URL: 1 to 253 characters of ASCII letters, digits, `-` and `.`.
///
/// # Errors
///
/// Returns an error naming the value and the rule it breaks.
pub fn validate_url(url: &str) -> Result<(), ValueError> {
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(ValueError(format!(
            "tenant URL {:?} is invalid; expected 1 to {MAX_URL_LEN} characters",
            truncate_for_message(url)
        )));
    }
    let bad = url
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'));
    if let Some(bad) = bad {
        return Err(ValueError(format!(
            "tenant URL {:?} is invalid: character {bad:?} is not allowed; use letters, digits, '-' and '.'",
            truncate_for_message(url)
        )));
    }
    Ok(())
}

/// Checks a tenant name and returns it trimmed: 1 to 255 characters, not blank, with no
/// control characters.
///
/// # Errors
///
/// Returns an error naming the value and the rule it breaks.
pub fn validate_name(name: &str) -> Result<String, ValueError> {
    let trimmed = name.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(ValueError("tenant name is blank".to_owned()));
    }
    if length > MAX_NAME_LEN {
        return Err(ValueError(format!(
            "tenant name {:?} is invalid: {length} characters, at most {MAX_NAME_LEN} allowed",
            truncate_for_message(trimmed)
        )));
    }
    if let Some(bad) = trimmed.chars().find(|c| c.is_control()) {
        return Err(ValueError(format!(
            "tenant name {:?} is invalid: control character {bad:?} is not allowed",
            truncate_for_message(trimmed)
        )));
    }
    Ok(trimmed.to_owned())
}

/// Shortens a value for an error message, so a hostile 10 MB string never ends up in a
/// log line or an HTTP response whole.
pub fn truncate_for_message(value: &str) -> String {
    const KEEP: usize = 64;
    match value.char_indices().nth(KEEP) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> AccessNumber {
        AccessNumber::parse(text).expect("valid number")
    }

    #[test]
    fn access_number_keeps_leading_zeros() {
        assert_eq!(number("0123").to_string(), "0123");
        assert_ne!(number("0123"), number("123"));
    }

    #[test]
    fn access_number_rejects_bad_digits() {
        for text in ["", "12a", "+1415", "1234567890123456", "١٢٣"] {
            assert!(AccessNumber::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn range_from_count_rejects_overflow() {
        let error = NumberRange::from_count(number("998"), 3, Media::Voice, None);
        assert!(error.is_err());
        let range = NumberRange::from_count(number("997"), 3, Media::Voice, None);
        assert_eq!(range.expect("fits").last.to_string(), "999");
    }

    #[test]
    fn ranges_of_other_lengths_do_not_overlap() {
        let short = NumberRange::new(number("100"), number("199"), Media::Voice, None);
        let long = NumberRange::new(number("0100"), number("0199"), Media::Voice, None);
        assert!(!short.expect("valid").overlaps(&long.expect("valid")));
    }

    #[test]
    fn value_messages_stay_short() {
        let huge = "x".repeat(1 << 20);
        let errors = [
            Media::parse(&huge).expect_err("media"),
            Media::parse_legacy(&huge).expect_err("legacy media"),
            TenantStatus::parse(&huge).expect_err("status"),
            AccessNumber::parse(&huge).expect_err("number"),
            validate_url(&huge).expect_err("url"),
        ];
        for error in errors {
            assert!(error.0.len() < 200, "message of {} bytes", error.0.len());
        }
    }

    #[test]
    fn name_key_ignores_case_and_spacing() {
        assert_eq!(name_key("  Acme Support "), name_key("acme support"));
    }

    #[test]
    fn url_rejects_other_characters() {
        assert!(validate_url("acme.cc.example.com").is_ok());
        for url in [
            "",
            "acme_cc",
            "acme cc",
            "acme.cc/x",
            "'; DROP TABLE tenants; --",
        ] {
            assert!(validate_url(url).is_err(), "{url:?} accepted");
        }
    }
}
