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

use super::AppState;

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
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
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
        ApiError::engine(e, None)
    }
}

impl ApiError {
    /// [`ApiError::engine`] for a failure of `op` (`search`, `upsert`, ...) on `collection`.
    pub(crate) fn during(e: EngineError, op: &str, collection: &str) -> ApiError {
        ApiError::engine(e, Some((op, collection)))
    }

    /// Messages keep the collection and the cause but never a path on the server's disk; a
    /// failure inside the server answers with its class, and with the operation and the
    /// collection when `context` gives them, and the log keeps the detail.
    fn engine(e: EngineError, context: Option<(&str, &str)>) -> Self {
        let message = redact_paths(&e.to_string());
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
            } => ApiError::new(ErrorCode::Unavailable, message).retry_after(retry_after_secs),
            EngineError::InsufficientStorage(_) => {
                ApiError::new(ErrorCode::InsufficientStorage, message).retry_after(5)
            }
            EngineError::DeadlineExceeded(_) => ApiError::new(ErrorCode::DeadlineExceeded, message),
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
                let class = match &e {
                    EngineError::Corrupted(_) | EngineError::Wal(WalError::Corrupted { .. }) => {
                        "corrupted data"
                    }
                    EngineError::Wal(_) => "WAL i/o",
                    EngineError::Segment(_) => "segment codec",
                    EngineError::Io(_) => "local disk i/o",
                    _ => "internal state",
                };
                let (op, collection) = context.unwrap_or(("the request", ""));
                tracing::error!(error = %e, op, collection, "internal error");
                let what = if collection.is_empty() {
                    op.to_string()
                } else {
                    format!("{op} of collection {collection}")
                };
                ApiError::new(
                    ErrorCode::Internal,
                    format!(
                        "{what} failed on an internal error ({class}); the server's log has the detail"
                    ),
                )
            }
        }
    }
}

/// Replaces every absolute path in `message` (a `/` starting a word and holding another `/`)
/// with `<path>`.
pub(crate) fn redact_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('/') {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "\"'(=:[{".contains(c));
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'),]}:".contains(c))
            .map_or(rest.len(), |n| at + n);
        let word = &rest[at..end];
        out.push_str(&rest[..at]);
        if starts_word && word[1..].contains('/') {
            out.push_str("<path>");
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "the request body is larger than the server's max_body_bytes; send smaller batches",
    )
}

/// A JSON body: `application/json` required (415), size bounded by `DefaultBodyLimit` (413),
/// syntax errors are 400 `malformed_json`, shape errors 422 `invalid_body` naming the JSON path.
/// Reading it first reserves its size from the server's body memory (503 after 5 s without),
/// and must finish within `body_timeout` (408).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
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
        let _memory = limits
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
        // A large body is parsed on a blocking thread, so that it cannot hold up the async
        // workers that every other request needs.
        if bytes.len() >= PARSE_ON_BLOCKING_THREAD {
            tokio::task::spawn_blocking(move || parse(&bytes))
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::new(
                        ErrorCode::Internal,
                        "parsing the body failed",
                    ))
                })
        } else {
            parse(&bytes)
        }
        .map(ApiJson)
    }
}

/// Bodies at least this large are parsed off the async workers.
const PARSE_ON_BLOCKING_THREAD: usize = 256 * 1024;

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
    value.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            let field = if path == "." { String::new() } else { path };
            let message = if field.is_empty() {
                format!("the body does not match the expected shape: {inner}")
            } else {
                format!("{field}: {inner}")
            };
            let e = ApiError::new(ErrorCode::InvalidBody, message);
            if field.is_empty() { e } else { e.field(field) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_name_the_operation_and_collection_never_a_path() {
        let io = std::io::Error::other("open /var/lib/akidb/collections/0a1b/wal/3.log: EIO");
        let e = ApiError::during(EngineError::Io(io), "search", "docs");
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(
            e.message,
            "search of collection docs failed on an internal error (local disk i/o); the server's log has the detail"
        );
        let e = ApiError::during(
            EngineError::CollectionUnavailable {
                name: "docs".into(),
                reason: "wal i/o at /var/lib/akidb/collections/0a1b/wal/3.log: EIO".into(),
            },
            "upsert",
            "docs",
        );
        assert!(!e.message.contains("/var"), "{}", e.message);
        assert!(e.message.contains("docs"), "{}", e.message);
    }

    #[test]
    fn absolute_paths_are_redacted_and_nothing_else() {
        assert_eq!(
            redact_paths("wal i/o at /data/collections/abc/wal/1.log: No space left"),
            "wal i/o at <path>: No space left"
        );
        assert_eq!(
            redact_paths("opening \"/tmp/x/y\" failed (/a/b)"),
            "opening \"<path>\" failed (<path>)"
        );
        assert_eq!(
            redact_paths("see GET /openapi.json"),
            "see GET /openapi.json"
        );
        assert_eq!(redact_paths("a/b and i/o"), "a/b and i/o");
    }
}
