//! Which object store a data directory belongs to.
//!
//! The object store holds `akidb.json` with a random store id, created by the first start
//! against it; the data directory holds `store.json` with the id of the store it was last used
//! with. A start compares the two before it reads anything else:
//!
//! | data dir | object store | outcome |
//! |---|---|---|
//! | id A | id A | start |
//! | id A | id B | refuse: this is another AkiDB's store |
//! | id A | none | refuse if the data dir holds WAL data (the store is wrong or was emptied); else bind to a new id |
//! | none | id B | bind to B (a new or rebuilt data dir; disaster recovery) |
//! | none | none | create an id, bind to it |
//!
//! A wrong `--object-store` on one start therefore stops with a clear error instead of hiding
//! (or, as it once did, deleting) every collection whose data is still only in the local WALs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::upload::Uploader;
use crate::upload::retry::RetryError;

const STORE_FILE: &str = "akidb.json";
const LOCAL_FILE: &str = "store.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoreIdentity {
    store_id: String,
    created_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LocalBinding {
    store_id: String,
    /// The object store URL it was last opened with (for the error message).
    object_store: String,
}

fn local_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCAL_FILE)
}

fn read_local(data_dir: &Path) -> Result<Option<LocalBinding>, EngineError> {
    let path = local_path(data_dir);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            EngineError::StoreMismatch(format!(
                "{} is unreadable ({e}); it records which object store this data directory belongs to. Repair or remove it (removing it binds the directory to whatever store the next start uses)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_local(data_dir: &Path, binding: &LocalBinding) -> Result<(), EngineError> {
    use std::io::Write;
    let path = local_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(binding).expect("binding serializes"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

async fn read_store(uploader: &Uploader) -> Result<Option<StoreIdentity>, EngineError> {
    let path = ObjectPath::from(STORE_FILE);
    match uploader.get(&path).await {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            EngineError::StoreMismatch(format!(
                "the object store's {STORE_FILE} is unreadable: {e}"
            ))
        }),
        Err(RetryError::Permanent {
            source: object_store::Error::NotFound { .. },
            ..
        }) => Ok(None),
        Err(e) => Err(EngineError::Unavailable(e.to_string())),
    }
}

/// Creates the store's identity (create-only: if two servers race, both read the winner's).
async fn create_store(uploader: &Uploader) -> Result<StoreIdentity, EngineError> {
    let identity = StoreIdentity {
        store_id: uuid::Uuid::now_v7().simple().to_string(),
        created_at_ms: crate::collection::now_ms(),
    };
    let body = Bytes::from(serde_json::to_vec_pretty(&identity).expect("identity serializes"));
    match uploader
        .put_create_only(&ObjectPath::from(STORE_FILE), body)
        .await
    {
        Ok(()) => Ok(identity),
        Err(RetryError::Permanent {
            source: object_store::Error::AlreadyExists { .. },
            ..
        }) => read_store(uploader).await?.ok_or_else(|| {
            EngineError::Unavailable(format!("{STORE_FILE} exists but cannot be read"))
        }),
        Err(e) => Err(EngineError::Unavailable(e.to_string())),
    }
}

/// Whether any collection directory under `collections_dir` has a WAL file with data.
pub(crate) fn local_wal_data(collections_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(collections_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_dir(e.path().join("wal")).is_ok_and(|files| {
                files
                    .flatten()
                    .any(|f| f.metadata().is_ok_and(|m| m.len() > 0))
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Checks (and records) that `data_dir` belongs to the store behind `uploader`; see the module
/// docs for the rules.
pub(crate) async fn bind(data_dir: &Path, uploader: &Uploader) -> Result<(), EngineError> {
    let store_url = uploader.describe();
    let local = read_local(data_dir)?;
    let store = read_store(uploader).await?;
    let collections_dir = data_dir.join("collections");
    let identity = match (&local, store) {
        (Some(l), Some(s)) if l.store_id == s.store_id => s,
        (Some(l), Some(s)) => {
            return Err(EngineError::StoreMismatch(format!(
                "data directory {} belongs to the AkiDB object store {} (last opened as {}), but {store_url} is another one ({}). \
                 Refusing to start: this store does not know the collections whose data is in this directory's WALs. \
                 Start with the right --object-store, or use another --data-dir for this store",
                data_dir.display(),
                l.store_id,
                l.object_store,
                s.store_id
            )));
        }
        (Some(l), None) => {
            let at_risk = local_wal_data(&collections_dir);
            if !at_risk.is_empty() {
                return Err(EngineError::StoreMismatch(format!(
                    "data directory {} belongs to the AkiDB object store {} (last opened as {}), but {store_url} holds no AkiDB data. \
                     Refusing to start: {} collection(s) have data only in this directory's WALs ({}) and this store does not know them. \
                     Start with the right --object-store, or use another --data-dir for this store",
                    data_dir.display(),
                    l.store_id,
                    l.object_store,
                    at_risk.len(),
                    at_risk
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tracing::warn!(data_dir = %data_dir.display(), old = %l.store_id, "the data directory's object store is empty and no local data is at risk; binding it to a new store");
            create_store(uploader).await?
        }
        (None, Some(s)) => s,
        (None, None) => create_store(uploader).await?,
    };
    let binding = LocalBinding {
        store_id: identity.store_id,
        object_store: store_url.to_string(),
    };
    if local.as_ref() != Some(&binding) {
        write_local(data_dir, &binding)?;
    }
    Ok(())
}
