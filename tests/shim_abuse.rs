//! Abuse tests of `tenant-operator serve` over real HTTP on 127.0.0.1: many idle and slow
//! connections at once, an upload that declares a huge body, a token replayed after it
//! expired, malformed tokens, and an unauthenticated export of an existing tenant.
//! Slow request headers, stalled and trickled uploads, and oversized bodies that are
//! sent are covered in shim_auth.rs and shim_tenants.rs.

#[path = "support/shim.rs"]
mod shim;
mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use shim::{Shim, ShimOptions, TenantArchive, raw_exchange, wait_until};
use support::{Backend, TestDatabase};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TENANT: &str = "/configapi/v2/tenant";

/// Number of connections the flood test keeps open at once.
const FLOOD_CONNECTIONS: usize = 200;

async fn start(args: &[&str]) -> (TestDatabase, Shim) {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let options = ShimOptions {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        ..ShimOptions::default()
    };
    let shim = Shim::start(&db.url, &db.reporting_prefix, options).await;
    (db, shim)
}

fn address(shim: &Shim) -> String {
    shim.base.trim_start_matches("http://").to_owned()
}

/// Sends `GET /healthz` on a fresh connection and returns how long the response took.
async fn healthz_answers(shim: &Shim) -> Duration {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let started = Instant::now();
    let response = client
        .get(shim.url("/healthz"))
        .send()
        .await
        .expect("/healthz responds while connections are open");
    assert_eq!(response.status(), 200);
    started.elapsed()
}

#[tokio::test]
async fn flood_of_slow_connections_keeps_healthz() {
    // Timeouts are far longer than the test, so every connection is still open when
    // /healthz is requested.
    let (_db, shim) = start(&[
        "--header-read-timeout",
        "120",
        "--upload-read-timeout",
        "120",
        "--upload-timeout",
        "120",
    ])
    .await;
    let token = shim.token().await;
    let target = address(&shim);

    // A third of the connections send nothing, a third send a partial request head,
    // and a third start an authenticated upload of 1 MB and send 10 bytes of it.
    let mut open_connections = Vec::with_capacity(FLOOD_CONNECTIONS);
    for index in 0..FLOOD_CONNECTIONS {
        let mut stream = TcpStream::connect(&target).await.expect("connect");
        match index % 3 {
            0 => {}
            1 => stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
                .await
                .expect("send partial headers"),
            _ => {
                let head = format!(
                    "PUT {TENANT}?lockTimeout=1 HTTP/1.1\r\nHost: test\r\n\
                     Authorization: Bearer {token}\r\nContent-Type: application/zip\r\n\
                     Content-Length: 1000000\r\n\r\n0123456789"
                );
                stream
                    .write_all(head.as_bytes())
                    .await
                    .expect("send partial upload");
            }
        }
        open_connections.push(stream);
    }

    for _ in 0..5 {
        let took = healthz_answers(&shim).await;
        assert!(
            took < Duration::from_secs(2),
            "/healthz took {took:?} with {FLOOD_CONNECTIONS} connections open"
        );
    }
    let (status, _) = shim.client().await.get_json("/configapi/v2/tenants").await;
    assert_eq!(status, 200, "an authenticated route still answers");

    drop(open_connections);
    let took = healthz_answers(&shim).await;
    assert!(took < Duration::from_secs(2), "/healthz took {took:?}");
}

#[tokio::test]
async fn huge_declared_body_rejected_early() {
    let (_db, shim) = start(&["--archive-max-bytes", "4096"]).await;
    let token = shim.token().await;
    // Only the head is sent, so a server that waited for the 10 GB body would send no
    // response before the deadline.
    let head = format!(
        "PUT {TENANT}?lockTimeout=1 HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/zip\r\nContent-Length: 10000000000\r\n\r\n"
    );
    let started = Instant::now();
    let answer = raw_exchange(&shim.base, vec![head.into_bytes()], Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn replayed_expired_token_rejected() {
    let (_db, shim) = start(&["--token-lifetime", "1"]).await;
    let api = shim.client().await;
    let (status, _) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(status, 200, "the fresh token works");

    // The token expires after one second plus the server's allowance for clock skew.
    // The same token is sent again until the server rejects it.
    let started = Instant::now();
    wait_until(
        "the server rejects the expired token",
        Duration::from_secs(30),
        || async { api.get_json("/configapi/v2/tenants").await.0 == 401 },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "refused after {:?}, before the token expired",
        started.elapsed()
    );
    let response = api
        .request(Method::GET, "/configapi/v2/tenants")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_token");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn malformed_tokens_rejected() {
    let (_db, shim) = start(&[]).await;
    let valid = shim.token().await;
    let mut parts = valid.split('.');
    let (header, claims, signature) = (
        parts.next().expect("header"),
        parts.next().expect("claims"),
        parts.next().expect("signature"),
    );
    // Headers {"alg":"RS256","typ":"JWT"} and {"alg":"HS512","typ":"JWT"}.
    let rs256 = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
    let hs512 = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9";
    let cases = [
        ("two segments", format!("{header}.{claims}")),
        ("four segments", format!("{valid}.{signature}")),
        ("empty segments", "..".to_owned()),
        ("not base64", "@@@.###.$$$".to_owned()),
        (
            "claims not JSON",
            format!("{header}.bm90IGpzb24.{signature}"),
        ),
        (
            "signature cut",
            format!("{header}.{claims}.{}", &signature[..8]),
        ),
        (
            "signature of another token",
            format!("{header}.e30.{signature}"),
        ),
        ("other algorithm", format!("{rs256}.{claims}.{signature}")),
        (
            "stronger algorithm",
            format!("{hs512}.{claims}.{signature}"),
        ),
        ("no algorithm", format!("eyJhbGciOiJub25lIn0.{claims}.")),
        ("very long", format!("{valid}{}", "A".repeat(6000))),
        (
            "control characters",
            format!("{header}\t.{claims}.{signature}"),
        ),
    ];
    for (case, token) in cases {
        let response = shim
            .http
            .get(shim.url("/configapi/v2/tenants"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_token", "{case}");
    }

    let response = shim
        .http
        .get(shim.url("/configapi/v2/tenants"))
        .bearer_auth(&valid)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "the unaltered token");
}

#[tokio::test]
async fn export_without_token_rejected() {
    let (_db, shim) = start(&[]).await;
    let api = shim.client().await;
    let archive = TenantArchive::new("secret", 3).range("3140000000", "3140000004");
    let path = shim.dir().join("secret.zip");
    archive.write(&path);
    assert_eq!(api.import(&path, 5).await.status(), 200);

    let export = format!("{TENANT}/{}", archive.url);
    let without = shim
        .http
        .get(shim.url(&export))
        .send()
        .await
        .expect("request");
    assert_eq!(without.status(), 401, "export without a token");
    let body = without.text().await.expect("body");
    assert!(!body.contains(&archive.name), "{body}");
    assert!(!body.contains("3140000000"), "{body}");

    let forged = shim
        .http
        .get(shim.url(&export))
        .header("authorization", "Bearer e30.e30.")
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401, "export with a forged token");

    let allowed = api
        .request(Method::GET, &export)
        .send()
        .await
        .expect("request");
    assert_eq!(allowed.status(), 200, "export with a valid token");
}
