//! Catalog checkpoints: every collection's definition and summary in one object, so that a
//! start with 100,000 collections reads one object instead of 100,000 manifests.
//!
//! `catalog/<seq, 20 digits>.json` (a checksummed envelope, see [`crate::envelope`]) lists each
//! live collection: its definition, newest manifest version, documents, segments, bytes and
//! pinning. It is written at shutdown (`clean`: nothing changed after it) and by the tiering task
//! when the catalog changed and `checkpoint_interval` has passed (not clean: a crash may follow
//! changes it does not hold). Each is create-only with the next sequence number; all but the
//! newest two are deleted.
//!
//! A start that uses a clean checkpoint first stores `catalog/<seq>.dirty`, so that a crash
//! after it does not leave the checkpoint looking clean to the next start.
//!
//! What a start trusts (see [`super::load`]): the checkpoint says which collections exist and
//! what they are called; the object store's listing says which still exist (and which are new,
//! whose manifests are read); the delete markers under `deleted/` say which are being deleted.
//! Only the summaries of a checkpoint that is not clean may be behind (a collection flushed after
//! it was written): such collections are marked unverified, their newest manifest is looked up
//! when they are opened, and a background pass brings every summary up to date.

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::manifest::CollectionDef;
use crate::upload::Uploader;
use crate::upload::retry::RetryError;

/// The format this server writes.
pub const FORMAT: u32 = 1;
/// Checkpoints kept (the newest, and one before it in case the newest is damaged).
const KEEP: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub seq: u64,
    /// Written at shutdown: nothing changed after it.
    pub clean: bool,
    pub written_at_ms: u64,
    pub collections: Vec<CheckpointEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointEntry {
    pub def: CollectionDef,
    pub manifest_version: u64,
    pub documents: u64,
    pub segments: u32,
    pub object_bytes: u64,
    pub pinned: bool,
}

fn path(seq: u64) -> ObjectPath {
    ObjectPath::from(format!("catalog/{seq:020}.json"))
}

fn dirty_path(seq: u64) -> ObjectPath {
    ObjectPath::from(format!("catalog/{seq:020}.dirty"))
}

fn unavailable(e: RetryError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// The checkpoints in the store: (seq, has a dirty marker), newest first.
async fn list(uploader: &Uploader) -> Result<Vec<(u64, bool)>, EngineError> {
    let paths: Vec<ObjectPath> = uploader
        .list(&ObjectPath::from("catalog"))
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|m| m.location)
        .collect();
    let seq_of = |p: &ObjectPath, ext: &str| {
        p.filename()
            .and_then(|f| f.strip_suffix(ext))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let dirty: Vec<u64> = paths.iter().filter_map(|p| seq_of(p, ".dirty")).collect();
    let mut found: Vec<(u64, bool)> = paths
        .iter()
        .filter_map(|p| seq_of(p, ".json"))
        .map(|seq| (seq, dirty.contains(&seq)))
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found)
}

/// The newest readable checkpoint (a damaged one is skipped with a warning), whether it may be
/// trusted as clean, and the highest sequence number seen (to number the next one).
pub(crate) async fn read_newest(
    uploader: &Uploader,
) -> Result<(Option<(Checkpoint, bool)>, u64), EngineError> {
    let found = list(uploader).await?;
    let highest = found.first().map_or(0, |(seq, _)| *seq);
    for (seq, dirty) in found.into_iter().take(KEEP) {
        let p = path(seq);
        let data = match uploader.get(&p).await {
            Ok(data) => data,
            Err(RetryError::Permanent {
                source: object_store::Error::NotFound { .. },
                ..
            }) => continue,
            Err(e) => return Err(unavailable(e)),
        };
        match crate::envelope::open::<Checkpoint>("checkpoint", FORMAT, &data) {
            Some(Ok((_, cp))) => {
                let trusted = cp.clean && !dirty;
                return Ok((Some((cp, trusted)), highest));
            }
            Some(Err(e)) => {
                tracing::warn!(checkpoint = %p, error = %e, "catalog checkpoint unreadable; trying an older one")
            }
            None => tracing::warn!(checkpoint = %p, "not a catalog checkpoint; skipped"),
        }
    }
    Ok((None, highest))
}

/// Marks checkpoint `seq` as no longer clean (a server is running from it).
pub(crate) async fn mark_dirty(uploader: &Uploader, seq: u64) -> Result<(), EngineError> {
    uploader
        .put_object(&dirty_path(seq), Bytes::from_static(b"{}"))
        .await
        .map_err(unavailable)
}

/// Stores a checkpoint (create-only) and deletes all but the newest [`KEEP`].
pub(crate) async fn write(uploader: &Uploader, cp: &Checkpoint) -> Result<(), EngineError> {
    let data = crate::envelope::seal("checkpoint", FORMAT, cp, false);
    uploader
        .put_create_only(&path(cp.seq), data)
        .await
        .map_err(unavailable)?;
    for (seq, dirty) in list(uploader).await?.into_iter().skip(KEEP) {
        let _ = uploader.delete(&path(seq)).await;
        if dirty {
            let _ = uploader.delete(&dirty_path(seq)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::upload::UploadConfig;

    fn entry(id: &str) -> CheckpointEntry {
        let mut def = CollectionDef::unknown(id);
        def.name = format!("name-{id}");
        def.dimension = 8;
        CheckpointEntry {
            def,
            manifest_version: 3,
            documents: 10,
            segments: 1,
            object_bytes: 1234,
            pinned: false,
        }
    }

    #[tokio::test]
    async fn written_read_marked_dirty_and_pruned() {
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::memory::InMemory::new());
        let uploader = Uploader::new(store, UploadConfig::default());
        assert_eq!(read_newest(&uploader).await.unwrap(), (None, 0));
        for seq in 1..=4 {
            let cp = Checkpoint {
                seq,
                clean: seq == 4,
                written_at_ms: seq,
                collections: vec![entry("a"), entry(&format!("b{seq}"))],
            };
            write(&uploader, &cp).await.unwrap();
        }
        let (newest, highest) = read_newest(&uploader).await.unwrap();
        let (cp, trusted) = newest.unwrap();
        assert_eq!((cp.seq, trusted, highest), (4, true, 4));
        assert_eq!(cp.collections[1], entry("b4"));
        mark_dirty(&uploader, 4).await.unwrap();
        let (cp, trusted) = read_newest(&uploader).await.unwrap().0.unwrap();
        assert_eq!((cp.seq, trusted), (4, false));
        assert_eq!(list(&uploader).await.unwrap().len(), KEEP);
    }
}
