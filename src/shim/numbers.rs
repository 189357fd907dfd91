//! The access-number and trunk routes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::state::AppState;
use super::tenants::admin_error;
use crate::db::admin::{self, AdminError, NewNumbers, NewTrunk, NumberListing, TrunkPrefix};
use crate::model::{AccessNumber, Media, NumberRange, truncate_for_message};

/// The page size of the list route when the request gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
/// The largest page size of the list route.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// The body of `POST /configapi/v2/accessnumbers`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateNumbersBody {
    number: String,
    count: Option<i64>,
    tenant_url: Option<String>,
    #[serde(default)]
    trunks: Vec<TrunkChoice>,
    media: Option<String>,
}

/// A candidate trunk of a number creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkChoice {
    name: String,
    #[serde(default)]
    prefix: String,
}

/// The body of `DELETE /configapi/v2/accessnumbers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteNumbersBody {
    number: String,
    count: Option<i64>,
}

/// The body of `POST /configapi/v2/selfservice/trunk/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTrunkBody {
    domain: String,
    carrier: String,
    #[serde(default)]
    prefixes: Vec<PrefixCost>,
}

/// A trunk's routing prefix and its cost.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixCost {
    prefix: String,
    cost: f64,
}

/// A page of the access-number list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberPage {
    items: Vec<NumberListing>,
    /// The `after` value of the next page, or `null` on the last page.
    next_cursor: Option<String>,
}

/// `POST /configapi/v2/accessnumbers`: creates `count` consecutive numbers.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateNumbersBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let media = match body.media.as_deref() {
        None => Media::Voice,
        Some(text) => {
            Media::parse_legacy(text).map_err(|error| ApiError::BadRequest(error.to_string()))?
        }
    };
    let range = parse_range(&body.number, body.count, media)?;
    let request = NewNumbers {
        range,
        tenant_url: body.tenant_url,
        trunks: body
            .trunks
            .into_iter()
            .map(|choice| TrunkPrefix {
                name: choice.name,
                prefix: choice.prefix,
            })
            .collect(),
    };
    let created = admin::create_access_numbers(&state.db, &request)
        .await
        .map_err(|error| match error {
            // An unknown tenant is a bad argument of this request, not a missing resource.
            AdminError::TenantNotFound { .. } => ApiError::BadRequest(error.to_string()),
            other => admin_error(other),
        })?;
    tracing::info!(
        first = %request.range.first,
        created,
        tenant_url = request.tenant_url.as_deref(),
        "access numbers created"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /configapi/v2/accessnumbers?tenantUrl=...&limit=N&after=NUMBER`: one page of
/// access numbers, ordered by length and value.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<NumberPage>, ApiError> {
    let mut tenant_url: Option<String> = None;
    let mut after: Option<AccessNumber> = None;
    let mut limit = DEFAULT_PAGE_SIZE;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "tenantUrl" => tenant_url = Some(value.into_owned()),
            "after" => {
                after = Some(AccessNumber::parse(&value).map_err(|error| {
                    ApiError::BadRequest(format!(
                        "after: {error}; pass the nextCursor of the previous page"
                    ))
                })?);
            }
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit {:?} is invalid; expected 1 to {MAX_PAGE_SIZE}",
                            truncate_for_message(&value)
                        ))
                    })?;
            }
            _ => {}
        }
    }
    let items = admin::list_access_numbers(&state.db, tenant_url.as_deref(), after, limit)
        .await
        .map_err(admin_error)?;
    let next_cursor = if items.len() == limit as usize {
        items.last().map(|item| item.number.clone())
    } else {
        None
    };
    Ok(Json(NumberPage { items, next_cursor }))
}

/// `DELETE /configapi/v2/accessnumbers`: deletes the existing numbers of a range.
pub async fn delete(
    State(state): State<AppState>,
    body: Result<Json<DeleteNumbersBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let range = parse_range(&body.number, body.count, Media::Voice)?;
    let deleted = admin::delete_access_numbers(&state.db, &range)
        .await
        .map_err(admin_error)?;
    tracing::info!(first = %range.first, last = %range.last, deleted, "access numbers deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /configapi/v2/selfservice/trunk/{name}`: creates a trunk.
pub async fn create_trunk(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<CreateTrunkBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let trunk = NewTrunk {
        name,
        domain: body.domain,
        carrier: body.carrier,
        prefixes: body
            .prefixes
            .iter()
            .map(|prefix| (prefix.prefix.clone(), prefix.cost))
            .collect(),
    };
    admin::create_trunk(&state.db, &trunk)
        .await
        .map_err(admin_error)?;
    tracing::info!(
        trunk = trunk.name,
        prefixes = trunk.prefixes.len(),
        "trunk created"
    );
    let created = serde_json::json!({
        "name": trunk.name,
        "domain": trunk.domain,
        "carrier": trunk.carrier,
        "prefixes": body.prefixes,
    });
    Ok((StatusCode::OK, Json(created)).into_response())
}

fn parse_range(number: &str, count: Option<i64>, media: Media) -> Result<NumberRange, ApiError> {
    let first =
        AccessNumber::parse(number).map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let count = count.unwrap_or(1);
    if count > admin::MAX_NUMBERS_PER_REQUEST {
        return Err(admin_error(AdminError::InvalidArgument(format!(
            "count {count} is over the limit of {} numbers per request; split the request",
            admin::MAX_NUMBERS_PER_REQUEST
        ))));
    }
    NumberRange::from_count(first, count, media, None)
        .map_err(|error| ApiError::BadRequest(error.to_string()))
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "send the request body as JSON (Content-Type: application/json)".to_owned(),
        ),
        other => ApiError::BadRequest(format!(
            "the request body is invalid: {}",
            other.body_text()
        )),
    }
}
