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
//! [`Collection::flush`] writes every slot pushed since the last flush (superseded ones too, so
//! that the segments' `Put` rows are exactly the slots, in order), then a tombstone for each id
//! deleted and not re-inserted, as Parquet segments; then a new manifest version that lists them
//! and the WAL sequence number they cover; then deletes the WAL files that manifest covers. A
//! crash at any point leaves either the old manifest plus a longer WAL, or the new manifest plus
//! a WAL whose covered records are skipped on replay. Uploaded segments are also kept in the
//! collection's local directory (the warm copy).
//!
//! # Tiers
//! - **hot**: the state is in RAM (`state` is `Some`), plus local copies of its objects;
//! - **warm**: local copies only; **cold**: the object store only.
//!
//! Loading replays the segments' rows in order through the same `upsert`/`delete` as the write
//! path, so the loaded slots are exactly the hot slots, and the saved HNSW graph (written at
//! demotion, see [`Manifest::graph`]) fits them: a loaded collection answers every query as it
//! did when hot. Requests hold `tier_lock` shared; moves take it exclusively, so a move never
//! runs under a request. Reads of a warm or cold collection load a temporary state (fetching
//! the objects to local disk first if cold) unless the access-rate rule promotes it; writes
//! promote it to hot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use akidb_core::{Neighbor, SearchOptions, VectorIndex};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use parking_lot::{Mutex, RwLock};

use crate::catalog::Summary;
use crate::doc::{Document, Metadata, Operation, heap_block, metadata_heap_bytes};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::manifest::{
    CollectionDef, GraphRef, Manifest, ObjectRef, SegmentRef, graph_path, manifest_path,
    segment_path,
};
use crate::segment::{self, Row};
use crate::tier::policy::Usage;
use crate::tier::{MoveStats, Tier};
use crate::upload::Uploader;
use crate::upload::retry::RetryError;
use crate::wal::{FilePool, Record, Wal, WalStats};

/// How many objects are fetched at once when a collection is loaded. High enough that a
/// collection's segments come in one parallel round.
const FETCH_CONCURRENCY: usize = 32;
/// Access times kept per collection (for the access-rate rule and the tier API).
const ACCESS_HISTORY: usize = 256;

/// In-memory state. Slot `i` is the `i`-th vector pushed into the index.
pub(crate) struct State {
    index: VectorIndex,
    /// Id of each slot.
    ids: Vec<Arc<str>>,
    /// Heap bytes of the id strings (each shared by `ids` and `by_id`), kept as slots are
    /// added, so that `info()` (every status read and metrics scrape) does not walk every id.
    id_bytes: usize,
    /// Metadata of each slot (dropped when the slot is deleted).
    metadata: Vec<Option<Box<Metadata>>>,
    /// Heap bytes of the live metadata objects (see [`metadata_heap_bytes`]).
    metadata_bytes: usize,
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
    fn new(def: &CollectionDef, applied_seq: u64) -> State {
        State {
            index: VectorIndex::new(def.dimension, def.metric, def.index),
            ids: Vec::new(),
            id_bytes: 0,
            metadata: Vec::new(),
            metadata_bytes: 0,
            by_id: HashMap::new(),
            applied_seq,
            flushed_slots: 0,
            unflushed_deletes: HashSet::new(),
            dirty_since: None,
            last_write: Instant::now(),
        }
    }

    fn upsert(&mut self, doc: Document) {
        let slot = self.index.push(&doc.vector);
        let id: Arc<str> = Arc::from(doc.id);
        if let Some(old) = self.by_id.insert(id.clone(), slot) {
            self.index.delete(old);
            self.drop_metadata(old);
        }
        // An Arc<str> allocation: two counters, then the bytes.
        self.id_bytes += heap_block(2 * std::mem::size_of::<usize>() + id.len());
        self.ids.push(id);
        let metadata = doc.metadata.map(Box::new);
        self.metadata_bytes += metadata.as_deref().map_or(0, |m| {
            heap_block(std::mem::size_of::<Metadata>()) + metadata_heap_bytes(m)
        });
        self.metadata.push(metadata);
    }

    fn drop_metadata(&mut self, slot: u32) {
        if let Some(m) = self.metadata[slot as usize].take() {
            self.metadata_bytes -=
                heap_block(std::mem::size_of::<Metadata>()) + metadata_heap_bytes(&m);
        }
    }

    fn delete(&mut self, id: &str) {
        if let Some((id, slot)) = self.by_id.remove_entry(id) {
            self.index.delete(slot);
            self.drop_metadata(slot);
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

    /// Everything the state holds: vectors, graph and tombstones, ids, metadata, and the
    /// tables over them (capacities, not lengths: that is what the allocator handed out).
    fn bytes_in_ram(&self) -> usize {
        use std::mem::size_of;
        /// A hashbrown table: its buckets and one control byte per bucket.
        fn table<T>(capacity: usize) -> usize {
            if capacity == 0 {
                0
            } else {
                let buckets = (capacity * 8 / 7).next_power_of_two();
                heap_block(buckets * (size_of::<T>() + 1) + 16)
            }
        }
        size_of::<State>()
            + self.index.memory_bytes()
            + self.ids.capacity() * size_of::<Arc<str>>()
            + self.id_bytes
            + self.metadata.capacity() * size_of::<Option<Box<Metadata>>>()
            + self.metadata_bytes
            + table::<(Arc<str>, u32)>(self.by_id.capacity())
            + table::<Arc<str>>(self.unflushed_deletes.capacity())
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
    pub tier: TierInfo,
}

/// Where a collection's data is, and how it has been used.
#[derive(Debug, Clone)]
pub struct TierInfo {
    pub tier: Tier,
    pub pinned: bool,
    pub bytes_in_ram: u64,
    /// Local copies of the collection's objects plus its WAL.
    pub bytes_on_disk: u64,
    /// Objects named by the current manifest.
    pub bytes_in_object_store: u64,
    /// Unix ms of the last read or write (creation or start counts).
    pub last_access_ms: u64,
    /// Accesses within the access-rate window.
    pub recent_accesses: usize,
}

struct Access {
    last_ms: u64,
    times: VecDeque<u64>,
}

/// Access times kept by a closed collection (the newest few, enough for the access-rate rule
/// at its usual settings), so that closing and reopening does not forget recent use.
pub(crate) const CLOSED_ACCESSES_KEPT: usize = 4;

/// What a closed collection remembers of its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AccessSnapshot {
    pub last_ms: u64,
    /// Newest last; 0 = none.
    pub recent: [u64; CLOSED_ACCESSES_KEPT],
}

impl AccessSnapshot {
    pub fn now() -> AccessSnapshot {
        AccessSnapshot {
            last_ms: now_ms(),
            recent: [0; CLOSED_ACCESSES_KEPT],
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What every collection of an engine shares: the object-store gateway, the WAL counters and
/// file pool, the tier-move counters, and where collections live on local disk.
pub(crate) struct Env {
    pub uploader: Arc<Uploader>,
    pub wal_stats: Arc<WalStats>,
    pub files: Arc<FilePool>,
    pub moves: Arc<MoveStats>,
    /// `<data dir>/collections`: each collection's directory is named by its id.
    pub collections_dir: PathBuf,
    /// Bumped by every manifest commit, create and delete: the catalog checkpoint is written
    /// again only when it moved.
    pub catalog_changes: AtomicU64,
}

pub struct Collection {
    def: Arc<CollectionDef>,
    dir: PathBuf,
    wal: Wal,
    env: Arc<Env>,
    /// Set by the delete fence: nothing may write to (or serve from) this collection again.
    deleted: AtomicBool,
    /// Durable operations waiting to be applied, in log order.
    queue: Mutex<VecDeque<(u64, Operation)>>,
    /// `Some` exactly when the collection is hot.
    state: RwLock<Option<State>>,
    /// The newest manifest; holding the lock serialises flushes and graph saves.
    manifest: tokio::sync::Mutex<Manifest>,
    manifest_version: AtomicU64,
    segment_count: AtomicU64,
    documents: AtomicU64,
    object_bytes: AtomicU64,
    /// Bytes of the local copies of the manifest's objects.
    cache_bytes: AtomicU64,
    /// Requests hold it shared, tier moves exclusively.
    tier_lock: Arc<tokio::sync::RwLock<()>>,
    tier: AtomicU8,
    pinned: AtomicBool,
    access: Mutex<Access>,
    /// WAL records past the manifest, read at open and replayed by the first load.
    pending_wal: Mutex<Vec<Record>>,
    /// One temporary load at a time, so concurrent reads of a warm collection never hold
    /// several copies of it in RAM.
    transient: tokio::sync::Mutex<()>,
}

fn tier_code(t: Tier) -> u8 {
    match t {
        Tier::Hot => 0,
        Tier::Warm => 1,
        Tier::Cold => 2,
    }
}

impl Collection {
    /// Opens a collection without loading its data: reads its local WAL (records past the
    /// manifest wait for the first load) and checks which of its objects have local copies.
    /// It starts warm when every object is local, cold otherwise. `access` carries the use of a
    /// collection that was closed (default: accessed now).
    pub(crate) async fn open(
        manifest: Manifest,
        env: Arc<Env>,
        access: Option<AccessSnapshot>,
    ) -> Result<Arc<Collection>, EngineError> {
        let access = access.unwrap_or_else(AccessSnapshot::now);
        let dir = env.collections_dir.join(&manifest.collection.id);
        let wal_dir = dir.join("wal");
        let (stats, files) = (env.wal_stats.clone(), env.files.clone());
        let covered = manifest.wal_seq;
        let (wal, records) =
            tokio::task::spawn_blocking(move || Wal::open(&wal_dir, covered, stats, files))
                .await
                .expect("wal open task panicked")?;
        let pending: Vec<Record> = records
            .into_iter()
            .filter(|r| r.seq > manifest.wal_seq)
            .collect();
        let c = Collection {
            def: Arc::new(manifest.collection.clone()),
            dir,
            wal,
            env,
            deleted: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            state: RwLock::new(None),
            manifest_version: AtomicU64::new(0),
            segment_count: AtomicU64::new(0),
            documents: AtomicU64::new(0),
            object_bytes: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            tier_lock: Arc::new(tokio::sync::RwLock::new(())),
            tier: AtomicU8::new(tier_code(Tier::Cold)),
            pinned: AtomicBool::new(manifest.pinned),
            access: Mutex::new(Access {
                last_ms: access.last_ms,
                times: access.recent.iter().copied().filter(|&t| t > 0).collect(),
            }),
            pending_wal: Mutex::new(pending),
            transient: tokio::sync::Mutex::new(()),
            manifest: tokio::sync::Mutex::new(manifest.clone()),
        };
        c.publish(&manifest);
        let all_local = c.refresh_cache_bytes(&manifest);
        c.set_tier(if all_local { Tier::Warm } else { Tier::Cold });
        Ok(Arc::new(c))
    }

    pub fn def(&self) -> &CollectionDef {
        &self.def
    }

    pub(crate) fn def_arc(&self) -> &Arc<CollectionDef> {
        &self.def
    }

    fn uploader(&self) -> &Uploader {
        &self.env.uploader
    }

    /// `CollectionNotFound` once the collection is deleted (requests that held it across the
    /// delete must not write to or serve from it).
    fn check_live(&self) -> Result<(), EngineError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(EngineError::CollectionNotFound(self.def.name.clone()));
        }
        Ok(())
    }

    /// Waits for every request, tier move, flush and graph save in flight, then marks the
    /// collection deleted and drops its data from RAM and its WAL file: nothing can write to it,
    /// commit a manifest for it or serve from it again. Called by the engine's delete before
    /// it purges the collection's objects and files.
    pub async fn fence_for_delete(&self) {
        let _exclusive = self.tier_lock.write().await;
        let _manifest = self.manifest.lock().await;
        self.deleted.store(true, Ordering::Release);
        drop(self.state.write().take());
        self.queue.lock().clear();
        self.pending_wal.lock().clear();
        if let Err(e) = self.wal.close_file() {
            tracing::warn!(collection = %self.def.name, error = %e, "closing the wal of a deleted collection");
        }
    }

    /// Whether the catalog may close this collection (keep only its summary): cold, nothing in
    /// its WAL or waiting to be replayed, not deleted. The catalog also checks that nobody
    /// holds it.
    pub(crate) fn closable(&self, _now_ms: u64) -> bool {
        self.tier() == Tier::Cold
            && !self.deleted.load(Ordering::Acquire)
            && !self.has_pending_wal()
            && !self.wal.is_poisoned()
            && self.wal.is_empty()
            && self.state.read().is_none()
    }

    /// What the catalog keeps of a closed collection.
    pub(crate) fn summary(&self) -> Summary {
        Summary {
            manifest_version: self.manifest_version.load(Ordering::Relaxed),
            documents: self.documents.load(Ordering::Relaxed),
            segments: self.segment_count.load(Ordering::Relaxed) as u32,
            object_bytes: self.object_bytes.load(Ordering::Relaxed),
            pinned: self.pinned(),
            access: {
                let a = self.access.lock();
                let mut recent = [0; CLOSED_ACCESSES_KEPT];
                let newest = a.times.iter().rev().take(CLOSED_ACCESSES_KEPT);
                for (slot, &t) in recent.iter_mut().rev().zip(newest) {
                    *slot = t;
                }
                AccessSnapshot {
                    last_ms: a.last_ms,
                    recent,
                }
            },
            verified: true,
        }
    }

    /// Removes the (empty) local directory of a cold collection being closed.
    pub(crate) fn remove_local_dir(&self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the local directory of a cold collection")
            }
        }
    }

    /// Whether an fsync failure poisoned the WAL (see [`Collection::recover_wal`]).
    pub fn wal_poisoned(&self) -> bool {
        self.wal.is_poisoned()
    }

    /// After an fsync failure: re-reads the WAL from disk as a restart would, drops the state
    /// built from it, and leaves the collection warm or cold with the records past its manifest
    /// waiting to be replayed by the next load. Writes work again once it is loaded.
    pub async fn recover_wal(&self) -> Result<(), EngineError> {
        let _exclusive = self.tier_lock.write().await;
        self.check_live()?;
        if !self.wal.is_poisoned() {
            return Ok(());
        }
        let manifest = self.manifest.lock().await;
        let records = self.wal.recover(manifest.wal_seq)?;
        self.queue.lock().clear();
        drop(self.state.write().take());
        *self.pending_wal.lock() = records
            .into_iter()
            .filter(|r| r.seq > manifest.wal_seq)
            .collect();
        let all_local = self.refresh_cache_bytes(&manifest);
        self.set_tier(if all_local { Tier::Warm } else { Tier::Cold });
        tracing::warn!(collection = %self.def.name, "wal recovered after an fsync failure; the collection reloads from disk");
        Ok(())
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    pub fn tier(&self) -> Tier {
        match self.tier.load(Ordering::Acquire) {
            0 => Tier::Hot,
            1 => Tier::Warm,
            _ => Tier::Cold,
        }
    }

    fn set_tier(&self, t: Tier) {
        self.tier.store(tier_code(t), Ordering::Release);
    }

    pub fn pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed)
    }

    /// Pins or unpins, durably: a new manifest version records it, so it survives restarts
    /// and moves to another machine with the bucket.
    pub async fn set_pinned(&self, pinned: bool) -> Result<(), EngineError> {
        let mut manifest = self.manifest.lock().await;
        self.check_live()?;
        if manifest.pinned != pinned {
            let mut next = manifest.clone();
            next.version += 1;
            next.pinned = pinned;
            self.commit_manifest(&next)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
            *manifest = next;
            self.publish(&manifest);
        }
        self.pinned.store(pinned, Ordering::Relaxed);
        Ok(())
    }

    /// Stores a new manifest version (create-only: a version is never overwritten).
    /// Callers hold the manifest lock and have checked that the collection is not deleted.
    async fn commit_manifest(&self, next: &Manifest) -> Result<(), RetryError> {
        self.uploader()
            .put_create_only(&manifest_path(&self.def.id, next.version), next.encode())
            .await?;
        self.env.catalog_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether WAL records wait for a load (the collection must become hot to apply them).
    pub fn has_pending_wal(&self) -> bool {
        !self.pending_wal.lock().is_empty()
    }

    /// Records an access; returns how many accesses fall within `window_ms` (this one
    /// included; at most the 256 kept).
    pub fn touch(&self, now: u64, window_ms: u64) -> usize {
        let mut a = self.access.lock();
        a.last_ms = a.last_ms.max(now);
        a.times.push_back(now);
        while a.times.len() > ACCESS_HISTORY
            || a.times
                .front()
                .is_some_and(|&t| now.saturating_sub(t) >= window_ms)
        {
            a.times.pop_front();
        }
        a.times.len()
    }

    /// Counters readable without the manifest lock.
    fn publish(&self, m: &Manifest) {
        self.manifest_version.store(m.version, Ordering::Relaxed);
        self.segment_count
            .store(m.segments.len() as u64, Ordering::Relaxed);
        self.documents.store(m.documents, Ordering::Relaxed);
        self.object_bytes.store(m.object_bytes(), Ordering::Relaxed);
    }

    /// Where the local copy of an object lives.
    fn local_path(&self, object: &str) -> PathBuf {
        let name = object.rsplit('/').next().unwrap_or(object);
        self.dir.join("segments").join(name)
    }

    /// Recounts the local copies of `m`'s objects (by size; their checksums are verified when
    /// they are read); returns whether all of them are present.
    fn refresh_cache_bytes(&self, m: &Manifest) -> bool {
        let mut all = true;
        let mut bytes = 0;
        for object in m.objects() {
            match std::fs::metadata(self.local_path(object.path)) {
                Ok(meta) if meta.len() == object.bytes => bytes += object.bytes,
                _ => all = false,
            }
        }
        self.cache_bytes.store(bytes, Ordering::Relaxed);
        all
    }

    /// Writes a local copy (a cache: no fsync; a damaged copy is fetched again).
    async fn write_local(&self, object: &str, data: &Bytes) {
        let path = self.local_path(object);
        let tmp = path.with_extension("tmp");
        let result = async {
            tokio::fs::create_dir_all(path.parent().expect("has a parent")).await?;
            tokio::fs::write(&tmp, data).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = result {
            // A full disk, typically: the copy is a cache, the object store has the data.
            let _ = tokio::fs::remove_file(&tmp).await;
            tracing::warn!(path = %path.display(), error = %e, "could not keep a local copy");
        }
    }

    /// An object's bytes, verified against the manifest (size and checksum): the local copy
    /// when it is intact, else fetched (once more if the fetched bytes are damaged) and kept
    /// locally. Damage that a refetch does not cure is `Corrupted`, never served.
    async fn fetch(&self, object: ObjectRef<'_>) -> Result<Bytes, EngineError> {
        let local = self.local_path(object.path);
        if let Ok(data) = tokio::fs::read(&local).await {
            match object.verify(&data) {
                Ok(()) => return Ok(Bytes::from(data)),
                Err(why) => {
                    tracing::warn!(collection = %self.def.name, %why, "local copy damaged; fetching the object again");
                    let _ = tokio::fs::remove_file(&local).await;
                }
            }
        }
        // Retried like uploads (a transient failure must not fail a cold read).
        let path = ObjectPath::from(object.path);
        let store = self.uploader().store();
        let mut last_damage = String::new();
        for _ in 0..2 {
            let data = self
                .uploader()
                .read(|| async { store.get(&path).await?.bytes().await })
                .await
                .map_err(|e| match e {
                    RetryError::Permanent {
                        source: object_store::Error::NotFound { .. },
                        ..
                    } => EngineError::Corrupted(format!(
                        "{}, named by the manifest, is missing from the object store",
                        object.path
                    )),
                    e => EngineError::Unavailable(e.to_string()),
                })?;
            match object.verify(&data) {
                Ok(()) => {
                    self.write_local(object.path, &data).await;
                    return Ok(data);
                }
                Err(why) => {
                    tracing::warn!(collection = %self.def.name, %why, "object store returned damaged bytes");
                    last_damage = why;
                }
            }
        }
        Err(EngineError::Corrupted(format!(
            "damaged in the object store: {last_damage}"
        )))
    }

    /// Every object `m` names, in order, fetched in one parallel round.
    async fn fetch_all(&self, m: &Manifest) -> Result<Vec<Bytes>, EngineError> {
        // Owned, so that the stream's closure borrows nothing with a lifetime of its own (the
        // future must be `Send` for any lifetime when spawned).
        let objects: Vec<(String, u64, Option<u32>)> = m
            .objects()
            .map(|o| (o.path.to_string(), o.bytes, o.crc32c))
            .collect();
        futures::stream::iter(objects)
            .map(|(path, bytes, crc32c)| async move {
                self.fetch(ObjectRef {
                    path: &path,
                    bytes,
                    crc32c,
                })
                .await
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Builds the in-memory state from `m`'s objects (one parallel round of fetches) and then
    /// `replay`.
    async fn load_state(
        &self,
        m: &Manifest,
        replay: Arc<Vec<Record>>,
    ) -> Result<State, EngineError> {
        let mut objects: Vec<Bytes> = self.fetch_all(m).await?;
        let graph = m.graph.as_ref().and_then(|_| objects.pop());
        let def = self.def.clone();
        let wal_seq = m.wal_seq;
        tokio::task::spawn_blocking(move || {
            let mut state = State::new(&def, wal_seq);
            for data in objects {
                for row in segment::decode(def.dimension, data)? {
                    match row {
                        Row::Put(doc) => state.upsert(doc),
                        Row::Tombstone(id) => state.delete(&id),
                    }
                }
            }
            state.unflushed_deletes.clear();
            state.flushed_slots = state.index.len();
            if let Some(graph) = graph
                && let Err(e) = state.index.load_graph(&graph)
            {
                tracing::warn!(collection = %def.name, error = %e, "saved graph unusable; rebuilding it");
            }
            let mut replayed = 0;
            for record in replay.iter() {
                let op = Operation::decode(&record.payload).map_err(|e| {
                    EngineError::Corrupted(format!(
                        "wal record {} of {:?}: {e}",
                        record.seq, def.name
                    ))
                })?;
                state.apply(record.seq, op);
                replayed += 1;
            }
            if replayed > 0 {
                tracing::info!(collection = %def.name, replayed, "replayed wal records");
            }
            Ok(state)
        })
        .await
        .expect("load task panicked")
    }

    /// Moves the collection to `target`: loads it (hot), frees its RAM after saving it (warm),
    /// or also removes its local copies (cold). Returns the tier it came from.
    pub async fn move_to(&self, target: Tier, flush_rows: usize) -> Result<Tier, EngineError> {
        let _moving = self.tier_lock.write().await;
        self.check_live()?;
        let from = self.tier();
        if from == target {
            return Ok(from);
        }
        let started = std::time::Instant::now();
        if from == Tier::Hot {
            self.checkpoint(flush_rows).await?;
            let state = self.state.write().take();
            drop(state);
            release_free_memory();
            // Everything is flushed: the WAL file needs no descriptor until the next write.
            self.wal.close_file()?;
            self.set_tier(Tier::Warm);
        }
        let manifest = self.manifest.lock().await.clone();
        match target {
            Tier::Hot => {
                // The records stay pending until the state that holds them is installed, so
                // that `has_pending_wal` never reports false while they are not applied.
                let replay = Arc::new(self.pending_wal.lock().clone());
                match self.load_state(&manifest, replay).await {
                    Ok(state) => {
                        *self.state.write() = Some(state);
                        self.pending_wal.lock().clear();
                    }
                    Err(e) => {
                        self.refresh_cache_bytes(&manifest);
                        return Err(e);
                    }
                }
            }
            Tier::Warm => {
                self.fetch_all(&manifest).await?;
            }
            Tier::Cold => match tokio::fs::remove_dir_all(self.dir.join("segments")).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            },
        }
        self.refresh_cache_bytes(&manifest);
        self.set_tier(target);
        let secs = started.elapsed().as_secs_f64();
        self.env.moves.record(from, target, secs);
        tracing::info!(collection = %self.def.name, %from, to = %target, secs, "tier move");
        Ok(from)
    }

    /// Runs `f` on the state: the hot one, or, for a warm or cold collection, one loaded for
    /// this call (a cold one is fetched to local disk first and is warm afterwards). With
    /// `promote`, or WAL records waiting, the collection is made hot first.
    pub(crate) async fn read<R, F>(
        self: &Arc<Self>,
        promote: bool,
        flush_rows: usize,
        f: F,
    ) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&Collection, &State) -> R + Send + 'static,
    {
        loop {
            if let Some(guard) = self.hot().await? {
                let c = self.clone();
                return tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    let state = c.state.read();
                    state.as_ref().map(|s| f(&c, s)).ok_or_else(not_loaded)
                })
                .await
                .expect("read task panicked");
            }
            if promote || self.has_pending_wal() {
                self.move_to(Tier::Hot, flush_rows).await?;
                continue;
            }
            if self.tier() == Tier::Cold {
                self.move_to(Tier::Warm, flush_rows).await?;
            }
            let one_at_a_time = self.transient.lock().await;
            let guard = self.tier_lock.clone().read_owned().await;
            self.check_live()?;
            if self.tier() != Tier::Warm {
                continue; // moved meanwhile
            }
            let manifest = self.manifest.lock().await.clone();
            let state = self.load_state(&manifest, Arc::default()).await?;
            let c = self.clone();
            let out = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                f(&c, &state)
            })
            .await
            .expect("read task panicked");
            drop(one_at_a_time);
            return Ok(out);
        }
    }

    /// Runs `f` (which writes through [`Collection::apply_durably`]) with the collection hot,
    /// loading it first if needed.
    pub(crate) async fn write<R, F>(
        self: &Arc<Self>,
        flush_rows: usize,
        f: F,
    ) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&Collection, TierGuard) -> Result<R, EngineError> + Send + 'static,
    {
        loop {
            if let Some(guard) = self.hot().await? {
                let c = self.clone();
                return tokio::task::spawn_blocking(move || f(&c, guard))
                    .await
                    .expect("write task panicked");
            }
            self.move_to(Tier::Hot, flush_rows).await?;
        }
    }

    /// The tier lock held shared, if the collection is hot.
    async fn hot(&self) -> Result<Option<TierGuard>, EngineError> {
        let guard = self.tier_lock.clone().read_owned().await;
        self.check_live()?;
        Ok((self.tier() == Tier::Hot).then_some(guard))
    }

    /// Logs `op`, waits until it is durable, applies it. Blocking, and only while the caller
    /// holds the tier lock with the collection hot (see [`Collection::write`]).
    pub fn apply_durably(&self, op: Operation) -> Result<(), EngineError> {
        if self.state.read().is_none() {
            return Err(not_loaded());
        }
        let body = op.encode();
        let mut op = Some(op);
        let seq = self
            .wal
            .append(&body, |seq| {
                self.queue
                    .lock()
                    .push_back((seq, op.take().expect("called once")));
            })
            .map_err(|e| {
                if e.is_disk_full() {
                    EngineError::InsufficientStorage(
                        "the disk is full: no space left for the write-ahead log".into(),
                    )
                } else {
                    e.into()
                }
            })?;
        drop(body);
        self.wal.sync(seq).map_err(|e| {
            // The record may or may not be on disk: the log is re-read from disk (see
            // `recover_wal`) and the write is reported as not known to be applied.
            EngineError::CollectionUnavailable {
                name: self.def.name.clone(),
                reason: format!(
                    "the write-ahead log could not be made durable ({e}); the collection reloads it, and this write may or may not have been applied"
                ),
            }
        })?;
        let mut guard = self.state.write();
        let state = guard.as_mut().ok_or_else(not_loaded)?;
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

    /// Whether `id` is live (call inside [`Collection::write`], which holds the state).
    pub fn contains(&self, id: &str) -> bool {
        self.state
            .read()
            .as_ref()
            .is_some_and(|s| s.by_id.contains_key(id))
    }

    pub(crate) fn get_in(&self, state: &State, id: &str) -> Option<Document> {
        let slot = *state.by_id.get(id)?;
        Some(Document {
            id: id.to_string(),
            vector: state.index.vector(slot).to_vec(),
            metadata: state.metadata[slot as usize].as_deref().cloned(),
        })
    }

    pub(crate) fn search_in(&self, state: &State, req: &SearchRequest) -> Vec<Hit> {
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
            match state.as_ref() {
                Some(s) if s.index.indexed_len() < s.index.len() => {}
                _ => return 0,
            }
        }
        self.state
            .write()
            .as_mut()
            .map_or(0, |s| s.index.index_pending(max))
    }

    pub fn tier_info(&self, window_ms: u64) -> TierInfo {
        let bytes_in_ram = self.state.read().as_ref().map_or(0, State::bytes_in_ram) as u64;
        let now = now_ms();
        let a = self.access.lock();
        TierInfo {
            tier: self.tier(),
            pinned: self.pinned(),
            bytes_in_ram,
            bytes_on_disk: self.cache_bytes.load(Ordering::Relaxed) + self.wal.disk_bytes(),
            bytes_in_object_store: self.object_bytes.load(Ordering::Relaxed),
            last_access_ms: a.last_ms,
            recent_accesses: a
                .times
                .iter()
                .filter(|&&t| now.saturating_sub(t) < window_ms)
                .count(),
        }
    }

    /// The collection as the tiering policy sees it.
    pub fn usage(&self) -> Usage {
        let t = self.tier_info(u64::MAX);
        Usage {
            name: self.def.name.clone(),
            tier: t.tier,
            pinned: t.pinned,
            bytes_in_ram: t.bytes_in_ram,
            bytes_on_disk: t.bytes_on_disk,
            last_access_ms: t.last_access_ms,
            access_times_ms: self.access.lock().times.iter().copied().collect(),
        }
    }

    pub fn info(&self, window_ms: u64) -> CollectionInfo {
        let tier = self.tier_info(window_ms);
        let state = self.state.read();
        let (count, index_pending, unflushed) = match state.as_ref() {
            Some(s) => (
                s.by_id.len(),
                s.index.len() - s.index.indexed_len(),
                s.unflushed(),
            ),
            None => (self.documents.load(Ordering::Relaxed) as usize, 0, 0),
        };
        CollectionInfo {
            def: (*self.def).clone(),
            count,
            index_pending,
            segments: self.segment_count.load(Ordering::Relaxed) as usize,
            manifest_version: self.manifest_version.load(Ordering::Relaxed),
            unflushed,
            bytes_in_ram: tier.bytes_in_ram as usize,
            wal_bytes: self.wal.disk_bytes(),
            tier,
        }
    }

    /// Whether a flush is due: `max_docs` unflushed changes, or changes older than `max_age`,
    /// or changes and no write for `idle`.
    pub fn flush_due(&self, max_docs: usize, idle: Duration, max_age: Duration) -> bool {
        let state = self.state.read();
        let Some(state) = state.as_ref() else {
            return false;
        };
        let unflushed = state.unflushed();
        unflushed > 0
            && (unflushed >= max_docs
                || state.last_write.elapsed() >= idle
                || state.dirty_since.is_some_and(|t| t.elapsed() >= max_age))
    }

    /// Flushes, then saves the HNSW graph if it covers more slots than the saved one: after
    /// this the object store alone restores the collection exactly as it is.
    pub async fn checkpoint(&self, max_rows: usize) -> Result<(), FlushError> {
        self.flush(max_rows).await?;
        let mut manifest = self.manifest.lock().await;
        if self.deleted.load(Ordering::Acquire) {
            return Ok(());
        }
        let encoded = {
            let state = self.state.read();
            let Some(state) = state.as_ref() else {
                return Ok(());
            };
            let nodes = state.index.indexed_len();
            let saved = manifest.graph.as_ref().map_or(0, |g| g.nodes as usize);
            // The graph must not name slots the manifest does not hold (writes may have
            // arrived since the flush, when this is not called under the tier lock).
            if nodes <= saved || nodes > state.flushed_slots || state.unflushed() > 0 {
                return Ok(());
            }
            (nodes, Bytes::from(state.index.encode_graph()))
        };
        let (nodes, data) = encoded;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let path = graph_path(&self.def.id, &id);
        self.uploader().put_object(&path, data.clone()).await?;
        self.write_local(path.as_ref(), &data).await;
        let mut next = manifest.clone();
        next.version += 1;
        next.graph = Some(GraphRef {
            id,
            path: path.to_string(),
            nodes: nodes as u64,
            bytes: data.len() as u64,
            crc32c: Some(crc32c::crc32c(&data)),
        });
        self.commit_manifest(&next).await?;
        let old = std::mem::replace(&mut *manifest, next);
        self.publish(&manifest);
        if let Some(old) = old.graph {
            // Best effort: the orphan sweep removes it if this fails.
            let _ = self
                .uploader()
                .delete(&ObjectPath::from(old.path.as_str()))
                .await;
            let _ = tokio::fs::remove_file(self.local_path(&old.path)).await;
        }
        self.refresh_cache_bytes(&manifest);
        tracing::debug!(collection = %self.def.name, nodes, "saved graph");
        Ok(())
    }

    /// Deletes objects under this collection's `segments/` that its manifest does not name
    /// and that are older than `grace` (left by a crash between an upload and its manifest,
    /// or by a failed delete). Returns how many were deleted.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<usize, EngineError> {
        let manifest = self.manifest.lock().await.clone();
        let named: HashSet<&str> = manifest.objects().map(|o| o.path).collect();
        let store = self.uploader().store().clone();
        let prefix = ObjectPath::from(format!("collections/{}/segments", self.def.id));
        let cutoff = chrono_cutoff(grace);
        let listed: Vec<object_store::ObjectMeta> = self
            .uploader()
            .read(|| store.list(Some(&prefix)).try_collect())
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let orphans: Vec<ObjectPath> = listed
            .into_iter()
            .filter(|m| {
                !named.contains(m.location.as_ref()) && m.last_modified.timestamp_millis() <= cutoff
            })
            .map(|m| m.location)
            .collect();
        for path in &orphans {
            self.uploader()
                .delete(path)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
            tracing::info!(collection = %self.def.name, object = %path, "deleted orphan object");
        }
        Ok(orphans.len())
    }

    /// Seals everything applied so far into segments of at most `max_rows` rows and a new
    /// manifest. Returns false when there was nothing to flush (or the collection is not hot).
    pub async fn flush(&self, max_rows: usize) -> Result<bool, FlushError> {
        let mut manifest = self.manifest.lock().await;
        if self.deleted.load(Ordering::Acquire) {
            return Ok(false);
        }
        // Take the unflushed part under the lock; put it back if anything below fails.
        let (rows, covered_seq, documents, from_slot, to_slot, deletes) = {
            let mut guard = self.state.write();
            let Some(state) = guard.as_mut() else {
                return Ok(false);
            };
            if state.unflushed() == 0 {
                return Ok(false);
            }
            let from = state.flushed_slots;
            let to = state.index.len();
            let deletes = std::mem::take(&mut state.unflushed_deletes);
            // Every slot, superseded ones included, so that a load rebuilds the same slots.
            let mut rows: Vec<Row> = (from..to)
                .map(|slot| {
                    Row::Put(Document {
                        id: state.ids[slot].to_string(),
                        vector: state.index.vector(slot as u32).to_vec(),
                        metadata: state.metadata[slot].as_deref().cloned(),
                    })
                })
                .collect();
            rows.extend(
                deletes
                    .iter()
                    .filter(|id| !state.by_id.contains_key(&***id))
                    .map(|id| Row::Tombstone(id.to_string())),
            );
            state.flushed_slots = to;
            state.dirty_since = None;
            let documents = state.by_id.len() as u64;
            (rows, state.applied_seq, documents, from, to, deletes)
        };
        let result = self
            .write_segments(&mut manifest, rows, covered_seq, documents, max_rows.max(1))
            .await;
        if let Err(e) = result {
            let mut guard = self.state.write();
            if let Some(state) = guard.as_mut() {
                state.flushed_slots = state.flushed_slots.min(from_slot);
                state.unflushed_deletes.extend(deletes);
                state.dirty_since.get_or_insert_with(Instant::now);
            }
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
        documents: u64,
        max_rows: usize,
    ) -> Result<(), FlushError> {
        self.wal.rotate().map_err(EngineError::from)?;
        let segments = self.upload_segments(rows, max_rows).await?;
        let mut next = manifest.clone();
        next.version += 1;
        next.wal_seq = covered_seq;
        next.documents = documents;
        next.segments.extend(segments);
        self.commit_manifest(&next).await?;
        *manifest = next;
        self.publish(manifest);
        self.refresh_cache_bytes(manifest);
        self.wal
            .truncate_through(covered_seq)
            .map_err(EngineError::from)?;
        Ok(())
    }

    /// Cuts `rows` into segments of at most `max_rows`, encodes and uploads them in parallel
    /// (the uploader bounds how many are in flight), keeps local copies, and returns their
    /// references in order.
    async fn upload_segments(
        &self,
        rows: Vec<Row>,
        max_rows: usize,
    ) -> Result<Vec<SegmentRef>, FlushError> {
        let dim = self.def.dimension;
        let mut chunks: Vec<Vec<Row>> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            chunks.push(rows.by_ref().take(max_rows).collect());
        }
        let uploads = chunks.into_iter().map(|chunk| async move {
            let tombstones = chunk
                .iter()
                .filter(|r| matches!(r, Row::Tombstone(_)))
                .count() as u64;
            let row_count = chunk.len() as u64;
            let (data, crc) = tokio::task::spawn_blocking(move || {
                segment::encode(dim, &chunk).map(|data| {
                    let crc = crc32c::crc32c(&data);
                    (data, crc)
                })
            })
            .await
            .expect("segment encode task panicked")
            .map_err(EngineError::from)?;
            let segment_id = uuid::Uuid::now_v7().simple().to_string();
            let path = segment_path(&self.def.id, &segment_id);
            let bytes = data.len() as u64;
            self.uploader().put_object(&path, data.clone()).await?;
            self.write_local(path.as_ref(), &data).await;
            Ok::<_, FlushError>(SegmentRef {
                id: segment_id,
                path: path.to_string(),
                rows: row_count,
                tombstones,
                bytes,
                crc32c: Some(crc),
            })
        });
        futures::future::try_join_all(uploads).await
    }

    /// Dead slots (replaced or deleted documents still held) and all slots, when hot.
    pub fn slots(&self) -> Option<(usize, usize)> {
        let state = self.state.read();
        state
            .as_ref()
            .map(|s| (s.index.len() - s.index.live_len(), s.index.len()))
    }

    /// Rewrites a hot collection without its dead slots: segments holding only the live
    /// documents (in slot order), a manifest naming only them, and a fresh in-memory state whose
    /// HNSW graph the indexer rebuilds (searched exactly until then). Runs with the tier lock
    /// held exclusively, like a move, so requests wait for it. Returns the slots removed.
    pub async fn compact(&self, max_rows: usize) -> Result<usize, EngineError> {
        let _exclusive = self.tier_lock.write().await;
        self.check_live()?;
        if self.tier() != Tier::Hot {
            return Ok(0);
        }
        self.flush(max_rows).await?;
        let mut manifest = self.manifest.lock().await;
        let (rows, fresh, removed) = {
            let guard = self.state.read();
            let Some(state) = guard.as_ref() else {
                return Ok(0);
            };
            let removed = state.index.len() - state.index.live_len();
            if removed == 0 {
                return Ok(0);
            }
            let mut fresh = State::new(&self.def, state.applied_seq);
            let mut rows = Vec::with_capacity(state.by_id.len());
            for slot in 0..state.index.len() {
                if state.index.is_deleted(slot as u32) {
                    continue;
                }
                let doc = Document {
                    id: state.ids[slot].to_string(),
                    vector: state.index.vector(slot as u32).to_vec(),
                    metadata: state.metadata[slot].as_deref().cloned(),
                };
                rows.push(Row::Put(doc.clone()));
                fresh.upsert(doc);
            }
            fresh.flushed_slots = fresh.index.len();
            (rows, fresh, removed)
        };
        let segments = self.upload_segments(rows, max_rows).await?;
        let mut next = manifest.clone();
        next.version += 1;
        next.documents = fresh.by_id.len() as u64;
        next.segments = segments;
        next.graph = None;
        if let Err(e) = self.commit_manifest(&next).await {
            // The new segments are orphans now; the sweep removes them.
            return Err(EngineError::Unavailable(e.to_string()));
        }
        let old = std::mem::replace(&mut *manifest, next);
        *self.state.write() = Some(fresh);
        self.publish(&manifest);
        // Best effort: whatever is left is an orphan for the sweep.
        for object in old.objects() {
            let _ = self.uploader().delete(&ObjectPath::from(object.path)).await;
            let _ = tokio::fs::remove_file(self.local_path(object.path)).await;
        }
        self.refresh_cache_bytes(&manifest);
        release_free_memory();
        tracing::info!(collection = %self.def.name, removed, "compacted");
        Ok(removed)
    }
}

/// Keeps the collection in its tier while held (pass it to the end of the blocking work).
pub type TierGuard = tokio::sync::OwnedRwLockReadGuard<()>;

fn not_loaded() -> EngineError {
    EngineError::Unavailable("collection is not loaded (a tier move is in progress)".into())
}

/// Unix ms before which an object counts as old enough to be an orphan.
fn chrono_cutoff(grace: Duration) -> i64 {
    now_ms().saturating_sub(grace.as_millis() as u64) as i64
}

/// Returns freed heap pages to the OS after a demotion, so that RSS shows the RAM it freed
/// (glibc keeps small freed blocks in its arenas otherwise).
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
