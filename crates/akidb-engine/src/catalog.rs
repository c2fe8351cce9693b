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
//! The object store is the source of truth: `collections/` is listed, and for each id the delete
//! marker and the newest manifest are read (64 collections at a time). Local directories are
//! then matched against that list:
//! - an id the store lists: opened (its WAL may hold records to replay, or it has warm copies);
//! - an id the store does not know: never deleted. Its directory is moved to
//!   `<data dir>/quarantine/<id>` when its WAL holds data (reported in the log and in
//!   `/metrics`), removed when it holds none; a later start against a store that lists the id
//!   moves it back. (A start against the wrong or an empty store used to delete every WAL.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use parking_lot::{Mutex, RwLock};

use crate::collection::{AccessSnapshot, Collection, CollectionInfo, Env, TierInfo, now_ms};
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest, manifest_path, tombstone_path};
use crate::tier::Tier;
use crate::upload::Uploader;
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
            _ => None.ok_or_else(|| EngineError::CollectionNotFound(self.def.name.clone()))?,
        };
        let path = manifest_path(&self.def.id, summary.manifest_version);
        let store = env.uploader.store().clone();
        let data = env
            .uploader
            .read(|| async { store.get(&path).await?.bytes().await })
            .await
            .map_err(|e| match e {
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

/// Collections whose manifests are read at once on start (restart time grows with
/// collections / this × two object-store round trips, never with data).
const CATALOG_CONCURRENCY: usize = 64;

/// Reads the catalog from the object store and matches local directories against it (see the
/// module docs). Returns the catalog and how many directories are in quarantine.
pub(crate) async fn load(env: &Arc<Env>) -> Result<(Catalog, usize), EngineError> {
    let uploader = &env.uploader;
    let store = uploader.store().clone();
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
    let local_root = &env.collections_dir;
    let quarantine_root = quarantine_dir(local_root);
    let local: HashSet<String> = list_dirs(local_root);
    let quarantined: HashSet<String> = list_dirs(&quarantine_root);
    let opened: Vec<Option<Arc<Entry>>> = futures::stream::iter(ids)
        .map(|id| {
            let env = env.clone();
            let has_local = local.contains(&id);
            let in_quarantine = quarantined.contains(&id);
            async move { open_entry(env, id, has_local, in_quarantine).await }
        })
        .buffer_unordered(CATALOG_CONCURRENCY)
        .try_collect()
        .await?;
    let mut known: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
    for e in opened.into_iter().flatten() {
        known.insert(e.id().to_string());
        entries.push(e);
    }
    for id in local.iter().filter(|id| !known.contains(*id)) {
        set_aside(local_root, &quarantine_root, id);
    }
    let in_quarantine = list_dirs(&quarantine_root).len();
    if in_quarantine > 0 {
        tracing::error!(
            directories = in_quarantine,
            dir = %quarantine_root.display(),
            "collections in quarantine: local data that this object store does not know (was the server started against another store?). Start against the store that holds them and they are restored."
        );
    }
    let catalog = Catalog::new(entries);
    // Loading parsed every manifest on many threads: give the freed memory back, so that the
    // RSS shows what the catalog holds.
    crate::collection::release_free_memory();
    tracing::info!(collections = catalog.len(), "catalog loaded");
    Ok((catalog, in_quarantine))
}

/// `<data dir>/quarantine`, beside `<data dir>/collections`.
pub(crate) fn quarantine_dir(collections_dir: &Path) -> PathBuf {
    collections_dir
        .parent()
        .unwrap_or(collections_dir)
        .join("quarantine")
}

fn list_dirs(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a collection directory's WAL holds any byte.
fn wal_holds_data(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("wal"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        })
        .unwrap_or(false)
}

/// A local directory the store does not know: quarantined if its WAL holds data, else removed.
fn set_aside(local_root: &Path, quarantine_root: &Path, id: &str) {
    let dir = local_root.join(id);
    if !wal_holds_data(&dir) {
        tracing::info!(dir = %dir.display(), "removing a local directory with no WAL data that the object store does not know");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut target = quarantine_root.join(id);
    if target.exists() {
        target = quarantine_root.join(format!("{id}-{}", now_ms()));
    }
    let moved =
        std::fs::create_dir_all(quarantine_root).and_then(|()| std::fs::rename(&dir, &target));
    match moved {
        Ok(()) => tracing::error!(
            collection_id = %id,
            moved_to = %target.display(),
            "the object store does not know this collection, but its local WAL holds data: quarantined, not deleted"
        ),
        Err(e) => tracing::error!(
            collection_id = %id, dir = %dir.display(), error = %e,
            "the object store does not know this collection and it could not be quarantined; left in place"
        ),
    }
}

async fn open_entry(
    env: Arc<Env>,
    id: String,
    has_local: bool,
    in_quarantine: bool,
) -> Result<Option<Arc<Entry>>, EngineError> {
    let uploader = &env.uploader;
    let store = uploader.store().clone();
    let dir = env.collections_dir.join(&id);
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
        purge_collection(uploader, &dir, &id).await?;
        return Ok(None);
    }
    let Some(path) = newest.map_err(unavailable)? else {
        return Ok(None);
    };
    if in_quarantine && !has_local {
        let from = quarantine_dir(&env.collections_dir).join(&id);
        match std::fs::rename(&from, &dir) {
            Ok(()) => {
                tracing::warn!(collection_id = %id, "restored a quarantined collection directory: this object store knows it")
            }
            Err(e) => {
                tracing::error!(collection_id = %id, error = %e, "could not restore a quarantined collection directory")
            }
        }
    }
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
            return Ok(Some(Entry::failed(
                CollectionDef::unknown(&id),
                e.to_string(),
            )));
        }
    };
    if !dir.exists() {
        let def = Arc::new(manifest.collection.clone());
        return Ok(Some(Entry::new(
            def,
            Slot::Closed(Summary::of(&manifest, AccessSnapshot::now())),
        )));
    }
    let def = manifest.collection.clone();
    match Collection::open(manifest, env.clone(), None).await {
        Ok(c) => Ok(Some(Entry::open_entry(c))),
        Err(e) => {
            tracing::error!(collection = %def.name, id = %def.id, error = %e, "collection failed to open; it is unavailable until repaired");
            Ok(Some(Entry::failed(def, e.to_string())))
        }
    }
}

fn unavailable(e: RetryError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// Objects deleted at once when a collection is purged.
const PURGE_CONCURRENCY: usize = 16;

/// Deletes every object of a collection and its local directory, then its delete marker. The
/// marker goes last, and only once a listing shows nothing else is left under the prefix, so a
/// crash anywhere leaves the marker for the next start to finish the job.
pub(crate) async fn purge_collection(
    uploader: &Uploader,
    local_dir: &Path,
    id: &str,
) -> Result<(), EngineError> {
    let prefix = crate::manifest::collection_prefix(id);
    let marker = tombstone_path(id);
    loop {
        let paths: Vec<ObjectPath> = uploader
            .list(&prefix)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|p| *p != marker)
            .collect();
        if paths.is_empty() {
            break;
        }
        // Manifests first, so no reader can find one naming a deleted segment.
        let (manifests, rest): (Vec<_>, Vec<_>) = paths
            .into_iter()
            .partition(|p| p.as_ref().contains("/manifest/"));
        for group in [manifests, rest] {
            futures::stream::iter(group)
                .map(|path| async move { uploader.delete(&path).await })
                .buffer_unordered(PURGE_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .map_err(unavailable)?;
        }
    }
    match tokio::fs::remove_dir_all(local_dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    uploader.delete(&marker).await.map_err(unavailable)?;
    Ok(())
}
