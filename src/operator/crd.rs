//! The `TenantImport` custom resource (`ccops.dev/v1alpha1`, short name `ti`).
//!
//! The spec names an archive in object storage and a target cluster. The controller
//! writes the outcome to the status subresource. The spec is immutable through a CEL
//! rule, so a status always describes the spec it sits beside. A re-run of the same
//! spec is requested by setting the [`RERUN_ANNOTATION`] to a new value.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The annotation whose new value requests a new import of an unchanged spec.
pub const RERUN_ANNOTATION: &str = "ccops.dev/rerun";

/// The default of `spec.lockTimeoutSeconds`.
pub const DEFAULT_LOCK_TIMEOUT_SECONDS: u32 = 120;

/// The largest accepted `spec.lockTimeoutSeconds`.
pub const MAX_LOCK_TIMEOUT_SECONDS: u32 = 3600;

/// The message the API server returns when a client changes the spec.
const IMMUTABLE_SPEC_MESSAGE: &str = "spec is immutable: create a new TenantImport to \
     import another archive, or set a new value on the ccops.dev/rerun annotation to \
     run this one again";

/// The spec of a `TenantImport`: the archive to import and the target cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ccops.dev",
    version = "v1alpha1",
    kind = "TenantImport",
    plural = "tenantimports",
    shortname = "ti",
    namespaced,
    status = "TenantImportStatus",
    printcolumn = r#"{"name":"Outcome","type":"string","jsonPath":".status.outcome"}"#,
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".status.tenant.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message(IMMUTABLE_SPEC_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct TenantImportSpec {
    /// The archive's location.
    pub source: ArchiveSource,
    /// The cluster whose configuration database receives the tenant.
    pub target: ImportTarget,
    /// Seconds to wait for another import into the same cluster to finish.
    #[serde(default = "default_lock_timeout_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub lock_timeout_seconds: u32,
}

/// The archive's location in object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveSource {
    /// The archive URL: `s3://`, `gs://`, `az://`, `file://`, `http://` or `https://`.
    #[schemars(regex(pattern = r"^(s3|gs|az|file|https?)://\S+$"), length(max = 2048))]
    pub url: String,
    /// A Secret whose keys are object-store options, such as `aws_access_key_id` and
    /// `aws_secret_access_key` for S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// The endpoint of an S3-compatible service, for example `https://minio.example:9000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://\S+$"))]
    pub endpoint: Option<String>,
    /// The S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Addresses S3 buckets by path (`endpoint/bucket/key`) instead of by host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Allows plain `http://` endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// The expected SHA-256 of the archive, 64 lower-case hex digits. An archive with
    /// another digest is rejected as invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
}

/// A reference to a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A reference to one key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key whose value is the database URL.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The import's target cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportTarget {
    /// The cluster's name, a DNS label. Imports into one cluster are serialised by the
    /// Lease `tenant-import-<cluster>`.
    #[schemars(
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub cluster: String,
    /// The Secret key that contains the configuration database URL.
    pub database_secret_ref: SecretKeyRef,
    /// The Secret key that contains the PostgreSQL server URL for reporting databases;
    /// without it they are created on the configuration database's server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_database_secret_ref: Option<SecretKeyRef>,
}

/// The verdict of the latest import attempt.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImportOutcome {
    /// The tenant was imported and committed.
    Imported,
    /// The tenant or one of its objects already exists in the target; nothing was
    /// written.
    Conflict,
    /// Another import held the target's lock for the whole wait; retried with backoff.
    LockTimeout,
    /// The archive is invalid or its digest differs from the pin; nothing was written.
    Invalid,
    /// The attempt failed before a verdict (source, Secret or database unavailable);
    /// retried with backoff.
    Failed,
}

/// The status of a `TenantImport`: the controller's record of its attempts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantImportStatus {
    /// The verdict of the latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_outcome_schema")]
    pub outcome: Option<ImportOutcome>,
    /// `Ready`, `Progressing`, `Reconciling` and `Stalled` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation that the outcome belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The value of the re-run annotation that the outcome belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_rerun: Option<String>,
    /// The archive's tenant, when the archive was readable that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantSummary>,
    /// Access-number counts of the import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_numbers: Option<AccessNumberSummary>,
    /// Ranges skipped whole because another tenant owns one of their numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_ranges: Vec<SkippedRange>,
    /// The fetched archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSummary>,
    /// Attempts made for the current generation and re-run value.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt for the current generation and re-run value started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the latest attempt ended; retries are scheduled from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Time>,
    /// When a final outcome was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// One sentence about the latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The imported tenant's identity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct TenantSummary {
    /// The tenant's GUID.
    pub guid: String,
    /// The tenant URL.
    pub url: String,
    /// The tenant name.
    pub name: String,
}

/// Access-number counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
pub struct AccessNumberSummary {
    /// Numbers created with no trunk.
    pub created: u64,
    /// Free numbers assigned to the tenant, keeping their trunk.
    pub assigned: u64,
    /// Numbers not taken because another tenant owns a number of their range.
    pub skipped: u64,
}

/// The bounds of a skipped range.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SkippedRange {
    /// First number.
    pub first: String,
    /// Last number.
    pub last: String,
}

/// The archive that the latest attempt fetched.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveSummary {
    /// SHA-256 of the archive, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The archive's format version, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_version: Option<u32>,
}

/// Describes an optional [`ImportOutcome`] as one nullable string enum, because the
/// `anyOf` that schemars derives for an optional enum is not a structural schema.
fn optional_outcome_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "nullable": true,
        "enum": ["Imported", "Conflict", "LockTimeout", "Invalid", "Failed"],
        "description": "The verdict of the latest attempt: Imported, Conflict, LockTimeout, Invalid or Failed."
    })
}

fn default_lock_timeout_seconds() -> u32 {
    DEFAULT_LOCK_TIMEOUT_SECONDS
}

fn default_secret_key() -> String {
    "url".to_owned()
}

/// Renders the CustomResourceDefinition as YAML, as `tenant-operator crd` prints it.
///
/// # Errors
///
/// Returns the encoder's error when the definition cannot be written as YAML.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&TenantImport::crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_apply() {
        let spec: TenantImportSpec = serde_json::from_value(serde_json::json!({
            "source": {"url": "s3://bucket/a.zip"},
            "target": {"cluster": "eu-west", "databaseSecretRef": {"name": "db"}}
        }))
        .expect("valid spec");
        assert_eq!(spec.lock_timeout_seconds, DEFAULT_LOCK_TIMEOUT_SECONDS);
        assert_eq!(spec.target.database_secret_ref.key, "url");
    }

    #[test]
    fn crd_carries_immutability_rule() {
        let yaml = crd_yaml().expect("encodable CRD");
        assert!(yaml.contains("self == oldSelf"), "{yaml}");
        assert!(yaml.contains("ccops.dev/rerun"), "{yaml}");
    }

    #[test]
    fn outcome_schema_lists_every_outcome() {
        let crd = serde_json::to_value(TenantImport::crd()).expect("encodable CRD");
        let outcome = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"]["outcome"];
        assert_eq!(outcome["type"], "string");
        assert!(outcome.get("anyOf").is_none(), "{outcome}");
        let outcomes = [
            ImportOutcome::Imported,
            ImportOutcome::Conflict,
            ImportOutcome::LockTimeout,
            ImportOutcome::Invalid,
            ImportOutcome::Failed,
        ];
        for value in outcomes {
            let name = serde_json::to_value(value).expect("encodable outcome");
            let listed = outcome["enum"].as_array().expect("enum list");
            assert!(listed.contains(&name), "{name} missing from {outcome}");
        }
    }

    #[test]
    fn crd_bounds_lock_timeout() {
        let crd = serde_json::to_value(TenantImport::crd()).expect("encodable CRD");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["lockTimeoutSeconds"];
        assert_eq!(spec["minimum"].as_f64(), Some(1.0));
        assert_eq!(
            spec["maximum"].as_f64(),
            Some(f64::from(MAX_LOCK_TIMEOUT_SECONDS))
        );
    }
}
