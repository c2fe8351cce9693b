//! Request bodies: read within the server's bounds, then parsed. A body is at most
//! `max_body_bytes` (413; 1 MiB for a search), reserves its size from the server's body memory
//! first (503 after 5 s without), and must arrive within `body_timeout` (408). A JSON body
//! ([`ApiJson`]) needs `application/json` (415), and its syntax errors are 400
//! `malformed_json`, its shape errors 422 `invalid_body` naming the JSON path. An upsert
//! ([`UpsertBody`]) may instead be an Arrow IPC stream (see [`super::arrow_body`]).

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::NewDocument;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use super::AppState;
use super::arrow_body::{self, ARROW_STREAM};
use super::error::ApiError;

/// Bodies at least this large are parsed on a blocking thread, so that they cannot hold up the
/// async workers every other request needs.
const PARSE_ON_BLOCKING_THREAD: usize = 256 * 1024;

/// What a request's `content-type` says its body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    ArrowStream,
    Other,
}

fn media(req: &Request) -> Media {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/json") => Media::Json,
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Media::Json,
        Some(ARROW_STREAM) => Media::ArrowStream,
        _ => Media::Other,
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "the request body is larger than the server's max_body_bytes; send smaller batches",
    )
}

/// The whole body, read within the bounds above, with the memory reservation it holds.
async fn read(
    req: Request,
    state: &AppState,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
    let limits = &state.limits;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let max_body = match req.extensions().get::<axum::extract::MatchedPath>() {
        Some(p) if p.as_str().ends_with("/search") => super::bounds::MAX_SEARCH_BODY,
        _ => limits.max_body,
    };
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let memory = limits
        .reserve_body(declared.unwrap_or(max_body))
        .await
        .inspect_err(|_| state.metrics.quota_refusal("body_memory"))?;
    let read = tokio::time::timeout(limits.body_timeout, Bytes::from_request(req, state));
    let Ok(read) = read.await else {
        return Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                limits.body_timeout.as_secs()
            ),
        ));
    };
    let bytes = read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("could not read the request body: {rejection}"),
            )
        }
    })?;
    Ok((bytes, memory))
}

/// `parser(bytes)`, on a blocking thread when the body is large.
async fn decode<T: Send + 'static>(
    bytes: Bytes,
    parser: impl FnOnce(Bytes) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if bytes.len() < PARSE_ON_BLOCKING_THREAD {
        return parser(bytes);
    }
    tokio::task::spawn_blocking(move || parser(bytes))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                ErrorCode::Internal,
                "parsing the body failed",
            ))
        })
}

fn not_json() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "the request body must be JSON, sent with content-type: application/json",
    )
}

/// A JSON body of type `T`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if media(&req) != Media::Json {
            return Err(not_json());
        }
        let (bytes, _memory) = read(req, state).await?;
        decode(bytes, |b| parse(&b)).await.map(ApiJson)
    }
}

/// An upsert's documents, from a JSON body (`{"documents": [...]}`) or an Arrow IPC stream.
pub struct UpsertBody(pub Vec<NewDocument>);

impl FromRequest<AppState> for UpsertBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let docs = match media(&req) {
            Media::Json => {
                let (bytes, _memory) = read(req, state).await?;
                let body: api::UpsertRequest = decode(bytes, |b| parse(&b)).await?;
                body.documents
                    .into_iter()
                    .map(|d| NewDocument {
                        id: d.id,
                        vector: d.vector,
                        metadata: d.metadata,
                    })
                    .collect()
            }
            Media::ArrowStream => {
                let (bytes, _memory) = read(req, state).await?;
                decode(bytes, arrow_body::documents).await?
            }
            Media::Other => {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "an upsert body must be JSON (content-type: application/json) or an \
                         Arrow IPC stream (content-type: {ARROW_STREAM})"
                    ),
                ));
            }
        };
        Ok(UpsertBody(docs))
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        ));
    }
    value.map_err(|err| shape_error(err, ""))
}

/// A part of a body (`searches[3]`, already parsed as JSON) as `T`; errors name fields under
/// `prefix`.
pub(super) fn parse_part<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| shape_error(err, prefix))
}

fn shape_error(err: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {inner}"),
        );
    }
    let field = match (prefix, path.as_str()) {
        (p, ".") => p.to_string(),
        ("", path) => path.to_string(),
        (p, path) => format!("{p}.{path}"),
    };
    let message = if field.is_empty() {
        format!("the body does not match the expected shape: {inner}")
    } else {
        format!("{field}: {inner}")
    };
    let e = ApiError::new(ErrorCode::InvalidBody, message);
    if field.is_empty() { e } else { e.field(field) }
}
