//! Manifests: the source of truth for what a collection durably holds.
//!
//! A manifest version lists the collection's definition, its segments in order, and the WAL
//! sequence number they cover. Versions are immutable objects at
//! `collections/<collection-id>/manifest/<version, 20 digits>.json`, written with a
//! create-only put ([`PutMode::Create`]) *after* every segment they name is stored, so a reader
//! never sees a manifest naming a missing object and two writers can never both win a version.
//! The newest version is the collection's state.
//!
//! # Checksums
//! Every byte that decides what a collection holds is checksummed (CRC32C), so that damage is
//! reported, never served:
//! - a manifest is stored in an envelope `{"format": 2, "crc32c": N, "manifest": {...}}` whose
//!   checksum covers the exact bytes of `manifest` (a flipped digit in `wal_seq` would otherwise
//!   parse and skip WAL records);
//! - each segment and the saved graph carry the checksum of their whole object
//!   ([`SegmentRef::crc32c`], [`GraphRef::crc32c`]), verified on every fetch and every read of
//!   a local copy.
//!
//! Manifests of format 1 (no envelope, no checksums) are still read. Format 3 adds the
//! partitioned base ([`Manifest::base`]); a manifest without one is still written as format 2,
//! so that an older server reads it.

use std::sync::Arc;

use akidb_core::{HnswParams, Metric, Quantization};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::upload::Uploader;
use crate::upload::retry::RetryError;

/// The newest manifest format this server reads and writes: 2 = checksummed envelope and
/// object checksums, 3 = a partitioned base.
pub const FORMAT_VERSION: u32 = 3;

/// What a collection is; fixed at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionDef {
    /// Stable id (UUIDv7); all storage paths derive from it, never from the name.
    pub id: String,
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub index: HnswParams,
    pub created_at_ms: u64,
    /// How the hot tier holds the vectors (`none`: f32; `sq8`: 8-bit codes in RAM and f32 on
    /// local disk). Changed by a later manifest version (`Engine::set_quantization`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub quantization: Quantization,
    /// Payload indexes on metadata fields (`Engine::create_payload_index`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_indexes: Vec<crate::payload_index::PayloadIndexDef>,
}

fn is_default(q: &Quantization) -> bool {
    *q == Quantization::None
}

impl CollectionDef {
    /// A stand-in for a collection whose manifest cannot be read: named by its id, so that it
    /// is listed (as unavailable) rather than silently missing.
    pub fn unknown(id: &str) -> CollectionDef {
        CollectionDef {
            id: id.to_string(),
            name: id.to_string(),
            dimension: 0,
            metric: Metric::Cosine,
            index: HnswParams::default(),
            created_at_ms: 0,
            quantization: Quantization::None,
            payload_indexes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: String,
    /// Object key relative to the store root.
    pub path: String,
    pub rows: u64,
    pub tombstones: u64,
    pub bytes: u64,
    /// CRC32C of the whole object (absent in format 1 manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub version: u64,
    pub collection: CollectionDef,
    /// Oldest first; a later segment's row for an id overrides earlier ones.
    pub segments: Vec<SegmentRef>,
    /// Every WAL record with a sequence number up to this one is contained in `segments`.
    pub wal_seq: u64,
    /// Live documents in `segments` (for status while the collection is not loaded).
    #[serde(default)]
    pub documents: u64,
    /// The HNSW graph over the first `graph.nodes` rows of `segments` (every `Put` row is a
    /// slot, in order), saved when the collection was last demoted. Loading it instead of
    /// rebuilding is what makes a cold collection answer exactly as it did when hot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphRef>,
    /// Pinned collections are never moved down by the tiering policy.
    #[serde(default)]
    pub pinned: bool,
    /// The partitioned base holding slots `0..base.slots` (see [`crate::partitioned`]); the
    /// `segments` then hold only the rows sealed after it (the tail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
}

/// A partitioned base object (see [`crate::partitioned`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseRef {
    pub id: String,
    /// Object key relative to the store root.
    pub path: String,
    pub bytes: u64,
    /// CRC32C of the whole object.
    pub crc32c: u32,
    /// Slots `0..slots` of the collection, dead ones included.
    pub slots: u64,
    pub partitions: u32,
    /// The header: where it is in the object, and its own checksum (a query reads only it
    /// and the partitions it chooses).
    pub header: HeaderRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRef {
    pub offset: u64,
    pub len: u64,
    pub crc32c: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphRef {
    pub id: String,
    /// Object key relative to the store root.
    pub path: String,
    pub nodes: u64,
    pub bytes: u64,
    /// CRC32C of the whole object (absent in format 1 manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
}

/// An object a manifest names, with what it must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub path: &'a str,
    pub bytes: u64,
    pub crc32c: Option<u32>,
}

impl ObjectRef<'_> {
    /// Checks fetched or read bytes against the manifest: size, then checksum.
    pub fn verify(&self, data: &[u8]) -> Result<(), String> {
        if data.len() as u64 != self.bytes {
            return Err(format!(
                "{}: {} bytes, the manifest says {}",
                self.path,
                data.len(),
                self.bytes
            ));
        }
        if let Some(expected) = self.crc32c {
            let actual = crc32c::crc32c(data);
            if actual != expected {
                return Err(format!(
                    "{}: checksum {actual:08x}, the manifest says {expected:08x}",
                    self.path
                ));
            }
        }
        Ok(())
    }
}

impl Manifest {
    /// Every object this manifest names, in slot order: the base, the segments, then the graph.
    pub fn objects(&self) -> impl Iterator<Item = ObjectRef<'_>> {
        let base = self.base.iter().map(|b| ObjectRef {
            path: &b.path,
            bytes: b.bytes,
            crc32c: Some(b.crc32c),
        });
        let segments = self.segments.iter().map(|s| ObjectRef {
            path: &s.path,
            bytes: s.bytes,
            crc32c: s.crc32c,
        });
        base.chain(segments)
            .chain(self.graph.iter().map(|g| ObjectRef {
                path: &g.path,
                bytes: g.bytes,
                crc32c: g.crc32c,
            }))
    }

    /// Bytes of the objects this manifest names.
    pub fn object_bytes(&self) -> u64 {
        self.objects().map(|o| o.bytes).sum()
    }

    /// The format this manifest needs: 3 with a base, else 2 (which older servers read).
    pub fn required_format(&self) -> u32 {
        if self.base.is_some() { 3 } else { 2 }
    }

    /// The stored bytes of this manifest: the checksummed envelope.
    pub fn encode(&self) -> bytes::Bytes {
        crate::envelope::seal("manifest", self.format.max(2), self, true)
    }
}

pub fn collection_prefix(collection_id: &str) -> Path {
    Path::from(format!("collections/{collection_id}"))
}

pub fn manifest_path(collection_id: &str, version: u64) -> Path {
    Path::from(format!(
        "collections/{collection_id}/manifest/{version:020}.json"
    ))
}

/// The saved HNSW graph of a collection (see [`Manifest::graph`]).
pub fn graph_path(collection_id: &str, graph_id: &str) -> Path {
    Path::from(format!(
        "collections/{collection_id}/segments/{graph_id}.hnsw"
    ))
}

/// A partitioned base (see [`Manifest::base`]).
pub fn base_path(collection_id: &str, base_id: &str) -> Path {
    Path::from(format!(
        "collections/{collection_id}/segments/{base_id}.akp"
    ))
}

pub fn segment_path(collection_id: &str, segment_id: &str) -> Path {
    Path::from(format!(
        "collections/{collection_id}/segments/{segment_id}.parquet"
    ))
}

/// Marker written before a collection's objects are deleted, so a crash half-way through a
/// delete never resurrects the collection on restart. All markers sit under `deleted/`, so a
/// start finds them in one listing.
pub fn tombstone_path(collection_id: &str) -> Path {
    Path::from(format!("deleted/{collection_id}"))
}

/// Where earlier versions put the delete marker (still honoured at start).
pub fn legacy_tombstone_path(collection_id: &str) -> Path {
    Path::from(format!("collections/{collection_id}/DELETED"))
}

impl Manifest {
    pub fn new(collection: CollectionDef) -> Self {
        Manifest {
            format: 2,
            version: 1,
            collection,
            segments: vec![],
            wal_seq: 0,
            documents: 0,
            graph: None,
            pinned: false,
            base: None,
        }
    }

    /// Reads the newest manifest of a collection in `store`, or `None` if it has none (tests
    /// and tools: a server reads through its own [`Uploader`]).
    pub async fn read_latest(
        store: &Arc<dyn object_store::ObjectStore>,
        collection_id: &str,
    ) -> Result<Option<Manifest>, EngineError> {
        let uploader = Uploader::new(store.clone(), Default::default());
        let unavailable = |e: RetryError| EngineError::Unavailable(e.to_string());
        let Some(path) = Manifest::newest_path(&uploader, collection_id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let data = uploader.get(&path).await.map_err(unavailable)?;
        Manifest::parse(&path, &data).map(Some)
    }

    /// The key of a collection's newest manifest version, if it has one.
    pub async fn newest_path(
        uploader: &Uploader,
        collection_id: &str,
    ) -> Result<Option<Path>, RetryError> {
        let prefix = Path::from(format!("collections/{collection_id}/manifest"));
        let metas = uploader.list(&prefix).await?;
        Ok(metas
            .into_iter()
            .map(|m| m.location)
            .filter(|p| p.as_ref().ends_with(".json"))
            .max_by(|a, b| a.as_ref().cmp(b.as_ref())))
    }

    /// Parses a stored manifest; a damaged or too new one is `Corrupted`.
    pub fn parse(path: impl std::fmt::Display, data: &[u8]) -> Result<Manifest, EngineError> {
        let corrupted = |e: String| EngineError::Corrupted(format!("manifest {path}: {e}"));
        let manifest: Manifest = match crate::envelope::open("manifest", FORMAT_VERSION, data) {
            Some(Ok((_, manifest))) => manifest,
            Some(Err(e)) => return Err(corrupted(e)),
            // Format 1: the manifest itself, unchecksummed.
            None => serde_json::from_slice(data).map_err(|e| corrupted(e.to_string()))?,
        };
        if manifest.format > FORMAT_VERSION {
            return Err(EngineError::Corrupted(format!(
                "manifest {path} has format {}, this server reads up to {FORMAT_VERSION}",
                manifest.format
            )));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut m = Manifest::new(CollectionDef {
            id: "0190".into(),
            name: "docs".into(),
            dimension: 3,
            metric: Metric::Cosine,
            index: HnswParams::default(),
            created_at_ms: 1,
            quantization: Default::default(),
            payload_indexes: Vec::new(),
        });
        m.version = 7;
        m.wal_seq = 12345;
        m.segments.push(SegmentRef {
            id: "s1".into(),
            path: segment_path("0190", "s1").to_string(),
            rows: 10,
            tombstones: 0,
            bytes: 999,
            crc32c: Some(0xdead_beef),
        });
        m
    }

    #[test]
    fn round_trip_through_the_envelope() {
        let m = manifest();
        let data = m.encode();
        assert_eq!(Manifest::parse("m", &data).unwrap(), m);
    }

    #[test]
    fn any_flipped_byte_is_reported() {
        let data = manifest().encode().to_vec();
        let mut undetected = Vec::new();
        for pos in 0..data.len() {
            let mut bad = data.clone();
            bad[pos] ^= 0x01;
            if let Ok(m) = Manifest::parse("m", &bad) {
                undetected.push((pos, m));
            }
        }
        // Only flips that leave the same manifest can pass (e.g. JSON whitespace in the
        // envelope outside the checksummed bytes).
        assert!(
            undetected.iter().all(|(_, m)| *m == manifest()),
            "flips that changed the manifest went unnoticed: {:?}",
            undetected.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }

    #[test]
    fn format_1_manifests_are_still_read() {
        let mut m = manifest();
        m.format = 1;
        m.segments[0].crc32c = None;
        let legacy = serde_json::to_vec_pretty(&m).unwrap();
        assert_eq!(Manifest::parse("m", &legacy).unwrap(), m);
    }

    #[test]
    fn objects_are_verified_by_size_and_checksum() {
        let data = b"segment bytes";
        let good = ObjectRef {
            path: "p",
            bytes: data.len() as u64,
            crc32c: Some(crc32c::crc32c(data)),
        };
        good.verify(data).unwrap();
        let mut bad = data.to_vec();
        bad[3] ^= 0x80;
        assert!(good.verify(&bad).unwrap_err().contains("checksum"));
        assert!(good.verify(&data[1..]).unwrap_err().contains("bytes"));
    }
}
