//! Tenant routes of `tenant-operator serve` over real HTTP, on PostgreSQL and SQLite:
//! import (verdicts, upload limits, lock timeout, concurrency), export, status changes,
//! delete, and graceful shutdown with an import in flight.

#[path = "support/shim.rs"]
mod shim;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use shim::{Api, Shim, ShimOptions, TenantArchive, metric, raw_exchange, wait_until};
use support::{Backend, TestDatabase};
use tenant_operator::db::Database;
use tenant_operator::lock::ImportLock;

const TENANT: &str = "/configapi/v2/tenant";
const IN_PROGRESS: &str = "tenant_operator_tenant_imports_in_progress";

on_both_backends!(
    import_sample_archives,
    import_rejects_bad_uploads,
    import_rejects_oversized_body,
    import_cuts_off_stalled_upload,
    import_cuts_off_trickling_upload,
    import_times_out_on_held_lock,
    waiting_imports_are_served_in_turn,
    concurrent_imports_of_different_tenants,
    concurrent_imports_of_same_archive,
    tenant_lifecycle_routes,
    idempotency_key_makes_retry_safe,
    shutdown_lets_running_import_finish,
);

async fn start_with(backend: Backend, args: &[&str]) -> (TestDatabase, Shim, Api) {
    let db = TestDatabase::new(backend).await;
    let options = ShimOptions {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        ..ShimOptions::default()
    };
    let shim = Shim::start(&db.url, &db.reporting_prefix, options).await;
    let api = shim.client().await;
    (db, shim, api)
}

async fn start(backend: Backend) -> (TestDatabase, Shim, Api) {
    start_with(backend, &[]).await
}

async fn import_json(api: &Api, path: &Path) -> (u16, Value) {
    let response = api.import(path, 30).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Lists the upload files left in the server's folder.
fn leftover_uploads(shim: &Shim) -> Vec<String> {
    std::fs::read_dir(shim.dir())
        .expect("read server folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("upload-") || name.starts_with("export-"))
        .collect()
}

async fn hold_lock(db: &TestDatabase) -> Box<dyn tenant_operator::lock::LockGuard> {
    let database = Database::connect(&db.url).await.expect("connect");
    database
        .standalone_lock()
        .acquire(Duration::from_secs(10))
        .await
        .expect("take the import lock")
}

async fn import_sample_archives(backend: Backend) {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    let (_db, shim, api) = start_with(backend, &["--log-format", "json"]).await;
    for name in ["acme-v3.zip", "globex-v2.zip", "initech-v1.zip"] {
        let (status, report) = import_json(&api, &examples.join(name)).await;
        assert_eq!(status, 200, "{name}: {report}");
        assert_eq!(report["outcome"], "Imported", "{name}");
        assert_eq!(report["accessNumbers"]["skipped"], 0, "{name}");
    }
    let (status, report) = import_json(&api, &examples.join("umbrella-v3.zip")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accessNumbers"]["skipped"], 20, "{report}");
    assert_eq!(report["accessNumbers"]["created"], 5, "{report}");
    assert_eq!(
        report["skippedRanges"][0]["first"], "14155550190",
        "{report}"
    );

    let (status, error) = import_json(&api, &examples.join("acme-v3.zip")).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"], "conflict");
    let kinds: Vec<&str> = error["collisions"]
        .as_array()
        .expect("collisions")
        .iter()
        .map(|collision| collision["kind"].as_str().expect("kind"))
        .collect();
    assert!(kinds.contains(&"tenantUrl"), "{error}");
    let log = shim.log_text();
    let conflict_line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["fields"]["message"] == "request finished" && line["fields"]["status"] == 409
        });
    let conflict_line = conflict_line.expect("a request log line for the 409");
    assert_eq!(
        conflict_line["fields"]["tenant_url"], "acme.cc.example.com",
        "{conflict_line}"
    );
    assert_eq!(
        conflict_line["span"]["route"], "/configapi/v2/tenant",
        "{conflict_line}"
    );
    assert_eq!(conflict_line["span"]["method"], "PUT", "{conflict_line}");
    assert!(
        conflict_line["fields"]["duration_ms"].is_u64(),
        "{conflict_line}"
    );

    let (status, tenants) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(status, 200);
    let urls: Vec<&str> = tenants
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["url"].as_str().expect("url"))
        .collect();
    assert_eq!(
        urls,
        [
            "acme.cc.example.com",
            "globex.cc.example.com",
            "initech.cc.example.com",
            "umbrella.cc.example.com"
        ]
    );
    assert_eq!(tenants[3]["status"], "inactive");
    assert_eq!(tenants[2]["name"], "Initech: Zoë's Help Desk");
    assert!(tenants[0]["guid"].as_str().expect("guid").len() == 36);

    assert_eq!(
        api.all_numbers(Some("acme.cc.example.com")).await.len(),
        151
    );
    assert_eq!(
        api.all_numbers(Some("umbrella.cc.example.com")).await.len(),
        5
    );
    assert!(
        leftover_uploads(&shim).is_empty(),
        "upload files left behind"
    );
}

async fn import_rejects_bad_uploads(backend: Backend) {
    let (_db, shim, api) = start(backend).await;
    let archive = shim.dir().join("t.zip");
    TenantArchive::new("bad-uploads", 1).write(&archive);
    let bytes = std::fs::read(&archive).expect("read archive");

    let send = |content_type: Option<&'static str>, query: &'static str, body: Vec<u8>| {
        let mut request = api
            .request(Method::PUT, &format!("{TENANT}{query}"))
            .body(body);
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        request.send()
    };
    let text = send(Some("text/plain"), "", bytes.clone())
        .await
        .expect("request");
    assert_eq!(text.status(), 415);
    assert_eq!(
        text.json::<Value>().await.expect("JSON")["error"],
        "unsupported_media_type"
    );
    let missing = send(None, "", bytes.clone()).await.expect("request");
    assert_eq!(missing.status(), 415, "no content type");

    let garbage = send(
        Some("application/zip"),
        "",
        b"this is not a zip file".to_vec(),
    )
    .await
    .expect("request");
    assert_eq!(garbage.status(), 400);
    let error: Value = garbage.json().await.expect("JSON");
    assert_eq!(error["error"], "invalid_archive", "{error}");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("invalid"),
        "{error}"
    );

    let invalid = metric(
        &shim,
        r#"tenant_operator_tenant_imports_total{outcome="Invalid"}"#,
    )
    .await;
    assert_eq!(invalid, 1.0, "the invalid archive is counted as Invalid");

    let bad_timeout = send(Some("application/zip"), "?lockTimeout=soon", bytes.clone())
        .await
        .expect("request");
    assert_eq!(bad_timeout.status(), 400);

    let accepted = send(Some("application/octet-stream"), "?lockTime=5", bytes)
        .await
        .expect("request");
    assert_eq!(
        accepted.status(),
        200,
        "octet-stream with the lockTime spelling"
    );
    assert!(
        leftover_uploads(&shim).is_empty(),
        "upload files left behind"
    );
}

async fn import_rejects_oversized_body(backend: Backend) {
    let (_db, shim, api) = start_with(backend, &["--archive-max-bytes", "4096"]).await;
    let declared = api
        .request(Method::PUT, TENANT)
        .header("content-type", "application/zip")
        .body(vec![0_u8; 5000])
        .send()
        .await
        .expect("request");
    assert_eq!(declared.status(), 413);
    assert_eq!(
        declared.json::<Value>().await.expect("JSON")["error"],
        "payload_too_large"
    );

    // A chunked upload of 64 chunks of 1 KiB: the server responds 413 once it has read
    // past 4096 bytes, and the test stops sending when the response arrives.
    let token = api.token.clone().expect("token");
    let head = format!(
        "PUT {TENANT} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/zip\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut parts = vec![head.into_bytes()];
    for _ in 0..64 {
        let mut chunk = b"400\r\n".to_vec();
        chunk.extend(vec![b'x'; 1024]);
        chunk.extend(b"\r\n");
        parts.push(chunk);
    }
    let answer = raw_exchange(&shim.base, parts, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        leftover_uploads(&shim).is_empty(),
        "upload files left behind"
    );
}

async fn import_cuts_off_stalled_upload(backend: Backend) {
    let (_db, shim, api) = start_with(backend, &["--upload-read-timeout", "1"]).await;
    let token = api.token.clone().expect("token");
    let head = format!(
        "PUT {TENANT} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/zip\r\nContent-Length: 1000\r\n\r\n0123456789"
    );
    let started = Instant::now();
    let answer = raw_exchange(&shim.base, vec![head.into_bytes()], Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        leftover_uploads(&shim).is_empty(),
        "upload files left behind"
    );
}

async fn import_times_out_on_held_lock(backend: Backend) {
    let (db, shim, api) = start(backend).await;
    let archive = shim.dir().join("locked.zip");
    TenantArchive::new("locked", 1).write(&archive);
    let guard = hold_lock(&db).await;

    let started = Instant::now();
    let response = api.import(&archive, 1).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let error: Value = response.json().await.expect("JSON");
    assert_eq!(error["error"], "lock_timeout", "{error}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "answered after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered after {elapsed:?}"
    );

    let started = Instant::now();
    let response = api.import(&archive, 0).await;
    assert_eq!(response.status(), 503, "lockTimeout=0 tries once");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );

    guard.release().await.expect("release");
    let response = api.import(&archive, 1).await;
    assert_eq!(
        response.status(),
        200,
        "the same import after the lock is free"
    );
}

async fn waiting_imports_are_served_in_turn(backend: Backend) {
    let (db, shim, api) = start(backend).await;
    let guard = hold_lock(&db).await;
    let mut requests = Vec::new();
    for index in 0..3 {
        let archive = shim.dir().join(format!("queued-{index}.zip"));
        TenantArchive::new(&format!("queued-{index}"), 2).write(&archive);
        let api = api.clone();
        requests.push(tokio::spawn(async move {
            api.import(&archive, 60).await.status().as_u16()
        }));
    }
    wait_until("three imports wait", Duration::from_secs(20), || async {
        metric(&shim, IN_PROGRESS).await == 3.0
    })
    .await;
    guard.release().await.expect("release");
    for request in requests {
        assert_eq!(request.await.expect("request task"), 200);
    }
    let (_, tenants) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(tenants.as_array().expect("list").len(), 3);
    assert_eq!(metric(&shim, IN_PROGRESS).await, 0.0);
}

async fn concurrent_imports_of_different_tenants(backend: Backend) {
    let (_db, shim, api) = start(backend).await;
    let mut requests = Vec::new();
    for index in 0..20 {
        let archive = shim.dir().join(format!("tenant-{index}.zip"));
        let first = format!("1555{:03}0000", index);
        let last = format!("1555{:03}0009", index);
        TenantArchive::new(&format!("tenant-{index}"), 25)
            .range(&first, &last)
            .write(&archive);
        let api = api.clone();
        requests.push(tokio::spawn(
            async move { import_json(&api, &archive).await },
        ));
    }
    for request in requests {
        let (status, report) = request.await.expect("request task");
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["objects"], 25, "{report}");
        assert_eq!(report["accessNumbers"]["created"], 10, "{report}");
    }
    let (_, tenants) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(
        tenants.as_array().expect("list").len(),
        20,
        "every tenant listed"
    );
    assert_eq!(
        api.all_numbers(None).await.len(),
        200,
        "every number listed"
    );
    let imported = metric(
        &shim,
        r#"tenant_operator_tenant_imports_total{outcome="Imported"}"#,
    )
    .await;
    assert_eq!(imported, 20.0);
}

async fn concurrent_imports_of_same_archive(backend: Backend) {
    let (_db, shim, api) = start(backend).await;
    let archive = shim.dir().join("same.zip");
    TenantArchive::new("same", 10)
        .range("4930000000", "4930000049")
        .write(&archive);
    let mut requests = Vec::new();
    for _ in 0..10 {
        let api = api.clone();
        let archive = archive.clone();
        requests.push(tokio::spawn(
            async move { import_json(&api, &archive).await.0 },
        ));
    }
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.expect("request task"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(api.all_numbers(Some("same.cc.test")).await.len(), 50);
}

async fn tenant_lifecycle_routes(backend: Backend) {
    let (db, shim, api) = start(backend).await;
    let keep = TenantArchive::new("keep", 5).range("3120000000", "3120000009");
    let drop = TenantArchive::new("drop", 5).range("3130000000", "3130000009");
    keep.write(&shim.dir().join("keep.zip"));
    drop.write(&shim.dir().join("drop.zip"));
    assert_eq!(import_json(&api, &shim.dir().join("keep.zip")).await.0, 200);
    assert_eq!(import_json(&api, &shim.dir().join("drop.zip")).await.0, 200);
    assert_eq!(
        db.reporting_databases().await.len(),
        2,
        "one reporting database per tenant"
    );
    assert!(
        shim.log_text().contains("keep.cc.test"),
        "request log names the tenant URL"
    );

    let exported = api
        .request(Method::GET, &format!("{TENANT}/KEEP.cc.test"))
        .send()
        .await
        .expect("export");
    assert_eq!(
        exported.status(),
        200,
        "export with the URL in another case"
    );
    assert_eq!(exported.headers()["content-type"], "application/zip");
    let bytes = exported.bytes().await.expect("archive bytes");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a ZIP");
    let manifest: Value =
        serde_json::from_reader(zip.by_name("manifest.json").expect("manifest")).expect("JSON");
    assert_eq!(manifest["formatVersion"], 3);
    assert_eq!(manifest["tenant"]["url"], "keep.cc.test");
    let exported_path = shim.dir().join("exported-keep.zip");
    std::fs::write(&exported_path, &bytes).expect("write export");

    for (method, path) in [
        (Method::GET, format!("{TENANT}/nobody.cc.test")),
        (Method::DELETE, format!("{TENANT}/nobody.cc.test")),
        (Method::POST, format!("{TENANT}/nobody.cc.test/activate")),
        (Method::POST, format!("{TENANT}/nobody.cc.test/deactivate")),
    ] {
        let (status, error) = api.send(method.clone(), &path).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(error["error"], "not_found", "{method} {path}");
    }

    let (status, error) = api
        .send(Method::DELETE, &format!("{TENANT}/keep.cc.test"))
        .await;
    assert_eq!(status, 400, "an active tenant is not deleted: {error}");
    let (status, tenant) = api
        .send(Method::POST, &format!("{TENANT}/keep.cc.test/deactivate"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenant["status"], "inactive");
    let (status, tenant) = api
        .send(Method::POST, &format!("{TENANT}/keep.cc.test/activate"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenant["status"], "active");
    for url in ["keep.cc.test", "drop.cc.test"] {
        let (status, _) = api
            .send(Method::POST, &format!("{TENANT}/{url}/deactivate"))
            .await;
        assert_eq!(status, 200, "{url}");
    }

    let (status, deleted) = api
        .send(
            Method::DELETE,
            &format!("{TENANT}/keep.cc.test?keepAccessNumbers=true"),
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["accessNumbersFreed"], 10, "{deleted}");
    assert_eq!(deleted["objectsDeleted"], 5, "{deleted}");
    let kept = api.all_numbers(None).await;
    let kept: Vec<&Value> = kept
        .iter()
        .filter(|item| {
            item["number"]
                .as_str()
                .is_some_and(|n| n.starts_with("312"))
        })
        .collect();
    assert_eq!(kept.len(), 10, "numbers stay");
    assert!(
        kept.iter().all(|item| item["tenantUrl"].is_null()),
        "numbers are free"
    );

    let (status, deleted) = api
        .send(Method::DELETE, &format!("{TENANT}/drop.cc.test"))
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["accessNumbersDeleted"], 10, "{deleted}");
    let all = api.all_numbers(None).await;
    assert!(
        all.iter().all(|item| !item["number"]
            .as_str()
            .unwrap_or_default()
            .starts_with("313")),
        "numbers deleted"
    );
    assert!(
        db.reporting_databases().await.is_empty(),
        "reporting databases dropped"
    );
    let (_, tenants) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(tenants, json!([]));

    let (status, report) = import_json(&api, &exported_path).await;
    assert_eq!(status, 200, "the export imports again: {report}");
    assert_eq!(report["accessNumbers"]["assigned"], 10, "{report}");
    assert!(
        leftover_uploads(&shim).is_empty(),
        "temporary files left behind"
    );
}

async fn shutdown_lets_running_import_finish(backend: Backend) {
    let (db, mut shim, api) = start(backend).await;
    let archive = shim.dir().join("late.zip");
    TenantArchive::new("late", 3).write(&archive);
    let guard = hold_lock(&db).await;
    let request = {
        let api = api.clone();
        tokio::spawn(async move { api.import(&archive, 60).await.status().as_u16() })
    };
    wait_until("the import waits", Duration::from_secs(20), || async {
        metric(&shim, IN_PROGRESS).await == 1.0
    })
    .await;

    shim.send_sigterm();
    wait_until(
        "the server received the signal",
        Duration::from_secs(20),
        || async { shim.log_text().contains("shutdown signal received") },
    )
    .await;
    guard.release().await.expect("release");
    assert_eq!(
        request.await.expect("request task"),
        200,
        "the running import finished"
    );
    let status = shim.wait_exit().await;
    assert!(status.success(), "exit status {status}");
    let log = shim.log_text();
    assert!(log.contains("stopped"), "{log}");

    let database = Database::connect(&db.url).await.expect("connect");
    let count: i64 = match &database {
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
                .fetch_one(pool)
                .await
        }
        Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
                .fetch_one(pool)
                .await
        }
    }
    .expect("count tenants");
    assert_eq!(count, 1, "the import committed");
}

async fn idempotency_key_makes_retry_safe(backend: Backend) {
    let (_db, shim, api) = start(backend).await;
    let first = shim.dir().join("retry.zip");
    let other = shim.dir().join("other.zip");
    TenantArchive::new("retry", 2).write(&first);
    TenantArchive::new("other", 2).write(&other);
    let send = |path: &Path, key: &'static str| {
        let body = std::fs::read(path).expect("read archive");
        api.request(Method::PUT, TENANT)
            .header("content-type", "application/zip")
            .header("idempotency-key", key)
            .body(body)
            .send()
    };

    let response = send(&first, "move-retry-1").await.expect("request");
    assert_eq!(response.status(), 200);
    let retry = send(&first, "move-retry-1").await.expect("request");
    assert_eq!(retry.status(), 200, "a retry of a committed import");
    let report: Value = retry.json().await.expect("report");
    assert_eq!(report["replayed"], true, "{report}");

    let reused = send(&other, "move-retry-1").await.expect("request");
    assert_eq!(reused.status(), 409, "the key of another archive");
    let without_key = api.import(&first, 5).await;
    assert_eq!(
        without_key.status(),
        409,
        "the same archive without the key"
    );
    let blank = send(&other, " ").await.expect("request");
    assert_eq!(blank.status(), 400, "a blank key");
}

async fn import_cuts_off_trickling_upload(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let args = ["--upload-timeout", "1", "--upload-read-timeout", "30"];
    let (_db, shim, api) = start_with(backend, &args).await;
    let token = api.token.clone().expect("token");
    let address = shim.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "PUT {TENANT} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/zip\r\nContent-Length: 100000\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.expect("send head");

    // One byte every 100 ms keeps each read under the read timeout, so only the
    // whole-upload timeout can end it. The sender stops at the first error.
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..100 {
            ticks.tick().await;
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    trickle.abort();
    assert!(
        read.is_ok(),
        "the server kept the connection for {elapsed:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--upload-timeout"), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut off after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off after {elapsed:?}"
    );
    assert!(
        leftover_uploads(&shim).is_empty(),
        "upload files left behind"
    );
}
