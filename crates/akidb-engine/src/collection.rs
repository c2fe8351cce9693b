//! One collection: its WAL, its in-memory state (vectors, index, ids, metadata) and its
//! durable form (Parquet segments + manifest on the object store).
//!
//! # Write path and ordering
//! 1. The caller has validated every document (dimension, finite values, id, metadata size).
//! 2. [`Collection::apply_durably`] appends the operation to the WAL and, under the WAL's lock,
//!    queues it for applying. The log order *is* the apply order.
//! 3. It waits for the group-commit fsync covering its record.
//! 4. Under the state's write lock it applies every queued operation whose record is durable,
//!    oldest first. Its own is among them (or another writer already applied it in order).
//! 5. Only then does it return, and the API acknowledges.
//!
//! So a reader never sees data that is not durable, and replay after a crash rebuilds exactly
//! the state that was acknowledged, in the same order.
//!
//! # Indexing
//! A write only appends vectors to the [`VectorIndex`]; the engine's indexer thread inserts them
//! into the HNSW graph shortly after, a few at a time. Until then search covers them by brute
//! force, so a write is searchable the moment it is acknowledged.
//!
//! # Flush
//! [`Collection::flush`] writes everything applied since the last flush (documents, plus a
//! tombstone for each deleted id) as one Parquet segment, then a new manifest version that lists
//! it and the WAL sequence number it covers, then deletes the WAL files that manifest covers.
//! A crash at any point leaves either the old manifest plus a longer WAL, or the new manifest
//! plus a WAL whose covered records are skipped on replay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use akidb_core::{Neighbor, SearchOptions, VectorIndex};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::{Mutex, RwLock};

use crate::doc::{Document, Metadata, Operation};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::manifest::{CollectionDef, Manifest, SegmentRef, manifest_path, segment_path};
use crate::segment::{self, Row};
use crate::upload::Uploader;
use crate::upload::retry::RetryError;
use crate::wal::{Wal, WalStats};

/// How many segments are fetched from the object store at once when a collection is opened.
const SEGMENT_FETCH_CONCURRENCY: usize = 8;

/// In-memory state. Slot `i` is the `i`-th vector pushed into the index.
struct State {
    index: VectorIndex,
    /// Id of each slot.
    ids: Vec<Arc<str>>,
    /// Bytes held by `ids` (string bytes plus the pointer), kept as slots are added, so that
    /// `info()` (every status read and metrics scrape) does not walk every id.
    id_bytes: usize,
    /// Metadata of each slot (dropped when the slot is deleted).
    metadata: Vec<Option<Box<Metadata>>>,
    /// Live document id → slot.
    by_id: HashMap<Arc<str>, u32>,
    /// Highest WAL sequence number applied.
    applied_seq: u64,
    /// Slots below this are in a durable segment.
    flushed_slots: usize,
    /// Ids deleted since the last flush; each becomes a tombstone row in the next segment.
    unflushed_deletes: HashSet<Arc<str>>,
    /// When the oldest unflushed change was applied.
    dirty_since: Option<Instant>,
    last_write: Instant,
}

impl State {
    fn upsert(&mut self, doc: Document) {
        let slot = self.index.push(&doc.vector);
        let id: Arc<str> = Arc::from(doc.id);
        if let Some(old) = self.by_id.insert(id.clone(), slot) {
            self.index.delete(old);
            self.metadata[old as usize] = None;
        }
        self.id_bytes += id.len() + std::mem::size_of::<Arc<str>>();
        self.ids.push(id);
        self.metadata.push(doc.metadata.map(Box::new));
    }

    fn delete(&mut self, id: &str) {
        if let Some((id, slot)) = self.by_id.remove_entry(id) {
            self.index.delete(slot);
            self.metadata[slot as usize] = None;
            self.unflushed_deletes.insert(id);
        }
    }

    fn apply(&mut self, seq: u64, op: Operation) {
        match op {
            Operation::Upsert(docs) => docs.into_iter().for_each(|d| self.upsert(d)),
            Operation::Delete(ids) => ids.iter().for_each(|id| self.delete(id)),
        }
        self.applied_seq = seq;
        let now = Instant::now();
        self.dirty_since.get_or_insert(now);
        self.last_write = now;
    }

    fn unflushed(&self) -> usize {
        (self.index.len() - self.flushed_slots) + self.unflushed_deletes.len()
    }
}

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
    /// Validated, and unit length for cosine.
    pub vector: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    pub exact: bool,
    pub filter: Option<Filter>,
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
}

pub struct Collection {
    def: CollectionDef,
    dir: PathBuf,
    wal: Wal,
    /// Durable operations waiting to be applied, in log order.
    queue: Mutex<VecDeque<(u64, Operation)>>,
    state: RwLock<State>,
    uploader: Arc<Uploader>,
    /// The newest manifest; holding the lock serialises flushes.
    manifest: tokio::sync::Mutex<Manifest>,
    manifest_version: AtomicU64,
    segment_count: AtomicU64,
}

impl Collection {
    /// Opens a collection from its newest manifest and its local WAL: fetches the segments,
    /// keeps the newest row of each id, then replays the WAL records the manifest does not cover.
    pub async fn open(
        manifest: Manifest,
        dir: PathBuf,
        uploader: Arc<Uploader>,
        wal_stats: Arc<WalStats>,
    ) -> Result<Collection, EngineError> {
        let store: Arc<dyn ObjectStore> = uploader.store().clone();
        let def = manifest.collection.clone();
        let dim = def.dimension;
        let segments: Vec<Vec<Row>> = futures::stream::iter(manifest.segments.clone())
            .map(|seg| {
                let store = store.clone();
                async move {
                    let path = object_store::path::Path::from(seg.path.as_str());
                    let data = store.get(&path).await?.bytes().await?;
                    tokio::task::spawn_blocking(move || segment::decode(dim, data))
                        .await
                        .expect("segment decode task panicked")
                        .map_err(EngineError::from)
                }
            })
            .buffered(SEGMENT_FETCH_CONCURRENCY)
            .try_collect()
            .await?;

        let wal_dir = dir.join("wal");
        let (wal, records) = tokio::task::spawn_blocking(move || Wal::open(&wal_dir, wal_stats))
            .await
            .expect("wal open task panicked")?;

        let mut state = State {
            index: VectorIndex::new(dim, def.metric, def.index),
            ids: Vec::new(),
            id_bytes: 0,
            metadata: Vec::new(),
            by_id: HashMap::new(),
            applied_seq: manifest.wal_seq,
            flushed_slots: 0,
            unflushed_deletes: HashSet::new(),
            dirty_since: None,
            last_write: Instant::now(),
        };
        // Newest row per id wins: walk segments and rows backwards, keep first sightings.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut live: Vec<&Document> = Vec::new();
        for rows in segments.iter().rev() {
            for row in rows.iter().rev() {
                if seen.insert(row.id())
                    && let Row::Put(doc) = row
                {
                    live.push(doc);
                }
            }
        }
        for doc in live.into_iter().rev() {
            state.upsert(doc.clone());
        }
        drop(segments);
        state.flushed_slots = state.index.len();

        let mut replayed = 0;
        for record in records {
            if record.seq <= manifest.wal_seq {
                continue;
            }
            let op = Operation::decode(&record.payload).map_err(|e| {
                EngineError::Corrupted(format!("wal record {} of {:?}: {e}", record.seq, def.name))
            })?;
            state.apply(record.seq, op);
            replayed += 1;
        }
        if replayed > 0 {
            tracing::info!(collection = %def.name, replayed, "replayed wal records");
        }
        Ok(Collection {
            manifest_version: AtomicU64::new(manifest.version),
            segment_count: AtomicU64::new(manifest.segments.len() as u64),
            def,
            dir,
            wal,
            queue: Mutex::new(VecDeque::new()),
            state: RwLock::new(state),
            uploader,
            manifest: tokio::sync::Mutex::new(manifest),
        })
    }

    pub fn def(&self) -> &CollectionDef {
        &self.def
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Logs `op`, waits until it is durable, applies it. Blocking: call from a blocking thread.
    pub fn apply_durably(&self, op: Operation) -> Result<(), EngineError> {
        let body = op.encode();
        let mut op = Some(op);
        let seq = self.wal.append(&body, |seq| {
            self.queue
                .lock()
                .push_back((seq, op.take().expect("called once")));
        })?;
        drop(body);
        self.wal.sync(seq)?;
        let mut state = self.state.write();
        if state.applied_seq >= seq {
            return Ok(()); // another writer applied it, in order
        }
        let mut queue = self.queue.lock();
        while let Some((next, _)) = queue.front() {
            if *next > seq {
                break; // not known durable yet; its own writer will apply it
            }
            let (next, op) = queue.pop_front().expect("front exists");
            state.apply(next, op);
        }
        debug_assert!(state.applied_seq >= seq);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Document> {
        let state = self.state.read();
        let slot = *state.by_id.get(id)?;
        Some(Document {
            id: id.to_string(),
            vector: state.index.vector(slot).to_vec(),
            metadata: state.metadata[slot as usize].as_deref().cloned(),
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.state.read().by_id.contains_key(id)
    }

    pub fn search(&self, req: &SearchRequest) -> Vec<Hit> {
        let state = self.state.read();
        let filter_fn;
        let mut opts = SearchOptions {
            ef: req.ef,
            exact: req.exact,
            filter: None,
        };
        if let Some(filter) = &req.filter {
            let metadata = &state.metadata;
            filter_fn = move |slot: u32| filter.matches(metadata[slot as usize].as_deref());
            opts.filter = Some(&filter_fn);
        }
        let neighbors: Vec<Neighbor> = state.index.search(&req.vector, req.k, &opts);
        neighbors
            .into_iter()
            .map(|n| Hit {
                id: state.ids[n.slot as usize].to_string(),
                score: self.def.metric.score(n.distance),
                vector: req
                    .include_vector
                    .then(|| state.index.vector(n.slot).to_vec()),
                metadata: if req.include_metadata {
                    state.metadata[n.slot as usize].as_deref().cloned()
                } else {
                    None
                },
            })
            .collect()
    }

    /// Inserts up to `max` pending vectors into the graph; returns how many were inserted.
    pub fn index_some(&self, max: usize) -> usize {
        {
            // One guard: a second `read()` while a writer waits would deadlock (the lock is fair).
            let state = self.state.read();
            if state.index.indexed_len() == state.index.len() {
                return 0;
            }
        }
        self.state.write().index.index_pending(max)
    }

    pub fn info(&self) -> CollectionInfo {
        let state = self.state.read();
        CollectionInfo {
            def: self.def.clone(),
            count: state.by_id.len(),
            index_pending: state.index.len() - state.index.indexed_len(),
            segments: self.segment_count.load(Ordering::Relaxed) as usize,
            manifest_version: self.manifest_version.load(Ordering::Relaxed),
            unflushed: state.unflushed(),
            bytes_in_ram: state.index.memory_bytes() + state.id_bytes + state.by_id.capacity() * 24,
            wal_bytes: self.wal.disk_bytes(),
        }
    }

    /// Whether a flush is due: `max_docs` unflushed changes, or changes older than `max_age`,
    /// or changes and no write for `idle`.
    pub fn flush_due(&self, max_docs: usize, idle: Duration, max_age: Duration) -> bool {
        let state = self.state.read();
        let unflushed = state.unflushed();
        unflushed > 0
            && (unflushed >= max_docs
                || state.last_write.elapsed() >= idle
                || state.dirty_since.is_some_and(|t| t.elapsed() >= max_age))
    }

    /// Seals everything applied so far into segments of at most `max_rows` rows and a new
    /// manifest. Returns false when there was nothing to flush.
    pub async fn flush(&self, max_rows: usize) -> Result<bool, FlushError> {
        let mut manifest = self.manifest.lock().await;
        // Take the unflushed part under the lock; put it back if anything below fails.
        let (rows, covered_seq, from_slot, to_slot, deletes) = {
            let mut state = self.state.write();
            if state.unflushed() == 0 {
                return Ok(false);
            }
            let from = state.flushed_slots;
            let to = state.index.len();
            let deletes = std::mem::take(&mut state.unflushed_deletes);
            let live: HashSet<&str> = (from..to)
                .filter(|&s| !state.index.is_deleted(s as u32))
                .map(|s| &*state.ids[s])
                .collect();
            let mut rows: Vec<Row> = deletes
                .iter()
                .filter(|id| !live.contains(&***id))
                .map(|id| Row::Tombstone(id.to_string()))
                .collect();
            for slot in from..to {
                if state.index.is_deleted(slot as u32) {
                    continue;
                }
                rows.push(Row::Put(Document {
                    id: state.ids[slot].to_string(),
                    vector: state.index.vector(slot as u32).to_vec(),
                    metadata: state.metadata[slot].as_deref().cloned(),
                }));
            }
            state.flushed_slots = to;
            state.dirty_since = None;
            (rows, state.applied_seq, from, to, deletes)
        };
        let result = self
            .write_segments(&mut manifest, rows, covered_seq, max_rows.max(1))
            .await;
        if let Err(e) = result {
            let mut state = self.state.write();
            state.flushed_slots = state.flushed_slots.min(from_slot);
            state.unflushed_deletes.extend(deletes);
            state.dirty_since.get_or_insert_with(Instant::now);
            tracing::warn!(collection = %self.def.name, error = %e, "flush failed; the wal keeps the data");
            return Err(e);
        }
        tracing::debug!(collection = %self.def.name, slots = to_slot - from_slot, covered_seq, "flushed");
        Ok(true)
    }

    async fn write_segments(
        &self,
        manifest: &mut Manifest,
        rows: Vec<Row>,
        covered_seq: u64,
        max_rows: usize,
    ) -> Result<(), FlushError> {
        self.wal.rotate().map_err(EngineError::from)?;
        let dim = self.def.dimension;
        let mut chunks: Vec<Vec<Row>> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            chunks.push(rows.by_ref().take(max_rows).collect());
        }
        // Encode and upload every segment in parallel (the uploader bounds how many are in
        // flight), keeping their order for the manifest.
        let uploads = chunks.into_iter().map(|chunk| async move {
            let tombstones = chunk
                .iter()
                .filter(|r| matches!(r, Row::Tombstone(_)))
                .count() as u64;
            let row_count = chunk.len() as u64;
            let data = tokio::task::spawn_blocking(move || segment::encode(dim, &chunk))
                .await
                .expect("segment encode task panicked")
                .map_err(EngineError::from)?;
            let segment_id = uuid::Uuid::now_v7().simple().to_string();
            let path = segment_path(&self.def.id, &segment_id);
            let bytes = data.len() as u64;
            self.uploader.put_object(&path, data).await?;
            Ok::<_, FlushError>(SegmentRef {
                id: segment_id,
                path: path.to_string(),
                rows: row_count,
                tombstones,
                bytes,
            })
        });
        let segments = futures::future::try_join_all(uploads).await?;
        let mut next = manifest.clone();
        next.version += 1;
        next.wal_seq = covered_seq;
        next.segments.extend(segments);
        let body =
            bytes::Bytes::from(serde_json::to_vec_pretty(&next).expect("manifest serializes"));
        self.uploader
            .put_create_only(&manifest_path(&self.def.id, next.version), body)
            .await?;
        *manifest = next;
        self.manifest_version
            .store(manifest.version, Ordering::Relaxed);
        self.segment_count
            .store(manifest.segments.len() as u64, Ordering::Relaxed);
        self.wal
            .truncate_through(covered_seq)
            .map_err(EngineError::from)?;
        Ok(())
    }
}
