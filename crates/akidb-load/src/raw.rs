//! Raw JSON requests over the tool's HTTP client (same connection pool and timeouts as the typed
//! client), with the typed client's error mapping: a non-2xx answer becomes
//! [`ClientError::Api`] with its status and `{"error":{"code"}}` string, a 2xx answer whose body
//! is not the documented type becomes [`ClientError::Decode`]. Used for the routes the typed
//! client has no method for (the tier API, `/ready`, `/metrics`) and for the measured requests,
//! because the typed client drops the `Retry-After` header the server sends with its
//! backpressure 503s.

use std::fmt;
use std::time::Duration;

use akidb_api::client::ClientError;
use reqwest::RequestBuilder;
use reqwest::header::RETRY_AFTER;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::stats::Outcome;

/// A failed call, and whether the answer carried a `Retry-After` header.
#[derive(Debug)]
pub struct Failure {
    pub error: ClientError,
    pub retry_after: bool,
}

impl Failure {
    /// How the request ended, for the statistics.
    pub fn outcome(&self) -> Outcome {
        match &self.error {
            ClientError::Api { status, code, .. } => Outcome::Http {
                status: *status,
                code: code.clone(),
                retry_after: self.retry_after,
            },
            ClientError::Transport(t) => Outcome::Transport(if t.is_timeout() {
                "timeout"
            } else if t.is_connect() {
                "connect"
            } else if t.is_body() || t.is_decode() {
                "body"
            } else {
                "other"
            }),
            ClientError::Decode { .. } => Outcome::Transport("decode"),
        }
    }

    fn transport(e: reqwest::Error) -> Failure {
        Failure {
            error: ClientError::Transport(e),
            retry_after: false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.retry_after {
            write!(f, " (with Retry-After)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters), as the
/// typed client does.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/api/v1/collections/{name}{rest}`.
pub fn collection_path(name: &str, rest: &str) -> String {
    format!("/api/v1/collections/{}{rest}", segment(name))
}

/// Raw requests to one server. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    pub fn new(http: reqwest::Client, base_url: &str) -> Raw {
        Raw {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The status and body of a 2xx answer, or the failure.
    async fn call(&self, req: RequestBuilder) -> Result<(u16, impl AsRef<[u8]>), Failure> {
        let resp = req.send().await.map_err(Failure::transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key(RETRY_AFTER);
        let bytes = resp.bytes().await.map_err(Failure::transport)?;
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        let error = match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.pointer("/error/code").is_some_and(Value::is_string) => {
                let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
                ClientError::Api {
                    status,
                    code: text("/error/code"),
                    message: text("/error/message").unwrap_or_default(),
                    field: text("/error/field"),
                }
            }
            _ => ClientError::Api {
                status,
                code: None,
                message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                field: None,
            },
        };
        Err(Failure { error, retry_after })
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, Failure> {
        let (status, bytes) = self.call(req).await?;
        serde_json::from_slice(bytes.as_ref()).map_err(|e| Failure {
            error: ClientError::Decode {
                status,
                message: e.to_string(),
            },
            retry_after: false,
        })
    }

    /// `GET path`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.json(self.http.get(self.url(path))).await
    }

    /// `GET path` with its own timeout (the probes must not wait the full request timeout).
    pub async fn get_within<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, Failure> {
        self.json(self.http.get(self.url(path)).timeout(timeout))
            .await
    }

    /// `POST path` with a JSON body, decoded as `T`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.json(self.http.post(self.url(path)).json(body)).await
    }

    /// `GET path` as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, Failure> {
        let (_, bytes) = self.call(self.http.get(self.url(path))).await?;
        Ok(String::from_utf8_lossy(bytes.as_ref()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::{collection_path, segment};

    #[test]
    fn paths_are_percent_encoded_like_the_typed_client() {
        assert_eq!(segment("load-tiered-0"), "load-tiered-0");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(
            collection_path("load-tiered-3", "/tier"),
            "/api/v1/collections/load-tiered-3/tier"
        );
    }
}
