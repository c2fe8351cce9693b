//! A bound on how many WAL files are open at once, across every collection.
//!
//! A WAL opens its file on its first append and keeps it while it is written. When more than
//! `limit` are open, the least recently used ones are closed. A file is closed only when
//! everything written to it is fsynced (a file with unsynced records belongs to writers that are
//! still waiting for their fsync: closing it could hide a writeback error from them), and only
//! when its writer lock is free at that moment (`try_lock`: the pool never waits for a writer,
//! so it can never deadlock with one). The bound is therefore soft by the number of WALs being
//! written at that very instant, which the blocking thread pool bounds.
//!
//! Cold and idle collections hold no descriptor at all: their WAL files are closed when they
//! leave the hot tier, and a restart opens none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::Inner;

/// Open WAL files, and the clock their last use is measured in.
pub struct FilePool {
    limit: usize,
    clock: AtomicU64,
    open: Mutex<HashMap<usize, Weak<Inner>>>,
    /// Files closed to stay under the limit (for metrics).
    pub evictions: AtomicU64,
}

impl FilePool {
    /// A pool that keeps at most `limit` files open (at least 1).
    pub fn new(limit: usize) -> Arc<FilePool> {
        Arc::new(FilePool {
            limit: limit.max(1),
            clock: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            evictions: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// WAL files open now.
    pub fn open_files(&self) -> usize {
        self.open.lock().len()
    }

    /// A tick of the pool's clock, for `last_use`.
    pub(super) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Records that `wal` opened its file; closes least recently used files beyond the limit.
    /// Called with `wal`'s own writer lock held, which is why victims are only `try_lock`ed.
    pub(super) fn admit(&self, wal: &Arc<Inner>) {
        let mut open = self.open.lock();
        open.insert(Arc::as_ptr(wal) as usize, Arc::downgrade(wal));
        if open.len() <= self.limit {
            return;
        }
        let me = Arc::as_ptr(wal) as usize;
        let mut candidates: Vec<(u64, usize)> = open
            .iter()
            .filter(|(k, _)| **k != me)
            .map(|(k, w)| {
                let last = w
                    .upgrade()
                    .map_or(0, |w| w.last_use.load(Ordering::Relaxed));
                (last, *k)
            })
            .collect();
        candidates.sort_unstable();
        for (_, key) in candidates {
            if open.len() <= self.limit {
                break;
            }
            let Some(victim) = open.get(&key).and_then(Weak::upgrade) else {
                open.remove(&key);
                continue;
            };
            if victim.try_close_idle() {
                open.remove(&key);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records that `wal` closed its file.
    pub(super) fn release(&self, wal: *const Inner) {
        self.open.lock().remove(&(wal as usize));
    }
}
