//! Tiers as the engine drives them: manual commands, the policy run and its moves, closing cold
//! collections, compaction when dead slots pile up, the orphan sweep, and the per-tier totals.

use std::sync::Arc;
use std::time::Duration;

use akidb_core::types::ValidationError;

use super::Engine;
use crate::catalog::{CollectionStatus, Entry};
use crate::collection::{Collection, TierInfo, now_ms};
use crate::error::EngineError;
use crate::tier::{PolicyConfig, Tier, policy};

/// A hot collection is compacted when at least this many of its slots are dead (replaced or
/// deleted documents) ...
pub const COMPACT_MIN_DEAD: usize = 1_000;
/// ... and they are at least this share of all its slots: memory and segment space are then
/// at most double what the live documents need.
pub const COMPACT_DEAD_FRACTION: f64 = 0.5;

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

impl Engine {
    /// Where a collection's data is (a closed collection is described without being opened).
    pub fn tier_info(&self, name: &str) -> Result<TierInfo, EngineError> {
        let entry = self.entry(name)?;
        entry
            .tier_info(self.window_ms())
            .ok_or_else(|| match entry.status(self.window_ms()) {
                CollectionStatus::Failed { reason, .. } => EngineError::CollectionUnavailable {
                    name: name.to_string(),
                    reason,
                },
                CollectionStatus::Ready(_) => EngineError::CollectionNotFound(name.to_string()),
            })
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
        let (entry, c) = self.collection(name).await?;
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
            self.move_collection(&entry, &c, t, "manual").await?;
        }
        match action {
            TierAction::Pin => c.set_pinned(true).await?,
            TierAction::Unpin => c.set_pinned(false).await?,
            _ => {}
        }
        let info = c.tier_info(self.window_ms());
        drop(c);
        // A collection demoted to cold is closed at once (nothing of it stays in RAM).
        entry.try_close(now_ms());
        Ok(info)
    }

    /// Moves a collection and records the move.
    pub(super) async fn move_collection(
        &self,
        entry: &Entry,
        c: &Arc<Collection>,
        target: Tier,
        reason: &str,
    ) -> Result<(), EngineError> {
        // A collection leaving RAM takes a partitioned base with it when it is large enough, so
        // that its warm and cold reads need only part of it.
        if c.tier() == Tier::Hot
            && target != Tier::Hot
            && c.base_due()
            && let Err(e) = c.build_base().await
        {
            tracing::warn!(collection = %c.def().name, error = %e, "building the partitioned base failed; moving without it");
        }
        let from = c
            .move_to(target)
            .await
            .map_err(|e| self.note_failure(entry, e))?;
        if from != target {
            tracing::debug!(collection = %c.def().name, %from, to = %target, reason, "tier move reason");
        }
        Ok(())
    }

    /// Counts and bytes per tier.
    pub fn tier_totals(&self) -> Vec<(Tier, TierTotals)> {
        let mut totals = [Tier::Hot, Tier::Warm, Tier::Cold].map(|t| (t, TierTotals::default()));
        let window = self.window_ms();
        for entry in self.shared.catalog.entries() {
            let Some(info) = entry.tier_info(window) else {
                continue;
            };
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
            moves: self.shared.env.moves.snapshot(),
        }
    }

    /// Runs the tiering policy once and carries out its plan; returns the moves made (named by
    /// collection name).
    pub async fn run_tiering_once(&self) -> Vec<policy::Move> {
        self.run_tiering_once_with(&self.shared.config.tiering.policy.clone())
            .await
    }

    /// [`Engine::run_tiering_once`] with other rules (tests, what-if tools).
    pub async fn run_tiering_once_with(&self, rules: &PolicyConfig) -> Vec<policy::Move> {
        // Closed collections are cold with nothing local: no rule applies to them (their
        // promotion by access rate happens on the access itself).
        let usage: Vec<_> = self
            .ready_collections()
            .iter()
            .map(|c| {
                let mut u = c.usage();
                u.name = c.def().id.clone();
                u
            })
            .collect();
        let plan = policy::plan(&usage, rules, now_ms());
        let mut done = Vec::new();
        for mv in plan {
            let Some(entry) = self.shared.catalog.by_id(&mv.name) else {
                continue;
            };
            let Some(c) = entry.if_open() else {
                continue;
            };
            match self
                .move_collection(&entry, &c, mv.to, mv.reason.as_str())
                .await
            {
                // Reported by name (the plan is keyed by id).
                Ok(()) => done.push(policy::Move {
                    name: c.def().name.clone(),
                    ..mv
                }),
                Err(e) => {
                    tracing::warn!(collection = %c.def().name, to = %mv.to, error = %e, "tier move failed; will try again")
                }
            }
        }
        self.close_cold(now_ms());
        done
    }

    /// Closes every cold collection nobody holds (see [`crate::catalog`]); returns how many.
    pub fn close_cold(&self, now: u64) -> usize {
        let closed = self
            .shared
            .catalog
            .entries()
            .iter()
            .filter(|e| e.try_close(now))
            .count();
        if closed > 0 {
            crate::collection::release_free_memory();
        }
        closed
    }

    /// Compacts a collection now (see [`Collection::compact`]); returns the slots removed.
    pub async fn compact(&self, name: &str) -> Result<usize, EngineError> {
        let (_, c) = self.collection(name).await?;
        let removed = c.compact().await?;
        self.wake_indexer();
        Ok(removed)
    }

    /// Builds a collection's partitioned base now, when it is hot (see
    /// [`Collection::build_base`]); returns whether one was built.
    pub async fn build_base(&self, name: &str) -> Result<bool, EngineError> {
        let (_, c) = self.collection(name).await?;
        c.build_base().await
    }

    /// Builds the partitioned bases that are due (see [`Collection::base_due`]) of the hot
    /// collections (run by the tiering task).
    pub(super) async fn build_bases_where_due(&self) {
        for c in self.ready_collections() {
            if c.tier() == Tier::Hot
                && c.base_due()
                && let Err(e) = c.build_base().await
            {
                tracing::warn!(collection = %c.def().name, error = %e, "building the partitioned base failed; will try again");
            }
        }
    }

    /// Compacts the hot collections where dead slots are at least [`COMPACT_MIN_DEAD`] and at
    /// least [`COMPACT_DEAD_FRACTION`] of all slots (run by the tiering task).
    pub(super) async fn compact_where_due(&self) {
        for c in self.ready_collections() {
            let Some((dead, all)) = c.slots() else {
                continue;
            };
            if dead >= COMPACT_MIN_DEAD && dead as f64 >= COMPACT_DEAD_FRACTION * all as f64 {
                match c.compact().await {
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
}
