//! The install manifest: every object a cluster needs to run the operator, built from
//! k8s-openapi types and rendered as one multi-document YAML.
//!
//! The manifest contains the TenantImport CRD, the operator's Namespace, its
//! ServiceAccount, least-privilege RBAC and the controller Deployment.
//! `deploy/install.yaml` is this output for [`InstallOptions::default`], and the Helm
//! chart in `charts/tenant-operator` grants the same RBAC rules.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, Namespace, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecurityContext, ServiceAccount, Volume,
    VolumeMount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResourceExt;
use serde::Serialize;

use crate::operator::crd::TenantImport;

/// The name of the operator's ServiceAccount, Deployment and RBAC objects.
pub const NAME: &str = "tenant-operator";

/// The namespace the operator runs in unless [`InstallOptions::namespace`] sets another.
pub const DEFAULT_NAMESPACE: &str = "tenant-operator";

/// The image reference of this version. Build and push it to your registry, then set
/// [`InstallOptions::image`] to the pushed reference.
pub const DEFAULT_IMAGE: &str = concat!("tenant-operator:", env!("CARGO_PKG_VERSION"));

/// The container port that serves `/metrics`, `/healthz` and `/readyz`.
pub const METRICS_PORT: i32 = 9090;

/// The user and group id the container runs as: the `nonroot` user of the distroless
/// runtime image.
pub const RUN_AS_ID: i64 = 65532;

/// The mount path of the container's writable temporary directory, where downloaded
/// archives are spooled.
pub const TMP_DIR: &str = "/tmp";

/// The size limit of the temporary directory. The controller spools up to four
/// archives at once (its default `--concurrency`) of up to 1 GiB each (the default
/// archive size limit), so 5 GiB leaves room to spare.
pub const TMP_SIZE_LIMIT: &str = "5Gi";

/// Seconds a stopping pod gets to let a running import commit or roll back.
pub const TERMINATION_GRACE_SECONDS: i64 = 60;

/// Settings of the rendered install manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// The namespace of the operator's Deployment, ServiceAccount and Leases.
    pub namespace: String,
    /// The container image reference.
    pub image: String,
    /// The number of controller pods; one leads and the others stand by.
    pub replicas: i32,
    /// The only namespace whose TenantImports are reconciled. Without it the operator
    /// watches every namespace and reads Secrets cluster-wide.
    pub watch_namespace: Option<String>,
}

/// Options of `tenant-operator manifests`, which prints the install manifest.
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestArgs {
    /// Namespace of the operator's Deployment, ServiceAccount and Leases.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Container image reference of the operator.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,

    /// Number of controller pods; one leads and the others stand by.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: i32,

    /// The only namespace whose TenantImports are reconciled; without it every
    /// namespace is watched and Secrets are readable cluster-wide.
    #[arg(long)]
    pub watch_namespace: Option<String>,
}

/// Errors of rendering the install manifest.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An object could not be encoded as YAML.
    #[error("failed to encode the {kind} {name} as YAML")]
    Encode {
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The encoder's error.
        #[source]
        source: serde_yaml::Error,
    },
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            replicas: 1,
            watch_namespace: None,
        }
    }
}

impl From<ManifestArgs> for InstallOptions {
    fn from(args: ManifestArgs) -> Self {
        Self {
            namespace: args.namespace,
            image: args.image,
            replicas: args.replicas,
            watch_namespace: args.watch_namespace,
        }
    }
}

/// Prints the install manifest for `tenant-operator manifests`.
///
/// # Errors
///
/// Returns [`DeployError::Encode`] when an object cannot be encoded as YAML.
pub fn print_install_manifest(args: ManifestArgs) -> Result<(), DeployError> {
    let manifest = render_install_manifest(&InstallOptions::from(args))?;
    write_stdout(&manifest);
    Ok(())
}

/// Renders the install manifest: one YAML document per object, separated by `---`.
///
/// # Errors
///
/// Returns [`DeployError::Encode`] when an object cannot be encoded as YAML.
pub fn render_install_manifest(options: &InstallOptions) -> Result<String, DeployError> {
    let mut documents = vec![
        encode("CustomResourceDefinition", &TenantImport::crd())?,
        encode("Namespace", &namespace(options))?,
        encode("ServiceAccount", &service_account(options))?,
    ];

    match &options.watch_namespace {
        Some(watched) => {
            documents.push(encode("Role", &import_role(watched))?);
            documents.push(encode(
                "RoleBinding",
                &import_role_binding(options, watched),
            )?);
        }
        None => {
            documents.push(encode("ClusterRole", &import_cluster_role())?);
            documents.push(encode(
                "ClusterRoleBinding",
                &import_cluster_role_binding(options),
            )?);
        }
    }
    documents.push(encode("Role", &lease_role(options))?);
    documents.push(encode("RoleBinding", &lease_role_binding(options))?);
    documents.push(encode("Deployment", &deployment(options))?);

    Ok(documents.join("---\n"))
}

/// Returns the rules the operator needs where its TenantImports are: watch
/// TenantImports, patch their status, read the Secrets they name, and publish Events
/// through kube-runtime's recorder, which uses the `events.k8s.io` API.
pub fn import_rules() -> Vec<PolicyRule> {
    vec![
        rule("ccops.dev", "tenantimports", &["get", "list", "watch"]),
        rule("ccops.dev", "tenantimports/status", &["patch"]),
        rule("", "secrets", &["get"]),
        rule("events.k8s.io", "events", &["create", "patch"]),
    ]
}

/// Returns the rules the operator needs in its own namespace: the Leases that lock each
/// target cluster and elect the leader.
pub fn lease_rules() -> Vec<PolicyRule> {
    vec![rule(
        "coordination.k8s.io",
        "leases",
        &["get", "list", "watch", "create", "update", "patch"],
    )]
}

/// Returns the labels every object of the installation carries.
pub fn common_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), NAME.to_owned()),
        (
            "app.kubernetes.io/version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ])
}

#[allow(clippy::print_stdout)]
fn write_stdout(text: &str) {
    print!("{text}");
}

fn encode<T: Serialize>(kind: &'static str, object: &T) -> Result<String, DeployError> {
    serde_yaml::to_string(object).map_err(|source| DeployError::Encode {
        kind,
        name: object_name(object),
        source,
    })
}

/// Returns `metadata.name` for an error message, or an empty string.
fn object_name<T: Serialize>(object: &T) -> String {
    serde_json::to_value(object)
        .ok()
        .and_then(|value| value["metadata"]["name"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(common_labels()),
        ..ObjectMeta::default()
    }
}

fn rule(group: &str, resource: &str, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|verb| (*verb).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

fn namespace(options: &InstallOptions) -> Namespace {
    let mut meta = metadata(&options.namespace, None);
    // The pod passes the restricted Pod Security Standard, so the namespace enforces it.
    meta.labels.get_or_insert_with(BTreeMap::new).insert(
        "pod-security.kubernetes.io/enforce".to_owned(),
        "restricted".to_owned(),
    );
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

fn service_account(options: &InstallOptions) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(NAME, Some(&options.namespace)),
        ..ServiceAccount::default()
    }
}

fn operator_subject(options: &InstallOptions) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".to_owned(),
        name: NAME.to_owned(),
        namespace: Some(options.namespace.clone()),
        ..Subject::default()
    }]
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn import_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: metadata(NAME, None),
        rules: Some(import_rules()),
        ..ClusterRole::default()
    }
}

fn import_cluster_role_binding(options: &InstallOptions) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(NAME, None),
        role_ref: role_ref("ClusterRole", NAME),
        subjects: Some(operator_subject(options)),
    }
}

fn import_role(watched: &str) -> Role {
    Role {
        metadata: metadata(NAME, Some(watched)),
        rules: Some(import_rules()),
    }
}

fn import_role_binding(options: &InstallOptions, watched: &str) -> RoleBinding {
    RoleBinding {
        metadata: metadata(NAME, Some(watched)),
        role_ref: role_ref("Role", NAME),
        subjects: Some(operator_subject(options)),
    }
}

fn lease_role_name() -> String {
    format!("{NAME}-leases")
}

fn lease_role(options: &InstallOptions) -> Role {
    Role {
        metadata: metadata(&lease_role_name(), Some(&options.namespace)),
        rules: Some(lease_rules()),
    }
}

fn lease_role_binding(options: &InstallOptions) -> RoleBinding {
    RoleBinding {
        metadata: metadata(&lease_role_name(), Some(&options.namespace)),
        role_ref: role_ref("Role", &lease_role_name()),
        subjects: Some(operator_subject(options)),
    }
}

fn deployment(options: &InstallOptions) -> Deployment {
    let selector = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), NAME.to_owned()),
    ]);
    let mut pod_labels = common_labels();
    pod_labels.extend(selector.clone());

    Deployment {
        metadata: metadata(NAME, Some(&options.namespace)),
        spec: Some(DeploymentSpec {
            replicas: Some(options.replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(options)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn pod_spec(options: &InstallOptions) -> PodSpec {
    PodSpec {
        service_account_name: Some(NAME.to_owned()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_ID),
            run_as_group: Some(RUN_AS_ID),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..PodSecurityContext::default()
        }),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        containers: vec![controller_container(options)],
        volumes: Some(vec![Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity(TMP_SIZE_LIMIT.to_owned())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    }
}

fn controller_args(options: &InstallOptions) -> Vec<String> {
    // The kubelet expands $(VAR) in args from the container's environment.
    let mut args = vec![
        "run".to_owned(),
        "--namespace=$(POD_NAMESPACE)".to_owned(),
        "--holder-identity=$(POD_NAME)".to_owned(),
        format!("--metrics-listen=0.0.0.0:{METRICS_PORT}"),
    ];
    if let Some(watched) = &options.watch_namespace {
        args.push(format!("--watch-namespace={watched}"));
    }
    args
}

fn controller_container(options: &InstallOptions) -> Container {
    Container {
        name: "controller".to_owned(),
        image: Some(options.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(controller_args(options)),
        env: Some(vec![
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("POD_NAME", "metadata.name"),
            value_env("LOG_FORMAT", "json"),
            value_env("TMPDIR", TMP_DIR),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".to_owned()),
            container_port: METRICS_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(http_probe("/healthz", 10)),
        readiness_probe: Some(http_probe("/readyz", 5)),
        resources: Some(resources()),
        security_context: Some(restricted_container_context()),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".to_owned(),
            mount_path: TMP_DIR.to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn value_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("metrics".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

// NOTE: these sizes are estimates that no load test has checked yet.
fn resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".to_owned())),
            ("memory".to_owned(), Quantity("128Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

fn restricted_container_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(options: &InstallOptions) -> Vec<serde_yaml::Value> {
        let manifest = render_install_manifest(options).expect("manifest renders");
        manifest
            .split("---\n")
            .map(|document| serde_yaml::from_str(document).expect("valid YAML document"))
            .collect()
    }

    fn kinds(documents: &[serde_yaml::Value]) -> Vec<(String, String)> {
        documents
            .iter()
            .map(|document| {
                let kind = document["kind"].as_str().unwrap_or_default().to_owned();
                let namespace = document["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (kind, namespace)
            })
            .collect()
    }

    #[derive(Debug, clap::Parser)]
    struct ManifestCommand {
        #[command(flatten)]
        args: ManifestArgs,
    }

    #[test]
    fn manifest_args_default_to_install_options() {
        use clap::Parser;

        let command = ManifestCommand::try_parse_from(["manifests"]).expect("no options");

        assert_eq!(
            InstallOptions::from(command.args),
            InstallOptions::default()
        );
    }

    #[test]
    fn manifest_args_set_every_option() {
        use clap::Parser;

        let command = ManifestCommand::try_parse_from([
            "manifests",
            "--namespace=ops",
            "--image=registry.example/tenant-operator:1.2.3",
            "--replicas=2",
            "--watch-namespace=contact-center",
        ])
        .expect("valid options");

        let options = InstallOptions::from(command.args);
        assert_eq!(options.namespace, "ops");
        assert_eq!(options.image, "registry.example/tenant-operator:1.2.3");
        assert_eq!(options.replicas, 2);
        assert_eq!(options.watch_namespace.as_deref(), Some("contact-center"));
    }

    #[test]
    fn manifest_args_reject_negative_replicas() {
        use clap::Parser;

        let parsed = ManifestCommand::try_parse_from(["manifests", "--replicas=-1"]);

        assert!(parsed.is_err());
    }

    #[test]
    fn cluster_wide_install_uses_cluster_role() {
        let documents = documents(&InstallOptions::default());

        let kinds = kinds(&documents);
        assert!(kinds.contains(&("ClusterRole".to_owned(), String::new())));
        assert!(kinds.contains(&("ClusterRoleBinding".to_owned(), String::new())));
        assert!(kinds.contains(&("Role".to_owned(), DEFAULT_NAMESPACE.to_owned())));
        assert_eq!(kinds[0].0, "CustomResourceDefinition");
    }

    #[test]
    fn watched_namespace_install_uses_roles_only() {
        let options = InstallOptions {
            watch_namespace: Some("contact-center".to_owned()),
            ..InstallOptions::default()
        };
        let documents = documents(&options);

        let kinds = kinds(&documents);
        assert!(!kinds.iter().any(|(kind, _)| kind == "ClusterRole"));
        assert!(!kinds.iter().any(|(kind, _)| kind == "ClusterRoleBinding"));
        assert!(kinds.contains(&("Role".to_owned(), "contact-center".to_owned())));
        assert!(kinds.contains(&("RoleBinding".to_owned(), "contact-center".to_owned())));

        let deployment = documents
            .iter()
            .find(|document| document["kind"] == "Deployment")
            .expect("a Deployment");
        let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
        let args: Vec<&str> = args
            .as_sequence()
            .expect("args list")
            .iter()
            .filter_map(serde_yaml::Value::as_str)
            .collect();
        assert!(
            args.contains(&"--watch-namespace=contact-center"),
            "{args:?}"
        );
    }

    #[test]
    fn options_set_namespace_image_and_replicas() {
        let options = InstallOptions {
            namespace: "ops".to_owned(),
            image: "registry.example/tenant-operator:1.2.3".to_owned(),
            replicas: 2,
            watch_namespace: None,
        };
        let documents = documents(&options);

        let deployment = documents
            .iter()
            .find(|document| document["kind"] == "Deployment")
            .expect("a Deployment");
        assert_eq!(deployment["metadata"]["namespace"], "ops");
        assert_eq!(deployment["spec"]["replicas"], 2);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "registry.example/tenant-operator:1.2.3");

        let binding = documents
            .iter()
            .find(|document| document["kind"] == "ClusterRoleBinding")
            .expect("a ClusterRoleBinding");
        assert_eq!(binding["subjects"][0]["namespace"], "ops");
    }
}
