//! AkiDB engine: owns all I/O. See the repository's ARCHITECTURE.md for the picture.
//!
//! The façade is [`Engine`] and the types re-exported here; a server needs nothing else.
//! Internal rooms (`pub(crate)`):
//! - `engine`: the façade, its config, request preparation, tiering and background work;
//! - `catalog`: every collection by id, open or closed, and loading it at start;
//! - `collection`: one collection: state, local copies, durable writes, compaction, tier gate;
//! - `identity`: which object store a data directory belongs to;
//! - `disk`: the data-directory lock and the free-space guard;
//! - `doc`, `filter`, `envelope`, `error`: documents, metadata filters, checksummed JSON, errors;
//! - `payload_index`, `fusion`: indexes over metadata (and full text), and hybrid search's fusion.
//!
//! Public building blocks (the benches, tests and tools use them directly):
//! - [`partitioned`]: the partitioned base (IVF layout) that warm and cold queries read in part;
//! - [`blockcache`]: the disk cache of the ranges cold queries fetched;
//! - [`disk`]: the data-directory lock and free space (the guard; the fault soak measures with it);
//! - [`wal`]: the write-ahead log with group commit;
//! - [`segment`]: the Parquet segment codec;
//! - [`manifest`]: manifest versions, the source of truth on the object store;
//! - [`upload`]: the one door to the object store (retries, breaker, counters, DLQ);
//! - [`store`]: opening stores by URL, and the fault-injecting store for tests;
//! - [`tier`]: hot/warm/cold tiers: the pure policy and the move counters;
//! - [`deadline`]: when a search stops (its deadline, or its client gone).

pub mod blockcache;
pub(crate) mod buffers;
pub(crate) mod catalog;
pub(crate) mod collection;
pub mod deadline;
pub mod disk;
pub(crate) mod doc;
pub(crate) mod engine;
pub(crate) mod envelope;
pub(crate) mod error;
pub(crate) mod filter;
pub(crate) mod fusion;
mod identity;
pub mod manifest;
pub mod partitioned;
pub(crate) mod payload_index;
pub mod segment;
pub mod store;
pub mod tier;
pub mod upload;
pub mod wal;

/// Entry points for the cargo-fuzz targets in `fuzz/` (the WAL operation decoder, the
/// checksummed envelope and the request checks the server runs, otherwise crate-private).
/// Not an API: it exists only for the fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::doc::Operation;
    pub use crate::engine::request::{
        prepare_create, prepare_documents, prepare_ids, prepare_search,
    };
    pub use crate::envelope::open as open_envelope;
    pub use crate::filter::Filter;
}

pub use collection::{CollectionInfo, FlushError, Hit, Listed, ReadReport, ScrollPage, TierInfo};
pub use deadline::{CancelOnDrop, Deadline};
pub use doc::{Document, Metadata};
pub use engine::{
    COMPACT_DEAD_FRACTION, COMPACT_MIN_DEAD, CatalogTotals, CollectionStatus, CreateCollection,
    DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_FLUSH_IDLE, DEFAULT_FLUSH_MAX_AGE, DEFAULT_FLUSH_MAX_DOCS,
    DEFAULT_INDEX_CHUNK, DEFAULT_MAX_OPEN_FILES, DEFAULT_MIN_FREE_DISK_BYTES,
    DEFAULT_WAL_BUDGET_BYTES, Engine, EngineConfig, MAX_BATCH, MAX_EF, MAX_K, MAX_NPROBE,
    MAX_SCROLL_LIMIT, MAX_SCROLL_LIMIT_WITH_VECTORS, NewDocument, PartitionConfig, ScrollQuery,
    SearchQuery, TestFaults, TextSearch, TierAction, TierMoveStats, TierTotals, TieringConfig,
    metadata_value,
};
pub use error::EngineError;
pub use payload_index::{IndexType, PayloadIndexDef};
pub use store::S3Options;
pub use store::faulty::Fault;
pub use tier::{PolicyConfig, Tier};
pub use upload::{MAX_MAX_IN_FLIGHT, UploadConfig};
pub use wal::WalError;
