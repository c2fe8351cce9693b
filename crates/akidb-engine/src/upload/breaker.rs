//! A circuit breaker for the object store: a pure state machine; the caller passes the time.
//!
//! ```text
//!            N consecutive transient failures
//!   Closed ─────────────────────────────────▶ Open { until: now + cool_down }
//!     ▲                                          │ now >= until: one probe allowed
//!     │ probe succeeds                           ▼
//!     └────────────────────────────────────── HalfOpen ── probe fails ──▶ Open (again)
//!                                                │ ▲
//!                     probe abandoned, or no verdict within the probe timeout: another probe
//! ```
//!
//! While open, callers do not touch the store at all: work waits (the WAL holds the data) and
//! `/ready` reports the degraded state. Permanent failures (403, 404, bad request) say nothing
//! about the store's health and do not count.
//!
//! A probe must end in a verdict, or the breaker would stay half-open for ever (it did: a probe
//! whose future was dropped by `try_join_all` when a sibling upload failed fast never reported).
//! So the half-open state has a deadline after which another probe is let through, the caller
//! holds a [`super::retry::ProbeGuard`] that reports an abandoned probe when it is dropped
//! without a verdict, and callers that meet a half-open breaker wait for the verdict (at most
//! until the deadline) instead of failing fast and taking the probe down with them.

use std::time::Duration;

use tokio::time::Instant;

/// Consecutive transient failures that open the breaker.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// How long the breaker stays open before it lets one probe through.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everyone else waits for its verdict until `deadline`, when
    /// another probe may go.
    HalfOpen {
        deadline: Instant,
    },
}

/// What [`Breaker::allow`] lets a caller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The breaker is closed: call the store.
    Pass,
    /// Call the store as the half-open probe, and report the verdict.
    Probe,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    failure_threshold: u32,
    cool_down: Duration,
    /// How many times it has opened (for metrics).
    pub opened: u64,
}

impl Breaker {
    pub fn new(failure_threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
            failure_threshold: failure_threshold.max(1),
            cool_down,
            opened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.state, BreakerState::Closed { .. })
    }

    /// Whether a probe is out (callers may wait for its verdict rather than give up).
    pub fn is_half_open(&self) -> bool {
        matches!(self.state, BreakerState::HalfOpen { .. })
    }

    /// May a call go to the store now? `Err(at)` says when to ask again.
    pub fn allow(&mut self, now: Instant) -> Result<Permit, Instant> {
        match self.state {
            BreakerState::Closed { .. } => Ok(Permit::Pass),
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen {
                    deadline: now + self.probe_timeout(),
                };
                Ok(Permit::Probe)
            }
            BreakerState::Open { until } => Err(until),
            // The probe gave no verdict in time: let another one go.
            BreakerState::HalfOpen { deadline } if now >= deadline => {
                self.state = BreakerState::HalfOpen {
                    deadline: now + self.probe_timeout(),
                };
                Ok(Permit::Probe)
            }
            // A probe is out: ask again after a short while.
            BreakerState::HalfOpen { deadline } => Err(deadline.min(now + self.cool_down / 10)),
        }
    }

    /// How long a probe may run before another is let through (the cool-down, at least 1 s).
    fn probe_timeout(&self) -> Duration {
        self.cool_down.max(Duration::from_secs(1))
    }

    /// A probe ended without a verdict (its caller gave up on it): the next caller probes.
    pub fn on_probe_abandoned(&mut self, now: Instant) {
        if matches!(self.state, BreakerState::HalfOpen { .. }) {
            self.state = BreakerState::Open { until: now };
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed {
            consecutive_failures: 0,
        };
    }

    /// A transient failure (5xx, throttling, connection, timeout).
    pub fn on_transient_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } if consecutive_failures + 1 < self.failure_threshold => BreakerState::Closed {
                consecutive_failures: consecutive_failures + 1,
            },
            BreakerState::Closed { .. }
            | BreakerState::HalfOpen { .. }
            | BreakerState::Open { .. } => {
                self.opened += 1;
                BreakerState::Open {
                    until: now + self.cool_down,
                }
            }
        };
    }

    /// A permanent failure: the store answered, so it is reachable. A probe that gets one
    /// closes the breaker.
    pub fn on_permanent_failure(&mut self) {
        if matches!(self.state, BreakerState::HalfOpen { .. }) {
            self.state = BreakerState::Closed {
                consecutive_failures: 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            b.on_transient_failure(t0);
            assert_eq!(b.allow(t0), Ok(Permit::Pass));
        }
        b.on_success(); // success resets the count
        for _ in 0..3 {
            assert_eq!(b.allow(t0), Ok(Permit::Pass));
            b.on_transient_failure(t0);
        }
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: t0 + Duration::from_secs(10)
            }
        );
        assert_eq!(
            b.allow(t0 + Duration::from_secs(9)),
            Err(t0 + Duration::from_secs(10))
        );
        // Cool-down over: exactly one probe.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.allow(t1), Ok(Permit::Probe));
        assert!(b.allow(t1).is_err());
        // The probe fails: open again for a full cool-down.
        b.on_transient_failure(t1);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: t1 + Duration::from_secs(10)
            }
        );
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.allow(t2), Ok(Permit::Probe));
        b.on_success();
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(b.opened, 2);
    }

    #[test]
    fn permanent_failures_do_not_open_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(1));
        for _ in 0..10 {
            b.on_permanent_failure();
        }
        assert_eq!(b.allow(t0), Ok(Permit::Pass));
        assert!(!b.is_open());
    }

    /// Regression (issue 8, case 6): a probe that never reports left the breaker half-open
    /// for ever, and nothing called the recovered store again.
    #[test]
    fn a_probe_without_a_verdict_cannot_wedge_it() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(5);
        let mut b = Breaker::new(1, cool);
        b.on_transient_failure(t0);
        assert_eq!(b.allow(t0 + cool), Ok(Permit::Probe));
        // The probe hangs: callers are told to wait, but never past its deadline ...
        let waiting = b.allow(t0 + cool + Duration::from_secs(1)).unwrap_err();
        assert!(waiting <= t0 + cool + cool);
        // ... after which the next caller probes.
        assert_eq!(b.allow(t0 + cool + cool), Ok(Permit::Probe));
        // An abandoned probe lets the very next caller probe.
        b.on_probe_abandoned(t0 + cool + cool);
        assert_eq!(b.allow(t0 + cool + cool), Ok(Permit::Probe));
        b.on_success();
        assert!(!b.is_open());
        // Abandonment outside the half-open state changes nothing.
        b.on_probe_abandoned(t0);
        assert_eq!(b.allow(t0), Ok(Permit::Pass));
    }
}
