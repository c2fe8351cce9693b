//! What the request tasks record as they finish ([`Shared`]): per-repeat statistics for the
//! report, live counters for the progress line and the open-loop schedule.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mix::Op;
use crate::stats::{OpStats, Outcome};

/// Counters shared by the request tasks, the progress line and the report.
pub struct Shared {
    /// Per repeat (index 0 for a single run).
    pub stats: Mutex<Vec<BTreeMap<Op, OpStats>>>,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub in_flight: AtomicU64,
    pub scheduled_measured: AtomicU64,
    pub sent_measured: AtomicU64,
    pub late: AtomicU64,
    pub max_lag_us: AtomicU64,
}

impl Shared {
    pub fn new(ops: &[Op], repeats: usize) -> Shared {
        let per_repeat: BTreeMap<Op, OpStats> =
            ops.iter().map(|&o| (o, OpStats::default())).collect();
        Shared {
            stats: Mutex::new(vec![per_repeat; repeats]),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            scheduled_measured: AtomicU64::new(0),
            sent_measured: AtomicU64::new(0),
            late: AtomicU64::new(0),
            max_lag_us: AtomicU64::new(0),
        }
    }

    /// `repeat`: the measured repeat the request belongs to, `None` in the warm-up.
    pub fn record(&self, op: Op, repeat: Option<usize>, latency: Duration, outcome: &Outcome) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !matches!(outcome, Outcome::Ok { .. }) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(r) = repeat {
            let mut stats = self.stats.lock().expect("stats lock");
            stats[r].entry(op).or_default().record(latency, outcome);
        }
    }

    pub fn record_dropped(&self, op: Op, repeat: Option<usize>) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = repeat {
            let mut stats = self.stats.lock().expect("stats lock");
            stats[r].entry(op).or_default().dropped += 1;
        }
    }
}
