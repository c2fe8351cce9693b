//! The dead-letter queue: work that failed permanently, persisted locally with its reason.
//!
//! An entry names a collection whose flush failed permanently (403, 404 NoSuchBucket, a bad
//! request...). Nothing is lost: the data stays in that collection's WAL, which is never
//! truncated past a durable manifest. While an entry exists, the background flusher leaves the
//! collection alone (retrying a permanent failure cannot help). `retry` re-drives every entry
//! for real: it flushes the collection again, and removes the entry only if that succeeds.
//!
//! The file is `<data dir>/dlq.json`, rewritten atomically (temp file, fsync, rename, fsync dir).
//! An unreadable file is set aside (`dlq.json.unreadable-<unix ms>`) with an error in the log,
//! and the server starts with an empty queue: losing it loses no data (the WAL keeps it), it
//! only means dead-lettered flushes are tried again.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub collection_id: String,
    pub collection: String,
    /// What failed: `flush` (segment upload and manifest commit).
    pub operation: String,
    /// The error, as the store reported it.
    pub reason: String,
    /// Attempts made before it was dead-lettered (1 for a permanent failure).
    pub attempts: u32,
    /// How many times it has been dead-lettered (re-drives that failed again add one).
    pub failures: u32,
    pub first_failed_ms: u64,
    pub last_failed_ms: u64,
}

pub struct Dlq {
    path: PathBuf,
    entries: Mutex<Vec<DeadLetter>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Dlq {
    pub fn open(data_dir: &Path) -> Result<Dlq, EngineError> {
        let path = data_dir.join("dlq.json");
        let entries = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(entries) => entries,
                Err(e) => {
                    let aside = path.with_extension(format!("json.unreadable-{}", now_ms()));
                    tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %e,
                        "dead-letter queue unreadable; set aside, starting with an empty queue (the WALs keep the data)");
                    std::fs::rename(&path, &aside)?;
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Dlq {
            path,
            entries: Mutex::new(entries),
        })
    }

    pub fn list(&self) -> Vec<DeadLetter> {
        self.entries.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, collection_id: &str) -> bool {
        self.entries
            .lock()
            .iter()
            .any(|e| e.collection_id == collection_id)
    }

    /// Records a permanent failure (merging with an existing entry for the same collection).
    pub fn add(
        &self,
        collection_id: &str,
        collection: &str,
        reason: String,
        attempts: u32,
    ) -> Result<(), EngineError> {
        let mut entries = self.entries.lock();
        let now = now_ms();
        match entries
            .iter_mut()
            .find(|e| e.collection_id == collection_id)
        {
            Some(e) => {
                e.reason = reason;
                e.attempts = attempts;
                e.failures += 1;
                e.last_failed_ms = now;
            }
            None => entries.push(DeadLetter {
                collection_id: collection_id.to_string(),
                collection: collection.to_string(),
                operation: "flush".into(),
                reason,
                attempts,
                failures: 1,
                first_failed_ms: now,
                last_failed_ms: now,
            }),
        }
        self.persist(&entries)
    }

    pub fn remove(&self, collection_id: &str) -> Result<(), EngineError> {
        let mut entries = self.entries.lock();
        let before = entries.len();
        entries.retain(|e| e.collection_id != collection_id);
        if entries.len() == before {
            return Ok(());
        }
        self.persist(&entries)
    }

    fn persist(&self, entries: &[DeadLetter]) -> Result<(), EngineError> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(entries).expect("dlq serializes"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let dlq = Dlq::open(dir.path()).unwrap();
        dlq.add("c1", "docs", "403 AccessDenied".into(), 1).unwrap();
        dlq.add("c1", "docs", "403 AccessDenied again".into(), 1)
            .unwrap();
        dlq.add("c2", "other", "404 NoSuchBucket".into(), 1)
            .unwrap();
        let reopened = Dlq::open(dir.path()).unwrap();
        let entries = reopened.list();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].failures, 2);
        assert_eq!(entries[0].reason, "403 AccessDenied again");
        reopened.remove("c1").unwrap();
        assert!(!Dlq::open(dir.path()).unwrap().contains("c1"));
        assert!(Dlq::open(dir.path()).unwrap().contains("c2"));
    }

    #[test]
    fn an_unreadable_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dlq.json"), b"[{\"collection_id\": ").unwrap();
        let dlq = Dlq::open(dir.path()).unwrap();
        assert!(dlq.is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("dlq.json.unreadable-")),
            "{names:?}"
        );
    }
}
