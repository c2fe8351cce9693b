//! Loading the catalog at start, and purging a deleted collection.
//!
//! The object store is the source of truth. A start lists `collections/` (which ids exist) and
//! `deleted/` (which are being deleted), and reads the newest catalog checkpoint
//! ([`super::checkpoint`]). A collection in the checkpoint with no local directory becomes a
//! closed entry straight from it; any other (new since the checkpoint, or with local files) is
//! read the long way: its newest manifest, and its WAL if it has one. So a start costs a few
//! listings and one object, plus one manifest per collection that was active, whatever the
//! number of collections.
//!
//! Local directories are then matched against the store's list:
//! - an id the store lists: opened (its WAL may hold records to replay, or it has warm copies);
//! - an id the store does not know: never deleted. Its directory is moved to
//!   `<data dir>/quarantine/<id>` when its WAL holds data (reported in the log and in
//!   `/metrics`), removed when it holds none; a later start against a store that lists the id
//!   moves it back. (A start against the wrong or an empty store used to delete every WAL.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;

use super::checkpoint::{self, CheckpointEntry};
use super::{Catalog, Entry, Slot, Summary};
use crate::collection::{AccessSnapshot, Collection, Env, now_ms};
use crate::error::EngineError;
use crate::manifest::{CollectionDef, Manifest, legacy_tombstone_path, tombstone_path};
use crate::upload::Uploader;
use crate::upload::retry::RetryError;

/// Collections read the long way at once on start.
const CATALOG_CONCURRENCY: usize = 64;
/// Objects deleted at once when a collection is purged.
const PURGE_CONCURRENCY: usize = 16;

/// What a start found.
pub(crate) struct Loaded {
    pub catalog: Catalog,
    /// Local collection directories in quarantine.
    pub quarantined: usize,
    /// Closed entries whose summaries came from a checkpoint that was not clean (see
    /// [`Engine`](crate::engine::Engine)'s background reconciliation).
    pub unverified: usize,
    /// The highest checkpoint sequence number in the store.
    pub checkpoint_seq: u64,
}

fn unavailable(e: RetryError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// The last path segment of every entry under `prefix` (one level).
async fn ids_under(uploader: &Uploader, prefix: &str) -> Result<Vec<String>, EngineError> {
    let root = ObjectPath::from(prefix);
    let listing = uploader
        .list_with_delimiter(&root)
        .await
        .map_err(unavailable)?;
    Ok(listing
        .common_prefixes
        .iter()
        .chain(listing.objects.iter().map(|o| &o.location))
        .filter_map(|p| p.filename().map(str::to_string))
        .collect())
}

/// Reads the catalog from the object store and matches local directories against it (see the
/// module docs).
pub(crate) async fn load(env: &Arc<Env>) -> Result<Loaded, EngineError> {
    let uploader = &env.uploader;
    let (ids, deleting, newest) = tokio::try_join!(
        ids_under(uploader, "collections"),
        ids_under(uploader, "deleted"),
        checkpoint::read_newest(uploader),
    )?;
    let (checkpoint, checkpoint_seq) = newest;
    let deleting: HashSet<String> = deleting.into_iter().collect();
    let (from_checkpoint, trusted, used_seq): (HashMap<String, CheckpointEntry>, bool, _) =
        match checkpoint {
            Some((cp, trusted)) => (
                cp.collections
                    .into_iter()
                    .map(|e| (e.def.id.clone(), e))
                    .collect(),
                trusted,
                Some(cp.seq),
            ),
            None => (HashMap::new(), false, None),
        };
    if let (true, Some(seq)) = (trusted, used_seq) {
        // From now on a crash may leave changes this checkpoint does not hold.
        checkpoint::mark_dirty(uploader, seq).await?;
    }
    let local_root = &env.collections_dir;
    let quarantine_root = quarantine_dir(local_root);
    let quarantined: HashSet<String> = list_dirs(&quarantine_root);
    // A local directory with nothing in it (an empty WAL, no copies) holds nothing to open:
    // such a collection is read from the checkpoint like one without a directory.
    let local: HashSet<String> = list_dirs(local_root)
        .into_iter()
        .filter(|id| {
            let dir = local_root.join(id);
            let holds = wal_holds_data(&dir) || dir_has_entries(&dir.join("segments"));
            if !holds && from_checkpoint.contains_key(id) {
                let _ = std::fs::remove_dir_all(&dir);
            }
            holds || !from_checkpoint.contains_key(id)
        })
        .collect();

    let mut entries = Vec::new();
    let mut long_way = Vec::new();
    let mut unverified = 0;
    for id in &ids {
        if deleting.contains(id) {
            continue;
        }
        match from_checkpoint.get(id) {
            Some(e) if !local.contains(id) && !quarantined.contains(id) => {
                unverified += usize::from(!trusted);
                entries.push(Entry::new(
                    Arc::new(e.def.clone()),
                    Slot::Closed(Summary {
                        manifest_version: e.manifest_version,
                        documents: e.documents,
                        segments: e.segments,
                        object_bytes: e.object_bytes,
                        pinned: e.pinned,
                        access: AccessSnapshot::now(),
                        verified: trusted,
                    }),
                ));
            }
            _ => long_way.push(id.clone()),
        }
    }
    let opened: Vec<Option<Arc<Entry>>> = futures::stream::iter(long_way)
        .map(|id| {
            let env = env.clone();
            let has_local = local.contains(&id);
            let in_quarantine = quarantined.contains(&id);
            async move { open_entry(env, id, has_local, in_quarantine).await }
        })
        .buffer_unordered(CATALOG_CONCURRENCY)
        .try_collect()
        .await?;
    entries.extend(opened.into_iter().flatten());
    for id in &deleting {
        tracing::info!(id = %id, "finishing an interrupted collection delete");
        purge_collection(uploader, &local_root.join(id), id).await?;
    }
    let known: HashSet<&str> = entries.iter().map(|e| e.id()).collect();
    for id in local
        .iter()
        .filter(|id| !known.contains(id.as_str()) && !deleting.contains(*id))
    {
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
    // Loading parsed manifests on many threads: give the freed memory back, so that the RSS
    // shows what the catalog holds.
    crate::collection::release_free_memory();
    tracing::info!(
        collections = catalog.len(),
        from_checkpoint = used_seq,
        unverified,
        "catalog loaded"
    );
    Ok(Loaded {
        catalog,
        quarantined: in_quarantine,
        unverified,
        checkpoint_seq,
    })
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

fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
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

/// A collection read the long way: its legacy delete marker, its newest manifest, its WAL.
async fn open_entry(
    env: Arc<Env>,
    id: String,
    has_local: bool,
    in_quarantine: bool,
) -> Result<Option<Arc<Entry>>, EngineError> {
    let uploader = &env.uploader;
    let dir = env.collections_dir.join(&id);
    // The (legacy) delete marker and the newest manifest are read at once. Reads are retried
    // like uploads; a store that stays unreachable fails the start, loudly, rather than marking
    // collections unavailable for a transient outage.
    let marker = legacy_tombstone_path(&id);
    let (deleted, newest) =
        tokio::join!(uploader.head(&marker), Manifest::newest_path(uploader, &id));
    if deleted.is_ok() {
        tracing::info!(id = %id, "finishing an interrupted collection delete (legacy marker)");
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
    let data = uploader.get(&path).await.map_err(unavailable)?;
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
        let mut summary = Summary::of(&manifest, AccessSnapshot::now());
        summary.verified = true;
        return Ok(Some(Entry::new(def, Slot::Closed(summary))));
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

/// Deletes every object of a collection and its local directory, then its delete marker. The
/// marker goes last, and only once a listing shows nothing else is left under the prefix, so a
/// crash anywhere leaves the marker for the next start to finish the job.
pub(crate) async fn purge_collection(
    uploader: &Uploader,
    local_dir: &Path,
    id: &str,
) -> Result<(), EngineError> {
    let prefix = crate::manifest::collection_prefix(id);
    loop {
        let paths: Vec<ObjectPath> = uploader
            .list(&prefix)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|m| m.location)
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
    uploader
        .delete(&tombstone_path(id))
        .await
        .map_err(unavailable)?;
    Ok(())
}
