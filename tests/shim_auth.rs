//! Authentication of `tenant-operator serve` over real HTTP: the token route, bearer
//! checks on every protected route, the public health routes, `--insecure-no-auth`,
//! and `--hash-secret`.

#[path = "support/shim.rs"]
mod shim;
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use shim::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, ISSUER, SIGNING_KEY, Shim, ShimOptions};
use support::{Backend, TestDatabase};

/// A token request case: name, form fields, expected status and error code.
type TokenCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

async fn start(options: ShimOptions) -> (TestDatabase, Shim) {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let shim = Shim::start(&db.url, &db.reporting_prefix, options).await;
    (db, shim)
}

async fn token_request(shim: &Shim, form: &[(&str, &str)]) -> reqwest::Response {
    shim.http
        .post(shim.url("/configapi/v2/oauth/token"))
        .form(form)
        .send()
        .await
        .expect("token request")
}

fn signed_token(key: &[u8], issuer: &str, audience: &str, expires_in: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = serde_json::json!({
        "sub": CLIENT_ID, "iss": issuer, "aud": audience, "iat": now, "exp": now + expires_in
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .expect("encode token")
}

/// Replaces `{name}` segments of a route template with a sample value.
fn concrete_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "acme.cc.example.com"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn token_route_issues_working_token() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let response = token_request(
        &shim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("access_token");

    let listed = shim
        .http
        .get(shim.url("/configapi/v2/tenants"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.json::<Value>().await.expect("JSON"),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn token_route_accepts_basic_credentials() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let response = shim
        .http
        .post(shim.url("/configapi/v2/oauth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn token_route_rejects_bad_requests() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let grant = ("grant_type", "client_credentials");
    let id = ("client_id", CLIENT_ID);
    let secret = ("client_secret", CLIENT_SECRET);
    let cases: Vec<TokenCase> = vec![
        ("no grant type", vec![id, secret], 400, "invalid_request"),
        (
            "password grant",
            vec![("grant_type", "password"), id, secret],
            400,
            "unsupported_grant_type",
        ),
        ("no client id", vec![grant, secret], 400, "invalid_request"),
        ("no secret", vec![grant, id], 400, "invalid_request"),
        (
            "repeated id",
            vec![grant, id, id, secret],
            400,
            "invalid_request",
        ),
        (
            "wrong secret",
            vec![grant, id, ("client_secret", "wrong")],
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            vec![grant, ("client_id", "intruder"), secret],
            401,
            "invalid_client",
        ),
    ];
    for (case, form, status, code) in cases {
        let response = token_request(&shim, &form).await;
        assert_eq!(response.status().as_u16(), status, "{case}");
        if status == 401 {
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{case}"
            );
        }
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], code, "{case}: {body}");
        assert!(body["error_description"].is_string(), "{case}: {body}");
    }

    let json = shim
        .http
        .post(shim.url("/configapi/v2/oauth/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("JSON token request");
    assert_eq!(json.status(), 400);
    assert_eq!(
        json.json::<Value>().await.expect("JSON")["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn protected_routes_reject_missing_token() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let mut checked = 0;
    for (method, template) in tenant_operator::shim::route_table() {
        if !template.starts_with("/configapi") || template.ends_with("/oauth/token") {
            continue;
        }
        let path = concrete_path(template);
        let response = shim
            .http
            .request(method.clone(), shim.url(&path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{method} {path}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="configapi""#,
            "{method} {path}"
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "unauthorized", "{method} {path}");
        checked += 1;
    }
    assert_eq!(checked, 10, "protected route count");
}

#[tokio::test]
async fn protected_routes_reject_bad_tokens() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let key = SIGNING_KEY.as_bytes();
    let other_key = b"another-signing-key-0123456789abcdef0123";
    let cases = [
        (
            "basic scheme",
            "Basic cHJvdmlzaW9uaW5nOng=".to_owned(),
            "not of the form",
        ),
        ("empty bearer", "Bearer ".to_owned(), "not of the form"),
        ("malformed", "Bearer not-a-jwt".to_owned(), "malformed"),
        (
            "wrong signature",
            format!("Bearer {}", signed_token(other_key, ISSUER, AUDIENCE, 600)),
            "signature",
        ),
        (
            "expired",
            format!("Bearer {}", signed_token(key, ISSUER, AUDIENCE, -3600)),
            "expired",
        ),
        (
            "other issuer",
            format!("Bearer {}", signed_token(key, "someone", AUDIENCE, 600)),
            "issuer",
        ),
        (
            "other audience",
            format!("Bearer {}", signed_token(key, ISSUER, "elsewhere", 600)),
            "audience",
        ),
        (
            "unsigned",
            "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.".to_owned(),
            "",
        ),
    ];
    for (case, header, phrase) in cases {
        let response = shim
            .http
            .get(shim.url("/configapi/v2/tenants"))
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{case}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{case}: {challenge}"
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_token", "{case}");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains(phrase), "{case}: {message}");
    }

    let valid = signed_token(key, ISSUER, AUDIENCE, 600);
    let response = shim
        .http
        .get(shim.url("/configapi/v2/tenants"))
        .bearer_auth(valid)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "a token signed with the shared key");
}

#[tokio::test]
async fn health_routes_are_public() {
    let (_db, shim) = start(ShimOptions::default()).await;
    for path in ["/healthz", "/readyz"] {
        let response = shim.http.get(shim.url(path)).send().await.expect("request");
        assert_eq!(response.status(), 200, "{path}");
    }
    let api = shim.client().await;
    let (status, _) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(status, 200);

    let metrics = shim
        .http
        .get(shim.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(r#"tenant_operator_http_requests_total{method="GET",route="/configapi/v2/tenants",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tenant_operator_http_request_duration_seconds_bucket"),
        "{text}"
    );

    let unknown = shim
        .http
        .get(shim.url("/configapi/v3/nothing"))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("JSON");
    assert_eq!(body["error"], "not_found");
    let metrics = shim
        .http
        .get(shim.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let (_db, shim) = start(ShimOptions::default()).await;
    let token = shim.token().await;
    let api = shim.client().await;
    api.get_json("/configapi/v2/tenants").await;
    let _ = token_request(
        &shim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong-guess"),
        ],
    )
    .await;
    let log = shim.log_text();
    assert!(log.contains("request finished"), "{log}");
    assert!(!log.contains(CLIENT_SECRET), "the secret is logged");
    assert!(!log.contains("wrong-guess"), "a wrong secret is logged");
    assert!(!log.contains(&token), "a token is logged");
    assert!(!log.contains(SIGNING_KEY), "the signing key is logged");
}

#[tokio::test]
async fn insecure_mode_needs_no_token() {
    let options = ShimOptions {
        insecure: true,
        ..ShimOptions::default()
    };
    let (_db, shim) = start(options).await;
    let response = shim
        .http
        .get(shim.url("/configapi/v2/tenants"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(shim.log_text().contains("authentication is turned off"));
    let token = token_request(&shim, &[("grant_type", "client_credentials")]).await;
    assert_eq!(token.status(), 400);
}

#[tokio::test]
async fn serve_without_clients_fails_to_start() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .env_remove("API_CLIENTS")
        .env_remove("CLIENTS_FILE")
        .env("TOKEN_SIGNING_KEY", SIGNING_KEY)
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--clients-file"), "{stderr}");
}

#[tokio::test]
async fn hash_secret_flag_prints_verifiable_hash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .args(["serve", "--hash-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run serve --hash-secret");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret value\n")
        .expect("write secret");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).expect("UTF-8");
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(hash).expect("PHC string");
    let argon2 = argon2::Argon2::default();
    assert!(argon2.verify_password(b"s3cret value", &parsed).is_ok());
    assert!(argon2.verify_password(b"other", &parsed).is_err());
}

#[tokio::test]
async fn slow_request_headers_are_cut_off() {
    let options = ShimOptions {
        args: vec!["--header-read-timeout".to_owned(), "1".to_owned()],
        ..ShimOptions::default()
    };
    let (_db, shim) = start(options).await;
    let started = std::time::Instant::now();
    let partial = b"GET /healthz HTTP/1.1\r\nHost: test\r\n".to_vec();
    let answer = shim::raw_exchange(
        &shim.base,
        vec![partial],
        std::time::Duration::from_secs(10),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "connection held for {elapsed:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    let complete = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".to_vec();
    let answer = shim::raw_exchange(
        &shim.base,
        vec![complete],
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn readiness_fails_without_database() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let shim = Shim::start(&db.url, &db.reporting_prefix, ShimOptions::default()).await;
    let ready = shim
        .http
        .get(shim.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let api = shim.client().await;

    let name = db.url.rsplit('/').next().expect("database name");
    let mut admin = support::admin_connection().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");

    let ready = shim
        .http
        .get(shim.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.expect("text");
    assert!(
        text.contains("configuration database is unreachable"),
        "{text}"
    );
    assert!(
        !text.contains(name),
        "the reason names no database detail: {text}"
    );
    let live = shim
        .http
        .get(shim.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on the database"
    );

    let (status, error) = api.get_json("/configapi/v2/tenants").await;
    assert_eq!(status, 500);
    let expected = serde_json::json!({"error": "internal", "message": "internal server error"});
    assert_eq!(error, expected, "no database detail in the response");
    let log = shim.log_text();
    assert!(
        log.contains("request failed"),
        "the cause is logged server-side: {log}"
    );
}
