//! The API's errors and its JSON body extractor: every failure becomes
//! `{"error": {"code", "message", "field"?}}`, mapped from the engine's errors with an exhaustive
//! match (a new error variant does not compile until someone decides its status).

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::{EngineError, WalError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// An API error, rendered as the documented JSON body.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    /// Seconds, for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    pub(super) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = api::ErrorResponse {
            error: api::ErrorBody {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::Invalid(v) => {
                ApiError::new(ErrorCode::InvalidArgument, message).field(v.field)
            }
            EngineError::CollectionNotFound(_) => {
                ApiError::new(ErrorCode::CollectionNotFound, message)
            }
            EngineError::CollectionExists(_) => ApiError::new(ErrorCode::CollectionExists, message),
            EngineError::DocumentNotFound { .. } => {
                ApiError::new(ErrorCode::DocumentNotFound, message)
            }
            EngineError::CollectionUnavailable { .. } | EngineError::Wal(WalError::Poisoned) => {
                ApiError::new(ErrorCode::CollectionUnavailable, message)
            }
            EngineError::Backpressure {
                retry_after_secs, ..
            } => {
                let mut e = ApiError::new(ErrorCode::Unavailable, message);
                e.retry_after = Some(retry_after_secs);
                e
            }
            EngineError::InsufficientStorage(_) => {
                let mut e = ApiError::new(ErrorCode::InsufficientStorage, message);
                e.retry_after = Some(5);
                e
            }
            EngineError::ShuttingDown
            | EngineError::Unavailable(_)
            | EngineError::ObjectStore(_) => ApiError::new(ErrorCode::Unavailable, message),
            EngineError::Conflict(_)
            | EngineError::StoreMismatch(_)
            | EngineError::Corrupted(_)
            | EngineError::InvalidConfig(_)
            | EngineError::Wal(WalError::Io { .. } | WalError::Corrupted { .. })
            | EngineError::Segment(_)
            | EngineError::Io(_) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(ErrorCode::Internal, message)
            }
        }
    }
}

/// A JSON body: `application/json` required (415), size bounded by `DefaultBodyLimit` (413),
/// syntax errors are 400 `malformed_json`, shape errors 422 `invalid_body` naming the JSON path.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON, sent with content-type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the server's max_body_bytes; send smaller batches",
                )
            } else {
                ApiError::new(ErrorCode::MalformedJson, format!("could not read the request body: {rejection}"))
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de);
        if value.is_ok()
            && let Err(e) = de.end()
        {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ));
        }
        match value {
            Ok(v) => Ok(ApiJson(v)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::new(
                        ErrorCode::MalformedJson,
                        format!("the body is not valid JSON: {inner}"),
                    ))
                } else {
                    let field = if path == "." { String::new() } else { path };
                    let message = if field.is_empty() {
                        format!("the body does not match the expected shape: {inner}")
                    } else {
                        format!("{field}: {inner}")
                    };
                    let e = ApiError::new(ErrorCode::InvalidBody, message);
                    Err(if field.is_empty() { e } else { e.field(field) })
                }
            }
        }
    }
}
