//! A typed async HTTP client for the AkiDB API (cargo feature `client`).
//!
//! Every method maps to one route of [`crate::ROUTES`]. A non-2xx answer becomes
//! [`ClientError::Api`] carrying the HTTP status and the stable `{"error": {"code"}}` string, so
//! callers can match on codes (see [`ErrorCode`]) without parsing bodies themselves.

use std::fmt;

use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    CollectionInfo, CreateCollectionRequest, DeleteDocumentsRequest, DeleteDocumentsResponse,
    Document, ErrorCode, ErrorResponse, ListCollectionsResponse, SearchRequest, SearchResponse,
    UpsertRequest, UpsertResponse,
};

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// No HTTP answer: connection refused, timeout, connection reset, unreadable body.
    Transport(reqwest::Error),
    /// The server answered with a non-2xx status. `code` is the body's `error.code` when the body
    /// is the documented error shape (kept as a string so codes newer than this crate survive).
    Api {
        status: u16,
        code: Option<String>,
        message: String,
        field: Option<String>,
    },
    /// A 2xx answer whose body is not the documented type.
    Decode { status: u16, message: String },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Transport(e) => e.status().map(|s| s.as_u16()),
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
        }
    }

    /// The error code string of an API error (`collection_exists`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The error code, when it is one this crate knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        let code = self.code()?;
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport(e) => {
                write!(f, "transport error: {e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
            ClientError::Api {
                status,
                code,
                message,
                field,
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(field) = field {
                    write!(f, " (field {field})")?;
                }
                write!(f, ": {message}")
            }
            ClientError::Decode { status, message } => {
                write!(f, "HTTP {status} with an undecodable body: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
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

/// A client for one server. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for `base_url` (`http://host:port`), ignoring proxy environment variables.
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client::with_http_client(http, base_url))
    }

    /// A client over a caller-configured `reqwest::Client` (timeouts, pool size...).
    pub fn with_http_client(http: reqwest::Client, base_url: &str) -> Client {
        Client {
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

    fn collection_url(&self, name: &str, rest: &str) -> String {
        self.url(&format!("/api/v1/collections/{}{rest}", segment(name)))
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(ClientError::Transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                status,
                message: e.to_string(),
            });
        }
        Err(match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.pointer("/error/code").is_some_and(Value::is_string) => {
                let typed = serde_json::from_value::<ErrorResponse>(v.clone()).ok();
                let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
                ClientError::Api {
                    status,
                    code: text("/error/code"),
                    message: text("/error/message").unwrap_or_default(),
                    field: typed.and_then(|t| t.error.field),
                }
            }
            _ => ClientError::Api {
                status,
                code: None,
                message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                field: None,
            },
        })
    }

    /// `GET /health`: `{"status": "alive"}`.
    pub async fn health(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/health"))).await
    }

    /// `GET /ready`: `{"status": "ready"}`, or an `unavailable` error.
    pub async fn ready(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/ready"))).await
    }

    /// `GET /api/v1/collections`
    pub async fn list_collections(&self) -> Result<ListCollectionsResponse, ClientError> {
        self.send(self.http.get(self.url("/api/v1/collections")))
            .await
    }

    /// `POST /api/v1/collections` (201; 409 `collection_exists` when the name is taken).
    pub async fn create_collection(
        &self,
        req: &CreateCollectionRequest,
    ) -> Result<CollectionInfo, ClientError> {
        self.send(self.http.post(self.url("/api/v1/collections")).json(req))
            .await
    }

    /// `GET /api/v1/collections/{name}`
    pub async fn get_collection(&self, name: &str) -> Result<CollectionInfo, ClientError> {
        self.send(self.http.get(self.collection_url(name, "")))
            .await
    }

    /// `DELETE /api/v1/collections/{name}`
    pub async fn delete_collection(&self, name: &str) -> Result<(), ClientError> {
        self.send::<Value>(self.http.delete(self.collection_url(name, "")))
            .await
            .map(|_| ())
    }

    /// `POST /api/v1/collections/{name}/documents`
    pub async fn upsert(
        &self,
        name: &str,
        req: &UpsertRequest,
    ) -> Result<UpsertResponse, ClientError> {
        self.send(
            self.http
                .post(self.collection_url(name, "/documents"))
                .json(req),
        )
        .await
    }

    /// `POST /api/v1/collections/{name}/documents/delete`
    pub async fn delete_documents(
        &self,
        name: &str,
        req: &DeleteDocumentsRequest,
    ) -> Result<DeleteDocumentsResponse, ClientError> {
        self.send(
            self.http
                .post(self.collection_url(name, "/documents/delete"))
                .json(req),
        )
        .await
    }

    /// `GET /api/v1/collections/{name}/documents/{id}`
    pub async fn get_document(&self, name: &str, id: &str) -> Result<Document, ClientError> {
        self.send(
            self.http
                .get(self.collection_url(name, &format!("/documents/{}", segment(id)))),
        )
        .await
    }

    /// `POST /api/v1/collections/{name}/search`
    pub async fn search(
        &self,
        name: &str,
        req: &SearchRequest,
    ) -> Result<SearchResponse, ClientError> {
        self.send(
            self.http
                .post(self.collection_url(name, "/search"))
                .json(req),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("load-baseline-0"), "load-baseline-0");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
