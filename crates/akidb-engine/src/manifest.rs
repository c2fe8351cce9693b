//! Manifests: the source of truth for what a collection durably holds.
//!
//! A manifest version lists the collection's definition, its segments in order, and the WAL
//! sequence number they cover. Versions are immutable objects at
//! `collections/<collection-id>/manifest/<version, 20 digits>.json`, written with a
//! create-only put ([`PutMode::Create`]) *after* every segment they name is stored, so a reader
//! never sees a manifest naming a missing object and two writers can never both win a version.
//! The newest version is the collection's state.

use std::sync::Arc;

use akidb_core::{HnswParams, Metric};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

pub const FORMAT_VERSION: u32 = 1;

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: String,
    /// Object key relative to the store root.
    pub path: String,
    pub rows: u64,
    pub tombstones: u64,
    pub bytes: u64,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphRef {
    pub id: String,
    /// Object key relative to the store root.
    pub path: String,
    pub nodes: u64,
    pub bytes: u64,
}

impl Manifest {
    /// Every object this manifest names: segments, then the graph.
    pub fn objects(&self) -> impl Iterator<Item = (&str, u64)> {
        let segments = self.segments.iter().map(|s| (s.path.as_str(), s.bytes));
        segments.chain(self.graph.iter().map(|g| (g.path.as_str(), g.bytes)))
    }

    /// Bytes of the objects this manifest names.
    pub fn object_bytes(&self) -> u64 {
        self.objects().map(|(_, b)| b).sum()
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

pub fn segment_path(collection_id: &str, segment_id: &str) -> Path {
    Path::from(format!(
        "collections/{collection_id}/segments/{segment_id}.parquet"
    ))
}

/// Marker written before a collection's objects are deleted, so a crash half-way through a
/// delete never resurrects the collection on restart.
pub fn tombstone_path(collection_id: &str) -> Path {
    Path::from(format!("collections/{collection_id}/DELETED"))
}

impl Manifest {
    pub fn new(collection: CollectionDef) -> Self {
        Manifest {
            format: FORMAT_VERSION,
            version: 1,
            collection,
            segments: vec![],
            wal_seq: 0,
            documents: 0,
            graph: None,
            pinned: false,
        }
    }

    /// Reads the newest manifest of a collection, or `None` if it has none.
    pub async fn read_latest(
        store: &Arc<dyn ObjectStore>,
        collection_id: &str,
    ) -> Result<Option<Manifest>, EngineError> {
        let Some(path) = Manifest::newest_path(store, collection_id).await? else {
            return Ok(None);
        };
        let data = store.get(&path).await?.bytes().await?;
        Manifest::parse(&path, &data).map(Some)
    }

    /// The key of a collection's newest manifest version, if it has one.
    pub async fn newest_path(
        store: &Arc<dyn ObjectStore>,
        collection_id: &str,
    ) -> Result<Option<Path>, object_store::Error> {
        let prefix = Path::from(format!("collections/{collection_id}/manifest"));
        let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| m.location)
            .filter(|p| p.as_ref().ends_with(".json"))
            .max_by(|a, b| a.as_ref().cmp(b.as_ref())))
    }

    /// Parses a stored manifest; a damaged or too new one is `Corrupted`.
    pub fn parse(path: &Path, data: &[u8]) -> Result<Manifest, EngineError> {
        let manifest: Manifest = serde_json::from_slice(data)
            .map_err(|e| EngineError::Corrupted(format!("manifest {path}: {e}")))?;
        if manifest.format > FORMAT_VERSION {
            return Err(EngineError::Corrupted(format!(
                "manifest {path} has format {}, this server reads up to {FORMAT_VERSION}",
                manifest.format
            )));
        }
        Ok(manifest)
    }
}
