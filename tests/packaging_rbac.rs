//! The RBAC rules of the install manifest permit every Kubernetes API call the
//! operator makes.
//!
//! The operator's code runs against the fake API server, whose request log records
//! each call. Each call is mapped to what the API server authorizes (verb, API group,
//! resource with subresource, namespace) and checked against
//! `deploy::import_rules()`, granted where the TenantImports are, and
//! `deploy::lease_rules()`, granted in the operator's namespace only. The Helm chart
//! grants the same rules; tests/packaging/test_chart.py compares them.
//!
//! The controller tests need PostgreSQL at 127.0.0.1:5432.

mod support;

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, RequestRecord};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use support::{Backend, TestDatabase};
use tenant_operator::deploy::{import_rules, lease_rules};
use tenant_operator::lock::{ImportLock, LockError};
use tenant_operator::operator::crd::TenantImport;
use tenant_operator::operator::lease::LeaseLock;

const OPERATOR_NAMESPACE: &str = "tenant-operator";
const IMPORT_NAMESPACE: &str = "contact-center";
const TENANT_IMPORTS: &str = "tenantimports.ccops.dev";
const WAIT: Duration = Duration::from_secs(60);

/// One API call in the terms the API server's authorizer checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiCall {
    verb: &'static str,
    group: String,
    /// The resource, followed by `/subresource` for a subresource.
    resource: String,
    /// None for a call across all namespaces or on a cluster-scoped resource.
    namespace: Option<String>,
}

/// Where the operator's import rules are granted.
#[derive(Debug, Clone, Copy)]
enum Grant<'a> {
    /// A ClusterRole: every namespace.
    ClusterWide,
    /// A Role in one watched namespace.
    Namespace(&'a str),
}

/// Maps a logged request to an API call, or None for a discovery path such as
/// `/api` or `/apis/coordination.k8s.io/v1`, which every client may read.
fn api_call(record: &RequestRecord) -> Option<ApiCall> {
    let segments: Vec<&str> = record.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(*namespace), rest),
        _ => (None, rest),
    };
    let (resource, name, subresource) = match rest {
        [] => return None,
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, subresource, ..] => (*resource, Some(*name), Some(*subresource)),
    };

    let watch = record
        .query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let verb = match (record.method.as_str(), name) {
        ("GET", _) if watch => "watch",
        ("GET", Some(_)) => "get",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => "unknown",
    };
    let resource = match subresource {
        Some(subresource) => format!("{resource}/{subresource}"),
        None => resource.to_owned(),
    };
    Some(ApiCall {
        verb,
        group: group.to_owned(),
        resource,
        namespace: namespace.map(str::to_owned),
    })
}

fn rule_matches(rule: &PolicyRule, call: &ApiCall) -> bool {
    let listed = |values: &Option<Vec<String>>, wanted: &str| {
        values
            .as_ref()
            .is_some_and(|values| values.iter().any(|value| value == wanted))
    };
    listed(&rule.api_groups, &call.group)
        && listed(&rule.resources, &call.resource)
        && rule.verbs.iter().any(|verb| verb == call.verb)
}

/// Returns whether the manifest's rules permit a call, with the import rules granted
/// where `grant` sets and the Lease rules in the operator's namespace.
fn permitted(call: &ApiCall, grant: Grant<'_>) -> bool {
    let in_operator_namespace = call.namespace.as_deref() == Some(OPERATOR_NAMESPACE);
    let lease_permitted =
        in_operator_namespace && lease_rules().iter().any(|rule| rule_matches(rule, call));

    let import_scope = match grant {
        Grant::ClusterWide => true,
        Grant::Namespace(watched) => call.namespace.as_deref() == Some(watched),
    };
    let import_permitted =
        import_scope && import_rules().iter().any(|rule| rule_matches(rule, call));

    lease_permitted || import_permitted
}

/// Returns the logged calls that the rules do not permit.
fn forbidden_calls(server: &FakeApiServer, grant: Grant<'_>) -> Vec<ApiCall> {
    server
        .requests()
        .iter()
        .filter_map(api_call)
        .filter(|call| !permitted(call, grant))
        .collect()
}

fn record(method: &str, path: &str, query: &str) -> RequestRecord {
    RequestRecord {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
    }
}

fn call(verb: &'static str, group: &str, resource: &str, namespace: Option<&str>) -> ApiCall {
    ApiCall {
        verb,
        group: group.to_owned(),
        resource: resource.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

#[test]
fn requests_map_to_api_calls() {
    let cases = [
        (
            record("GET", "/api/v1/namespaces/cc/secrets/db", ""),
            call("get", "", "secrets", Some("cc")),
        ),
        (
            record(
                "GET",
                "/apis/ccops.dev/v1alpha1/tenantimports",
                "watch=true&resourceVersion=5",
            ),
            call("watch", "ccops.dev", "tenantimports", None),
        ),
        (
            record(
                "GET",
                "/apis/ccops.dev/v1alpha1/namespaces/cc/tenantimports",
                "limit=500",
            ),
            call("list", "ccops.dev", "tenantimports", Some("cc")),
        ),
        (
            record(
                "PATCH",
                "/apis/ccops.dev/v1alpha1/namespaces/cc/tenantimports/a/status",
                "",
            ),
            call("patch", "ccops.dev", "tenantimports/status", Some("cc")),
        ),
        (
            record(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases",
                "",
            ),
            call("create", "coordination.k8s.io", "leases", Some("ops")),
        ),
        (
            record(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases/x",
                "",
            ),
            call("update", "coordination.k8s.io", "leases", Some("ops")),
        ),
        (
            record("DELETE", "/api/v1/namespaces/cc/events", ""),
            call("deletecollection", "", "events", Some("cc")),
        ),
        (
            record("GET", "/api/v1/namespaces/cc", ""),
            call("get", "", "namespaces", None),
        ),
    ];

    for (request, expected) in cases {
        assert_eq!(api_call(&request), Some(expected), "{request:?}");
    }
    assert_eq!(
        api_call(&record("GET", "/apis/coordination.k8s.io/v1", "")),
        None
    );
    assert_eq!(api_call(&record("GET", "/version", "")), None);
}

#[test]
fn rules_permit_the_documented_calls() {
    let permitted_calls = [
        call("watch", "ccops.dev", "tenantimports", None),
        call("patch", "ccops.dev", "tenantimports/status", Some("cc")),
        call("get", "", "secrets", Some("cc")),
        call("create", "events.k8s.io", "events", Some("cc")),
        call("patch", "events.k8s.io", "events", Some("cc")),
        call(
            "update",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
    ];

    for call in permitted_calls {
        assert!(permitted(&call, Grant::ClusterWide), "{call:?}");
    }
}

#[test]
fn rules_reject_calls_outside_the_grants() {
    let cases = [
        (call("list", "", "secrets", Some("cc")), Grant::ClusterWide),
        (
            call("get", "", "configmaps", Some("cc")),
            Grant::ClusterWide,
        ),
        (
            call("update", "ccops.dev", "tenantimports", Some("cc")),
            Grant::ClusterWide,
        ),
        (
            call("delete", "ccops.dev", "tenantimports", Some("cc")),
            Grant::ClusterWide,
        ),
        (
            call("patch", "ccops.dev", "tenantimports", Some("cc")),
            Grant::ClusterWide,
        ),
        (call("create", "", "events", Some("cc")), Grant::ClusterWide),
        (
            call("update", "ccops.dev", "tenantimports/status", Some("cc")),
            Grant::ClusterWide,
        ),
        (
            call(
                "delete",
                "coordination.k8s.io",
                "leases",
                Some(OPERATOR_NAMESPACE),
            ),
            Grant::ClusterWide,
        ),
        (
            call("get", "coordination.k8s.io", "leases", Some("cc")),
            Grant::ClusterWide,
        ),
        (
            call("get", "", "secrets", Some("other")),
            Grant::Namespace("cc"),
        ),
        (
            call("watch", "ccops.dev", "tenantimports", None),
            Grant::Namespace("cc"),
        ),
    ];

    for (call, grant) in cases {
        assert!(!permitted(&call, grant), "{call:?} with {grant:?}");
    }
}

#[tokio::test]
async fn lease_lock_calls_are_permitted() {
    let server = FakeApiServer::start().await;
    let client = server.client().await;
    let short = Duration::from_secs(1);
    let first = LeaseLock::with_duration(
        client.clone(),
        OPERATOR_NAMESPACE,
        "eu-west",
        "pod-a",
        short,
    );
    let second = LeaseLock::with_duration(client, OPERATOR_NAMESPACE, "eu-west", "pod-b", short);

    let guard = first
        .acquire(Duration::from_secs(5))
        .await
        .expect("free lock");
    let contended = second.acquire(Duration::from_millis(200)).await;
    assert!(
        matches!(contended, Err(LockError::Timeout { .. })),
        "the held lock was taken twice"
    );
    guard.release().await.expect("release");
    let again = second
        .acquire(Duration::from_secs(5))
        .await
        .expect("released lock");
    again.release().await.expect("release");

    let calls: Vec<ApiCall> = server.requests().iter().filter_map(api_call).collect();
    assert!(
        calls.iter().any(|call| call.resource == "leases"),
        "the lock made no Lease calls: {calls:?}"
    );
    assert_eq!(forbidden_calls(&server, Grant::ClusterWide), Vec::new());
    assert_eq!(forbidden_calls(&server, Grant::Namespace("cc")), Vec::new());
}

/// A `tenant-operator run` process against the fake API server, killed on drop.
struct Operator {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    fn start(server: &FakeApiServer, db: &TestDatabase, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("operator folder");
        let log = dir.path().join("operator.log");
        let metrics_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
            .arg("run")
            .args(["--namespace", OPERATOR_NAMESPACE])
            .args(["--holder-identity", "pod-a"])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--reporting-database-prefix", &db.reporting_prefix])
            .args(extra)
            .env("KUBECONFIG", server.kubeconfig_path())
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("WATCH_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("operator log"))
            .spawn()
            .expect("start tenant-operator run");
        Self {
            child,
            log,
            _dir: dir,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- operator log ----\n{log}");
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    listener.local_addr().expect("local address").port()
}

async fn create_secret(server: &FakeApiServer, name: &str, url: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "url".to_owned(),
            ByteString(url.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(server.client().await, IMPORT_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

async fn create_import(server: &FakeApiServer, name: &str, archive: &Path, secret: &str) {
    let resource = json!({
        "apiVersion": "ccops.dev/v1alpha1",
        "kind": "TenantImport",
        "metadata": {"name": name, "namespace": IMPORT_NAMESPACE},
        "spec": {
            "source": {"url": format!("file://{}", archive.display())},
            "target": {"cluster": "eu-west", "databaseSecretRef": {"name": secret}},
            "lockTimeoutSeconds": 5,
        },
    });
    let resource: TenantImport = serde_json::from_value(resource).expect("valid TenantImport");
    Api::<TenantImport>::namespaced(server.client().await, IMPORT_NAMESPACE)
        .create(&PostParams::default(), &resource)
        .await
        .expect("create TenantImport");
}

/// Waits until the operator has written an outcome, any outcome, to a TenantImport.
async fn wait_for_outcome(server: &FakeApiServer, name: &str) {
    let what = format!("an outcome on TenantImport {name}");
    server
        .wait_for(TENANT_IMPORTS, WAIT, &what, |imports| {
            imports
                .iter()
                .find(|ti| ti["metadata"]["name"] == name && ti["status"]["outcome"].is_string())
                .map(|_| ())
        })
        .await;
}

/// Runs the controller through two attempts, one with its Secret and one whose Secret
/// is missing, then returns the calls the rules do not permit under `grant`. Any
/// outcome will do, because the RBAC check is about the calls an attempt makes.
async fn controller_calls(grant: Grant<'_>, extra: &[&str]) -> Vec<ApiCall> {
    let server = FakeApiServer::start().await;
    let db = TestDatabase::new(Backend::Postgres).await;
    let archive = support::own_example();
    create_secret(&server, "configdb", &db.url).await;
    create_import(&server, "sample", &archive, "configdb").await;
    create_import(&server, "no-secret", &archive, "missing").await;
    // The log so far contains the test's own set-up calls, and the operator's follow.
    let setup_calls = server.requests().len();

    let _operator = Operator::start(&server, &db, extra);
    wait_for_outcome(&server, "sample").await;
    wait_for_outcome(&server, "no-secret").await;

    let calls: Vec<ApiCall> = server.requests()[setup_calls..]
        .iter()
        .filter_map(api_call)
        .collect();
    for (resource, verb) in [
        ("tenantimports", "watch"),
        ("tenantimports/status", "patch"),
        ("secrets", "get"),
        ("events", "create"),
        ("leases", "create"),
    ] {
        assert!(
            calls
                .iter()
                .any(|call| call.resource == resource && call.verb == verb),
            "the controller made no {verb} call on {resource}: {calls:?}"
        );
    }
    calls
        .into_iter()
        .filter(|call| !permitted(call, grant))
        .collect()
}

#[tokio::test]
async fn controller_calls_are_permitted_cluster_wide() {
    let forbidden = controller_calls(Grant::ClusterWide, &[]).await;

    assert_eq!(forbidden, Vec::new());
}

#[tokio::test]
async fn controller_calls_are_permitted_in_watched_namespace() {
    let grant = Grant::Namespace(IMPORT_NAMESPACE);
    let extra = ["--watch-namespace", IMPORT_NAMESPACE];
    let forbidden = controller_calls(grant, &extra).await;

    assert_eq!(forbidden, Vec::new());
}
