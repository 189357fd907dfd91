//! Fetching archives over the S3 protocol from a real S3-compatible server (moto).

#[path = "support/s3.rs"]
mod s3;

use std::collections::BTreeMap;

use sha2::Digest;
use tenant_operator::operator::crd::ArchiveSource;
use tenant_operator::operator::fetch::{FetchError, fetch_archive};

fn s3_source(server: &s3::S3Server, url: &str) -> ArchiveSource {
    ArchiveSource {
        url: url.to_owned(),
        credentials_secret_ref: None,
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".to_owned()),
        force_path_style: Some(true),
        allow_http: Some(true),
        sha256: None,
    }
}

fn credentials() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("aws_secret_access_key".to_owned(), "testing".to_owned()),
    ])
}

#[tokio::test]
async fn s3_object_is_fetched_with_credentials() {
    let Some(server) = s3::S3Server::start().await else {
        return;
    };
    server.create_bucket("exports").await;
    let body = vec![7_u8; 300_000];
    server
        .put_object("exports", "acme/a.zip", body.clone())
        .await;

    let source = s3_source(&server, "s3://exports/acme/a.zip");
    let fetched = fetch_archive(&source, &credentials(), 1 << 20, None)
        .await
        .expect("fetch from S3");

    assert_eq!(fetched.size, 300_000);
    assert_eq!(fetched.sha256, hex::encode(sha2::Sha256::digest(&body)));
    assert_eq!(std::fs::read(&fetched.path).expect("spooled file"), body);
}

#[tokio::test]
async fn missing_bucket_is_retryable_failure() {
    let Some(server) = s3::S3Server::start().await else {
        return;
    };

    let source = s3_source(&server, "s3://absent-bucket/a.zip");
    let error = fetch_archive(&source, &credentials(), 1 << 20, None)
        .await
        .expect_err("no bucket");

    assert!(matches!(error, FetchError::Store { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn s3_object_over_limit_is_rejected() {
    let Some(server) = s3::S3Server::start().await else {
        return;
    };
    server.create_bucket("exports").await;
    server
        .put_object("exports", "big.zip", vec![1_u8; 2048])
        .await;

    let source = s3_source(&server, "s3://exports/big.zip");
    let error = fetch_archive(&source, &credentials(), 1024, None)
        .await
        .expect_err("over the limit");

    assert!(
        matches!(error, FetchError::TooLarge { limit: 1024, .. }),
        "{error:?}"
    );
}
