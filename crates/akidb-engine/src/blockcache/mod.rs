//! The block cache: byte ranges of partitioned bases that cold queries fetched, kept on local
//! disk under one byte budget for the whole engine (`cache_disk_budget_bytes`), least recently
//! used out, so that the next query on a cold collection reads locally what the last one
//! fetched. A block is one file, `<collection dir>/blocks/<base id>-<start>-<end>.blk`, written
//! whole (temporary file, then rename); it is a cache: its reader checks it (every range of a
//! base carries a checksum) and fetches again what is damaged. [`lru`] is the pure accounting;
//! this file does the I/O (blocking: call it off the async workers).

pub mod lru;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use lru::Lru;

/// The directory of a collection's blocks, under its own directory (deleted with it).
pub const DIR: &str = "blocks";

/// Where the block of `range` of base `base_id` lives in a collection's directory.
pub fn block_path(collection_dir: &Path, base_id: &str, range: &std::ops::Range<u64>) -> PathBuf {
    collection_dir
        .join(DIR)
        .join(format!("{base_id}-{}-{}.blk", range.start, range.end))
}

/// A whole file, read into a pooled buffer (see [`crate::buffers`]).
fn read_pooled(path: &Path) -> std::io::Result<Bytes> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len() as usize;
    let mut buf = crate::buffers::take(len);
    match file.read_exact(&mut buf[..len]) {
        Ok(()) => Ok(crate::buffers::freeze(buf, len)),
        Err(e) => {
            crate::buffers::give_back(buf);
            Err(e)
        }
    }
}

pub struct BlockCache {
    lru: Mutex<Lru<PathBuf>>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

impl BlockCache {
    pub fn new(budget: u64) -> BlockCache {
        BlockCache {
            lru: Mutex::new(Lru::new(budget)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Registers the blocks a previous run left under `collections_dir`, oldest first (by
    /// modification time), dropping what does not fit the budget.
    pub fn adopt(&self, collections_dir: &Path) {
        let mut found = Vec::new();
        let Ok(collections) = std::fs::read_dir(collections_dir) else {
            return;
        };
        for c in collections.flatten() {
            let Ok(blocks) = std::fs::read_dir(c.path().join(DIR)) else {
                continue;
            };
            for b in blocks.flatten() {
                let path = b.path();
                if path.extension().is_some_and(|e| e == "tmp") {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                match b.metadata() {
                    Ok(m) if m.is_file() => {
                        found.push((m.modified().ok(), m.len(), path));
                    }
                    _ => {}
                }
            }
        }
        found.sort();
        for (_, bytes, path) in found {
            self.admit(path, bytes);
        }
    }

    /// Forgets the blocks under `dir` (a deleted collection's directory, removed with them).
    pub fn forget_under(&self, dir: &Path) {
        self.lru.lock().retain(|path| !path.starts_with(dir));
    }

    /// Bytes of the blocks kept.
    pub fn bytes(&self) -> u64 {
        self.lru.lock().total()
    }

    /// The block at `path`, if it is kept.
    pub fn get(&self, path: &Path) -> Option<Bytes> {
        let kept = self.lru.lock().touch(&path.to_path_buf());
        // A kept block that cannot be read was evicted meanwhile (or re-put: its entry then
        // belongs to the new file), so its entry is left to the LRU.
        let data = kept.then(|| read_pooled(path).ok()).flatten();
        match data {
            Some(d) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(d)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `data` as the block at `path` (best effort: a full disk only means no copy).
    pub fn put(&self, path: &Path, data: &[u8]) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("{n}.tmp"));
        let written = std::fs::create_dir_all(path.parent().expect("has a parent"))
            .and_then(|()| std::fs::write(&tmp, data));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not keep a block");
            return;
        }
        // Renames, admissions and evictions under the lock: an eviction never unlinks a file
        // that a concurrent put of the same block has just renamed into place.
        let mut lru = self.lru.lock();
        if let Err(e) = std::fs::rename(&tmp, path) {
            drop(lru);
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not keep a block");
            return;
        }
        self.admit_locked(&mut lru, path.to_path_buf(), data.len() as u64);
    }

    fn admit(&self, path: PathBuf, bytes: u64) {
        let mut lru = self.lru.lock();
        self.admit_locked(&mut lru, path, bytes);
    }

    fn admit_locked(&self, lru: &mut Lru<PathBuf>, path: PathBuf, bytes: u64) {
        for old in lru.admit(path, bytes) {
            let _ = std::fs::remove_file(&old);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}
