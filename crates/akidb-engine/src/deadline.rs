//! When a search must stop: at its deadline, or as soon as the request that asked for it is
//! dropped (its client went away). Long loops (filtered and exact scans, partition batches)
//! check [`Deadline::passed`] now and then and give up with `EngineError::DeadlineExceeded`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    cancelled: Arc<AtomicBool>,
}

/// Cancels its [`Deadline`] when dropped: held by the request handler, so that work done on
/// other threads stops when the handler's future is dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Deadline {
    /// A deadline `within` from now, and the guard that cancels it when dropped.
    pub fn after(within: Duration) -> (Deadline, CancelOnDrop) {
        let cancelled = Arc::new(AtomicBool::new(false));
        let deadline = Deadline {
            at: Instant::now() + within,
            cancelled: cancelled.clone(),
        };
        (deadline, CancelOnDrop(cancelled))
    }

    /// Past the deadline, or cancelled.
    pub fn passed(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || Instant::now() >= self.at
    }

    /// Whether it was cancelled (rather than reached).
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_at_the_deadline_or_when_the_guard_drops() {
        let (d, guard) = Deadline::after(Duration::from_secs(60));
        assert!(!d.passed());
        drop(guard);
        assert!(d.passed() && d.cancelled());
        let (d, _guard) = Deadline::after(Duration::ZERO);
        assert!(d.passed() && !d.cancelled());
    }
}
