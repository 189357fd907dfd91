//! Test support for the HTTP shim: a `tenant-operator serve` process on a free port of
//! 127.0.0.1, an HTTP client with tokens, and generated format-3 archives.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tenant_operator::engine::fault::{BATCH_SIZE_VARIABLE, PAUSE_VARIABLE};
use uuid::Uuid;

/// The id of the API client every test server accepts.
pub const CLIENT_ID: &str = "provisioning";
/// The secret of [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "correct horse battery staple";
/// The token signing key of every test server.
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";
/// The issuer and audience the test servers use.
pub const ISSUER: &str = "tenant-operator";
/// The audience the test servers use.
pub const AUDIENCE: &str = "configapi";

/// How long a server may take to start or stop.
const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// Options of a test server.
#[derive(Debug, Clone, Default)]
pub struct ShimOptions {
    /// Start with `--insecure-no-auth` instead of clients and a key.
    pub insecure: bool,
    /// Further command-line arguments.
    pub args: Vec<String>,
    /// Environment variables to set, such as `KUBECONFIG`.
    pub env: Vec<(String, String)>,
    /// Folder for every temporary file of the server: its `--upload-dir` and its
    /// `TMPDIR`. Without it, uploads go to the server's own folder beside its log.
    pub temp_dir: Option<PathBuf>,
}

impl ShimOptions {
    /// Options that make uploads take the Lease `tenant-import-CLUSTER` in `namespace`
    /// as `holder`, through the kubeconfig at `kubeconfig`.
    pub fn lease(
        kubeconfig: &Path,
        cluster: &str,
        namespace: &str,
        holder: &str,
        duration: Duration,
    ) -> Self {
        let args = [
            "--lease-cluster",
            cluster,
            "--lease-namespace",
            namespace,
            "--holder-identity",
            holder,
            "--lease-duration",
            &duration.as_secs().to_string(),
        ];
        Self {
            insecure: false,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: vec![
                ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
                (
                    "RUST_LOG".to_owned(),
                    "info,tenant_operator=debug".to_owned(),
                ),
            ],
            temp_dir: None,
        }
    }
}

/// A running `tenant-operator serve` process, stopped on drop.
pub struct Shim {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's log file (standard error).
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl Shim {
    /// Starts a server on `database_url` with the given options and waits until it
    /// listens.
    pub async fn start(database_url: &str, reporting_prefix: &str, options: ShimOptions) -> Self {
        let dir = tempfile::tempdir().expect("create server folder");
        let port_file = dir.path().join("address");
        let log = dir.path().join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenant-operator"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--port-file")
            .arg(&port_file)
            .args(["--database-url", database_url])
            .args(["--reporting-database-prefix", reporting_prefix])
            .arg("--upload-dir")
            .arg(options.temp_dir.as_deref().unwrap_or(dir.path()))
            .env_remove("DATABASE_URL")
            .env_remove("API_CLIENTS")
            .env_remove("TOKEN_SIGNING_KEY")
            .env_remove("LEASE_CLUSTER")
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .env("RUST_LOG", "info")
            .env_remove(PAUSE_VARIABLE)
            .env_remove(BATCH_SIZE_VARIABLE)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log file"));
        if options.insecure {
            command.arg("--insecure-no-auth");
        } else {
            let clients = dir.path().join("clients");
            let hash = tenant_operator::shim::hash_secret(CLIENT_SECRET).expect("hash secret");
            std::fs::write(&clients, format!("# test clients\n{CLIENT_ID}:{hash}\n"))
                .expect("write clients file");
            let key = dir.path().join("signing-key");
            std::fs::write(&key, format!("{SIGNING_KEY}\n")).expect("write key file");
            command.arg("--clients-file").arg(&clients);
            command.arg("--token-key-file").arg(&key);
        }
        command.args(&options.args);
        if let Some(temp_dir) = &options.temp_dir {
            command.env("TMPDIR", temp_dir);
        }
        command.envs(options.env.iter().map(|(name, value)| (name, value)));
        let mut child = command.spawn().expect("start tenant-operator serve");

        let started = Instant::now();
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(&port_file) {
                break address;
            }
            if let Some(status) = child.try_wait().expect("poll server") {
                panic!(
                    "server exited with {status} before listening:\n{}",
                    read_log(&log)
                );
            }
            assert!(
                started.elapsed() < PROCESS_DEADLINE,
                "server did not listen within {PROCESS_DEADLINE:?}:\n{}",
                read_log(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            child: Some(child),
            base: format!("http://{}", address.trim()),
            http: reqwest::Client::new(),
            log,
            dir,
        }
    }

    /// Returns the full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests a token with the test client's credentials.
    pub async fn token(&self) -> String {
        let response = self
            .http
            .post(self.url("/configapi/v2/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "token request failed");
        let body: serde_json::Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Returns an authenticated client: requests carry a fresh token.
    pub async fn client(&self) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(self.token().await),
        }
    }

    /// Returns the server's log so far.
    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// Returns the process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Lets an import paused at a fault-injection point go on.
    pub fn resume(&mut self) {
        let child = self.child.as_mut().expect("server running");
        let stdin = child.stdin.as_mut().expect("piped standard input");
        stdin.write_all(b"\n").expect("resume the server's import");
        stdin.flush().expect("flush standard input");
    }

    /// Returns the folder of the server's temporary files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends SIGTERM.
    pub fn send_sigterm(&self) {
        let child = self.child.as_ref().expect("server running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit and returns its status.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll server") {
                return status;
            }
            if started.elapsed() > PROCESS_DEADLINE {
                let _ = child.kill();
                panic!("server did not stop within {PROCESS_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client bound to one server, with an optional bearer token.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token.
    pub token: Option<String>,
}

impl Api {
    /// Starts a request with the token set.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Imports the archive at `path` with the given lock timeout.
    pub async fn import(&self, path: &Path, lock_timeout: u64) -> reqwest::Response {
        let body = std::fs::read(path).expect("read archive");
        self.request(
            reqwest::Method::PUT,
            &format!("/configapi/v2/tenant?lockTimeout={lock_timeout}"),
        )
        .header("content-type", "application/zip")
        .body(body)
        .send()
        .await
        .expect("import request")
    }

    /// Sends a GET and returns the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET request");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Sends a JSON body and returns the status and the JSON body (null when empty).
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .request(method, path)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// Sends a bodiless request and returns the status and the JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let response = self.request(method, path).send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Lists every access number, following the cursor, optionally of one tenant.
    pub async fn all_numbers(&self, tenant_url: Option<&str>) -> Vec<serde_json::Value> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = "/configapi/v2/accessnumbers?limit=500".to_owned();
            if let Some(url) = tenant_url {
                path.push_str(&format!("&tenantUrl={url}"));
            }
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let (status, page) = self.get_json(&path).await;
            assert_eq!(status, 200, "list access numbers: {page}");
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["nextCursor"].as_str() {
                Some(cursor) => after = Some(cursor.to_owned()),
                None => return items,
            }
        }
    }
}

/// A format-3 archive to generate.
#[derive(Debug, Clone)]
pub struct TenantArchive {
    /// Tenant GUID.
    pub guid: Uuid,
    /// Tenant URL.
    pub url: String,
    /// Tenant name.
    pub name: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Ranges: first, last, media.
    pub ranges: Vec<(String, String, String)>,
    /// Number of `user` objects, each with a fresh GUID.
    pub objects: usize,
}

impl TenantArchive {
    /// Describes an active tenant `NAME.cc.test` with `objects` users and no numbers.
    pub fn new(name: &str, objects: usize) -> Self {
        Self {
            guid: Uuid::new_v4(),
            url: format!("{name}.cc.test"),
            name: format!("Tenant {name}"),
            status: "active".to_owned(),
            ranges: Vec::new(),
            objects,
        }
    }

    /// Adds a voice range.
    pub fn range(mut self, first: &str, last: &str) -> Self {
        self.ranges
            .push((first.to_owned(), last.to_owned(), "voice".to_owned()));
        self
    }

    /// Writes the archive to `path`.
    pub fn write(&self, path: &Path) {
        let tenant = serde_json::json!({
            "guid": self.guid, "url": self.url, "name": self.name, "status": self.status,
            "sipDomain": format!("sip.{}", self.url), "settings": {}
        });

        let numbers: Vec<serde_json::Value> = self
            .ranges
            .iter()
            .map(|(first, last, media)| serde_json::json!({"first": first, "last": last, "media": media}))
            .collect();

        let mut users = String::new();
        for index in 0..self.objects {
            let object = serde_json::json!({
                "guid": Uuid::new_v4(), "type": "user", "name": format!("user-{index}"),
                "attributes": {"index": index}
            });
            users.push_str(&object.to_string());
            users.push('\n');
        }

        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("tenant.json", tenant.to_string().into_bytes()),
            (
                "access-numbers.json",
                serde_json::Value::Array(numbers).to_string().into_bytes(),
            ),
        ];
        if self.objects > 0 {
            files.push(("objects/user.jsonl", users.into_bytes()));
        }
        let listed: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, data)| {
                serde_json::json!({
                    "path": name, "sha256": hex::encode(Sha256::digest(data)), "size": data.len()
                })
            })
            .collect();

        let manifest = serde_json::json!({
            "formatVersion": 3, "schemaVersion": 12, "exportedAt": "2026-11-30T08:15:00Z",
            "sourceCluster": "test",
            "tenant": {"guid": self.guid, "url": self.url, "name": self.name},
            "files": listed
        });

        let file = std::fs::File::create(path).expect("create archive");
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("manifest.json", options).expect("zip entry");
        zip.write_all(manifest.to_string().as_bytes())
            .expect("zip write");
        for (name, data) in files {
            zip.start_file(name, options).expect("zip entry");
            zip.write_all(&data).expect("zip write");
        }
        zip.finish().expect("finish archive");
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sends raw bytes to the server in parts and returns its response until it closes
/// the connection or `deadline` passes. Parts after the response started are not sent.
pub async fn raw_exchange(base: &str, parts: Vec<Vec<u8>>, deadline: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let read = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(deadline, reader.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    for part in parts {
        if read.is_finished() || writer.write_all(&part).await.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    read.await.expect("read task")
}

/// Returns the value of a gauge or counter line of `/metrics`, 0 when absent.
pub async fn metric(shim: &Shim, name: &str) -> f64 {
    let text = shim
        .http
        .get(shim.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `condition` every 20 ms until it holds, failing after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
