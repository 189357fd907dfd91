//! The JSON error responses of the provider API routes.
//!
//! Every failure reaches the client as `{"error": "<code>", "message": "..."}` with a
//! fitting status. Internal failures are logged with their cause inside the request's
//! span and reach the client only as a generic message, so no database detail leaks.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::Collision;

/// A failed API request, converted to a status and a JSON body at the edge.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request has no bearer token.
    #[error("{0}")]
    MissingToken(String),
    /// The bearer token is malformed, badly signed, expired or for another audience.
    #[error("{0}")]
    InvalidToken(String),
    /// A request value is missing or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The archive breaks a rule of the format.
    #[error("{0}")]
    InvalidArchive(String),
    /// The named tenant or access numbers do not exist.
    #[error("{0}")]
    NotFound(String),
    /// The tenant, an object, a number or a trunk already exists.
    #[error("{message}")]
    Conflict {
        /// What exists.
        message: String,
        /// The colliding identities of an import; empty for other conflicts.
        collisions: Vec<Collision>,
    },
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body's content type is not accepted by the route.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client sent the body too slowly.
    #[error("{0}")]
    RequestTimeout(String),
    /// Another import held the lock for the whole wait.
    #[error("{0}")]
    LockTimeout(String),
    /// The import lock was lost before commit, so the import was rolled back.
    #[error("{0}")]
    LockLost(String),
    /// The server failed; the cause is logged, not sent.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "<[Collision]>::is_empty")]
    collisions: &'a [Collision],
}

impl ApiError {
    /// Wraps any internal failure.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// Returns the HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::InvalidArchive(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::LockTimeout(_) | Self::LockLost(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the machine-readable code of the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken(_) => "unauthorized",
            Self::InvalidToken(_) => "invalid_token",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidArchive(_) => "invalid_archive",
            Self::NotFound(_) => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RequestTimeout(_) => "request_timeout",
            Self::LockTimeout(_) => "lock_timeout",
            Self::LockLost(_) => "lock_lost",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status();
        let collisions = match &self {
            Self::Conflict { collisions, .. } => collisions.as_slice(),
            _ => &[],
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            collisions,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::MissingToken(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="configapi""#),
                );
            }
            Self::InvalidToken(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="configapi", error="invalid_token""#),
                );
            }
            Self::LockTimeout(_) | Self::LockLost(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}
