//! Wire types of the queries by filter (scroll, count, batch search) and of payload indexes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ErrorResponse, SearchResponse};

/// `POST /api/v1/collections/{name}/indexes`: a payload index on a metadata field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadIndex {
    /// A field path: names joined by dots (`author.name`).
    pub field: String,
    #[serde(rename = "type")]
    pub kind: PayloadIndexType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadIndexType {
    Keyword,
    Integer,
    Float,
    Bool,
    /// Full-text (BM25): strings, searched with a search's `text`.
    Text,
}

/// `POST /api/v1/collections/{name}/documents/scroll`: a page of documents in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrollRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// 1..=10000 (1..=1000 with vectors), default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// The previous page's `next_cursor`; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default)]
    pub include_vector: bool,
    /// Default true.
    #[serde(default = "yes")]
    pub include_metadata: bool,
}

fn default_limit() -> usize {
    100
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrollResponse {
    pub documents: Vec<ListedDocument>,
    /// Send it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A document in a scroll page: the vector and metadata only when asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedDocument {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `POST /api/v1/collections/{name}/count`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountResponse {
    /// Live documents matching the filter, exactly.
    pub count: u64,
}

/// `POST /api/v1/collections/{name}/search/batch`: searches, each a [`SearchRequest`], checked
/// one by one (a bad one fails alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSearchRequest {
    pub searches: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchSearchResponse {
    /// One per search, in order.
    pub batches: Vec<BatchSearchResult>,
}

/// A search's answer or its error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchSearchResult {
    Ok(SearchResponse),
    Err(ErrorResponse),
}
