//! AkiDB engine: owns all I/O. See the repository's ARCHITECTURE.md for the picture.
//!
//! - [`engine`]: the façade: requests, create and delete, background work (indexer, flusher,
//!   tiering).
//! - `catalog`: every collection by id, open or closed, and loading it at start.
//! - `identity`: which object store a data directory belongs to.
//! - [`disk`]: the free-space guard.
//! - [`collection`]: one collection's write path, search, flush and recovery.
//! - [`wal`]: the write-ahead log with group commit.
//! - [`segment`]: the Parquet segment codec.
//! - [`manifest`]: manifest versions, the source of truth on the object store.
//! - [`store`]: object-store wiring.
//! - [`tier`]: hot/warm/cold tiers: the pure policy and the moves.

pub(crate) mod catalog;
pub mod collection;
pub mod disk;
pub mod doc;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod filter;
mod identity;
pub mod manifest;
pub mod segment;
pub mod store;
pub mod tier;
pub mod upload;
pub mod wal;

pub use collection::{CollectionInfo, FlushError, Hit};
pub use doc::{Document, Metadata};
pub use engine::{
    CollectionStatus, CreateCollection, Engine, EngineConfig, NewDocument, SearchQuery,
};
pub use error::EngineError;
pub use store::S3Options;
