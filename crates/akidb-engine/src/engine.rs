//! The engine: the catalog of collections and the background work that serves them.
//!
//! # Catalog
//! The object store is the catalog: a collection exists when
//! `collections/<id>/manifest/` holds a manifest and `collections/<id>/DELETED` does not. On
//! start the engine lists collections, reads each newest manifest and replays each local WAL.
//! A collection that fails to open (a corrupt WAL or segment) is kept in the catalog as
//! unavailable, with its reason; every other collection serves normally.
//!
//! # Background work
//! - The indexer thread inserts newly written vectors into each collection's HNSW graph, a small
//!   chunk at a time so that searches and writes are never blocked for long.
//! - The flusher task seals unflushed data into Parquet segments when a collection passes
//!   `flush_max_docs`, has been idle for `flush_idle`, or has held unflushed data for
//!   `flush_max_age`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use akidb_core::types::{
    MAX_METADATA_BYTES, ValidationError, prepare_vector, validate_collection_name,
    validate_dimension, validate_doc_id,
};
use akidb_core::{HnswParams, Metric};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::Value;

use crate::collection::{
    Collection, CollectionInfo, FlushError, Hit, SearchRequest, TierInfo, now_ms,
};
use crate::doc::{Document, Metadata, Operation};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::manifest::{CollectionDef, Manifest, collection_prefix, tombstone_path};
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::{S3Options, open_store};
use crate::tier::{MoveStats, PolicyConfig, Tier, policy};
use crate::upload::dlq::{DeadLetter, Dlq};
use crate::upload::{UploadConfig, Uploader};
use crate::wal::WalStats;

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
            test_faults: None,
        }
    }
}

/// A catalog entry: a collection that serves, or one that failed to open and says why.
#[derive(Clone)]
enum Entry {
    Ready(Arc<Collection>),
    Failed {
        def: Box<CollectionDef>,
        reason: String,
    },
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

/// One row of the collection list: a collection's summary, or why it is unavailable.
#[derive(Debug, Clone)]
pub enum CollectionStatus {
    Ready(CollectionInfo),
    Failed { def: CollectionDef, reason: String },
}

struct Shared {
    config: EngineConfig,
    store: Arc<dyn ObjectStore>,
    uploader: Arc<Uploader>,
    dlq: Dlq,
    catalog: RwLock<HashMap<String, Entry>>,
    /// Serialises create and delete.
    admin: tokio::sync::Mutex<()>,
    wal_stats: Arc<WalStats>,
    shutting_down: AtomicBool,
    /// Wakes the indexer when there is new work.
    index_signal: (Mutex<bool>, Condvar),
    tier_moves: Arc<MoveStats>,
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
        let mut store = open_store(&url, &config.s3)?;
        if let Some(f) = &config.test_faults {
            tracing::warn!(
                latency_ms = f.latency.as_millis() as u64,
                fail_rate = f.fail_rate,
                seed = f.seed,
                "TESTING ONLY: object-store faults are injected"
            );
            let faulty = FaultyStore::new(store);
            faulty.set_history_limit(10_000);
            faulty.set_latency(f.latency);
            faulty.fail_randomly(f.fail_rate, Fault::SLOW_DOWN, &[], f.seed);
            store = Arc::new(faulty);
        }
        Engine::open_with_store(config, store).await
    }

    /// Opens the engine over a store built by the caller (tests wrap stores in `FaultyStore`).
    pub async fn open_with_store(
        config: EngineConfig,
        store: Arc<dyn ObjectStore>,
    ) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(config.data_dir.join("collections"))?;
        let wal_stats = Arc::new(WalStats::default());
        let uploader = Arc::new(Uploader::new(store.clone(), config.upload.clone()));
        let dlq = Dlq::open(&config.data_dir)?;
        let tier_moves = Arc::new(MoveStats::default());
        let catalog = load_catalog(&config, &uploader, &wal_stats, &tier_moves).await?;
        let shared = Arc::new(Shared {
            config,
            store,
            uploader,
            dlq,
            catalog: RwLock::new(catalog),
            admin: tokio::sync::Mutex::new(()),
            wal_stats,
            shutting_down: AtomicBool::new(false),
            index_signal: (Mutex::new(true), Condvar::new()),
            tier_moves,
        });
        let engine = Engine { shared };
        engine.spawn_indexer();
        if engine.shared.config.background_flush {
            engine.spawn_flusher();
        }
        engine.spawn_tiering();
        Ok(engine)
    }

    pub fn wal_stats(&self) -> &WalStats {
        &self.shared.wal_stats
    }

    pub fn object_store_url(&self) -> String {
        self.shared.store.to_string()
    }

    fn collection(&self, name: &str) -> Result<Arc<Collection>, EngineError> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        match self.shared.catalog.read().get(name) {
            Some(Entry::Ready(c)) => Ok(c.clone()),
            Some(Entry::Failed { reason, .. }) => Err(EngineError::CollectionUnavailable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
            None => Err(EngineError::CollectionNotFound(name.to_string())),
        }
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
        if self.shared.catalog.read().contains_key(&req.name) {
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
        let dir = self.collection_dir(&def.id);
        let body =
            bytes::Bytes::from(serde_json::to_vec_pretty(&manifest).expect("manifest serializes"));
        self.shared
            .uploader
            .put_create_only(
                &crate::manifest::manifest_path(&def.id, manifest.version),
                body,
            )
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!(
                    "could not store the new collection's manifest: {e}"
                ))
            })?;
        let collection = Collection::open(
            manifest,
            dir,
            self.shared.uploader.clone(),
            self.shared.wal_stats.clone(),
            self.shared.tier_moves.clone(),
        )
        .await?;
        collection.move_to(Tier::Hot, self.flush_rows()).await?;
        let info = collection.info(self.window_ms());
        self.shared
            .catalog
            .write()
            .insert(req.name.clone(), Entry::Ready(collection));
        tracing::info!(collection = %def.name, id = %def.id, dimension = def.dimension, metric = %def.metric, "created collection");
        Ok(info)
    }

    fn collection_dir(&self, id: &str) -> PathBuf {
        self.shared.config.data_dir.join("collections").join(id)
    }

    pub fn list_collections(&self) -> Vec<CollectionStatus> {
        let catalog = self.shared.catalog.read();
        let mut out: Vec<CollectionStatus> = catalog
            .values()
            .map(|entry| match entry {
                Entry::Ready(c) => CollectionStatus::Ready(c.info(self.window_ms())),
                Entry::Failed { def, reason } => CollectionStatus::Failed {
                    def: (**def).clone(),
                    reason: reason.clone(),
                },
            })
            .collect();
        out.sort_by(|a, b| status_name(a).cmp(status_name(b)));
        out
    }

    /// A collection's summary. One whose WAL still waits to be replayed after a restart is
    /// loaded first, so the counts are exact (the list shows its flushed counts meanwhile).
    pub async fn collection_info(&self, name: &str) -> Result<CollectionInfo, EngineError> {
        let c = self.collection(name)?;
        if c.has_pending_wal() {
            self.move_collection(&c, Tier::Hot, "wal_replay").await?;
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
    fn note_failure(&self, c: &Collection, e: EngineError) -> EngineError {
        if matches!(e, EngineError::Corrupted(_) | EngineError::Segment(_)) {
            tracing::error!(collection = %c.def().name, error = %e, "collection data is damaged; it is unavailable until repaired");
            let mut catalog = self.shared.catalog.write();
            if let Some(entry @ Entry::Ready(_)) = catalog.get_mut(&c.def().name) {
                *entry = Entry::Failed {
                    def: Box::new(c.def().clone()),
                    reason: e.to_string(),
                };
            }
            return EngineError::CollectionUnavailable {
                name: c.def().name.clone(),
                reason: e.to_string(),
            };
        }
        e
    }

    /// Where a collection's data is.
    pub fn tier_info(&self, name: &str) -> Result<TierInfo, EngineError> {
        Ok(self.collection(name)?.tier_info(self.window_ms()))
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
        let c = self.collection(name)?;
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
            self.move_collection(&c, t, "manual").await?;
        }
        match action {
            TierAction::Pin => c.set_pinned(true).await?,
            TierAction::Unpin => c.set_pinned(false).await?,
            _ => {}
        }
        Ok(c.tier_info(self.window_ms()))
    }

    /// Moves a collection and records the move.
    async fn move_collection(
        &self,
        c: &Collection,
        target: Tier,
        reason: &str,
    ) -> Result<(), EngineError> {
        let from = c
            .move_to(target, self.flush_rows())
            .await
            .map_err(|e| self.note_failure(c, e))?;
        if from != target {
            tracing::debug!(collection = %c.def().name, %from, to = %target, reason, "tier move reason");
        }
        Ok(())
    }

    /// Counts and bytes per tier.
    pub fn tier_totals(&self) -> Vec<(Tier, TierTotals)> {
        let mut totals = [Tier::Hot, Tier::Warm, Tier::Cold].map(|t| (t, TierTotals::default()));
        for c in self.ready_collections() {
            let info = c.tier_info(self.window_ms());
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
            moves: self.shared.tier_moves.snapshot(),
        }
    }

    /// Runs the tiering policy once and carries out its plan; returns the moves made.
    pub async fn run_tiering_once(&self) -> Vec<policy::Move> {
        self.run_tiering_once_with(&self.shared.config.tiering.policy.clone())
            .await
    }

    /// [`Engine::run_tiering_once`] with other rules (tests, what-if tools).
    pub async fn run_tiering_once_with(&self, rules: &PolicyConfig) -> Vec<policy::Move> {
        let usage: Vec<_> = self.ready_collections().iter().map(|c| c.usage()).collect();
        let plan = policy::plan(&usage, rules, now_ms());
        let mut done = Vec::new();
        for mv in plan {
            let Ok(c) = self.collection(&mv.name) else {
                continue;
            };
            match self.move_collection(&c, mv.to, mv.reason.as_str()).await {
                Ok(()) => done.push(mv),
                Err(e) => {
                    tracing::warn!(collection = %mv.name, to = %mv.to, error = %e, "tier move failed; will try again")
                }
            }
        }
        done
    }

    /// Compacts a collection now (see [`Collection::compact`]); returns the slots removed.
    pub async fn compact(&self, name: &str) -> Result<usize, EngineError> {
        let c = self.collection(name)?;
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

    /// Deletes a collection and all its data, locally and in the object store.
    pub async fn delete_collection(&self, name: &str) -> Result<(), EngineError> {
        let _admin = self.shared.admin.lock().await;
        let def = match self.shared.catalog.read().get(name) {
            Some(Entry::Ready(c)) => c.def().clone(),
            Some(Entry::Failed { def, .. }) => (**def).clone(),
            None => return Err(EngineError::CollectionNotFound(name.to_string())),
        };
        // The marker first: if we crash below, the next start finishes the delete.
        self.shared
            .store
            .put(&tombstone_path(&def.id), PutPayload::from_static(b"{}"))
            .await?;
        self.shared.catalog.write().remove(name);
        purge_collection(&self.shared.store, &self.collection_dir(&def.id), &def.id).await?;
        tracing::info!(collection = %name, id = %def.id, "deleted collection");
        Ok(())
    }

    /// Refuses a write while unflushed WAL is at the local budget.
    fn check_wal_budget(&self) -> Result<(), EngineError> {
        let wal_bytes = self.shared.wal_stats.live_bytes.load(Ordering::Relaxed);
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
        let collection = self.collection(name)?;
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
        self.touch(&collection);
        collection
            .write(self.flush_rows(), move |c, _tier| {
                c.apply_durably(Operation::Upsert(prepared))
            })
            .await
            .map_err(|e| self.note_failure(&collection, e))?;
        self.wake_indexer();
        Ok(ids)
    }

    /// Durably deletes documents by id; returns how many existed.
    pub async fn delete_documents(
        &self,
        name: &str,
        ids: Vec<String>,
    ) -> Result<usize, EngineError> {
        let collection = self.collection(name)?;
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
            .map_err(|e| self.note_failure(&collection, e))
    }

    pub async fn get_document(&self, name: &str, id: &str) -> Result<Document, EngineError> {
        let collection = self.collection(name)?;
        let promote = self.touch(&collection);
        let key = id.to_string();
        collection
            .read(promote, self.flush_rows(), move |c, state| {
                c.get_in(state, &key)
            })
            .await
            .map_err(|e| self.note_failure(&collection, e))?
            .ok_or_else(|| EngineError::DocumentNotFound {
                collection: name.to_string(),
                id: id.to_string(),
            })
    }

    pub async fn search(&self, name: &str, query: SearchQuery) -> Result<Vec<Hit>, EngineError> {
        let collection = self.collection(name)?;
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
            .map_err(|e| self.note_failure(&collection, e))
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
                .ready_collections()
                .into_iter()
                .find(|c| c.def().id == entry.collection_id);
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
        &self.shared.uploader
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
    }

    /// Whether the engine can serve requests.
    pub fn is_ready(&self) -> bool {
        !self.shared.shutting_down.load(Ordering::Acquire)
    }

    fn ready_collections(&self) -> Vec<Arc<Collection>> {
        self.shared
            .catalog
            .read()
            .values()
            .filter_map(|e| match e {
                Entry::Ready(c) => Some(c.clone()),
                Entry::Failed { .. } => None,
            })
            .collect()
    }

    fn wake_indexer(&self) {
        let (flag, cv) = &self.shared.index_signal;
        *flag.lock() = true;
        cv.notify_one();
    }

    fn spawn_indexer(&self) {
        let weak = Arc::downgrade(&self.shared);
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
                    if did == 0 {
                        let (flag, cv) = &engine.shared.index_signal;
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
    /// records at start are loaded at once), sweeps orphans once, then runs the policy every
    /// `interval`.
    fn spawn_tiering(&self) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let Some(engine) = weak.upgrade().map(|shared| Engine { shared }) else {
                return;
            };
            for c in engine.ready_collections() {
                if c.has_pending_wal()
                    && let Err(e) = engine.move_collection(&c, Tier::Hot, "wal_replay").await
                {
                    tracing::error!(collection = %c.def().name, error = %e, "could not load a collection to replay its wal");
                }
            }
            let grace = engine.shared.config.tiering.orphan_grace;
            if let Err(e) = engine.sweep_orphans(grace).await {
                tracing::warn!(error = %e, "orphan sweep failed");
            }
            let interval = engine.shared.config.tiering.interval;
            if engine.shared.config.tiering.enabled {
                drop(engine);
                every(weak, interval, |engine| async move {
                    engine.run_tiering_once().await;
                    engine.compact_where_due().await;
                })
                .await;
            }
        });
    }

    fn spawn_flusher(&self) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(every(
            weak,
            Duration::from_millis(500),
            |engine| async move {
                let cfg = &engine.shared.config;
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

fn status_name(s: &CollectionStatus) -> &str {
    match s {
        CollectionStatus::Ready(info) => &info.def.name,
        CollectionStatus::Failed { def, .. } => &def.name,
    }
}

/// Deletes every object of a collection (the DELETED marker last) and its local directory.
async fn purge_collection(
    store: &Arc<dyn ObjectStore>,
    local_dir: &Path,
    id: &str,
) -> Result<(), EngineError> {
    let prefix = collection_prefix(id);
    let marker = tombstone_path(id);
    let paths: Vec<ObjectPath> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_filter(|p| futures::future::ready(*p != marker))
        .try_collect()
        .await?;
    // Manifests first, so no reader can find one naming a deleted segment.
    let (manifests, rest): (Vec<_>, Vec<_>) = paths
        .into_iter()
        .partition(|p| p.as_ref().contains("/manifest/"));
    for path in manifests.iter().chain(rest.iter()) {
        match store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match tokio::fs::remove_dir_all(local_dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    store.delete(&marker).await?;
    Ok(())
}

/// A hot collection is compacted when at least this many of its slots are dead (replaced or
/// deleted documents) ...
pub const COMPACT_MIN_DEAD: usize = 1_000;
/// ... and they are at least this share of all its slots: memory and segment space are then
/// at most double what the live documents need.
pub const COMPACT_DEAD_FRACTION: f64 = 0.5;

/// Collections whose manifests are read at once on start (restart time grows with
/// collections / this × two object-store round trips, never with data).
const CATALOG_CONCURRENCY: usize = 64;

/// Reads the catalog from the object store: one entry per collection with a manifest.
async fn load_catalog(
    config: &EngineConfig,
    uploader: &Arc<Uploader>,
    wal_stats: &Arc<WalStats>,
    moves: &Arc<MoveStats>,
) -> Result<HashMap<String, Entry>, EngineError> {
    let store = uploader.store();
    let root = ObjectPath::from("collections");
    let listing = uploader
        .read(|| store.list_with_delimiter(Some(&root)))
        .await
        .map_err(unavailable)?;
    let ids: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    let local_root = config.data_dir.join("collections");
    let opened: Vec<Option<Entry>> = futures::stream::iter(ids.clone())
        .map(|id| {
            let uploader = uploader.clone();
            let dir = local_root.join(&id);
            let wal_stats = wal_stats.clone();
            let moves = moves.clone();
            async move { open_entry(uploader, dir, id, wal_stats, moves).await }
        })
        .buffer_unordered(CATALOG_CONCURRENCY)
        .try_collect()
        .await?;
    let mut catalog = HashMap::new();
    for entry in opened.into_iter().flatten() {
        let name = match &entry {
            Entry::Ready(c) => c.def().name.clone(),
            Entry::Failed { def, .. } => def.name.clone(),
        };
        catalog.insert(name, entry);
    }
    // Local directories without a manifest are left by a create that crashed before it was
    // acknowledged; they hold nothing that was promised to anyone.
    if let Ok(dir) = std::fs::read_dir(&local_root) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !ids.contains(&name) {
                tracing::info!(dir = %entry.path().display(), "removing directory of a collection that was never created");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tracing::info!(collections = catalog.len(), "catalog loaded");
    Ok(catalog)
}

async fn open_entry(
    uploader: Arc<Uploader>,
    dir: PathBuf,
    id: String,
    wal_stats: Arc<WalStats>,
    moves: Arc<MoveStats>,
) -> Result<Option<Entry>, EngineError> {
    let store = uploader.store().clone();
    // The delete marker and the newest manifest are read at once: two rounds per collection.
    // Reads are retried like uploads; a store that stays unreachable fails the start, loudly,
    // rather than marking collections unavailable for a transient outage.
    let marker = tombstone_path(&id);
    let (deleted, newest) = tokio::join!(
        uploader.read(|| store.head(&marker)),
        uploader.read(|| Manifest::newest_path(&store, &id))
    );
    if deleted.is_ok() {
        tracing::info!(id = %id, "finishing an interrupted collection delete");
        purge_collection(&store, &dir, &id).await?;
        return Ok(None);
    }
    let Some(path) = newest.map_err(unavailable)? else {
        return Ok(None);
    };
    let data = uploader
        .read(|| async { store.get(&path).await?.bytes().await })
        .await
        .map_err(unavailable)?;
    let manifest = match Manifest::parse(&path, &data) {
        Ok(manifest) => manifest,
        Err(e) => {
            // Without a readable manifest we do not know the collection's name: list it under
            // its id so that it is visible, loudly, rather than silently missing.
            tracing::error!(id = %id, error = %e, "collection manifest unreadable; it is unavailable until repaired");
            let def = CollectionDef {
                id: id.clone(),
                name: id.clone(),
                dimension: 0,
                metric: Metric::Cosine,
                index: HnswParams::default(),
                created_at_ms: 0,
            };
            return Ok(Some(Entry::Failed {
                def: Box::new(def),
                reason: e.to_string(),
            }));
        }
    };
    let def = manifest.collection.clone();
    match Collection::open(manifest, dir, uploader, wal_stats, moves).await {
        Ok(c) => Ok(Some(Entry::Ready(c))),
        Err(e) => {
            tracing::error!(collection = %def.name, id = %def.id, error = %e, "collection failed to open; it is unavailable until repaired");
            Ok(Some(Entry::Failed {
                def: Box::new(def),
                reason: e.to_string(),
            }))
        }
    }
}

fn unavailable(e: crate::upload::retry::RetryError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// Metadata of a document, for responses.
pub fn metadata_value(m: Option<Metadata>) -> Value {
    m.map_or(Value::Null, Value::Object)
}
