//! The partitioned base: a collection's sealed rows laid out so that a query reads only the
//! part it needs, from local disk (warm) or with ranged GETs from the object store (cold).
//!
//! One object per base, `collections/<id>/segments/<uuid>.akp`, holding slots `0..n` (dead
//! ones too, so that the saved HNSW graph keeps its waypoints and slot numbers never change):
//!
//! ```text
//! partition 0 | partition 1 | ... | id index | header
//! partition p = body:     f32 vectors [rows × dim] | u32 slots [rows] | u32 id ends [rows] | ids
//!               metadata: u32 ends [rows] | JSON objects end to end (empty: none)
//! header      = "AKP1" | dim | metric | n | k | f32 centroids [k × dim]
//!               | per partition: rows, offset, body length and CRC32C, metadata length and CRC32C
//!               | dead slots, one bit each | id index: offset, count, each block's first hash + CRC
//! id index    = (crc32c(id), partition, row) sorted, in CRC-checked blocks of 1,024 (12 KiB)
//! ```
//!
//! The manifest names the object with its whole-object size and CRC32C (a hot load or warm
//! download checks those) and the header's range and CRC32C, so a query reads the header in
//! one request, ranks the centroids, and reads each chosen partition in one more: the body
//! alone, or the body and its metadata when the query filters or returns metadata. Every range
//! a query reads carries its own checksum. Partitions are k-means clusters (IVF, as LanceDB's
//! IVF indexes and turbopuffer's centroid tree): the whole vectors of the nearest `nprobe`
//! partitions are scanned exactly, so no re-ranking round is needed, and at the default (3% of
//! √n partitions) a query reads about 3% of the base.
//!
//! Rows sealed after the base (the *tail*: Parquet segments, small by construction, see the
//! engine's partitioning step) are read whole and override base rows with the same id.

pub mod build;
pub mod format;
pub mod ids;
pub mod scan;

pub use build::{BuildParams, Built, Source, build, verify};
pub use format::{Header, Partition, PartitionEntry, PartitionWriter, Sink};
pub use scan::{TopK, default_probes, probe_order};

#[cfg(test)]
mod tests;
