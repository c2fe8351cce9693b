//! What a collection reports and takes: search requests and hits, its summary and tier, and why
//! a flush did not complete.

use crate::doc::Metadata;
use crate::error::EngineError;
use crate::filter::Filter;
use crate::manifest::CollectionDef;
use crate::tier::Tier;
use crate::upload::retry::RetryError;

/// Why a flush did not complete. Either way nothing is lost: the data stays unflushed, in the
/// WAL and in memory.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The object store refused or failed the upload (see [`RetryError`]).
    #[error(transparent)]
    Upload(#[from] RetryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl FlushError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, FlushError::Upload(e) if e.is_permanent())
    }
}

impl From<FlushError> for EngineError {
    fn from(e: FlushError) -> Self {
        match e {
            FlushError::Engine(e) => e,
            FlushError::Upload(e) => EngineError::Unavailable(e.to_string()),
        }
    }
}

/// A search hit before it is turned into a response.
#[derive(Debug, Clone)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub vector: Option<Vec<f32>>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Validated, and unit length for cosine; empty for a search by text alone.
    pub vector: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    /// Partitions of a partitioned base to read (warm and cold); None: the default share.
    pub nprobe: Option<usize>,
    pub exact: bool,
    pub filter: Option<Filter>,
    pub include_vector: bool,
    pub include_metadata: bool,
    pub deadline: Option<crate::Deadline>,
    /// The full-text part: ranked by BM25 alone when `vector` is empty, else fused with the
    /// vector ranking (see `fusion`).
    pub text: Option<TextQuery>,
}

/// The full-text part of a search, validated.
#[derive(Debug, Clone)]
pub struct TextQuery {
    /// The path of a `text` payload index.
    pub field: String,
    pub query: String,
    /// The text ranking's share of the fusion, 0..=1.
    pub weight: f32,
}

/// One listed document; the vector only when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    pub vector: Option<Vec<f32>>,
    pub metadata: Option<Metadata>,
}

/// A page of a scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    pub documents: Vec<Listed>,
    /// Pass it back for the next page; None when this page is the last.
    pub next_cursor: Option<String>,
}

/// What a scroll asks for (validated).
#[derive(Debug, Clone)]
pub struct ScrollRequest {
    pub filter: Option<Filter>,
    pub limit: usize,
    /// Only ids after this one (the previous page's cursor).
    pub after: Option<String>,
    pub include_vector: bool,
    pub include_metadata: bool,
}

/// A point-in-time summary of a collection.
#[derive(Debug, Clone)]
pub struct CollectionInfo {
    pub def: CollectionDef,
    pub count: usize,
    /// Vectors written but not yet in the HNSW graph (searched exactly meanwhile).
    pub index_pending: usize,
    pub segments: usize,
    pub manifest_version: u64,
    pub unflushed: usize,
    pub bytes_in_ram: usize,
    pub wal_bytes: u64,
    pub tier: TierInfo,
}

/// Where a collection's data is, and how it has been used.
#[derive(Debug, Clone)]
pub struct TierInfo {
    pub tier: Tier,
    pub pinned: bool,
    pub bytes_in_ram: u64,
    /// Local copies of the collection's objects, its WAL, and a quantized hot index's vector
    /// file.
    pub bytes_on_disk: u64,
    /// Objects named by the current manifest.
    pub bytes_in_object_store: u64,
    /// Unix ms of the last read or write (creation or start counts).
    pub last_access_ms: u64,
    /// Accesses within the access-rate window.
    pub recent_accesses: usize,
    /// A promotion to hot is loading the collection (in the background of its requests).
    pub promoting: bool,
}
