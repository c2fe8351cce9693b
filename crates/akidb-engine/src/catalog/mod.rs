//! The catalog: every collection, keyed by its id, with an index by name.
//!
//! # Ids, not names
//! A name can be deleted and created again; the id (a UUIDv7 fixed at creation, from which every
//! storage path derives) never is. So the catalog is keyed by id, and the name index points at
//! the one collection that owns each name. If the object store ever holds two live collections
//! with one name (it should not: see [`crate::engine`]'s delete), the one created last owns the
//! name and the other is listed as unavailable under its id, loudly, rather than one of the two
//! silently winning.
//!
//! # Open and closed entries
//! An [`Entry`] is always in memory; the [`Collection`] behind it only while it is open. A cold
//! collection with nothing in its WAL is *closed*: only its definition and a [`Summary`] stay
//! (a few hundred bytes), no file descriptor, no lock, no task. The first request opens it again
//! (one read of its manifest); the tiering task closes cold collections once idle. A restart
//! opens only the collections that have local files.
//!
//! # Loading (start)
//! See [`load`]: a few listings, the newest catalog [`checkpoint`], and one manifest per
//! collection that was active; local directories the store does not know are quarantined,
//! never deleted.

pub(crate) mod checkpoint;
mod load;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use self::checkpoint::CheckpointEntry;
pub(crate) use self::load::{load, purge_collection};
use crate::collection::{AccessSnapshot, Collection, CollectionInfo, Env, TierInfo, now_ms};
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest, manifest_path};
use crate::tier::Tier;
use crate::upload::retry::RetryError;

/// What a closed (cold, idle, empty-WAL) collection keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub manifest_version: u64,
    pub documents: u64,
    pub segments: u32,
    pub object_bytes: u64,
    pub pinned: bool,
    pub access: AccessSnapshot,
    /// False when it came from a catalog checkpoint that was not clean: the newest manifest
    /// may be newer than `manifest_version`, so opening looks it up.
    pub verified: bool,
}

impl Summary {
    pub fn of(m: &Manifest, access: AccessSnapshot) -> Summary {
        Summary {
            manifest_version: m.version,
            documents: m.documents,
            segments: m.segments.len() as u32,
            object_bytes: m.object_bytes(),
            pinned: m.pinned,
            access,
            verified: true,
        }
    }
}

enum Slot {
    Closed(Summary),
    Open(Arc<Collection>),
    /// It cannot serve (damaged data, a name conflict); the reason says why.
    Failed(Arc<str>),
    /// Deleted: requests that still hold the entry find nothing.
    Deleted,
}

/// One collection of the catalog (see the module docs).
pub(crate) struct Entry {
    def: Arc<CollectionDef>,
    slot: Mutex<Slot>,
    /// Serialises opening (and the delete fence) for this entry.
    opening: tokio::sync::Mutex<()>,
}

/// A collection's row in the list: its summary, or why it is unavailable.
#[derive(Debug, Clone)]
pub enum CollectionStatus {
    Ready(CollectionInfo),
    Failed { def: CollectionDef, reason: String },
}

impl Entry {
    fn new(def: Arc<CollectionDef>, slot: Slot) -> Arc<Entry> {
        Arc::new(Entry {
            def,
            slot: Mutex::new(slot),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    pub fn open_entry(c: Arc<Collection>) -> Arc<Entry> {
        Entry::new(c.def_arc().clone(), Slot::Open(c))
    }

    pub fn failed(def: CollectionDef, reason: impl Into<Arc<str>>) -> Arc<Entry> {
        Entry::new(Arc::new(def), Slot::Failed(reason.into()))
    }

    pub fn def(&self) -> &CollectionDef {
        &self.def
    }

    pub fn id(&self) -> &str {
        &self.def.id
    }

    fn name(&self) -> &str {
        &self.def.name
    }

    /// The open collection, if it is open.
    pub fn if_open(&self) -> Option<Arc<Collection>> {
        match &*self.slot.lock() {
            Slot::Open(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The collection, opened first if it is closed (one read of its manifest).
    pub async fn open(&self, env: &Arc<Env>) -> Result<Arc<Collection>, EngineError> {
        if let Some(c) = self.ready()? {
            return Ok(c);
        }
        let _opening = self.opening.lock().await;
        if let Some(c) = self.ready()? {
            return Ok(c); // opened while we waited
        }
        let summary = match &*self.slot.lock() {
            Slot::Closed(s) => *s,
            // Marked failed or deleted meanwhile.
            _ => return Err(EngineError::CollectionNotFound(self.def.name.clone())),
        };
        let path = if summary.verified {
            manifest_path(&self.def.id, summary.manifest_version)
        } else {
            match Manifest::newest_path(&env.uploader, &self.def.id).await {
                Ok(Some(path)) => path,
                Ok(None) => manifest_path(&self.def.id, summary.manifest_version),
                Err(e) => return Err(EngineError::Unavailable(e.to_string())),
            }
        };
        let data = env.uploader.get(&path).await.map_err(|e| match e {
            RetryError::Permanent {
                source: object_store::Error::NotFound { .. },
                ..
            } => EngineError::Corrupted(format!("{path}, the newest manifest, is missing")),
            e => EngineError::Unavailable(e.to_string()),
        });
        let opened = match data.and_then(|data| Manifest::parse(&path, &data)) {
            Ok(m) => Collection::open(m, env.clone(), Some(summary.access)).await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(c) => {
                *self.slot.lock() = Slot::Open(c.clone());
                Ok(c)
            }
            Err(e @ (EngineError::Corrupted(_) | EngineError::Wal(_))) => {
                tracing::error!(collection = %self.def.name, id = %self.def.id, error = %e, "collection failed to open; it is unavailable until repaired");
                self.mark_failed(&e.to_string());
                Err(self.ready().err().unwrap_or(e))
            }
            Err(e) => Err(e),
        }
    }

    /// `Some` when open, `None` when closed, an error when it cannot serve.
    fn ready(&self) -> Result<Option<Arc<Collection>>, EngineError> {
        match &*self.slot.lock() {
            Slot::Open(c) => Ok(Some(c.clone())),
            Slot::Closed(_) => Ok(None),
            Slot::Failed(reason) => Err(EngineError::CollectionUnavailable {
                name: self.def.name.clone(),
                reason: reason.to_string(),
            }),
            Slot::Deleted => Err(EngineError::CollectionNotFound(self.def.name.clone())),
        }
    }

    /// Brings a closed entry's summary up to date with its newest manifest, if it came from a
    /// checkpoint that was not clean. Returns whether the summary changed.
    pub async fn reconcile(&self, env: &Env) -> Result<bool, EngineError> {
        let _opening = self.opening.lock().await;
        let summary = match &*self.slot.lock() {
            Slot::Closed(s) if !s.verified => *s,
            _ => return Ok(false),
        };
        let newest = Manifest::newest_path(&env.uploader, &self.def.id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let current = manifest_path(&self.def.id, summary.manifest_version);
        let updated = match newest {
            Some(path) if path != current => {
                let data = env
                    .uploader
                    .get(&path)
                    .await
                    .map_err(|e| EngineError::Unavailable(e.to_string()))?;
                Some(Summary::of(&Manifest::parse(&path, &data)?, summary.access))
            }
            _ => None,
        };
        let mut slot = self.slot.lock();
        if let Slot::Closed(s) = &mut *slot {
            match updated {
                Some(new) => *s = new,
                None => s.verified = true,
            }
        }
        Ok(updated.is_some())
    }

    /// What a catalog checkpoint records of this entry (`None` when it cannot serve).
    pub fn checkpoint_entry(&self) -> Option<CheckpointEntry> {
        let summary = match &*self.slot.lock() {
            Slot::Open(c) => c.summary(),
            Slot::Closed(s) => *s,
            Slot::Failed(_) | Slot::Deleted => return None,
        };
        Some(CheckpointEntry {
            def: (*self.def).clone(),
            manifest_version: summary.manifest_version,
            documents: summary.documents,
            segments: summary.segments,
            object_bytes: summary.object_bytes,
            pinned: summary.pinned,
        })
    }

    /// Marks the collection unavailable with `reason` (damaged data found while serving).
    pub fn mark_failed(&self, reason: &str) {
        let mut slot = self.slot.lock();
        if !matches!(*slot, Slot::Deleted) {
            *slot = Slot::Failed(reason.into());
        }
    }

    /// Closes the collection if it is cold, idle and holds nothing in its WAL, and nobody else
    /// holds it at this moment. Returns whether it closed.
    pub fn try_close(&self, now_ms: u64) -> bool {
        let mut slot = self.slot.lock();
        let Slot::Open(c) = &*slot else {
            return false;
        };
        // Clones of the Arc are taken under this lock, so nobody can take one meanwhile.
        if Arc::strong_count(c) > 1 || !c.closable(now_ms) {
            return false;
        }
        let summary = c.summary();
        c.remove_local_dir();
        *slot = Slot::Closed(summary);
        true
    }

    /// Fences a delete: waits for the collection's requests, tier moves and flushes to finish,
    /// then leaves nothing that could write to it again (see `Engine::delete_collection`).
    pub async fn fence_for_delete(&self) {
        let _opening = self.opening.lock().await;
        let slot = std::mem::replace(&mut *self.slot.lock(), Slot::Deleted);
        if let Slot::Open(c) = slot {
            c.fence_for_delete().await;
        }
    }

    /// The collection's row in the list (without opening it).
    pub fn status(&self, window_ms: u64) -> CollectionStatus {
        let slot = self.slot.lock();
        match &*slot {
            Slot::Open(c) => CollectionStatus::Ready(c.info(window_ms)),
            Slot::Closed(s) => CollectionStatus::Ready(closed_info(&self.def, s, window_ms)),
            Slot::Failed(reason) => CollectionStatus::Failed {
                def: (*self.def).clone(),
                reason: reason.to_string(),
            },
            Slot::Deleted => CollectionStatus::Failed {
                def: (*self.def).clone(),
                reason: "deleted".into(),
            },
        }
    }

    /// Documents of a closed collection (`None` when it is open, failed or deleted).
    pub fn closed_documents(&self) -> Option<u64> {
        match &*self.slot.lock() {
            Slot::Closed(s) => Some(s.documents),
            _ => None,
        }
    }

    /// Where the collection's data is (without opening it); `None` when it cannot serve.
    pub fn tier_info(&self, window_ms: u64) -> Option<TierInfo> {
        match &*self.slot.lock() {
            Slot::Open(c) => Some(c.tier_info(window_ms)),
            Slot::Closed(s) => Some(closed_tier(s, window_ms)),
            Slot::Failed(_) | Slot::Deleted => None,
        }
    }
}

fn closed_tier(s: &Summary, window_ms: u64) -> TierInfo {
    let now = now_ms();
    TierInfo {
        tier: Tier::Cold,
        pinned: s.pinned,
        bytes_in_ram: 0,
        bytes_on_disk: 0,
        bytes_in_object_store: s.object_bytes,
        last_access_ms: s.access.last_ms,
        recent_accesses: s
            .access
            .recent
            .iter()
            .filter(|&&t| t > 0 && now.saturating_sub(t) < window_ms)
            .count(),
        promoting: false,
    }
}

fn closed_info(def: &CollectionDef, s: &Summary, window_ms: u64) -> CollectionInfo {
    CollectionInfo {
        def: def.clone(),
        count: s.documents as usize,
        index_pending: 0,
        segments: s.segments as usize,
        manifest_version: s.manifest_version,
        unflushed: 0,
        bytes_in_ram: 0,
        wal_bytes: 0,
        tier: closed_tier(s, window_ms),
    }
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<Arc<str>, Arc<Entry>>,
    /// Name → the entry that owns it, sorted (the list is ordered by name).
    by_name: BTreeMap<Arc<str>, Arc<Entry>>,
}

impl Maps {
    fn insert(&mut self, entry: Arc<Entry>) {
        let id: Arc<str> = Arc::from(entry.id());
        if let Some(owner) = self.by_name.get(entry.name()) {
            // Two live collections claim one name: the later creation owns it.
            let (keep, hide) = if owner.def.created_at_ms >= entry.def.created_at_ms {
                (owner.clone(), entry)
            } else {
                (entry, owner.clone())
            };
            let reason = format!(
                "another collection named {:?} (id {}) was created later and owns the name; this one is listed under its id until it is deleted",
                keep.name(),
                keep.id()
            );
            tracing::error!(name = %keep.name(), kept = %keep.id(), hidden = %hide.id(), "two collections claim one name");
            let mut hidden_def = (*hide.def).clone();
            hidden_def.name = hide.id().to_string();
            let hidden = Entry::failed(hidden_def, reason);
            self.by_name.insert(Arc::from(keep.name()), keep.clone());
            self.by_id.insert(Arc::from(keep.id()), keep);
            self.by_id.insert(Arc::from(hidden.id()), hidden.clone());
            self.by_name.entry(Arc::from(hidden.id())).or_insert(hidden);
            return;
        }
        self.by_name.insert(Arc::from(entry.name()), entry.clone());
        self.by_id.insert(id, entry);
    }
}

/// Every collection; see the module docs.
#[derive(Default)]
pub(crate) struct Catalog {
    maps: RwLock<Maps>,
}

impl Catalog {
    pub fn new(entries: Vec<Arc<Entry>>) -> Catalog {
        let mut maps = Maps::default();
        for e in entries {
            maps.insert(e);
        }
        Catalog {
            maps: RwLock::new(maps),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.maps.read().by_name.get(name).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<Entry>> {
        self.maps.read().by_id.get(id).cloned()
    }

    pub fn contains_name(&self, name: &str) -> bool {
        self.maps.read().by_name.contains_key(name)
    }

    /// Adds a new collection (the caller checked that its name is free).
    pub fn insert(&self, entry: Arc<Entry>) {
        self.maps.write().insert(entry);
    }

    /// Removes an entry (its name becomes free).
    pub fn remove(&self, entry: &Entry) {
        let mut maps = self.maps.write();
        maps.by_id.remove(entry.id());
        if maps
            .by_name
            .get(entry.name())
            .is_some_and(|e| e.id() == entry.id())
        {
            maps.by_name.remove(entry.name());
        }
    }

    /// Every entry, ordered by name.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.maps.read().by_name.values().cloned().collect()
    }

    /// The open collections.
    pub fn open_collections(&self) -> Vec<Arc<Collection>> {
        self.maps
            .read()
            .by_id
            .values()
            .filter_map(|e| e.if_open())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.maps.read().by_id.len()
    }
}
