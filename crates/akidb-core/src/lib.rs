//! AkiDB core: the pure, I/O-free parts of the database.
//!
//! - [`metric`]: the three similarity metrics and how a raw distance becomes a user-facing score.
//! - [`distance`]: the distance kernels.
//! - [`index`]: the in-memory vector index (flat + HNSW) over slot-numbered vectors.
//! - [`sq8`]: 8-bit scalar quantization with a per-vector error bound.
//! - [`kmeans`]: k-means partitions (spherical for cosine) and centroid ranking.

pub mod distance;
pub mod index;
pub mod kmeans;
pub mod metric;
pub mod sq8;
pub mod types;

pub use index::{HnswParams, Neighbor, Quantization, SearchOptions, VectorIndex};
pub use metric::Metric;
