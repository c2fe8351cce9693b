//! The API's errors: every failure becomes `{"error": {"code", "message", "field"?}}`, mapped
//! from the engine's errors with an exhaustive match (a new error variant does not compile until
//! someone decides its status).

use akidb_api as api;
use akidb_api::ErrorCode;
use akidb_engine::{EngineError, WalError};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    /// The error as a JSON body inside another answer (a batch's failed search), its field
    /// under `prefix`.
    pub(crate) fn into_body(self, prefix: &str) -> api::ErrorResponse {
        let field = match self.field {
            Some(f) if !f.starts_with(prefix) => Some(format!("{prefix}.{f}")),
            Some(f) => Some(f),
            None => Some(prefix.to_string()),
        };
        api::ErrorResponse {
            error: api::ErrorBody {
                code: self.code,
                message: self.message,
                field,
            },
        }
    }
    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }
    #[cfg(test)]
    pub(crate) fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
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
        // For the metrics middleware (errors by code).
        response.extensions_mut().insert(self.code);
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
