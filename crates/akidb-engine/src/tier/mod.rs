//! Tiers. A collection is hot (in RAM), warm (local disk) or cold (object store only); see
//! [`crate::collection`] for how each tier answers. [`policy::plan`] decides moves from the
//! collections' usage; the engine's tiering task gathers the usage and carries the plan out
//! with [`crate::collection::Collection::move_to`], the same path as manual moves.

pub mod policy;

pub use policy::{Move, PolicyConfig, Reason, Tier, Usage};

use std::collections::HashMap;

/// Tier moves done so far, by (from, to): how many and their total seconds. Shared by all
/// collections; every move is recorded where it happens ([`crate::collection::Collection::move_to`]),
/// whether the policy, a command, a read reaching the access rate or a write caused it.
#[derive(Debug, Default)]
pub struct MoveStats {
    moves: parking_lot::Mutex<HashMap<(Tier, Tier), (u64, f64)>>,
}

impl MoveStats {
    pub fn record(&self, from: Tier, to: Tier, secs: f64) {
        let mut moves = self.moves.lock();
        let m = moves.entry((from, to)).or_default();
        m.0 += 1;
        m.1 += secs;
    }

    /// (from, to, count, seconds), sorted.
    pub fn snapshot(&self) -> Vec<(Tier, Tier, u64, f64)> {
        let mut out: Vec<_> = self
            .moves
            .lock()
            .iter()
            .map(|(&(from, to), &(n, secs))| (from, to, n, secs))
            .collect();
        out.sort_by_key(|m| (m.0, m.1));
        out
    }
}
