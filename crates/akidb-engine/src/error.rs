//! The engine's error type. Each variant says what went wrong in terms a caller can act on;
//! the server maps them to HTTP statuses with an exhaustive match.

use akidb_core::types::ValidationError;

use crate::segment::SegmentError;
use crate::wal::WalError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("collection {0:?} not found")]
    CollectionNotFound(String),
    #[error("collection {0:?} already exists")]
    CollectionExists(String),
    #[error("document {id:?} not found in collection {collection:?}")]
    DocumentNotFound { collection: String, id: String },
    /// The collection exists but cannot serve: it failed to open (corruption) or its WAL is
    /// poisoned by an I/O failure.
    #[error("collection {name:?} is unavailable: {reason}")]
    CollectionUnavailable { name: String, reason: String },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The search ran past its deadline (or its client went away) and was stopped.
    #[error("search of collection {0:?} stopped at its deadline")]
    DeadlineExceeded(String),
    /// Unflushed WAL has reached the local budget (typically while the object store is
    /// unreachable): the write is refused, nothing was written; retry after the given time.
    #[error(
        "write refused: {wal_bytes} bytes of unflushed WAL reach the local budget of {budget} bytes; retry in {retry_after_secs} s"
    )]
    Backpressure {
        wal_bytes: u64,
        budget: u64,
        retry_after_secs: u64,
    },
    /// The data directory's disk is full or below `min_free_disk_bytes`: the write was refused
    /// (or cut back out of the WAL), nothing was written; retry once space is freed.
    #[error("write refused: {0}; retry once disk space is freed")]
    InsufficientStorage(String),
    /// The data directory belongs to another object store than the configured one.
    #[error("{0}")]
    StoreMismatch(String),
    /// The object store cannot take the work now (breaker open, retries exhausted).
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupted data: {0}")]
    Corrupted(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("segment: {0}")]
    Segment(#[from] SegmentError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
