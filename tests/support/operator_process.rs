//! Test support for the operator's end-to-end tests: a `tenant-operator run` process
//! against the fake API server, and helpers that create and read TenantImports.
//!
//! Include it with `#[path = "support/operator_process.rs"] mod operator_process;`
//! next to `mod support;` and `#[path = "support/fake_apiserver.rs"] mod fake_apiserver;`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};
use tenant_operator::engine::fault::{BATCH_SIZE_VARIABLE, PAUSE_VARIABLE};

use crate::fake_apiserver::FakeApiServer;
use crate::support::{Backend, TestDatabase};

pub const NAMESPACE: &str = "contact-center";
pub const OPERATOR_NAMESPACE: &str = "ops";
pub const TENANT_IMPORTS: &str = "tenantimports.ccops.dev";
pub const EVENTS: &str = "events.events.k8s.io";
pub const LEASES: &str = "leases.coordination.k8s.io";
pub const WAIT: Duration = Duration::from_secs(60);

/// A `tenant-operator run` process, killed on drop. Its log is printed when the test
/// fails. Its requests carry its identity as bearer token, see
/// [`FakeApiServer::kubeconfig_for`].
pub struct Operator {
    /// The `run` process.
    pub child: Child,
    log: PathBuf,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl Operator {
    pub fn start(
        server: &FakeApiServer,
        db: &TestDatabase,
        identity: &str,
        extra: &[&str],
    ) -> Self {
        Self::start_with_env(server, db, identity, extra, &[])
    }

    /// Starts the operator with further environment variables, such as a
    /// fault-injection pause that [`Operator::resume`] releases. The lease duration is
    /// 3 seconds unless `extra` sets `--lease-duration`.
    pub fn start_with_env(
        server: &FakeApiServer,
        db: &TestDatabase,
        identity: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("operator folder");
        let log = dir.path().join("operator.log");
        let port = free_port();
        let lease_duration: &[&str] = if extra.contains(&"--lease-duration") {
            &[]
        } else {
            &["--lease-duration", "3"]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
            .arg("run")
            .args(["--namespace", OPERATOR_NAMESPACE])
            .args(["--holder-identity", identity])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .args(lease_duration)
            .args(["--retry-initial-delay", "1"])
            .args(["--retry-max-delay", "2"])
            .args(["--reporting-database-prefix", &db.reporting_prefix])
            .args(extra)
            .env("KUBECONFIG", server.kubeconfig_for(identity))
            .env("RUST_LOG", "info,tenant_operator=debug")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("WATCH_NAMESPACE")
            .env_remove(PAUSE_VARIABLE)
            .env_remove(BATCH_SIZE_VARIABLE)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("operator log"))
            .spawn()
            .expect("start tenant-operator run");
        Self {
            child,
            log,
            metrics: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Asks the operator to stop as Kubernetes does, with SIGTERM, and waits up to
    /// 20 s for it to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        assert!(status.success(), "kill -TERM failed");
        self.wait_for_exit(Duration::from_secs(20)).await
    }

    /// Waits for the operator to exit, without blocking the runtime that serves the
    /// fake API server, and panics after `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("operator status") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operator still running after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Returns the operator's log (standard error) so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns the path of the operator's log.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Lets an import paused at a fault-injection point go on.
    pub fn resume(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped standard input");
        stdin
            .write_all(b"\n")
            .expect("resume the operator's import");
        stdin.flush().expect("flush standard input");
    }

    /// Stops the operator at once, as a crash or a node failure does.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match reqwest::get(format!("{}{path}", self.metrics)).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    return (status, response.text().await.unwrap_or_default());
                }
                Err(error) if tokio::time::Instant::now() > deadline => {
                    panic!("GET {path} failed: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- operator log ({}) ----\n{log}", self.log.display());
        }
    }
}

/// Waits until at least `count` lines of the file at `log` contain every one of
/// `parts`, and panics with the log after [`WAIT`].
pub async fn wait_for_log(log: &Path, parts: &[&str], count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        let matching = content
            .lines()
            .filter(|line| parts.iter().all(|part| line.contains(part)))
            .count();
        if matching >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {count} lines with {parts:?} in {}:\n{content}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    listener.local_addr().expect("local address").port()
}

pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

pub async fn create_secret(server: &FakeApiServer, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(server.client().await, NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

pub async fn create_import(server: &FakeApiServer, name: &str, spec: Value) {
    let resource = json!({
        "apiVersion": "ccops.dev/v1alpha1",
        "kind": "TenantImport",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    });
    let api: Api<tenant_operator::operator::crd::TenantImport> =
        Api::namespaced(server.client().await, NAMESPACE);
    let resource = serde_json::from_value(resource).expect("valid TenantImport");
    api.create(&PostParams::default(), &resource)
        .await
        .expect("create TenantImport");
}

pub fn spec(url: &str, cluster: &str) -> Value {
    json!({
        "source": {"url": url},
        "target": {"cluster": cluster, "databaseSecretRef": {"name": "configdb"}},
        "lockTimeoutSeconds": 1,
    })
}

/// Waits until the TenantImport's status has `outcome` and returns the resource.
pub async fn wait_for_outcome(server: &FakeApiServer, name: &str, outcome: &str) -> Value {
    let what = format!("TenantImport {name} to reach {outcome}");
    server
        .wait_for(TENANT_IMPORTS, WAIT, &what, |imports| {
            imports
                .iter()
                .find(|ti| ti["metadata"]["name"] == name && ti["status"]["outcome"] == outcome)
                .cloned()
        })
        .await
}

pub fn condition<'a>(resource: &'a Value, type_: &str) -> &'a Value {
    resource["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

pub async fn tenant_count(db: &TestDatabase) -> i64 {
    let pool = sqlx::PgPool::connect(&db.url)
        .await
        .expect("connect to test database");
    let count = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .expect("count tenants");
    pool.close().await;
    count
}

pub async fn setup() -> (FakeApiServer, TestDatabase) {
    let server = FakeApiServer::start().await;
    let db = TestDatabase::new(Backend::Postgres).await;
    create_secret(&server, "configdb", &[("url", &db.url)]).await;
    (server, db)
}
