//! A real S3-protocol server for the tests: moto's server mode (`python3 -m
//! moto.server`), started on an ephemeral port of 127.0.0.1 and stopped on drop.
//!
//! It needs `python3 -m pip install 'moto[server]'`. [`S3Server::start`] returns `None`
//! with a skip message when moto is missing, so the calling test can return early.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server.
pub struct S3Server {
    /// The endpoint, such as `http://127.0.0.1:40123`.
    pub endpoint: String,
    child: Child,
}

impl S3Server {
    /// Starts moto and waits until it answers HTTP, or returns `None` when the moto
    /// package is not installed.
    pub async fn start() -> Option<Self> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            eprintln!("skipping: moto is not installed; run python3 -m pip install 'moto[server]'");
            return None;
        }

        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto server");
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        server.wait_until_ready().await;
        Some(server)
    }

    async fn wait_until_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut delay = Duration::from_millis(20);
        while tokio::time::Instant::now() < deadline {
            if client.get(&self.endpoint).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
        panic!(
            "moto server at {} did not answer within 30 s",
            self.endpoint
        );
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create bucket request");
        assert!(
            response.status().is_success(),
            "create bucket: {response:?}"
        );
    }

    /// Stores an object.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}/{key}", self.endpoint))
            .body(body)
            .send()
            .await
            .expect("put object request");
        assert!(response.status().is_success(), "put object: {response:?}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    listener.local_addr().expect("local address").port()
}
