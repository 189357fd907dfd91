//! The committed deployment files match what the code generates: deploy/install.yaml
//! is the install manifest with the default options, and the Helm chart's CRD is the
//! CRD that `tenant-operator crd` prints, the same file as crds/tenantimport.yaml.
//!
//! Run with `UPDATE_MANIFESTS=1` to rewrite both files from the code instead of
//! comparing them.

use std::path::{Path, PathBuf};

use tenant_operator::deploy::{InstallOptions, render_install_manifest};
use tenant_operator::operator::crd::crd_yaml;

/// The first lines of deploy/install.yaml, before the generated objects.
const INSTALL_HEADER: &str = "\
# tenant-operator install manifest: the TenantImport CRD, the operator's namespace,
# ServiceAccount, RBAC and Deployment. Generated from src/deploy.rs; regenerate with
#   UPDATE_MANIFESTS=1 cargo test --test packaging_manifest
# Apply with: kubectl apply --server-side -f deploy/install.yaml
";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_MANIFESTS").is_some()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|error| panic!("failed to read {relative}: {error}"))
}

fn write(relative: &str, contents: &str) {
    std::fs::write(repo_path(relative), contents)
        .unwrap_or_else(|error| panic!("failed to write {relative}: {error}"));
}

#[test]
fn install_manifest_is_current() {
    let rendered = render_install_manifest(&InstallOptions::default()).expect("renders");
    let generated = format!("{INSTALL_HEADER}---\n{rendered}");

    if updating() {
        write("deploy/install.yaml", &generated);
    }

    assert!(
        read("deploy/install.yaml") == generated,
        "deploy/install.yaml is stale; regenerate it with \
         `UPDATE_MANIFESTS=1 cargo test --test packaging_manifest`"
    );
}

#[test]
fn chart_crd_is_current() {
    let generated = crd_yaml().expect("encodable CRD");

    if updating() {
        write("charts/tenant-operator/crds/tenantimport.yaml", &generated);
    }

    assert!(
        read("charts/tenant-operator/crds/tenantimport.yaml") == generated,
        "charts/tenant-operator/crds/tenantimport.yaml is stale; regenerate it with \
         `UPDATE_MANIFESTS=1 cargo test --test packaging_manifest`"
    );
}

#[test]
fn chart_crd_matches_top_level_crd() {
    let chart = read("charts/tenant-operator/crds/tenantimport.yaml");

    assert!(
        read("crds/tenantimport.yaml") == chart,
        "crds/tenantimport.yaml differs from the chart's copy; regenerate both with \
         `cargo run -- crd > crds/tenantimport.yaml` and \
         `UPDATE_MANIFESTS=1 cargo test --test packaging_manifest`"
    );
}

/// Returns the controller container's args from a rendered install manifest.
fn controller_args(manifest: &str) -> Vec<String> {
    let deployment: serde_yaml::Value = manifest
        .split("---\n")
        .filter_map(|document| serde_yaml::from_str::<serde_yaml::Value>(document).ok())
        .find(|document| document["kind"] == "Deployment")
        .expect("a Deployment in the manifest");
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    args.as_sequence()
        .expect("controller args")
        .iter()
        .map(|arg| arg.as_str().expect("string arg").to_owned())
        .collect()
}

#[test]
fn controller_args_are_accepted_by_the_binary() {
    let options = [
        InstallOptions::default(),
        InstallOptions {
            watch_namespace: Some("contact-center".to_owned()),
            ..InstallOptions::default()
        },
    ];

    for options in options {
        let manifest = render_install_manifest(&options).expect("renders");
        // The kubelet expands $(VAR) from the environment; the test does the same.
        let args: Vec<String> = controller_args(&manifest)
            .iter()
            .map(|arg| {
                arg.replace("$(POD_NAMESPACE)", "tenant-operator")
                    .replace("$(POD_NAME)", "tenant-operator-0")
            })
            .collect();

        // clap rejects an unknown option or an invalid value before it acts on --help.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
            .args(&args)
            .arg("--help")
            .output()
            .expect("run tenant-operator");
        assert!(
            output.status.success(),
            "tenant-operator rejected {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
