//! Authentication of the provider API: API clients, the OAuth 2.0 token route and
//! bearer-token checks.
//!
//! API clients are pairs of a client id and the argon2 hash (PHC string) of its secret,
//! one `id:hash` per line, read from `--clients-file` or the `API_CLIENTS` environment
//! variable. A client exchanges its id and secret for a signed JWT (HS256) at
//! `POST /configapi/v2/oauth/token` (client credentials grant, RFC 6749 section 4.4)
//! and sends it as `Authorization: Bearer <token>`. Every replica that shares the
//! signing key accepts the tokens of the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::error::ApiError;

/// The environment variable that may hold the API clients instead of a file.
pub const CLIENTS_ENV: &str = "API_CLIENTS";
/// The environment variable that may hold the token signing key instead of a file.
pub const SIGNING_KEY_ENV: &str = "TOKEN_SIGNING_KEY";
/// The minimum length of the token signing key, in bytes (the HS256 output size).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;
/// The maximum number of secret verifications that run at once, because each argon2
/// verification takes tens of milliseconds of CPU and about 19 MiB of memory.
const MAX_CONCURRENT_VERIFICATIONS: usize = 2;
/// The clock skew allowed when checking `exp`, in seconds.
const CLOCK_SKEW_SECONDS: u64 = 5;

/// Authentication options of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// File of API clients, one `client-id:argon2-hash` per line; `#` starts a comment.
    /// Without it, the clients are read from the API_CLIENTS environment variable.
    #[arg(long, env = "CLIENTS_FILE", value_name = "PATH")]
    pub clients_file: Option<PathBuf>,

    /// File holding the token signing key (at least 32 bytes; surrounding white space
    /// is ignored). Without it, the key is read from the TOKEN_SIGNING_KEY environment
    /// variable. Every replica must use the same key.
    #[arg(long, env = "TOKEN_KEY_FILE", value_name = "PATH")]
    pub token_key_file: Option<PathBuf>,

    /// Issuer (`iss`) written into tokens and required in bearer tokens.
    #[arg(long, env = "TOKEN_ISSUER", default_value = "tenant-operator")]
    pub token_issuer: String,

    /// Audience (`aud`) written into tokens and required in bearer tokens.
    #[arg(long, env = "TOKEN_AUDIENCE", default_value = "configapi")]
    pub token_audience: String,

    /// Lifetime of issued tokens, in seconds.
    #[arg(
        long,
        env = "TOKEN_LIFETIME",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub token_lifetime: u64,

    /// Serve every route without authentication. For local trials only: anyone who
    /// reaches the port can import and delete tenants.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// An error in the authentication settings.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A clients or key file could not be read.
    #[error("failed to read {path}; check that the file exists and is readable")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No clients were configured.
    #[error(
        "no API clients are configured; pass --clients-file or set {CLIENTS_ENV}, or pass --insecure-no-auth for a local trial"
    )]
    NoClients,
    /// No signing key was configured.
    #[error("no token signing key is configured; pass --token-key-file or set {SIGNING_KEY_ENV}")]
    NoSigningKey,
    /// The signing key is too short.
    #[error(
        "token signing key has {length} bytes, at least {MIN_SIGNING_KEY_BYTES} are required; generate one with `openssl rand -base64 48`"
    )]
    SigningKeyTooShort {
        /// The key's length in bytes.
        length: usize,
    },
    /// A line of the clients list is invalid.
    #[error("API clients line {line} is invalid: {problem}")]
    InvalidClientLine {
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// Hashing a secret failed.
    #[error("failed to hash the secret: {0}")]
    Hash(String),
}

/// One API client: its id and the argon2 hash of its secret.
#[derive(Debug, Clone)]
struct ApiClient {
    id: String,
    secret_hash: String,
}

/// The configured API clients.
#[derive(Debug, Clone)]
pub struct ClientRegistry {
    clients: Vec<ApiClient>,
    /// A hash verified for unknown client ids, so that the response time does not
    /// reveal which ids exist.
    decoy_hash: String,
}

/// The claims of an issued token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The client id.
    pub sub: String,
    /// The issuer.
    pub iss: String,
    /// The audience.
    pub aud: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

/// Issues and checks bearer tokens.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

/// Everything the authenticated routes need.
#[derive(Clone)]
pub struct Authenticator {
    clients: Arc<ClientRegistry>,
    signer: Arc<TokenSigner>,
    verifications: Arc<Semaphore>,
}

/// The successful token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// A token request that failed, as RFC 6749 section 5.2 describes.
#[derive(Debug)]
enum OAuthError {
    InvalidRequest(String),
    UnsupportedGrantType(String),
    InvalidClient,
    Internal(anyhow::Error),
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("clients", &self.clients.clients.len())
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl AuthArgs {
    /// Loads the clients and the signing key, or returns `None` when authentication is
    /// turned off with `--insecure-no-auth`.
    ///
    /// # Errors
    ///
    /// Returns [`AuthConfigError`] when a file is unreadable, no clients or key are
    /// configured, the key is too short, or a client line is invalid.
    pub fn load(&self) -> Result<Option<Authenticator>, AuthConfigError> {
        if self.insecure_no_auth {
            return Ok(None);
        }
        let clients_text = match &self.clients_file {
            Some(path) => read_file(path)?,
            None => std::env::var(CLIENTS_ENV).map_err(|_| AuthConfigError::NoClients)?,
        };
        let clients = ClientRegistry::parse(&clients_text)?;
        let key = match &self.token_key_file {
            Some(path) => read_file(path)?,
            None => std::env::var(SIGNING_KEY_ENV).map_err(|_| AuthConfigError::NoSigningKey)?,
        };
        let signer = TokenSigner::new(
            key.trim().as_bytes(),
            &self.token_issuer,
            &self.token_audience,
            Duration::from_secs(self.token_lifetime),
        )?;
        Ok(Some(Authenticator::new(clients, signer)))
    }
}

impl ClientRegistry {
    /// Parses the clients list: one `client-id:argon2-hash` per line, blank lines and
    /// lines starting with `#` ignored.
    ///
    /// # Errors
    ///
    /// Returns [`AuthConfigError::InvalidClientLine`] naming the first bad line, and
    /// [`AuthConfigError::NoClients`] when the list is empty.
    pub fn parse(text: &str) -> Result<Self, AuthConfigError> {
        let mut clients: Vec<ApiClient> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |problem: &str| AuthConfigError::InvalidClientLine {
                line: index + 1,
                problem: problem.to_owned(),
            };
            let Some((id, hash)) = line.split_once(':') else {
                return Err(invalid("expected client-id:argon2-hash"));
            };
            let id = id.trim();
            let hash = hash.trim();
            if id.is_empty() {
                return Err(invalid("the client id is empty"));
            }
            let parsed = PasswordHash::new(hash).map_err(|_| {
                invalid("the hash is not a PHC string; produce one with `tenant-operator serve --hash-secret`")
            })?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                return Err(invalid("the hash is not an argon2 hash"));
            }
            if clients.iter().any(|client| client.id == id) {
                return Err(invalid(&format!("client id {id:?} appears twice")));
            }
            clients.push(ApiClient {
                id: id.to_owned(),
                secret_hash: hash.to_owned(),
            });
        }
        if clients.is_empty() {
            return Err(AuthConfigError::NoClients);
        }
        let decoy_hash = hash_secret("decoy secret that matches no client")?;
        Ok(Self {
            clients,
            decoy_hash,
        })
    }

    /// Checks a client id and secret. Blocking: run it off the async runtime.
    ///
    /// The id is compared in constant time against every configured id, and an
    /// unknown id still costs one argon2 verification, so timing reveals neither.
    pub fn verify(&self, client_id: &str, secret: &str) -> bool {
        let mut matched: Option<&ApiClient> = None;
        for client in &self.clients {
            if bool::from(client.id.as_bytes().ct_eq(client_id.as_bytes())) {
                matched = Some(client);
            }
        }
        let hash = matched.map_or(self.decoy_hash.as_str(), |client| &client.secret_hash);
        let secret_ok = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        matched.is_some() && secret_ok
    }
}

/// Hashes a client secret with argon2id and a random salt, as a PHC string.
///
/// # Errors
///
/// Returns [`AuthConfigError::Hash`] when hashing fails.
pub fn hash_secret(secret: &str) -> Result<String, AuthConfigError> {
    let mut salt = [0_u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| AuthConfigError::Hash(error.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthConfigError::Hash(error.to_string()))
}

impl TokenSigner {
    /// Creates a signer with an HS256 key.
    ///
    /// # Errors
    ///
    /// Returns [`AuthConfigError::SigningKeyTooShort`] for a key under 32 bytes.
    pub fn new(
        key: &[u8],
        issuer: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Self, AuthConfigError> {
        if key.len() < MIN_SIGNING_KEY_BYTES {
            return Err(AuthConfigError::SigningKeyTooShort { length: key.len() });
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = CLOCK_SKEW_SECONDS;
        Ok(Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime,
        })
    }

    /// Issues a token for `client_id`, valid for the configured lifetime.
    ///
    /// # Errors
    ///
    /// Returns an error when the token cannot be encoded.
    pub fn issue(&self, client_id: &str) -> Result<(String, u64), jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let lifetime = self.lifetime.as_secs();
        let claims = Claims {
            sub: client_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now.saturating_add(lifetime),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, lifetime))
    }

    /// Checks a token's signature, expiry, issuer and audience, and returns its claims.
    ///
    /// # Errors
    ///
    /// Returns the reason the token is rejected, fit for the client.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => {
                    "the bearer token has expired; request a new one".to_owned()
                }
                ErrorKind::InvalidSignature => "the bearer token's signature is invalid".to_owned(),
                ErrorKind::InvalidIssuer => "the bearer token's issuer is not accepted".to_owned(),
                ErrorKind::InvalidAudience => {
                    "the bearer token's audience is not accepted".to_owned()
                }
                ErrorKind::InvalidAlgorithm => {
                    "the bearer token's algorithm is not HS256".to_owned()
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the bearer token has no {claim:?} claim")
                }
                _ => "the bearer token is malformed".to_owned(),
            })
    }
}

impl Authenticator {
    /// Combines the clients and the token signer.
    pub fn new(clients: ClientRegistry, signer: TokenSigner) -> Self {
        Self {
            clients: Arc::new(clients),
            signer: Arc::new(signer),
            verifications: Arc::new(Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
        }
    }

    async fn verify_client(&self, client_id: String, secret: String) -> anyhow::Result<bool> {
        let _permit = self.verifications.acquire().await?;
        let clients = Arc::clone(&self.clients);
        let verified =
            tokio::task::spawn_blocking(move || clients.verify(&client_id, &secret)).await?;
        Ok(verified)
    }
}

/// Rejects a request without a valid bearer token with 401 and `WWW-Authenticate`.
pub async fn require_bearer(
    State(auth): State<Option<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(auth) = auth else {
        return next.run(request).await;
    };
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return ApiError::MissingToken(
            "the request has no Authorization header; request a token at /configapi/v2/oauth/token and send it as `Authorization: Bearer <token>`".to_owned(),
        )
        .into_response();
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return ApiError::InvalidToken(
            "the Authorization header is not of the form `Bearer <token>`".to_owned(),
        )
        .into_response();
    };
    match auth.signer.verify(token) {
        Ok(claims) => {
            tracing::Span::current().record("client_id", claims.sub.as_str());
            next.run(request).await
        }
        Err(message) => ApiError::InvalidToken(message).into_response(),
    }
}

/// `POST /configapi/v2/oauth/token`: exchanges client credentials for a bearer token.
///
/// The credentials come from the form body (`client_id`, `client_secret`) or from HTTP
/// Basic authentication, as RFC 6749 section 2.3.1 allows.
pub async fn token(
    State(auth): State<Option<Authenticator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = auth else {
        return OAuthError::InvalidRequest(
            "authentication is turned off on this server (--insecure-no-auth), so it issues no tokens".to_owned(),
        )
        .into_response();
    };
    match issue_token(&auth, &headers, &body).await {
        Ok(response) => {
            let mut response = (StatusCode::OK, Json(response)).into_response();
            set_no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn issue_token(
    auth: &Authenticator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the token request must be a form (Content-Type: application/x-www-form-urlencoded)"
                .to_owned(),
        ));
    }
    let form = TokenForm::parse(body)?;
    match form.grant_type.as_deref() {
        None => {
            return Err(OAuthError::InvalidRequest(
                "the grant_type parameter is missing".to_owned(),
            ));
        }
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant type {:?} is not supported; use client_credentials",
                crate::model::truncate_for_message(other)
            )));
        }
    }
    let basic = basic_credentials(headers)?;
    let (client_id, secret) = match (basic, form.client_id, form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "send the client credentials either in the Authorization header or in the form, not both".to_owned(),
            ));
        }
        (Some(credentials), None, None) => credentials,
        (None, Some(id), Some(secret)) => (id, secret),
        (None, None, _) => {
            return Err(OAuthError::InvalidRequest(
                "the client_id parameter is missing".to_owned(),
            ));
        }
        (None, Some(_), None) => {
            return Err(OAuthError::InvalidRequest(
                "the client_secret parameter is missing".to_owned(),
            ));
        }
    };
    let verified = auth
        .verify_client(client_id.clone(), secret)
        .await
        .map_err(OAuthError::Internal)?;
    if !verified {
        tracing::warn!(
            client_id = crate::model::truncate_for_message(&client_id),
            "token request rejected"
        );
        return Err(OAuthError::InvalidClient);
    }
    let (access_token, expires_in) = auth
        .signer
        .issue(&client_id)
        .map_err(|error| OAuthError::Internal(error.into()))?;
    tracing::info!(client_id, "token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
    })
}

/// The parameters of a token request.
#[derive(Debug, Default)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl TokenForm {
    /// Parses the form, rejecting a repeated parameter as RFC 6749 section 3.2 requires.
    fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut form = Self::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "grant_type" => &mut form.grant_type,
                "client_id" => &mut form.client_id,
                "client_secret" => &mut form.client_secret,
                _ => continue,
            };
            if slot.is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "the {name} parameter appears more than once"
                )));
            }
            *slot = Some(value.into_owned());
        }
        Ok(form)
    }
}

/// Reads client credentials from an `Authorization: Basic` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        OAuthError::InvalidRequest(
            "the Authorization header is not valid Basic credentials".to_owned(),
        )
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let decode = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

fn set_no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            Self::InvalidRequest(message) => (StatusCode::BAD_REQUEST, "invalid_request", message),
            Self::UnsupportedGrantType(message) => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type", message)
            }
            Self::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the client id or secret is wrong".to_owned(),
            ),
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "token request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal server error".to_owned(),
                )
            }
        };
        let body = serde_json::json!({"error": code, "error_description": description});
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        set_no_store(headers);
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="configapi""#),
            );
        }
        response
    }
}

fn read_file(path: &Path) -> Result<String, AuthConfigError> {
    std::fs::read_to_string(path).map_err(|source| AuthConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn signer() -> TokenSigner {
        TokenSigner::new(KEY, "issuer", "audience", Duration::from_secs(60)).expect("signer")
    }

    #[test]
    fn client_verify_accepts_only_right_secret() {
        let hash = hash_secret("s3cret").expect("hash");
        let clients =
            ClientRegistry::parse(&format!("# comment\n\nscript:{hash}\n")).expect("parse");
        assert!(clients.verify("script", "s3cret"));
        assert!(!clients.verify("script", "wrong"));
        assert!(!clients.verify("other", "s3cret"));
    }

    #[test]
    fn clients_parse_rejects_bad_lines() {
        let hash = hash_secret("x").expect("hash");
        for text in [
            "no-colon".to_owned(),
            format!(":{hash}"),
            "script:plain-secret".to_owned(),
            format!("a:{hash}\na:{hash}"),
            "# only a comment".to_owned(),
        ] {
            assert!(ClientRegistry::parse(&text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn signer_rejects_short_key() {
        let result = TokenSigner::new(b"short", "i", "a", Duration::from_secs(1));
        assert!(matches!(
            result,
            Err(AuthConfigError::SigningKeyTooShort { length: 5 })
        ));
    }

    #[test]
    fn token_round_trips() {
        let signer = signer();
        let (token, expires_in) = signer.issue("script").expect("issue");
        assert_eq!(expires_in, 60);
        assert_eq!(signer.verify(&token).expect("verify").sub, "script");
    }

    #[test]
    fn token_of_other_audience_is_rejected() {
        let other =
            TokenSigner::new(KEY, "issuer", "other", Duration::from_secs(60)).expect("signer");
        let (token, _) = other.issue("script").expect("issue");
        let error = signer().verify(&token).expect_err("accepted");
        assert!(error.contains("audience"), "{error}");
    }
}
