//! The S3 status and error code of the last failed response, for classification.
//!
//! object_store reports most S3 error responses (5xx, 429, and 400s other than the ones it
//! maps to a kind) as `Error::Generic` around a private type, so the status and the S3 error
//! code (`<Code>` in the XML body) are not readable from the error. [`ObservingConnector`]
//! wraps object_store's own reqwest connector: for an error response it reads the (small) body,
//! records `(status, code)` in a task-local slot, and hands object_store an identical response.
//! [`observed`] runs an operation with a fresh slot and returns what was recorded, and the
//! retry loop classifies by it ([`super::classify::classify_observed`]).
//!
//! Requests that object_store runs on other tasks (the parts of a multipart upload) are not
//! observed; their failures keep the kind-based classification.

use std::cell::RefCell;

use async_trait::async_trait;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};

use super::classify::S3Failure;

tokio::task_local! {
    static LAST_FAILURE: RefCell<Option<S3Failure>>;
}

/// Runs `f` and returns its output with the last S3 error response its requests received.
pub async fn observed<F: Future>(f: F) -> (F::Output, Option<S3Failure>) {
    LAST_FAILURE
        .scope(RefCell::new(None), async {
            let out = f.await;
            (out, LAST_FAILURE.with(|slot| slot.borrow_mut().take()))
        })
        .await
}

/// object_store's reqwest connector, observing error responses.
#[derive(Debug, Default)]
pub struct ObservingConnector;

impl HttpConnector for ObservingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Observing { inner }))
    }
}

#[derive(Debug)]
struct Observing {
    inner: HttpClient,
}

#[async_trait]
impl HttpService for Observing {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let resp = self.inner.execute(req).await?;
        let status = resp.status();
        let watched = LAST_FAILURE.try_with(|_| ()).is_ok();
        if !watched || !(status.is_client_error() || status.is_server_error()) {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let body = body.bytes().await?;
        let failure = S3Failure {
            status: status.as_u16(),
            code: s3_error_code(&body).unwrap_or_default(),
        };
        let _ = LAST_FAILURE.try_with(|slot| *slot.borrow_mut() = Some(failure));
        Ok(HttpResponse::from_parts(parts, body.into()))
    }
}

/// The `<Code>` element of an S3 XML error body.
fn s3_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_element() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>EntityTooSmall</Code><Message>Your proposed upload is smaller than the minimum allowed object size.</Message></Error>"#;
        assert_eq!(s3_error_code(body).as_deref(), Some("EntityTooSmall"));
        assert_eq!(s3_error_code(b"not xml"), None);
        assert_eq!(s3_error_code(b"<Code>unterminated"), None);
    }
}
