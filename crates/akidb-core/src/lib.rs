//! AkiDB core: the pure, I/O-free parts of the database.
//!
//! - [`metric`]: the three similarity metrics and how a raw distance becomes a user-facing score.
//! - [`distance`]: the distance kernels.
//! - [`index`]: the in-memory vector index (flat + HNSW) over slot-numbered vectors.

pub mod distance;
pub mod index;
pub mod metric;
pub mod types;

pub use index::{HnswParams, Neighbor, SearchOptions, VectorIndex};
pub use metric::Metric;
