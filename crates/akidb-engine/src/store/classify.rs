//! Is an object-store failure worth retrying?
//!
//! Decided from the error's *kind* and, for S3 responses, its HTTP status and S3 error code —
//! never from message text:
//!
//! | failure | class |
//! |---|---|
//! | 5xx (500 InternalError, 503 SlowDown, ...) | transient |
//! | 429 Too Many Requests | transient |
//! | 400 RequestTimeout | transient |
//! | connection errors, timeouts, interrupted responses | transient |
//! | 401, 403 (credentials, signatures, policies) | permanent |
//! | 404 (NoSuchBucket, NoSuchKey) | permanent |
//! | other 400s (InvalidArgument, ...) | permanent |
//! | create-only put lost (`AlreadyExists`), precondition failed | permanent (the caller decides what it means) |
//! | not supported by this store, invalid path, bad configuration | permanent |
//!
//! Where the cause is a [`S3Failure`] (produced by [`super::faulty::FaultyStore`]) or an
//! `object_store` transport error ([`object_store::client::HttpError`]), the status, code or
//! transport kind is read from the error chain. object_store keeps its own HTTP status error
//! type private, so for real S3 servers [`super::observed`] records the status and `<Code>` of
//! each error response and [`classify_observed`] uses them. A `Generic` failure with neither
//! (a multipart part, which object_store sends from another task) is classed transient: the
//! retry budget bounds it, the safe side for data that must arrive.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

/// An S3 error response: what the wire said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("s3 error {status} {code}")]
pub struct S3Failure {
    pub status: u16,
    /// The S3 error code (`SlowDown`, `AccessDenied`, `NoSuchBucket`, ...).
    pub code: String,
}

/// A failure below HTTP: no response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportFailure {
    #[error("connection failed")]
    Connect,
    #[error("request timed out")]
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth another attempt after a backoff.
    Transient,
    /// Attempting again cannot help; surface it (dead-letter it).
    Permanent,
}

pub fn classify_status(status: u16, code: &str) -> ErrorClass {
    match status {
        500..=599 | 429 => ErrorClass::Transient,
        400 if code == "RequestTimeout" => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

pub fn classify(error: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match error {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::InvalidPath { .. }
        | E::UnknownConfigurationKey { .. } => ErrorClass::Permanent,
        E::JoinError { .. } => ErrorClass::Transient,
        E::Generic { source, .. } => classify_chain(source.as_ref()),
        // object_store's Error is non-exhaustive: a kind added later is retried, within budget.
        _ => ErrorClass::Transient,
    }
}

/// [`classify`], preferring the S3 response observed during the failed call (see
/// [`super::observed`]) for failures object_store reports as `Generic`.
pub fn classify_observed(error: &object_store::Error, observed: Option<&S3Failure>) -> ErrorClass {
    match (error, observed) {
        (object_store::Error::Generic { .. }, Some(s3)) => classify_status(s3.status, &s3.code),
        _ => classify(error),
    }
}

fn classify_chain(error: &(dyn StdError + 'static)) -> ErrorClass {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(s3) = e.downcast_ref::<S3Failure>() {
            return classify_status(s3.status, &s3.code);
        }
        if e.downcast_ref::<TransportFailure>().is_some() {
            return ErrorClass::Transient;
        }
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Connect
                | HttpErrorKind::Request
                | HttpErrorKind::Timeout
                | HttpErrorKind::Interrupted
                | HttpErrorKind::Decode => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            };
        }
        current = e.source();
    }
    ErrorClass::Transient
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(source: impl StdError + Send + Sync + 'static) -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: Box::new(source),
        }
    }

    #[test]
    fn classes() {
        let s3 = |status, code: &str| {
            generic(S3Failure {
                status,
                code: code.into(),
            })
        };
        for (e, class) in [
            (s3(503, "SlowDown"), ErrorClass::Transient),
            (s3(500, "InternalError"), ErrorClass::Transient),
            (s3(429, "TooManyRequests"), ErrorClass::Transient),
            (s3(400, "RequestTimeout"), ErrorClass::Transient),
            (s3(400, "InvalidArgument"), ErrorClass::Permanent),
            (s3(404, "NoSuchBucket"), ErrorClass::Permanent),
            (s3(403, "AccessDenied"), ErrorClass::Permanent),
            (s3(403, "SignatureDoesNotMatch"), ErrorClass::Permanent),
            (generic(TransportFailure::Connect), ErrorClass::Transient),
            (generic(TransportFailure::Timeout), ErrorClass::Transient),
            (
                object_store::Error::PermissionDenied {
                    path: "p".into(),
                    source: Box::new(S3Failure {
                        status: 403,
                        code: "AccessDenied".into(),
                    }),
                },
                ErrorClass::Permanent,
            ),
            (
                object_store::Error::NotFound {
                    path: "p".into(),
                    source: "gone".into(),
                },
                ErrorClass::Permanent,
            ),
            (
                object_store::Error::AlreadyExists {
                    path: "p".into(),
                    source: "exists".into(),
                },
                ErrorClass::Permanent,
            ),
        ] {
            assert_eq!(classify(&e), class, "{e}");
        }
    }
}
