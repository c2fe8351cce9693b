//! Retrying whole object-store operations: exponential backoff with jitter, classified errors,
//! and the circuit breaker consulted before every attempt.
//!
//! This is the one retry owner above object_store's own (deliberately short) per-request
//! retries. A transient failure is attempted again after `backoff(n)`; a permanent one is
//! attempted exactly once and returned; an open breaker returns at once without touching the
//! store (the caller keeps the work and tries later).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::breaker::{Breaker, Permit};
use crate::store::classify::{ErrorClass, classify_observed};
use crate::store::observed::observed;

/// Attempts of one operation, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Backoff before the second attempt; it doubles each time.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff between two attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based): "equal jitter", uniformly in
    /// `[d/2, d]` with `d = min(max, initial * 2^(n-1))`, so waits never shrink from one attempt
    /// to the next and concurrent retriers spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let d = exp.min(self.max_backoff);
        d / 2 + d.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// Why an operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("permanent failure after {attempts} attempt(s): {source}")]
    Permanent {
        attempts: u32,
        source: object_store::Error,
    },
    #[error("still failing after {attempts} attempts: {source}")]
    Exhausted {
        attempts: u32,
        source: object_store::Error,
    },
    #[error("object store circuit breaker is open; retry after the cool-down")]
    BreakerOpen,
}

impl RetryError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, RetryError::Permanent { .. })
    }
}

/// What the attempts of one operation looked like (for metrics and tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempts {
    pub count: u32,
    pub backoffs: Vec<Duration>,
}

/// Held by the caller whose attempt is the breaker's half-open probe: dropped without a verdict
/// (the attempt's future was cancelled), it tells the breaker so, and the next caller probes.
pub struct ProbeGuard<'a> {
    breaker: &'a Mutex<Breaker>,
    armed: bool,
}

impl ProbeGuard<'_> {
    fn verdict(mut self) {
        self.armed = false;
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker
                .lock()
                .on_probe_abandoned(tokio::time::Instant::now());
        }
    }
}

/// Runs `op` until it succeeds, fails permanently, exhausts the policy, or meets an open breaker.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    breaker: &Arc<Mutex<Breaker>>,
    seed: u64,
    mut op: F,
) -> (Result<T, RetryError>, Attempts)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, object_store::Error>>,
{
    let mut attempts = Attempts::default();
    let mut rng = seed | 1;
    loop {
        let permit = breaker.lock().allow(tokio::time::Instant::now());
        let probe = match permit {
            // A probe is out: wait for its verdict (bounded by the probe's deadline, after
            // which `allow` lets this caller probe), rather than fail fast beside it.
            Err(at) if breaker.lock().is_half_open() => {
                tokio::time::sleep_until(at).await;
                continue;
            }
            Err(_) => return (Err(RetryError::BreakerOpen), attempts),
            Ok(Permit::Pass) => None,
            Ok(Permit::Probe) => Some(ProbeGuard {
                breaker,
                armed: true,
            }),
        };
        attempts.count += 1;
        let (result, response) = observed(op()).await;
        // Every branch below gives the breaker its verdict.
        if let Some(probe) = probe {
            probe.verdict();
        }
        match result {
            Ok(v) => {
                breaker.lock().on_success();
                return (Ok(v), attempts);
            }
            Err(e) => match classify_observed(&e, response.as_ref()) {
                ErrorClass::Permanent => {
                    breaker.lock().on_permanent_failure();
                    return (
                        Err(RetryError::Permanent {
                            attempts: attempts.count,
                            source: e,
                        }),
                        attempts,
                    );
                }
                ErrorClass::Transient => {
                    breaker
                        .lock()
                        .on_transient_failure(tokio::time::Instant::now());
                    if attempts.count >= policy.max_attempts {
                        return (
                            Err(RetryError::Exhausted {
                                attempts: attempts.count,
                                source: e,
                            }),
                            attempts,
                        );
                    }
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let jitter = (rng >> 11) as f64 / (1u64 << 53) as f64;
                    let wait = policy.backoff(attempts.count, jitter);
                    tracing::debug!(attempt = attempts.count, ?wait, error = %e, "object store: transient failure, retrying");
                    attempts.backoffs.push(wait);
                    tokio::time::sleep(wait).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::store::faulty::{Fault, FaultyStore, Op, Step};

    fn path_x() -> Path {
        Path::from("x")
    }

    fn breaker() -> Arc<Mutex<Breaker>> {
        Arc::new(Mutex::new(Breaker::new(100, Duration::from_secs(1))))
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy::default();
        let mut last = Duration::ZERO;
        for attempt in 1..12 {
            for jitter in [0.0, 0.5, 1.0] {
                let b = p.backoff(attempt, jitter);
                assert!(
                    b >= last || b >= p.max_backoff / 2,
                    "attempt {attempt}: {b:?} < {last:?}"
                );
                assert!(b <= p.max_backoff);
            }
            last = p.backoff(attempt, 0.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_twice_then_success() {
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        store.script(
            Op::Put,
            [Step::Fail(Fault::SLOW_DOWN), Step::Fail(Fault::SLOW_DOWN)],
        );
        let path = Path::from("seg");
        let (result, attempts) = retry(&RetryPolicy::default(), &breaker(), 1, || {
            store.put(&path, PutPayload::from_static(b"data"))
        })
        .await;
        result.unwrap();
        assert_eq!(attempts.count, 3);
        assert!(
            attempts.backoffs[1] > attempts.backoffs[0],
            "backoff grows: {:?}",
            attempts.backoffs
        );
        assert_eq!(
            store
                .get(&path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .as_ref(),
            b"data"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_attempted_once() {
        for fault in [
            Fault::ACCESS_DENIED,
            Fault::NO_SUCH_BUCKET,
            Fault::INVALID_ARGUMENT,
        ] {
            let store = FaultyStore::new(Arc::new(InMemory::new()));
            store.script(Op::Put, [Step::Fail(fault.clone())]);
            let x = path_x();
            let (result, attempts) = retry(&RetryPolicy::default(), &breaker(), 1, || {
                store.put(&x, PutPayload::from_static(b"x"))
            })
            .await;
            assert!(result.unwrap_err().is_permanent(), "{fault:?}");
            assert_eq!(attempts.count, 1, "{fault:?}");
            assert_eq!(store.history().len(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_exhaust_the_policy() {
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        store.set_partitioned(true);
        let x = path_x();
        let policy = RetryPolicy {
            max_attempts: 4,
            ..Default::default()
        };
        let (result, attempts) = retry(&policy, &breaker(), 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 4, .. })
        ));
        assert_eq!(attempts.count, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_stops_calls_and_a_probe_closes_it() {
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let b = Arc::new(Mutex::new(Breaker::new(3, Duration::from_secs(30))));
        let x = path_x();
        store.set_partitioned(true);
        let (result, _) = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        assert!(matches!(result, Err(RetryError::BreakerOpen)));
        assert_eq!(
            store.history().len(),
            3,
            "the breaker opened after 3 failures"
        );
        let (result, attempts) = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        assert!(matches!(result, Err(RetryError::BreakerOpen)));
        assert_eq!(attempts.count, 0, "no call while open");
        store.set_partitioned(false);
        tokio::time::advance(Duration::from_secs(30)).await;
        let (result, _) = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        result.unwrap();
        assert!(!b.lock().is_open());
    }

    /// Regression (issue 8, case 6): with several segments per flush, the half-open probe was
    /// one upload among siblings that failed fast (breaker half-open), `try_join_all` dropped
    /// the probe's future, and the breaker stayed half-open for ever. Now the siblings wait for
    /// the probe's verdict, and all three go through.
    #[tokio::test(start_paused = true)]
    async fn uploads_beside_a_probe_wait_for_its_verdict() {
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let cool = Duration::from_secs(5);
        let b = Arc::new(Mutex::new(Breaker::new(1, cool)));
        let x = path_x();
        store.set_partitioned(true);
        let (result, _) = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        assert!(matches!(result, Err(RetryError::BreakerOpen)));
        store.set_partitioned(false);
        store.set_latency(Duration::from_secs(1));
        tokio::time::advance(cool).await;
        // Three uploads at once, as a flush with three segments does: the first is the (slow)
        // probe; the other two meet a half-open breaker.
        let uploads = (0..3).map(|i| {
            let (b, store) = (&b, &store);
            async move {
                let path = Path::from(format!("seg-{i}"));
                retry(&RetryPolicy::default(), b, 1, || {
                    store.put(&path, PutPayload::from_static(b"x"))
                })
                .await
                .0
            }
        });
        futures::future::try_join_all(uploads).await.unwrap();
        assert!(!b.lock().is_open());
    }

    /// A probe whose future is dropped (its caller gave up) reports so: the next caller probes
    /// at once instead of finding the breaker half-open until the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_lets_the_next_caller_probe() {
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let cool = Duration::from_secs(5);
        let b = Arc::new(Mutex::new(Breaker::new(1, cool)));
        let x = path_x();
        store.set_partitioned(true);
        let _ = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        store.set_partitioned(false);
        store.set_latency(Duration::from_secs(1));
        tokio::time::advance(cool).await;
        let policy = RetryPolicy::default();
        let probe = retry(&policy, &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(10), probe)
                .await
                .is_err()
        );
        assert!(b.lock().is_open(), "the dropped probe gave no verdict");
        let started = tokio::time::Instant::now();
        let (result, attempts) = retry(&RetryPolicy::default(), &b, 1, || {
            store.put(&x, PutPayload::from_static(b"x"))
        })
        .await;
        result.unwrap();
        assert_eq!(attempts.count, 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "waited for the abandoned probe's deadline"
        );
        assert_eq!(attempts.count, 1);
        assert!(!b.lock().is_open());
    }
}
