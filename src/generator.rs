//! A deterministic generator of synthetic tenant archives.
//!
//! The same options and seed always give the same bytes. Objects are produced one at
//! a time, grouped by type, and written straight into the archive, so memory grows
//! with the number of ranges but not with the number of objects. An object's GUID is
//! derived from the seed and its index, which lets attributes reference other objects
//! without keeping them.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::archive::writer::{ArchiveOrigin, ArchiveWriter, WriteError};
use crate::model::{
    AccessNumber, ConfigObject, Media, NumberRange, TenantIdentity, TenantRecord, TenantStatus,
    ValueError, validate_name, validate_url,
};

/// The object types, in the order objects rotate through them.
pub const OBJECT_TYPES: [&str; 10] = [
    "user",
    "team",
    "skill",
    "service",
    "scenario",
    "disposition",
    "schedule",
    "directory-entry",
    "calling-list",
    "report-template",
];

/// Non-ASCII words mixed into names and attributes.
const WORDS: [&str; 8] = [
    "Zoë",
    "Łódź",
    "東京",
    "José",
    "Ærøskøbing",
    "Müller",
    "Señora",
    "Ελένη",
];

/// Options of `generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Seed of the random generator. The same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of configuration objects.
    #[arg(long, default_value_t = 100)]
    pub objects: u64,

    /// Number of access-number ranges.
    #[arg(long, default_value_t = 3)]
    pub ranges: u64,

    /// Number of access numbers over all ranges, at least one per range.
    #[arg(long, default_value_t = 120)]
    pub numbers: u64,

    /// Archive format version to write.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub format: u32,

    /// Tenant URL.
    #[arg(long, default_value = "generated.cc.example.com")]
    pub tenant_url: String,

    /// Tenant name.
    #[arg(long, default_value = "Generated Tenant")]
    pub tenant_name: String,

    /// First access number. Ranges follow it with gaps and keep its number of digits.
    #[arg(long, default_value = "14155550000")]
    pub number_start: String,

    /// The archive file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// The generator's settings, without the output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Seed of the random generator.
    pub seed: u64,
    /// Number of objects.
    pub objects: u64,
    /// Number of ranges.
    pub ranges: u64,
    /// Number of access numbers over all ranges.
    pub numbers: u64,
    /// Format version, 1 to 3.
    pub format: u32,
    /// Tenant URL.
    pub tenant_url: String,
    /// Tenant name.
    pub tenant_name: String,
    /// First access number.
    pub number_start: String,
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// An option value breaks a rule of the archive format.
    #[error("invalid option --{option}: {problem}")]
    InvalidOption {
        /// The option, without dashes.
        option: &'static str,
        /// The broken rule.
        problem: String,
    },
    /// The ranges need more numbers than fit after the start number.
    #[error(
        "{numbers} numbers in {ranges} ranges do not fit in {digits} digits after {start}; use a smaller --numbers or an earlier --number-start"
    )]
    NumbersDoNotFit {
        /// Requested numbers.
        numbers: u64,
        /// Requested ranges.
        ranges: u64,
        /// Digits of the start number.
        digits: u8,
        /// The start number.
        start: String,
    },
    /// The output file could not be created.
    #[error("failed to create {path}")]
    Create {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the archive failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl GenerateArgs {
    /// Returns the generator options, without the output file.
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            seed: self.seed,
            objects: self.objects,
            ranges: self.ranges,
            numbers: self.numbers,
            format: self.format,
            tenant_url: self.tenant_url.clone(),
            tenant_name: self.tenant_name.clone(),
            number_start: self.number_start.clone(),
        }
    }
}

/// Runs `generate`.
///
/// # Errors
///
/// Returns an error when an option is invalid or the archive cannot be written.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    generate_file(&args.options(), &args.output)?;
    tracing::info!(
        path = %args.output.display(),
        objects = args.objects,
        ranges = args.ranges,
        numbers = args.numbers,
        format = args.format,
        "archive generated"
    );
    Ok(())
}

/// Generates an archive into the file at `path`, replacing it.
///
/// # Errors
///
/// Returns an error when an option is invalid or the file cannot be written.
pub fn generate_file(options: &GenerateOptions, path: &Path) -> Result<(), GenerateError> {
    let create_error = |source| GenerateError::Create {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(create_error)?;
    let mut output = generate(options, BufWriter::new(file))?;
    output.flush().map_err(create_error)?;
    Ok(())
}

/// Generates an archive into `output` and returns it.
///
/// # Errors
///
/// Returns an error when an option is invalid or the output fails.
pub fn generate<W: Write + Seek>(options: &GenerateOptions, output: W) -> Result<W, GenerateError> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let tenant = tenant(options, &mut rng)?;
    let ranges = ranges(options, &mut rng)?;
    let origin = ArchiveOrigin {
        format_version: options.format,
        schema_version: match options.format {
            1 => 7,
            2 => 11,
            _ => crate::db::SCHEMA_VERSION,
        },
        exported_at: "2026-11-30T08:15:00Z".to_owned(),
        source_cluster: Some("generated".to_owned()),
    };
    let mut writer = ArchiveWriter::new(output, origin, &tenant, &ranges)?;
    for type_index in 0..OBJECT_TYPES.len() as u64 {
        let mut index = type_index;
        while index < options.objects {
            writer.write_object(&object(options, index, &mut rng))?;
            index += OBJECT_TYPES.len() as u64;
        }
    }
    Ok(writer.finish()?)
}

fn tenant(options: &GenerateOptions, rng: &mut ChaCha8Rng) -> Result<TenantRecord, GenerateError> {
    let invalid = |option: &'static str| {
        move |error: ValueError| GenerateError::InvalidOption {
            option,
            problem: error.0,
        }
    };
    validate_url(&options.tenant_url).map_err(invalid("tenant-url"))?;
    let name = validate_name(&options.tenant_name).map_err(invalid("tenant-name"))?;
    let guid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let mut settings = Map::new();
    settings.insert("timeZone".to_owned(), json!("Europe/Berlin"));
    settings.insert("defaultLanguage".to_owned(), json!("de-DE"));
    settings.insert("greeting".to_owned(), json!("Grüß Gott, Zoë"));
    Ok(TenantRecord {
        identity: TenantIdentity {
            guid,
            url: options.tenant_url.clone(),
            name,
        },
        status: TenantStatus::Active,
        sip_domain: Some(format!("sip.{}", options.tenant_url)),
        created_at: Some("2021-03-04T10:00:00Z".to_owned()),
        settings,
    })
}

/// Lays out the ranges from the start number with gaps of 1 to 100 numbers. With two
/// or more ranges the last one is a single number, and the others share the rest evenly.
fn ranges(
    options: &GenerateOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<NumberRange>, GenerateError> {
    let start = AccessNumber::parse(&options.number_start).map_err(|error| {
        GenerateError::InvalidOption {
            option: "number-start",
            problem: error.0,
        }
    })?;
    if options.numbers < options.ranges || (options.ranges == 0 && options.numbers > 0) {
        return Err(GenerateError::InvalidOption {
            option: "numbers",
            problem: format!(
                "{} numbers cannot fill {} ranges; every range holds at least one number",
                options.numbers, options.ranges
            ),
        });
    }
    let does_not_fit = || GenerateError::NumbersDoNotFit {
        numbers: options.numbers,
        ranges: options.ranges,
        digits: start.digits,
        start: options.number_start.clone(),
    };
    let (spread_ranges, spread_numbers) = if options.ranges >= 2 {
        (options.ranges - 1, options.numbers - 1)
    } else {
        (options.ranges, options.numbers)
    };

    let mut ranges = Vec::with_capacity(usize::try_from(options.ranges).unwrap_or(0));
    let mut next = start;
    for index in 0..options.ranges {
        let size = if index < spread_ranges {
            spread_numbers / spread_ranges + u64::from(index < spread_numbers % spread_ranges)
        } else {
            1
        };
        let size = i64::try_from(size).map_err(|_| does_not_fit())?;
        let media = match rng.random_range(0..3) {
            0 => Media::Voice,
            1 => Media::Text,
            _ => Media::VoiceText,
        };
        let trunk = (options.format == 3 && index % 5 == 1).then(|| "carrier-a".to_owned());
        let range =
            NumberRange::from_count(next, size, media, trunk).map_err(|_| does_not_fit())?;
        let gap = rng.random_range(1..=100);
        next = range.last.checked_add(1 + gap).ok_or_else(does_not_fit)?;
        ranges.push(range);
    }
    Ok(ranges)
}

fn object(options: &GenerateOptions, index: u64, rng: &mut ChaCha8Rng) -> ConfigObject {
    let type_index = (index % OBJECT_TYPES.len() as u64) as usize;
    let object_type = OBJECT_TYPES[type_index];
    let word = WORDS[rng.random_range(0..WORDS.len())];
    let name = if index.is_multiple_of(7) {
        format!("{object_type}-{index}-{word}")
    } else {
        format!("{object_type}-{index}")
    };

    let mut attributes = Map::new();
    attributes.insert(
        "description".to_owned(),
        json!(format!("{object_type} {index} für {word}")),
    );
    let mut refer = |key: &str, target: &str, attributes: &mut Map<String, Value>| {
        if let Some(guid) = reference(options, target, rng) {
            attributes.insert(key.to_owned(), json!(guid.to_string()));
        }
    };
    match object_type {
        "user" => {
            refer("team", "team", &mut attributes);
            refer("primarySkill", "skill", &mut attributes);
            attributes.insert("firstName".to_owned(), json!(word));
            attributes.insert(
                "email".to_owned(),
                json!(format!("user{index}@example.com")),
            );
            attributes.insert(
                "extension".to_owned(),
                json!(format!("{}", 1000 + index % 9000)),
            );
        }
        "team" => refer("supervisor", "user", &mut attributes),
        "service" => refer("skill", "skill", &mut attributes),
        "scenario" => {
            refer("service", "service", &mut attributes);
            refer("schedule", "schedule", &mut attributes);
        }
        "calling-list" => refer("disposition", "disposition", &mut attributes),
        "report-template" => refer("owner", "user", &mut attributes),
        _ => {
            attributes.insert("level".to_owned(), json!(rng.random_range(1..=10)));
        }
    }
    ConfigObject {
        guid: object_guid(options.seed, index),
        object_type: object_type.to_owned(),
        name,
        attributes,
    }
}

/// Picks a random object of `target` type and returns its GUID, or `None` when the
/// archive has no object of that type.
fn reference(options: &GenerateOptions, target: &str, rng: &mut ChaCha8Rng) -> Option<Uuid> {
    let type_index = OBJECT_TYPES.iter().position(|name| *name == target)? as u64;
    let stride = OBJECT_TYPES.len() as u64;
    if options.objects <= type_index {
        return None;
    }
    let count = (options.objects - type_index).div_ceil(stride);
    let pick = rng.random_range(0..count);
    Some(object_guid(options.seed, pick * stride + type_index))
}

/// Derives the GUID of object `index` from the seed, so any object's GUID can be
/// computed without keeping the objects.
pub fn object_guid(seed: u64, index: u64) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(index.to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
