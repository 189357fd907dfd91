//! The committed CRD in crds/tenantimport.yaml matches what `tenant-operator crd`
//! prints, so a change to the resource types cannot ship with a stale manifest.

use std::process::Command;

#[test]
fn committed_crd_is_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .arg("crd")
        .output()
        .expect("run tenant-operator crd");
    assert!(output.status.success(), "crd failed: {output:?}");

    let generated = String::from_utf8(output.stdout).expect("UTF-8 YAML");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/tenantimport.yaml");
    let committed = std::fs::read_to_string(path).expect("read crds/tenantimport.yaml");
    assert!(
        generated == committed,
        "crds/tenantimport.yaml is stale; regenerate it with \
         `cargo run -- crd > crds/tenantimport.yaml`"
    );
}

#[test]
fn crd_names_group_kind_and_short_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .arg("crd")
        .output()
        .expect("run tenant-operator crd");
    let crd: serde_yaml::Value = serde_yaml::from_slice(&output.stdout).expect("YAML CRD");

    assert_eq!(
        crd["metadata"]["name"].as_str(),
        Some("tenantimports.ccops.dev")
    );
    assert_eq!(crd["spec"]["scope"].as_str(), Some("Namespaced"));
    assert_eq!(crd["spec"]["names"]["shortNames"][0].as_str(), Some("ti"));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"].as_str(), Some("v1alpha1"));
    assert!(
        version["subresources"]["status"].is_mapping(),
        "no status subresource"
    );
}
