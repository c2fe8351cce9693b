//! The engine's background work: the indexer thread, the flusher, the tiering task (policy,
//! compaction, closing, catalog checkpoints), WAL replays and recoveries, and the
//! reconciliation of closed collections after an unclean start.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;

use super::{Engine, Shared};
use crate::catalog::checkpoint::{self, Checkpoint};
use crate::collection::now_ms;
use crate::error::EngineError;
use crate::tier::Tier;

impl Engine {
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
    pub(super) async fn checkpoint_when_due(&self) {
        let due =
            self.shared.checkpointed_at.lock().elapsed() >= self.shared.config.checkpoint_interval;
        if due && let Err(e) = self.write_checkpoint(false).await {
            tracing::warn!(error = %e, "could not write the catalog checkpoint; will try again");
        }
    }

    /// After a start from a checkpoint that was not clean: brings every closed collection's
    /// summary up to date with its newest manifest, a few at a time, in the background.
    pub(super) fn spawn_reconciliation(&self) {
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

    pub(super) fn wake_indexer(&self) {
        let (flag, cv) = &*self.shared.index_signal;
        *flag.lock() = true;
        cv.notify_one();
    }

    pub(super) fn spawn_indexer(&self) {
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
    pub(super) fn spawn_tiering(&self) {
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
                    engine.build_bases_where_due().await;
                }
                // Housekeeping that is not policy: it runs with tiering off too.
                engine.close_cold(now_ms());
                engine.checkpoint_when_due().await;
            })
            .await;
        });
    }

    pub(super) fn spawn_flusher(&self) {
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
                    if !c.flush_due(cfg.flush_max_docs, cfg.flush_idle, cfg.flush_max_age) {
                        continue;
                    }
                    match engine.flush_collection(&c).await {
                        Ok(true) => {
                            if let Err(e) = c.merge_segments().await {
                                tracing::warn!(collection = %c.def().name, error = %e, "merging segments failed; will try after the next flush");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(collection = %c.def().name, error = %e, "background flush failed; will try again")
                        }
                    }
                }
            },
        ));
    }
}

impl Engine {
    /// Loads the collections whose WALs hold records past their manifests (after a start or a
    /// WAL recovery), so that they serve, and their writes apply, at once.
    pub(super) async fn replay_pending_wals(&self, reason: &str) {
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
    pub(super) async fn recover_poisoned_wals(&self) {
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
pub(super) async fn every<F, Fut>(weak: std::sync::Weak<Shared>, period: Duration, mut work: F)
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
