//! The engine: the catalog of collections and the background work that serves them.
//!
//! # Catalog
//! The object store is the catalog: a collection exists when
//! `collections/<id>/manifest/` holds a manifest and `collections/<id>/DELETED` does not (see
//! [`crate::catalog`]). Before reading it, the engine checks that the data directory belongs to
//! this store ([`crate::identity`]). A collection that fails to open (a corrupt WAL or segment)
//! is kept in the catalog as unavailable, with its reason; every other collection serves
//! normally.
//!
//! # Delete is final
//! [`Engine::delete_collection`] writes the `DELETED` marker first, removes the entry (its name
//! is free at once), then *fences* the collection: it waits for every request, move, flush and
//! graph save in flight and marks it deleted, so nothing can commit a manifest for it again.
//! Only then are its objects and files purged, the marker last. (Without the fence, a flush in
//! flight committed a manifest after the purge had listed the prefix, and the deleted
//! collection came back at the next start.)
//!
//! # Rooms
//! This file is the façade: opening, create and delete, reads and writes, flushes and the
//! dead-letter queue. [`config`] holds every knob; [`request`] checks what users send (pure);
//! [`tiering`] drives tier moves, compaction and the sweep; [`background`] runs the loops below.
//!
//! # Background work
//! - The indexer thread inserts newly written vectors into each collection's HNSW graph, a small
//!   chunk at a time so that searches and writes are never blocked for long.
//! - The flusher task seals unflushed data into Parquet segments when a collection passes
//!   `flush_max_docs`, has been idle for `flush_idle`, or has held unflushed data for
//!   `flush_max_age`; it also recovers a WAL poisoned by an fsync failure (re-read from disk,
//!   replayed by a reload), so a collection serves again without a restart.
//! - The tiering task runs the policy, compacts, and closes cold collections (see
//!   [`crate::catalog`]).

mod background;
mod config;
mod flushing;
mod listing;
pub(crate) mod request;
mod search;
mod tiering;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use object_store::ObjectStore;
use parking_lot::{Condvar, Mutex};

pub use self::config::*;
pub use self::request::{
    CreateCollection, MAX_BATCH, MAX_EF, MAX_K, MAX_NPROBE, MAX_SCROLL_LIMIT,
    MAX_SCROLL_LIMIT_WITH_VECTORS, NewDocument, ScrollQuery, SearchQuery, TextSearch,
    metadata_value,
};
pub use self::tiering::{
    COMPACT_DEAD_FRACTION, COMPACT_MIN_DEAD, TierAction, TierMoveStats, TierTotals,
};
use crate::blockcache::BlockCache;
pub use crate::catalog::CollectionStatus;
use crate::catalog::{Catalog, Entry, purge_collection};
use crate::collection::{Collection, CollectionInfo, Env, now_ms};
use crate::doc::{Document, Operation};
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest, tombstone_path};
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::open_store;
use crate::tier::{MoveStats, Tier, policy};
use crate::upload::Uploader;
use crate::upload::dlq::Dlq;
use crate::wal::{FilePool, WalStats};

/// Totals over every collection, for `/metrics` (one pass, no per-collection rows).
#[derive(Debug, Clone, Default)]
pub struct CatalogTotals {
    pub ready: usize,
    pub unavailable: usize,
    /// Collections closed to their summary (cold, nothing in RAM, no descriptor).
    pub closed: usize,
    pub documents: usize,
    pub index_pending: usize,
    pub bytes_in_ram: usize,
    pub unflushed: usize,
}

struct Shared {
    config: EngineConfig,
    env: Arc<Env>,
    dlq: Dlq,
    catalog: Catalog,
    /// Local collection directories set aside because the store does not know them.
    quarantined: AtomicUsize,
    /// The fault injector, when started with `test_faults` (TESTING ONLY).
    faults: Option<Arc<FaultyStore>>,
    /// The catalog checkpoint last written: its sequence number, and the change count then.
    checkpoint: tokio::sync::Mutex<(u64, u64)>,
    /// When the last checkpoint was written.
    checkpointed_at: Mutex<std::time::Instant>,
    /// One engine per data directory.
    _lock: crate::disk::DirLock,
    /// Serialises create and delete.
    admin: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    /// Wakes the indexer when there is new work (its own `Arc`: the indexer waits on it without
    /// keeping the engine alive).
    index_signal: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Opens the engine: reads every collection's manifest and replays its WAL, then starts the
    /// indexer and the flusher. Must be called inside a tokio runtime.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let objects = config.data_dir.join("objects");
        let url = config
            .object_store
            .clone()
            .unwrap_or_else(|| format!("file://{}", objects.display()));
        let store = open_store(&url, &config.s3)?;
        let Some(f) = &config.test_faults else {
            return Engine::open_inner(config, store, None).await;
        };
        {
            tracing::warn!(
                latency_ms = f.latency.as_millis() as u64,
                fail_rate = f.fail_rate,
                seed = f.seed,
                "TESTING ONLY: object-store faults are injected"
            );
            let faulty = Arc::new(FaultyStore::new(store));
            faulty.set_history_limit(10_000);
            faulty.set_latency(f.latency);
            faulty.fail_randomly(f.fail_rate, Fault::SLOW_DOWN, &[], f.seed);
            Engine::open_inner(config, faulty.clone(), Some(faulty)).await
        }
    }

    /// Opens the engine over a store built by the caller (tests wrap stores in `FaultyStore`).
    pub async fn open_with_store(
        config: EngineConfig,
        store: Arc<dyn ObjectStore>,
    ) -> Result<Engine, EngineError> {
        Engine::open_inner(config, store, None).await
    }

    async fn open_inner(
        config: EngineConfig,
        store: Arc<dyn ObjectStore>,
        faults: Option<Arc<FaultyStore>>,
    ) -> Result<Engine, EngineError> {
        config.validate()?;
        let collections_dir = config.data_dir.join("collections");
        std::fs::create_dir_all(&collections_dir)?;
        let lock = crate::disk::DirLock::acquire(&config.data_dir)?;
        let uploader = Arc::new(Uploader::new(store.clone(), config.upload.clone()));
        crate::identity::bind(&config.data_dir, &uploader).await?;
        let dlq = Dlq::open(&config.data_dir)?;
        let env = Arc::new(Env {
            uploader,
            wal_stats: Arc::new(WalStats::default()),
            files: FilePool::new(config.max_open_files),
            moves: Arc::new(MoveStats::default()),
            collections_dir,
            segment_rows: config.flush_max_docs,
            partitions: config.partitions,
            index_threads: config.index_threads,
            blocks: Arc::new(BlockCache::new(config.partitions.cache_disk_budget_bytes)),
            catalog_changes: AtomicU64::new(1),
        });
        crate::collection::tune_allocator();
        let loaded = crate::catalog::load(&env).await?;
        // The blocks an earlier run kept count against the budget; found off the start path.
        let (blocks, dir) = (env.blocks.clone(), env.collections_dir.clone());
        tokio::task::spawn_blocking(move || blocks.adopt(&dir));
        let (catalog, quarantined) = (loaded.catalog, loaded.quarantined);
        let shared = Arc::new(Shared {
            config,
            env,
            dlq,
            catalog,
            quarantined: AtomicUsize::new(quarantined),
            faults,
            checkpoint: tokio::sync::Mutex::new((loaded.checkpoint_seq, 0)),
            checkpointed_at: Mutex::new(std::time::Instant::now()),
            _lock: lock,
            admin: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            index_signal: Arc::new((Mutex::new(true), Condvar::new())),
        });
        let engine = Engine { shared };
        if loaded.unverified > 0 {
            engine.spawn_reconciliation();
        }
        engine.spawn_indexer();
        if engine.shared.config.background_flush {
            engine.spawn_flusher();
        }
        engine.spawn_tiering();
        Ok(engine)
    }

    pub fn wal_stats(&self) -> &WalStats {
        &self.shared.env.wal_stats
    }

    /// The pool bounding open WAL files.
    pub fn file_pool(&self) -> &FilePool {
        &self.shared.env.files
    }

    /// FOR TESTING ONLY: the fault injector in front of the object store, when the engine was
    /// opened with [`EngineConfig::test_faults`] (the fault soak turns outages on and off).
    pub fn test_faults(&self) -> Option<&FaultyStore> {
        self.shared.faults.as_deref()
    }

    /// Local collection directories in quarantine (see [`crate::catalog`]).
    pub fn quarantined(&self) -> usize {
        self.shared.quarantined.load(Ordering::Relaxed)
    }

    pub fn object_store_url(&self) -> String {
        self.shared.env.uploader.describe()
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, EngineError> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        self.shared
            .catalog
            .get(name)
            .ok_or_else(|| EngineError::CollectionNotFound(name.to_string()))
    }

    /// The collection named `name`, opened if it was closed.
    async fn collection(&self, name: &str) -> Result<(Arc<Entry>, Arc<Collection>), EngineError> {
        let entry = self.entry(name)?;
        let c = entry.open(&self.shared.env).await?;
        Ok((entry, c))
    }

    pub async fn create_collection(
        &self,
        req: CreateCollection,
    ) -> Result<CollectionInfo, EngineError> {
        let index = request::prepare_create(&req, self.shared.config.default_index)?;
        let _admin = self.shared.admin.lock().await;
        if self.shared.catalog.contains_name(&req.name) {
            return Err(EngineError::CollectionExists(req.name));
        }
        let def = CollectionDef {
            id: uuid::Uuid::now_v7().simple().to_string(),
            name: req.name.clone(),
            dimension: req.dimension,
            metric: req.metric,
            index,
            created_at_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            quantization: req.quantization.unwrap_or_default(),
            payload_indexes: Vec::new(),
        };
        let manifest = Manifest::new(def.clone());
        self.shared
            .env
            .uploader
            .put_create_only(
                &crate::manifest::manifest_path(&def.id, manifest.version),
                manifest.encode(),
            )
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!(
                    "could not store the new collection's manifest: {e}"
                ))
            })?;
        let collection = Collection::open(manifest, self.shared.env.clone(), None).await?;
        collection.move_to(Tier::Hot).await?;
        let info = collection.info(self.window_ms());
        self.shared.catalog.insert(Entry::open_entry(collection));
        self.note_change();
        tracing::info!(collection = %def.name, id = %def.id, dimension = def.dimension, metric = %def.metric, "created collection");
        Ok(info)
    }

    /// Every collection, ordered by name, without opening closed ones.
    pub fn list_collections(&self) -> Vec<CollectionStatus> {
        let window = self.window_ms();
        self.shared
            .catalog
            .entries()
            .iter()
            .map(|e| e.status(window))
            .collect()
    }

    /// Totals over every collection (for `/metrics`), without building each one's row.
    pub fn catalog_totals(&self) -> CatalogTotals {
        let mut t = CatalogTotals::default();
        let window = self.window_ms();
        for e in self.shared.catalog.entries() {
            match e.if_open() {
                Some(c) => {
                    let info = c.info(window);
                    t.ready += 1;
                    t.documents += info.count;
                    t.index_pending += info.index_pending;
                    t.bytes_in_ram += info.bytes_in_ram;
                    t.unflushed += info.unflushed;
                }
                // A closed entry's counts, without building its row.
                None => match e.closed_documents() {
                    Some(documents) => {
                        t.ready += 1;
                        t.closed += 1;
                        t.documents += documents as usize;
                    }
                    None => t.unavailable += 1,
                },
            }
        }
        t
    }

    /// A collection's summary. One whose WAL still waits to be replayed after a restart is
    /// loaded first, so the counts are exact (the list shows its flushed counts meanwhile).
    /// A closed collection is described without being opened.
    pub async fn collection_info(&self, name: &str) -> Result<CollectionInfo, EngineError> {
        let entry = self.entry(name)?;
        let Some(c) = entry.if_open() else {
            return match entry.status(self.window_ms()) {
                CollectionStatus::Ready(info) => Ok(info),
                CollectionStatus::Failed { reason, .. } => {
                    Err(EngineError::CollectionUnavailable {
                        name: name.to_string(),
                        reason,
                    })
                }
            };
        };
        if c.has_pending_wal() {
            self.move_collection(&entry, &c, Tier::Hot, "wal_replay")
                .await?;
        }
        Ok(c.info(self.window_ms()))
    }

    fn window_ms(&self) -> u64 {
        self.shared.config.tiering.policy.promote_window_ms
    }

    /// Records an access; returns whether the access-rate rule wants the collection hot,
    /// whatever its tier at this moment: a request that finds it hot ignores the answer, and
    /// one that finds it warm only after waiting behind a demotion must promote it, not load
    /// the whole collection for itself (every request queued behind the demotion did that, one
    /// after another: the tail of the load test's tier control).
    fn touch(&self, c: &Collection) -> bool {
        let now = now_ms();
        let policy = &self.shared.config.tiering.policy;
        policy::promotes(c.touch(now, policy.promote_window_ms), policy)
    }

    /// A failed load of damaged data marks the collection unavailable, as a failed open would.
    fn note_failure(&self, entry: &Entry, e: EngineError) -> EngineError {
        if matches!(e, EngineError::Corrupted(_) | EngineError::Segment(_)) {
            tracing::error!(collection = %entry.def().name, error = %e, "collection data is damaged; it is unavailable until repaired");
            entry.mark_failed(&e.to_string());
            return EngineError::CollectionUnavailable {
                name: entry.def().name.clone(),
                reason: e.to_string(),
            };
        }
        e
    }

    /// Changes how a collection's hot index holds its vectors (`quantization` at creation);
    /// durable at once, a hot collection is converted in the background.
    pub async fn set_quantization(
        &self,
        name: &str,
        quantization: akidb_core::Quantization,
    ) -> Result<CollectionInfo, EngineError> {
        let (_, c) = self.collection(name).await?;
        c.set_quantization(quantization).await?;
        self.wake_indexer();
        Ok(c.info(self.window_ms()))
    }

    /// Deletes a collection and all its data, locally and in the object store (see the module
    /// docs: marker, fence, purge).
    pub async fn delete_collection(&self, name: &str) -> Result<(), EngineError> {
        let _admin = self.shared.admin.lock().await;
        let entry = self.entry(name)?;
        let id = entry.id().to_string();
        // The marker first: if we crash below, the next start finishes the delete.
        self.shared
            .env
            .uploader
            .put_object(&tombstone_path(&id), bytes::Bytes::from_static(b"{}"))
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!("could not store the delete marker: {e}"))
            })?;
        self.shared.catalog.remove(&entry);
        self.note_change();
        entry.fence_for_delete().await;
        let _ = self.shared.dlq.remove(&id);
        let dir = self.shared.env.collections_dir.join(&id);
        purge_collection(&self.shared.env.uploader, &dir, &id).await?;
        self.shared.env.blocks.forget_under(&dir);
        tracing::info!(collection = %name, id = %id, "deleted collection");
        Ok(())
    }

    /// Refuses a write while the data directory's disk is below `min_free_disk_bytes`.
    fn check_disk(&self, incoming: u64) -> Result<(), EngineError> {
        crate::disk::check(
            &self.shared.config.data_dir,
            self.shared.config.min_free_disk_bytes,
            incoming,
        )
    }

    /// Unflushed WAL bytes, all collections together, at which writes are refused.
    pub fn wal_budget_bytes(&self) -> u64 {
        self.shared.config.wal_budget_bytes
    }

    /// Refuses a write while unflushed WAL is at the local budget.
    fn check_wal_budget(&self) -> Result<(), EngineError> {
        let wal_bytes = self.shared.env.wal_stats.live_bytes.load(Ordering::Relaxed);
        let budget = self.shared.config.wal_budget_bytes;
        if wal_bytes >= budget {
            return Err(EngineError::Backpressure {
                wal_bytes,
                budget,
                retry_after_secs: self.shared.config.upload.breaker_cool_down.as_secs().max(1),
            });
        }
        Ok(())
    }

    /// Validates and durably upserts a batch; returns the ids written, in request order.
    #[tracing::instrument(name = "upsert", skip_all, fields(collection = name, documents = docs.len()))]
    pub async fn upsert(
        &self,
        name: &str,
        docs: Vec<NewDocument>,
    ) -> Result<Vec<String>, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        self.check_wal_budget()?;
        let prepared = request::prepare_documents(docs, collection.def())?;
        let ids = prepared.iter().map(|d| d.id.clone()).collect();
        let incoming = request::wal_bytes(&prepared);
        self.check_disk(incoming)?;
        self.touch(&collection);
        collection
            .write(move |c, _tier| c.apply_durably(Operation::Upsert(prepared)))
            .await
            .map_err(|e| self.note_failure(&entry, e))?;
        self.wake_indexer();
        Ok(ids)
    }

    /// Durably deletes documents by id; returns how many existed.
    #[tracing::instrument(name = "delete", skip_all, fields(collection = name, ids = ids.len()))]
    pub async fn delete_documents(
        &self,
        name: &str,
        ids: Vec<String>,
    ) -> Result<usize, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        self.check_wal_budget()?;
        request::prepare_ids(&ids)?;
        self.check_disk(ids.iter().map(|id| id.len() as u64 + 8).sum())?;
        self.touch(&collection);
        collection
            .write(move |c, _tier| {
                let existing = ids.iter().filter(|id| c.contains(id)).count();
                if existing > 0 {
                    c.apply_durably(Operation::Delete(ids))?;
                }
                Ok(existing)
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))
    }

    #[tracing::instrument(name = "get", skip_all, fields(collection = name))]
    pub async fn get_document(&self, name: &str, id: &str) -> Result<Document, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let promote = self.touch(&collection);
        collection
            .get(promote, id.to_string())
            .await
            .map_err(|e| self.note_failure(&entry, e))?
            .ok_or_else(|| EngineError::DocumentNotFound {
                collection: name.to_string(),
                id: id.to_string(),
            })
    }

    /// Every live document of the collection in slot order, `batch` at a time, handed to
    /// `each` on a blocking thread: against the hot state, or one temporary load of a warm
    /// collection (a cold one is fetched to local disk first); it is not promoted to hot. `each` returns false to stop early.
    /// Returns how many documents were handed over.
    pub async fn export<F>(&self, name: &str, batch: usize, mut each: F) -> Result<u64, EngineError>
    where
        F: FnMut(Vec<Document>) -> bool + Send + 'static,
    {
        let (entry, collection) = self.collection(name).await?;
        self.touch(&collection);
        let batch = batch.max(1);
        let exported = collection
            .read(false, move |state| -> Result<u64, EngineError> {
                let (_, slots) = state.slots();
                let mut sent = 0;
                for start in (0..slots).step_by(batch) {
                    let docs = state.live_documents(start..(start + batch).min(slots))?;
                    sent += docs.len() as u64;
                    if !docs.is_empty() && !each(docs) {
                        break;
                    }
                }
                Ok(sent)
            })
            .await
            .and_then(|r| r);
        exported.map_err(|e| self.note_failure(&entry, e))
    }

    /// The cache of ranges that cold queries fetched (counters and bytes, for metrics).
    pub fn block_cache(&self) -> &BlockCache {
        &self.shared.env.blocks
    }

    pub fn uploader(&self) -> &Uploader {
        &self.shared.env.uploader
    }

    /// Stops accepting requests, flushes what can be flushed, and stops background work.
    /// Data that cannot be flushed is safe in the WAL, which is fsynced on every write.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        self.wake_indexer();
        for c in self.ready_collections() {
            if let Err(e) = self.flush_collection(&c).await {
                tracing::warn!(collection = %c.def().name, error = %e, "flush at shutdown failed; the wal keeps the data");
            } else if let Err(e) = c.checkpoint().await {
                tracing::warn!(collection = %c.def().name, error = %e, "could not save the graph at shutdown; it is rebuilt on load");
            }
        }
        if let Err(e) = self.write_checkpoint(true).await {
            tracing::warn!(error = %e, "could not write the catalog checkpoint at shutdown; the next start reads every manifest");
        }
    }

    fn note_change(&self) {
        self.shared
            .env
            .catalog_changes
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the engine can serve requests.
    pub fn is_ready(&self) -> bool {
        !self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// The open collections (closed ones have nothing to flush, index or move).
    fn ready_collections(&self) -> Vec<Arc<Collection>> {
        self.shared.catalog.open_collections()
    }
}
