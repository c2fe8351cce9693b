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
//! # Background work
//! - The indexer thread inserts newly written vectors into each collection's HNSW graph, a small
//!   chunk at a time so that searches and writes are never blocked for long.
//! - The flusher task seals unflushed data into Parquet segments when a collection passes
//!   `flush_max_docs`, has been idle for `flush_idle`, or has held unflushed data for
//!   `flush_max_age`; it also recovers a WAL poisoned by an fsync failure (re-read from disk,
//!   replayed by a reload), so a collection serves again without a restart.
//! - The tiering task runs the policy, compacts, and closes cold collections (see
//!   [`crate::catalog`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use akidb_core::types::{
    MAX_METADATA_BYTES, ValidationError, prepare_vector, validate_collection_name,
    validate_dimension, validate_doc_id,
};
use akidb_core::{HnswParams, Metric};
use futures::StreamExt;
use object_store::ObjectStore;
use parking_lot::{Condvar, Mutex};
use serde_json::Value;

pub use crate::catalog::CollectionStatus;
use crate::catalog::checkpoint::{self, Checkpoint};
use crate::catalog::{Catalog, Entry, purge_collection};
use crate::collection::{
    Collection, CollectionInfo, Env, FlushError, Hit, SearchRequest, TierInfo, now_ms,
};
use crate::doc::{Document, Metadata, Operation};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::manifest::{CollectionDef, Manifest, tombstone_path};
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::{S3Options, open_store};
use crate::tier::{MoveStats, PolicyConfig, Tier, policy};
use crate::upload::dlq::{DeadLetter, Dlq};
use crate::upload::{UploadConfig, Uploader};
use crate::wal::{FilePool, WalStats};

/// Largest number of documents one upsert or delete batch may carry.
pub const MAX_BATCH: usize = 10_000;
/// Largest `k` a search may ask for.
pub const MAX_K: usize = 10_000;
/// Largest `ef` a search may ask for.
pub const MAX_EF: usize = 10_000;

/// Engine configuration. Every field has a named default below.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Local directory for WALs (and, by default, the object store).
    pub data_dir: PathBuf,
    /// Object store URL; `None` means `file://<data_dir>/objects`.
    pub object_store: Option<String>,
    /// S3 settings for `s3://` URLs (unset fields come from `AWS_*` variables).
    pub s3: S3Options,
    /// Flush a collection once this many documents and deletes are unflushed.
    pub flush_max_docs: usize,
    /// Flush a collection whose last write is this old.
    pub flush_idle: Duration,
    /// Flush a collection whose oldest unflushed write is this old.
    pub flush_max_age: Duration,
    /// Vectors the indexer inserts per lock acquisition.
    pub index_chunk: usize,
    /// HNSW parameters for collections created without their own.
    pub default_index: HnswParams,
    /// Uploads: parallelism, multipart, retries, circuit breaker.
    pub upload: UploadConfig,
    /// Largest amount of WAL kept on local disk, across collections, before writes are
    /// refused with backpressure (503 + Retry-After). It bounds local disk use while the
    /// object store is unreachable.
    pub wal_budget_bytes: u64,
    /// Run the background flusher (the size and timer triggers). Tests that drive flushes
    /// themselves turn it off so that two flushes never race for the same faults.
    pub background_flush: bool,
    /// Automatic tier moves (idle times, access rate, RAM and disk budgets).
    pub tiering: TieringConfig,
    /// Writes are refused (507 `insufficient_storage`) while the data directory's disk has
    /// less than this many bytes free, so that a flush always has room to free WAL space.
    /// 0 turns the guard off.
    pub min_free_disk_bytes: u64,
    /// WAL files open at once, across collections (least recently used ones are closed).
    pub max_open_files: usize,
    /// How often, at most, the catalog checkpoint is written again when collections changed
    /// (it is also written at shutdown). It makes a start read one object instead of a
    /// manifest per collection.
    pub checkpoint_interval: Duration,
    /// FOR TESTING ONLY: wrap the object store in a [`FaultyStore`] with these faults, so the
    /// load tool can measure behaviour under latency and failures. Never set in production.
    pub test_faults: Option<TestFaults>,
}

/// Faults injected into every object-store call (testing only; see [`EngineConfig::test_faults`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TestFaults {
    /// Added before every call.
    pub latency: Duration,
    /// Probability that a call fails with a transient 503 SlowDown.
    pub fail_rate: f64,
    /// Seed of the failure draws.
    pub seed: u64,
}

/// The tiering task's settings.
#[derive(Debug, Clone)]
pub struct TieringConfig {
    /// The rules; see [`PolicyConfig`] for each knob and its default.
    pub policy: PolicyConfig,
    /// How often the policy runs. Default 5 s.
    pub interval: Duration,
    /// Run the policy in the background (manual moves work either way). Default on.
    pub enabled: bool,
    /// Objects under a collection's `segments/` that no manifest names are deleted once they
    /// are this old (a crash between an upload and its manifest leaves them). Default 1 hour:
    /// far longer than any flush, so an upload whose manifest is still coming is never taken.
    pub orphan_grace: Duration,
}

impl Default for TieringConfig {
    fn default() -> Self {
        TieringConfig {
            policy: PolicyConfig::default(),
            interval: Duration::from_secs(5),
            enabled: true,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// Tier moves done so far, by (from, to): count and total seconds.
#[derive(Debug, Clone, Default)]
pub struct TierMoveStats {
    pub moves: Vec<(Tier, Tier, u64, f64)>,
}

/// Collections and bytes in one tier.
#[derive(Debug, Clone, Default)]
pub struct TierTotals {
    pub collections: usize,
    pub bytes_in_ram: u64,
    pub bytes_on_disk: u64,
    pub bytes_in_object_store: u64,
}

/// A manual tier command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierAction {
    Promote,
    Demote,
    Pin,
    Unpin,
}

pub const DEFAULT_WAL_BUDGET_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_MAX_OPEN_FILES: usize = 512;
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);

pub const DEFAULT_FLUSH_MAX_DOCS: usize = 50_000;
pub const DEFAULT_FLUSH_IDLE: Duration = Duration::from_secs(10);
pub const DEFAULT_FLUSH_MAX_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_INDEX_CHUNK: usize = 32;

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            object_store: None,
            s3: S3Options::default(),
            flush_max_docs: DEFAULT_FLUSH_MAX_DOCS,
            flush_idle: DEFAULT_FLUSH_IDLE,
            flush_max_age: DEFAULT_FLUSH_MAX_AGE,
            index_chunk: DEFAULT_INDEX_CHUNK,
            default_index: HnswParams::default(),
            upload: UploadConfig::default(),
            wal_budget_bytes: DEFAULT_WAL_BUDGET_BYTES,
            background_flush: true,
            tiering: TieringConfig::default(),
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            test_faults: None,
        }
    }
}

/// What a user asks for when creating a collection.
#[derive(Debug, Clone)]
pub struct CreateCollection {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub ef_search: Option<usize>,
}

/// A document as a user sent it, before validation.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: Option<String>,
    pub vector: Vec<f32>,
    pub metadata: Option<Value>,
}

/// A search as a user sent it, before validation.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub vector: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    pub exact: bool,
    pub filter: Option<Value>,
    pub include_vector: bool,
    pub include_metadata: bool,
}

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
        let collections_dir = config.data_dir.join("collections");
        std::fs::create_dir_all(&collections_dir)?;
        let lock = crate::disk::DirLock::acquire(&config.data_dir)?;
        let uploader = Arc::new(Uploader::new(store.clone(), config.upload.clone()));
        crate::identity::bind(&config.data_dir, &uploader, &store.to_string()).await?;
        let dlq = Dlq::open(&config.data_dir)?;
        let env = Arc::new(Env {
            uploader,
            wal_stats: Arc::new(WalStats::default()),
            files: FilePool::new(config.max_open_files),
            moves: Arc::new(MoveStats::default()),
            collections_dir,
            catalog_changes: AtomicU64::new(1),
        });
        let loaded = crate::catalog::load(&env).await?;
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
        self.shared.env.uploader.store().to_string()
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
        validate_collection_name(&req.name)?;
        validate_dimension(req.dimension)?;
        let defaults = self.shared.config.default_index;
        let index = HnswParams {
            m: req.m.unwrap_or(defaults.m),
            ef_construction: req.ef_construction.unwrap_or(defaults.ef_construction),
            ef_search: req.ef_search.unwrap_or(defaults.ef_search),
        };
        if !(2..=128).contains(&index.m) {
            return Err(ValidationError::new("index.m", "m must be between 2 and 128").into());
        }
        if !(1..=MAX_EF).contains(&index.ef_construction) {
            return Err(ValidationError::new(
                "index.ef_construction",
                format!("ef_construction must be between 1 and {MAX_EF}"),
            )
            .into());
        }
        if !(1..=MAX_EF).contains(&index.ef_search) {
            return Err(ValidationError::new(
                "index.ef_search",
                format!("ef_search must be between 1 and {MAX_EF}"),
            )
            .into());
        }
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
        collection.move_to(Tier::Hot, self.flush_rows()).await?;
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

    fn flush_rows(&self) -> usize {
        self.shared.config.flush_max_docs
    }

    /// Records an access; returns whether the access-rate rule wants the collection hot.
    fn touch(&self, c: &Collection) -> bool {
        let now = now_ms();
        let policy = &self.shared.config.tiering.policy;
        let recent = c.touch(now, policy.promote_window_ms);
        c.tier() != Tier::Hot && policy::promotes(recent, policy)
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

    /// Where a collection's data is (a closed collection is described without being opened).
    pub fn tier_info(&self, name: &str) -> Result<TierInfo, EngineError> {
        let entry = self.entry(name)?;
        entry
            .tier_info(self.window_ms())
            .ok_or_else(|| match entry.status(self.window_ms()) {
                CollectionStatus::Failed { reason, .. } => EngineError::CollectionUnavailable {
                    name: name.to_string(),
                    reason,
                },
                CollectionStatus::Ready(_) => EngineError::CollectionNotFound(name.to_string()),
            })
    }

    /// Carries out a manual tier command and returns the collection's tier afterwards.
    /// `promote` defaults to hot, `demote` to one tier down; `pin` first moves to `target` if
    /// given, then pins; `unpin` unpins.
    pub async fn tier_action(
        &self,
        name: &str,
        action: TierAction,
        target: Option<Tier>,
    ) -> Result<TierInfo, EngineError> {
        let (entry, c) = self.collection(name).await?;
        let current = c.tier();
        let target = match action {
            TierAction::Promote => {
                let t = target.unwrap_or(Tier::Hot);
                if t > current {
                    return Err(ValidationError::new(
                        "target",
                        format!("cannot promote a {current} collection to {t}"),
                    )
                    .into());
                }
                Some(t)
            }
            TierAction::Demote => {
                let t = target.or(current.below()).unwrap_or(Tier::Cold);
                if t < current {
                    return Err(ValidationError::new(
                        "target",
                        format!("cannot demote a {current} collection to {t}"),
                    )
                    .into());
                }
                Some(t)
            }
            TierAction::Pin => target,
            TierAction::Unpin => {
                if target.is_some() {
                    return Err(ValidationError::new("target", "unpin takes no target").into());
                }
                None
            }
        };
        if let Some(t) = target {
            self.move_collection(&entry, &c, t, "manual").await?;
        }
        match action {
            TierAction::Pin => c.set_pinned(true).await?,
            TierAction::Unpin => c.set_pinned(false).await?,
            _ => {}
        }
        let info = c.tier_info(self.window_ms());
        drop(c);
        // A collection demoted to cold is closed at once (nothing of it stays in RAM).
        entry.try_close(now_ms());
        Ok(info)
    }

    /// Moves a collection and records the move.
    async fn move_collection(
        &self,
        entry: &Entry,
        c: &Collection,
        target: Tier,
        reason: &str,
    ) -> Result<(), EngineError> {
        let from = c
            .move_to(target, self.flush_rows())
            .await
            .map_err(|e| self.note_failure(entry, e))?;
        if from != target {
            tracing::debug!(collection = %c.def().name, %from, to = %target, reason, "tier move reason");
        }
        Ok(())
    }

    /// Counts and bytes per tier.
    pub fn tier_totals(&self) -> Vec<(Tier, TierTotals)> {
        let mut totals = [Tier::Hot, Tier::Warm, Tier::Cold].map(|t| (t, TierTotals::default()));
        let window = self.window_ms();
        for entry in self.shared.catalog.entries() {
            let Some(info) = entry.tier_info(window) else {
                continue;
            };
            let t = &mut totals[info.tier as usize].1;
            t.collections += 1;
            t.bytes_in_ram += info.bytes_in_ram;
            t.bytes_on_disk += info.bytes_on_disk;
            t.bytes_in_object_store += info.bytes_in_object_store;
        }
        totals.to_vec()
    }

    /// Tier moves so far.
    pub fn tier_moves(&self) -> TierMoveStats {
        TierMoveStats {
            moves: self.shared.env.moves.snapshot(),
        }
    }

    /// Runs the tiering policy once and carries out its plan; returns the moves made (named by
    /// collection name).
    pub async fn run_tiering_once(&self) -> Vec<policy::Move> {
        self.run_tiering_once_with(&self.shared.config.tiering.policy.clone())
            .await
    }

    /// [`Engine::run_tiering_once`] with other rules (tests, what-if tools).
    pub async fn run_tiering_once_with(&self, rules: &PolicyConfig) -> Vec<policy::Move> {
        // Closed collections are cold with nothing local: no rule applies to them (their
        // promotion by access rate happens on the access itself).
        let usage: Vec<_> = self
            .ready_collections()
            .iter()
            .map(|c| {
                let mut u = c.usage();
                u.name = c.def().id.clone();
                u
            })
            .collect();
        let plan = policy::plan(&usage, rules, now_ms());
        let mut done = Vec::new();
        for mv in plan {
            let Some(entry) = self.shared.catalog.by_id(&mv.name) else {
                continue;
            };
            let Some(c) = entry.if_open() else {
                continue;
            };
            match self
                .move_collection(&entry, &c, mv.to, mv.reason.as_str())
                .await
            {
                // Reported by name (the plan is keyed by id).
                Ok(()) => done.push(policy::Move {
                    name: c.def().name.clone(),
                    ..mv
                }),
                Err(e) => {
                    tracing::warn!(collection = %c.def().name, to = %mv.to, error = %e, "tier move failed; will try again")
                }
            }
        }
        self.close_cold(now_ms());
        done
    }

    /// Closes every cold collection nobody holds (see [`crate::catalog`]); returns how many.
    pub fn close_cold(&self, now: u64) -> usize {
        let closed = self
            .shared
            .catalog
            .entries()
            .iter()
            .filter(|e| e.try_close(now))
            .count();
        if closed > 0 {
            crate::collection::release_free_memory();
        }
        closed
    }

    /// Compacts a collection now (see [`Collection::compact`]); returns the slots removed.
    pub async fn compact(&self, name: &str) -> Result<usize, EngineError> {
        let (_, c) = self.collection(name).await?;
        let removed = c.compact(self.flush_rows()).await?;
        self.wake_indexer();
        Ok(removed)
    }

    /// Compacts the hot collections where dead slots are at least [`COMPACT_MIN_DEAD`] and at
    /// least [`COMPACT_DEAD_FRACTION`] of all slots (run by the tiering task).
    async fn compact_where_due(&self) {
        for c in self.ready_collections() {
            let Some((dead, all)) = c.slots() else {
                continue;
            };
            if dead >= COMPACT_MIN_DEAD && dead as f64 >= COMPACT_DEAD_FRACTION * all as f64 {
                match c.compact(self.flush_rows()).await {
                    Ok(_) => self.wake_indexer(),
                    Err(e) => {
                        tracing::warn!(collection = %c.def().name, error = %e, "compaction failed; will try again")
                    }
                }
            }
        }
    }

    /// Deletes orphan objects (see [`Collection::sweep_orphans`]) in every collection.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<usize, EngineError> {
        let mut n = 0;
        for c in self.ready_collections() {
            n += c.sweep_orphans(grace).await?;
        }
        Ok(n)
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
        purge_collection(
            &self.shared.env.uploader,
            &self.shared.env.collections_dir.join(&id),
            &id,
        )
        .await?;
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
    pub async fn upsert(
        &self,
        name: &str,
        docs: Vec<NewDocument>,
    ) -> Result<Vec<String>, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        self.check_wal_budget()?;
        let def = collection.def();
        if docs.is_empty() {
            return Err(
                ValidationError::new("documents", "at least one document is required").into(),
            );
        }
        if docs.len() > MAX_BATCH {
            return Err(ValidationError::new(
                "documents",
                format!(
                    "a batch holds at most {MAX_BATCH} documents, got {}",
                    docs.len()
                ),
            )
            .into());
        }
        let mut prepared = Vec::with_capacity(docs.len());
        for (i, doc) in docs.into_iter().enumerate() {
            let id = match doc.id {
                Some(id) => {
                    validate_doc_id(&format!("documents[{i}].id"), &id)?;
                    id
                }
                None => uuid::Uuid::now_v7().to_string(),
            };
            let mut vector = doc.vector;
            prepare_vector(
                &format!("documents[{i}].vector"),
                &mut vector,
                def.dimension,
                def.metric,
            )?;
            let metadata = match doc.metadata {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => {
                    let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
                    if size > MAX_METADATA_BYTES {
                        return Err(ValidationError::new(
                            format!("documents[{i}].metadata"),
                            format!("metadata is {size} bytes as JSON, the maximum is {MAX_METADATA_BYTES}"),
                        )
                        .into());
                    }
                    Some(map)
                }
                Some(_) => {
                    return Err(ValidationError::new(
                        format!("documents[{i}].metadata"),
                        "metadata must be a JSON object",
                    )
                    .into());
                }
            };
            prepared.push(Document {
                id,
                vector,
                metadata,
            });
        }
        let ids = prepared.iter().map(|d| d.id.clone()).collect();
        let incoming = prepared
            .iter()
            .map(|d| d.vector.len() * 4 + d.id.len() + 64)
            .sum::<usize>() as u64;
        self.check_disk(incoming)?;
        self.touch(&collection);
        collection
            .write(self.flush_rows(), move |c, _tier| {
                c.apply_durably(Operation::Upsert(prepared))
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))?;
        self.wake_indexer();
        Ok(ids)
    }

    /// Durably deletes documents by id; returns how many existed.
    pub async fn delete_documents(
        &self,
        name: &str,
        ids: Vec<String>,
    ) -> Result<usize, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        self.check_wal_budget()?;
        if ids.len() > MAX_BATCH {
            return Err(ValidationError::new(
                "ids",
                format!("a batch holds at most {MAX_BATCH} ids, got {}", ids.len()),
            )
            .into());
        }
        for (i, id) in ids.iter().enumerate() {
            validate_doc_id(&format!("ids[{i}]"), id)?;
        }
        self.check_disk(ids.iter().map(|id| id.len() as u64 + 8).sum())?;
        self.touch(&collection);
        collection
            .write(self.flush_rows(), move |c, _tier| {
                let existing = ids.iter().filter(|id| c.contains(id)).count();
                if existing > 0 {
                    c.apply_durably(Operation::Delete(ids))?;
                }
                Ok(existing)
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))
    }

    pub async fn get_document(&self, name: &str, id: &str) -> Result<Document, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let promote = self.touch(&collection);
        let key = id.to_string();
        collection
            .read(promote, self.flush_rows(), move |c, state| {
                c.get_in(state, &key)
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))?
            .ok_or_else(|| EngineError::DocumentNotFound {
                collection: name.to_string(),
                id: id.to_string(),
            })
    }

    pub async fn search(&self, name: &str, query: SearchQuery) -> Result<Vec<Hit>, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let def = collection.def();
        if !(1..=MAX_K).contains(&query.k) {
            return Err(ValidationError::new(
                "k",
                format!("k must be between 1 and {MAX_K}, got {}", query.k),
            )
            .into());
        }
        if let Some(ef) = query.ef
            && !(1..=MAX_EF).contains(&ef)
        {
            return Err(ValidationError::new(
                "ef",
                format!("ef must be between 1 and {MAX_EF}, got {ef}"),
            )
            .into());
        }
        let mut vector = query.vector;
        prepare_vector("vector", &mut vector, def.dimension, def.metric)?;
        let filter = query
            .filter
            .as_ref()
            .filter(|f| !f.is_null())
            .map(Filter::parse)
            .transpose()?;
        let req = SearchRequest {
            vector,
            k: query.k,
            ef: query.ef,
            exact: query.exact,
            filter,
            include_vector: query.include_vector,
            include_metadata: query.include_metadata,
        };
        let promote = self.touch(&collection);
        collection
            .read(promote, self.flush_rows(), move |c, state| {
                c.search_in(state, &req)
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))
    }

    /// Flushes every collection with unflushed data (used by tests and admin tools).
    pub async fn flush_all(&self) -> Result<(), FlushError> {
        for c in self.ready_collections() {
            self.flush_collection(&c).await?;
        }
        Ok(())
    }

    /// Flushes one collection; a permanent failure goes to the dead-letter queue.
    async fn flush_collection(&self, c: &Collection) -> Result<bool, FlushError> {
        match c.flush(self.shared.config.flush_max_docs).await {
            Ok(flushed) => Ok(flushed),
            Err(e) => {
                if let FlushError::Upload(crate::upload::retry::RetryError::Permanent {
                    attempts,
                    ..
                }) = &e
                {
                    tracing::error!(collection = %c.def().name, error = %e, "flush failed permanently; dead-lettered (the WAL keeps the data)");
                    if let Err(dlq_error) =
                        self.shared
                            .dlq
                            .add(&c.def().id, &c.def().name, e.to_string(), *attempts)
                    {
                        tracing::error!(error = %dlq_error, "could not persist the dead-letter queue");
                    }
                }
                Err(e)
            }
        }
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.dlq.list()
    }

    /// Re-drives every dead-lettered flush for real. Returns (re-driven successfully, still failing).
    pub async fn retry_dead_letters(&self) -> (Vec<DeadLetter>, Vec<DeadLetter>) {
        let (mut ok, mut failed) = (vec![], vec![]);
        for entry in self.shared.dlq.list() {
            let collection = self
                .shared
                .catalog
                .by_id(&entry.collection_id)
                .and_then(|e| e.if_open());
            let Some(collection) = collection else {
                // The collection is gone; there is nothing left to deliver.
                let _ = self.shared.dlq.remove(&entry.collection_id);
                ok.push(entry);
                continue;
            };
            match self.flush_collection(&collection).await {
                Ok(_) => {
                    if let Err(e) = self.shared.dlq.remove(&entry.collection_id) {
                        tracing::error!(error = %e, "could not persist the dead-letter queue");
                    }
                    ok.push(entry);
                }
                Err(_) => failed.push(
                    self.shared
                        .dlq
                        .list()
                        .into_iter()
                        .find(|e| e.collection_id == entry.collection_id)
                        .unwrap_or(entry),
                ),
            }
        }
        (ok, failed)
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
            } else if let Err(e) = c.checkpoint(self.flush_rows()).await {
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

    /// Writes a catalog checkpoint (see [`crate::catalog::checkpoint`]) if the catalog changed
    /// since the last one (`clean`: at shutdown, when nothing changes after it). Returns whether
    /// one was written.
    pub async fn write_checkpoint(&self, clean: bool) -> Result<bool, EngineError> {
        let mut last = self.shared.checkpoint.lock().await;
        let changes = self.shared.env.catalog_changes.load(Ordering::Relaxed);
        if changes == last.1 && !clean {
            return Ok(false);
        }
        let collections: Vec<_> = self
            .shared
            .catalog
            .entries()
            .iter()
            .filter_map(|e| e.checkpoint_entry())
            .collect();
        let cp = Checkpoint {
            seq: last.0 + 1,
            clean,
            written_at_ms: now_ms(),
            collections,
        };
        checkpoint::write(&self.shared.env.uploader, &cp).await?;
        *last = (cp.seq, changes);
        *self.shared.checkpointed_at.lock() = std::time::Instant::now();
        tracing::debug!(
            seq = cp.seq,
            collections = cp.collections.len(),
            clean,
            "catalog checkpoint written"
        );
        Ok(true)
    }

    /// Writes a checkpoint when the catalog changed and `checkpoint_interval` has passed.
    async fn checkpoint_when_due(&self) {
        let due =
            self.shared.checkpointed_at.lock().elapsed() >= self.shared.config.checkpoint_interval;
        if due && let Err(e) = self.write_checkpoint(false).await {
            tracing::warn!(error = %e, "could not write the catalog checkpoint; will try again");
        }
    }

    /// After a start from a checkpoint that was not clean: brings every closed collection's
    /// summary up to date with its newest manifest, a few at a time, in the background.
    fn spawn_reconciliation(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let entries = engine.shared.catalog.entries();
            let env = engine.shared.env.clone();
            let updated = futures::stream::iter(entries)
                .map(|e| {
                    let env = env.clone();
                    async move {
                        match e.reconcile(&env).await {
                            Ok(changed) => changed,
                            Err(err) => {
                                tracing::warn!(collection = %e.def().name, error = %err, "could not bring a summary up to date; it is when the collection is opened");
                                false
                            }
                        }
                    }
                })
                .buffer_unordered(RECONCILE_CONCURRENCY)
                .filter(|changed| futures::future::ready(*changed))
                .count()
                .await;
            if updated > 0 {
                engine.note_change();
            }
            tracing::info!(
                updated,
                secs = started.elapsed().as_secs_f64(),
                "catalog summaries reconciled with the object store"
            );
        });
    }

    /// Whether the engine can serve requests.
    pub fn is_ready(&self) -> bool {
        !self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// The open collections (closed ones have nothing to flush, index or move).
    fn ready_collections(&self) -> Vec<Arc<Collection>> {
        self.shared.catalog.open_collections()
    }

    fn wake_indexer(&self) {
        let (flag, cv) = &*self.shared.index_signal;
        *flag.lock() = true;
        cv.notify_one();
    }

    fn spawn_indexer(&self) {
        let weak = Arc::downgrade(&self.shared);
        let signal = self.shared.index_signal.clone();
        std::thread::Builder::new()
            .name("akidb-indexer".into())
            .spawn(move || {
                loop {
                    let Some(shared) = weak.upgrade() else { return };
                    if shared.shutting_down.load(Ordering::Acquire) {
                        return;
                    }
                    let engine = Engine { shared };
                    let chunk = engine.shared.config.index_chunk;
                    let mut did = 0;
                    for c in engine.ready_collections() {
                        did += c.index_some(chunk);
                    }
                    drop(engine);
                    if did == 0 {
                        let (flag, cv) = &*signal;
                        let mut pending = flag.lock();
                        if !*pending {
                            cv.wait_for(&mut pending, Duration::from_millis(500));
                        }
                        *pending = false;
                    }
                }
            })
            .expect("spawn indexer thread");
    }

    /// The tiering task: carries out WAL replays that wait (collections with unflushed
    /// records at start are loaded at once), sweeps orphans once, then every `interval` runs
    /// the policy and compaction (when tiering is enabled), closes cold collections and writes
    /// the catalog checkpoint when it is due.
    fn spawn_tiering(&self) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let Some(engine) = weak.upgrade().map(|shared| Engine { shared }) else {
                return;
            };
            engine.replay_pending_wals("wal_replay").await;
            let grace = engine.shared.config.tiering.orphan_grace;
            if let Err(e) = engine.sweep_orphans(grace).await {
                tracing::warn!(error = %e, "orphan sweep failed");
            }
            let interval = engine.shared.config.tiering.interval;
            drop(engine);
            every(weak, interval, |engine| async move {
                if engine.shared.config.tiering.enabled {
                    engine.run_tiering_once().await;
                    engine.compact_where_due().await;
                }
                // Housekeeping that is not policy: it runs with tiering off too.
                engine.close_cold(now_ms());
                engine.checkpoint_when_due().await;
            })
            .await;
        });
    }

    fn spawn_flusher(&self) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(every(
            weak,
            Duration::from_millis(500),
            |engine| async move {
                let cfg = &engine.shared.config;
                engine.recover_poisoned_wals().await;
                for c in engine.ready_collections() {
                    // A dead-lettered collection waits for an explicit re-drive.
                    if engine.shared.dlq.contains(&c.def().id) {
                        continue;
                    }
                    if c.flush_due(cfg.flush_max_docs, cfg.flush_idle, cfg.flush_max_age)
                        && let Err(e) = engine.flush_collection(&c).await
                    {
                        tracing::warn!(collection = %c.def().name, error = %e, "background flush failed; will try again");
                    }
                }
            },
        ));
    }
}

impl Engine {
    /// Loads the collections whose WALs hold records past their manifests (after a start or a
    /// WAL recovery), so that they serve, and their writes apply, at once.
    async fn replay_pending_wals(&self, reason: &str) {
        for c in self.ready_collections() {
            if !c.has_pending_wal() {
                continue;
            }
            let Some(entry) = self.shared.catalog.by_id(&c.def().id) else {
                continue;
            };
            if let Err(e) = self.move_collection(&entry, &c, Tier::Hot, reason).await {
                tracing::error!(collection = %c.def().name, error = %e, "could not load a collection to replay its wal");
            }
        }
    }

    /// Re-reads from disk every WAL an fsync failure poisoned, then reloads its collection.
    async fn recover_poisoned_wals(&self) {
        let mut recovered = false;
        for c in self.ready_collections() {
            if !c.wal_poisoned() {
                continue;
            }
            match c.recover_wal().await {
                Ok(()) => recovered = true,
                Err(e) => {
                    tracing::error!(collection = %c.def().name, error = %e, "wal recovery failed; will try again");
                    if let (EngineError::Wal(crate::wal::WalError::Corrupted { .. }), Some(entry)) =
                        (&e, self.shared.catalog.by_id(&c.def().id))
                    {
                        entry.mark_failed(&e.to_string());
                    }
                }
            }
        }
        if recovered {
            self.replay_pending_wals("wal_recovery").await;
        }
    }
}

/// Runs `work` every `period` (delaying, not bursting, after a slow run) until the engine is
/// dropped or shuts down.
async fn every<F, Fut>(weak: std::sync::Weak<Shared>, period: Duration, mut work: F)
where
    F: FnMut(Engine) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = weak.upgrade() else { return };
        if shared.shutting_down.load(Ordering::Acquire) {
            return;
        }
        work(Engine { shared }).await;
    }
}

/// Closed collections whose summaries are reconciled at once after a start from a checkpoint
/// that was not clean.
const RECONCILE_CONCURRENCY: usize = 16;

/// A hot collection is compacted when at least this many of its slots are dead (replaced or
/// deleted documents) ...
pub const COMPACT_MIN_DEAD: usize = 1_000;
/// ... and they are at least this share of all its slots: memory and segment space are then
/// at most double what the live documents need.
pub const COMPACT_DEAD_FRACTION: f64 = 0.5;

/// Metadata of a document, for responses.
pub fn metadata_value(m: Option<Metadata>) -> Value {
    m.map_or(Value::Null, Value::Object)
}
