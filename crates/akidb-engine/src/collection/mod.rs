//! One collection: its WAL, its in-memory state (vectors, index, ids, metadata) and its
//! durable form (Parquet segments + manifest on the object store).
//!
//! The rooms: [`state`] is the pure in-memory state; [`cache`] the local copies and loading;
//! [`durable`] flush, graph checkpoint and orphan sweep, through one manifest-commit helper;
//! [`compaction`] the rewrite without dead slots; [`gate`] the tier gate (moves, reads, writes);
//! [`access`] the access history; [`info`] what a collection reports. This file holds the
//! collection itself: opening, the delete fence, closing, and its summaries.
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
//! runs under a request (a compaction holds it shared: see [`compaction`]). Reads of a warm or cold collection load a temporary state (fetching
//! the objects to local disk first if cold) unless the access-rate rule promotes it; writes
//! promote it to hot.

mod access;
mod base;
mod cache;
mod compaction;
mod durable;
mod gate;
mod info;
mod merge;
mod partial_read;
mod seal;
mod state;
mod vector_file;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub(crate) use access::{AccessSnapshot, now_ms};
pub use info::{
    CollectionInfo, FlushError, Hit, Listed, ScrollPage, ScrollRequest, SearchRequest, TextQuery,
    TierInfo,
};
pub use partial_read::ReadReport;

use crate::catalog::Summary;
use crate::doc::Operation;
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest};
use crate::tier::policy::Usage;
use crate::tier::{MoveStats, Tier};
use crate::upload::Uploader;
use crate::wal::{FilePool, Record, Wal, WalStats};
use access::Access;
use akidb_core::Quantization;
use state::State;

/// What every collection of an engine shares: the object-store gateway, the WAL counters and
/// file pool, the tier-move counters, and where collections live on local disk.
pub(crate) struct Env {
    pub uploader: Arc<Uploader>,
    pub wal_stats: Arc<WalStats>,
    pub files: Arc<FilePool>,
    pub moves: Arc<MoveStats>,
    /// `<data dir>/collections`: each collection's directory is named by its id.
    pub collections_dir: PathBuf,
    /// Rows per segment written by a flush or compaction (`flush_max_docs`).
    pub segment_rows: usize,
    /// Threads that plan graph insertions (see `VectorIndex::set_build_threads`).
    pub index_threads: usize,
    /// When a collection gets a partitioned base, and how it is built.
    pub partitions: crate::engine::PartitionConfig,
    /// Ranges of partitioned bases fetched by cold queries, under one disk budget.
    pub blocks: Arc<crate::blockcache::BlockCache>,
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
    /// Set while a compaction or a base build runs: background flushes skip the collection
    /// meanwhile (the rewrite holds its manifest) instead of waiting for it.
    rewriting: AtomicBool,
    /// Slots in the manifest's partitioned base, and in all its objects (published with it).
    base_slots: AtomicU64,
    sealed_slots: AtomicU64,
    /// The partitioned base's header and tail, read by the first partial read of a manifest
    /// version and kept for the next ones (see [`partial_read`]).
    view: Mutex<Option<Arc<partial_read::View>>>,
    /// Held while a view is read, so that concurrent first queries read it once.
    view_building: tokio::sync::Mutex<()>,
    /// WAL records past the manifest, read at open and replayed by the first load.
    pending_wal: Mutex<Vec<Record>>,
    /// One temporary load at a time, so concurrent reads of a warm collection never hold
    /// several copies of it in RAM.
    transient: tokio::sync::Mutex<()>,
    /// Held by a promotion to hot for its whole load (see `Collection::promote`).
    promoting: tokio::sync::Mutex<()>,
    /// How the hot index should hold the vectors: the newest manifest's (published with it);
    /// the indexer converts a hot state that differs.
    quantization: AtomicU8,
    /// Unix ms before which the indexer does not try a failed conversion again.
    quantize_retry_at: AtomicU64,
    /// The newest manifest's payload indexes (published with it): every state built or loaded
    /// builds them.
    payload_indexes: Mutex<Vec<crate::payload_index::PayloadIndexDef>>,
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
            access: Mutex::new(Access::from_snapshot(access)),
            rewriting: AtomicBool::new(false),
            base_slots: AtomicU64::new(0),
            sealed_slots: AtomicU64::new(0),
            view: Mutex::new(None),
            view_building: tokio::sync::Mutex::new(()),
            pending_wal: Mutex::new(pending),
            transient: tokio::sync::Mutex::new(()),
            promoting: tokio::sync::Mutex::new(()),
            quantization: AtomicU8::new(0),
            quantize_retry_at: AtomicU64::new(0),
            payload_indexes: Mutex::new(Vec::new()),
            manifest: tokio::sync::Mutex::new(manifest.clone()),
        };
        vector_file::VectorFile::remove_leftovers(&c.dir);
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
            access: self.access.lock().snapshot(),
            verified: true,
        }
    }

    /// Removes the local directory of a cold collection being closed, but for its block cache
    /// (what its cold queries fetched: the next open reads it again).
    pub(crate) fn remove_local_dir(&self) {
        let blocks = self.dir.join(crate::blockcache::DIR);
        let removed = if blocks.is_dir() {
            std::fs::read_dir(&self.dir).and_then(|entries| {
                for e in entries.flatten() {
                    let path = e.path();
                    if path == blocks {
                        continue;
                    }
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
                Ok(())
            })
        } else {
            std::fs::remove_dir_all(&self.dir)
        };
        match removed {
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

    /// Whether WAL records wait for a load (the collection must become hot to apply them).
    pub fn has_pending_wal(&self) -> bool {
        !self.pending_wal.lock().is_empty()
    }

    /// Records an access; returns how many accesses fall within `window_ms` (this one
    /// included; at most the 256 kept).
    pub fn touch(&self, now: u64, window_ms: u64) -> usize {
        self.access.lock().touch(now, window_ms)
    }

    /// Counters readable without the manifest lock.
    fn publish(&self, m: &Manifest) {
        self.manifest_version.store(m.version, Ordering::Relaxed);
        self.segment_count
            .store(m.segments.len() as u64, Ordering::Relaxed);
        self.documents.store(m.documents, Ordering::Relaxed);
        self.object_bytes.store(m.object_bytes(), Ordering::Relaxed);
        let base = m.base.as_ref().map_or(0, |b| b.slots);
        self.base_slots.store(base, Ordering::Relaxed);
        let tail: u64 = m.segments.iter().map(|s| s.rows - s.tombstones).sum();
        self.sealed_slots.store(base + tail, Ordering::Relaxed);
        let q = match m.collection.quantization {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
        };
        self.quantization.store(q, Ordering::Relaxed);
        *self.payload_indexes.lock() = m.collection.payload_indexes.clone();
    }

    /// The definition as the newest manifest has it (quantization and payload indexes change
    /// after creation).
    pub(crate) fn current_def(&self) -> CollectionDef {
        CollectionDef {
            quantization: self.quantization(),
            payload_indexes: self.payload_indexes.lock().clone(),
            ..(*self.def).clone()
        }
    }

    /// How the hot index holds (or is about to hold) the vectors.
    pub fn quantization(&self) -> Quantization {
        match self.quantization.load(Ordering::Relaxed) {
            0 => Quantization::None,
            _ => Quantization::Sq8,
        }
    }
}

/// After a failed conversion (a full disk, say), the indexer tries again this much later, not
/// at every round: each try encodes every vector.
const QUANTIZE_RETRY_MS: u64 = 30_000;

/// Converts a hot state to `want` when due (see `State::quantize`), with the full vectors in a
/// file under `dir`; a failure is logged, the state keeps its vectors as they are, and false
/// is returned.
fn quantize_state(
    state: &mut State,
    want: Quantization,
    def: &CollectionDef,
    dir: &std::path::Path,
) -> bool {
    if !state.quantization_due(want) {
        return true;
    }
    let made = state.quantize(want, || {
        let file = vector_file::VectorFile::create(dir, def.dimension)?;
        Ok(Box::new(file) as Box<dyn akidb_core::index::FullVectors>)
    });
    match made {
        Ok(()) => {
            tracing::info!(collection = %def.name, quantization = want.as_str(), "hot index converted");
            true
        }
        Err(e) => {
            tracing::warn!(collection = %def.name, error = %e, "could not convert the hot index; it keeps its vectors as they are");
            false
        }
    }
}

impl Collection {
    pub fn tier_info(&self, window_ms: u64) -> TierInfo {
        let (bytes_in_ram, vector_file) = match self.state.read().as_ref() {
            Some(s) => (s.bytes_in_ram() as u64, s.vector_file_bytes()),
            None => (0, 0),
        };
        let now = now_ms();
        let a = self.access.lock();
        TierInfo {
            tier: self.tier(),
            pinned: self.pinned(),
            bytes_in_ram,
            bytes_on_disk: self.cache_bytes.load(Ordering::Relaxed)
                + self.wal.disk_bytes()
                + vector_file,
            bytes_in_object_store: self.object_bytes.load(Ordering::Relaxed),
            last_access_ms: a.last_ms(),
            recent_accesses: a.recent(now, window_ms),
            promoting: self.promoting.try_lock().is_err(),
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
            access_times_ms: self.access.lock().times(),
        }
    }

    pub fn info(&self, window_ms: u64) -> CollectionInfo {
        let tier = self.tier_info(window_ms);
        let state = self.state.read();
        let (count, index_pending, unflushed) = match state.as_ref() {
            Some(s) => (s.count(), s.index_pending(), s.unflushed()),
            None => (self.documents.load(Ordering::Relaxed) as usize, 0, 0),
        };
        CollectionInfo {
            def: self.current_def(),
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

    /// Whether `id` is live (call inside [`Collection::write`], which holds the state).
    pub fn contains(&self, id: &str) -> bool {
        self.state.read().as_ref().is_some_and(|s| s.contains(id))
    }

    /// After a failed conversion: the indexer tries again [`QUANTIZE_RETRY_MS`] later.
    fn defer_quantization(&self) {
        self.quantize_retry_at
            .store(now_ms() + QUANTIZE_RETRY_MS, Ordering::Relaxed);
    }

    /// Whether the indexer should convert the hot state now (not until a retry time after a
    /// failure).
    fn quantization_due(&self, state: &State) -> bool {
        state.quantization_due(self.quantization())
            && now_ms() >= self.quantize_retry_at.load(Ordering::Relaxed)
    }

    /// Inserts up to `max` pending vectors into the graph; returns how many were inserted.
    pub fn index_some(&self, max: usize) -> usize {
        {
            // One guard: a second `read()` while a writer waits would deadlock (the lock is fair).
            let state = self.state.read();
            match state.as_ref() {
                Some(s) if s.index_pending() > 0 || self.quantization_due(s) => {}
                _ => return 0,
            }
        }
        let mut guard = self.state.write();
        let done = guard.as_mut().map_or(0, |s| {
            if self.quantization_due(s)
                && !quantize_state(s, self.quantization(), &self.def, &self.dir)
            {
                self.defer_quantization();
            }
            s.index_some(max)
        });
        // Hand the lock to the searches and writes that queued meanwhile, rather than let the
        // indexer's next round barge in ahead of them (it loops while vectors are pending).
        parking_lot::RwLockWriteGuard::unlock_fair(guard);
        done
    }

    /// Dead slots (replaced or deleted documents still held) and all slots, when hot.
    pub fn slots(&self) -> Option<(usize, usize)> {
        self.state.read().as_ref().map(State::slots)
    }
}

/// Fixes glibc's mmap threshold at 256 KiB. By default glibc raises the threshold each time a
/// large mapped block is freed (up to 32 MiB), after which the partitions a warm or cold query
/// reads (a few MiB, freed at once) come from the heap arenas of the blocking threads and stay
/// there: at 100k vectors RSS grew by 67 MiB over 200 cold queries and reached 508 MiB after
/// warm ones. A fixed threshold maps every large buffer and unmaps it when freed.
pub(crate) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter; any value is valid for this one.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
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
