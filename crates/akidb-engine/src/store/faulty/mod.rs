//! `FaultyStore`: fault injection over any [`ObjectStore`], for tests and load runs.
//!
//! It wraps a real store (in-memory, local files or S3) and, per call, either passes through or
//! fails the way S3 fails:
//!
//! - a **script** per operation: the next calls of that kind follow the listed steps in order
//!   (e.g. 503 SlowDown, 503 SlowDown, then success), then pass through;
//! - a **seeded random failure rate** (reproducible: the same seed fails the same calls);
//! - a **partition**: every call fails with a connection error until healed;
//! - **latency** added to every call;
//! - **fail after commit**: the inner store applies the write, then the call reports a failure
//!   (a lost response), the case that makes naive retries write duplicates;
//! - a **call history** of every call with its outcome, for assertions.
//!
//! Failures carry an [`S3Failure`] (status and S3 error code) or a [`TransportFailure`], so
//! [`super::classify`] sees exactly what it would see from the wire. It is a test tool: the
//! server can be started with it only through the clearly named testing configuration.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use parking_lot::Mutex;

use super::classify::{S3Failure, TransportFailure};

/// The kinds of call a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    /// Starting a multipart upload; its parts and completion go through unharmed.
    PutMultipart,
    Get,
    Delete,
    List,
    Copy,
}

/// How a call fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An S3 error response.
    S3 { status: u16, code: &'static str },
    /// No response: the connection failed.
    Connection,
    /// No response in time.
    Timeout,
}

impl Fault {
    pub const SLOW_DOWN: Fault = Fault::S3 {
        status: 503,
        code: "SlowDown",
    };
    pub const INTERNAL_ERROR: Fault = Fault::S3 {
        status: 500,
        code: "InternalError",
    };
    pub const TOO_MANY_REQUESTS: Fault = Fault::S3 {
        status: 429,
        code: "TooManyRequests",
    };
    pub const REQUEST_TIMEOUT: Fault = Fault::S3 {
        status: 400,
        code: "RequestTimeout",
    };
    pub const ACCESS_DENIED: Fault = Fault::S3 {
        status: 403,
        code: "AccessDenied",
    };
    pub const NO_SUCH_BUCKET: Fault = Fault::S3 {
        status: 404,
        code: "NoSuchBucket",
    };
    pub const INVALID_ARGUMENT: Fault = Fault::S3 {
        status: 400,
        code: "InvalidArgument",
    };

    fn error(&self, path: &Path) -> object_store::Error {
        const STORE: &str = "FaultyStore";
        match self {
            Fault::S3 { status: 403, code } => object_store::Error::PermissionDenied {
                path: path.to_string(),
                source: Box::new(S3Failure {
                    status: 403,
                    code: code.to_string(),
                }),
            },
            Fault::S3 { status: 401, code } => object_store::Error::Unauthenticated {
                path: path.to_string(),
                source: Box::new(S3Failure {
                    status: 401,
                    code: code.to_string(),
                }),
            },
            Fault::S3 { status, code } => object_store::Error::Generic {
                store: STORE,
                source: Box::new(S3Failure {
                    status: *status,
                    code: code.to_string(),
                }),
            },
            Fault::Connection => object_store::Error::Generic {
                store: STORE,
                source: Box::new(TransportFailure::Connect),
            },
            Fault::Timeout => object_store::Error::Generic {
                store: STORE,
                source: Box::new(TransportFailure::Timeout),
            },
        }
    }
}

/// One scripted step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Pass,
    Fail(Fault),
    /// The inner store applies the call, then the caller is told it failed.
    FailAfterCommit(Fault),
}

/// What happened to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The inner store returned an error of its own.
    InnerError,
    Failed(Fault),
    FailedAfterCommit(Fault),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub path: String,
    /// The byte range a `Get` asked for (`None`: the whole object, or not a get).
    pub range: Option<GetRange>,
    pub outcome: Outcome,
    /// When the call was sent (before the injected latency) and when it returned.
    pub started: tokio::time::Instant,
    pub finished: tokio::time::Instant,
}

/// The largest number of calls of kind `op` that overlapped in time, from a history.
pub fn max_concurrent(history: &[Call], op: Op) -> usize {
    let mut events: Vec<(tokio::time::Instant, i32)> = history
        .iter()
        .filter(|c| c.op == op)
        .flat_map(|c| [(c.started, 1), (c.finished, -1)])
        .collect();
    // At equal instants, count ends before starts: touching calls did not overlap.
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

#[derive(Debug, Default)]
struct Plan {
    scripts: HashMap<Op, VecDeque<Step>>,
    /// (probability, fault, operations it applies to; empty = all)
    random: Option<(f64, Fault, Vec<Op>)>,
    rng: u64,
    partitioned: bool,
    latency: Duration,
}

pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

#[derive(Debug, Default)]
struct Faults {
    plan: Mutex<Plan>,
    history: Mutex<Vec<Call>>,
    /// Keep only the newest this many calls (0 = all); a server started with faults from its
    /// config keeps a bounded history.
    history_limit: std::sync::atomic::AtomicUsize,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultyStore {
        FaultyStore {
            inner,
            faults: Arc::default(),
        }
    }

    /// The next calls of kind `op` follow `steps`, in order; then calls pass again.
    pub fn script(&self, op: Op, steps: impl IntoIterator<Item = Step>) {
        self.faults
            .plan
            .lock()
            .scripts
            .entry(op)
            .or_default()
            .extend(steps);
    }

    /// Each call of the listed kinds (all kinds if empty) fails with `fault` with probability
    /// `rate`, drawn from a generator seeded with `seed`. A rate of 0 turns it off.
    pub fn fail_randomly(&self, rate: f64, fault: Fault, ops: &[Op], seed: u64) {
        let mut plan = self.faults.plan.lock();
        plan.random = (rate > 0.0).then(|| (rate, fault, ops.to_vec()));
        plan.rng = seed | 1;
    }

    /// While partitioned, every call fails with a connection error.
    pub fn set_partitioned(&self, partitioned: bool) {
        self.faults.plan.lock().partitioned = partitioned;
    }

    /// Latency added before every call.
    pub fn set_latency(&self, latency: Duration) {
        self.faults.plan.lock().latency = latency;
    }

    /// Keeps only the newest `limit` calls in the history (0 = keep all, the default).
    pub fn set_history_limit(&self, limit: usize) {
        self.faults
            .history_limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every call so far, oldest first.
    pub fn history(&self) -> Vec<Call> {
        self.faults.history.lock().clone()
    }

    pub fn clear_history(&self) {
        self.faults.history.lock().clear();
    }

    async fn run<T>(
        &self,
        op: Op,
        path: &Path,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.faults.run(op, path, call).await
    }
}

impl Faults {
    /// Decides the fate of one call and applies the latency.
    async fn decide(&self, op: Op) -> Step {
        let (step, latency) = {
            let mut plan = self.plan.lock();
            let step = if plan.partitioned {
                Step::Fail(Fault::Connection)
            } else if let Some(step) = plan.scripts.get_mut(&op).and_then(VecDeque::pop_front) {
                step
            } else if let Some((rate, fault, ops)) = plan.random.clone() {
                // xorshift64*: deterministic for a given seed and call order.
                plan.rng ^= plan.rng >> 12;
                plan.rng ^= plan.rng << 25;
                plan.rng ^= plan.rng >> 27;
                let draw = (plan.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64
                    / (1u64 << 53) as f64;
                if (ops.is_empty() || ops.contains(&op)) && draw < rate {
                    Step::Fail(fault)
                } else {
                    Step::Pass
                }
            } else {
                Step::Pass
            };
            (step, plan.latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        step
    }

    fn record(
        &self,
        op: Op,
        path: &Path,
        range: &Option<GetRange>,
        outcome: Outcome,
        started: tokio::time::Instant,
    ) {
        let finished = tokio::time::Instant::now();
        let mut history = self.history.lock();
        let limit = self
            .history_limit
            .load(std::sync::atomic::Ordering::Relaxed);
        if limit > 0 && history.len() >= limit {
            let excess = history.len() + 1 - limit;
            history.drain(..excess);
        }
        history.push(Call {
            op,
            path: path.to_string(),
            range: range.clone(),
            outcome,
            started,
            finished,
        });
    }

    /// Runs `call` under the decided step and records the outcome.
    async fn run<T>(
        &self,
        op: Op,
        path: &Path,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.run_ranged(op, path, None, call).await
    }

    /// [`Faults::run`] for a get of `range`.
    async fn run_ranged<T>(
        &self,
        op: Op,
        path: &Path,
        range: Option<GetRange>,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        // In flight from the moment it is sent: the injected latency is part of the round trip.
        let started = tokio::time::Instant::now();
        let step = self.decide(op).await;
        match step {
            Step::Fail(fault) => {
                self.record(op, path, &range, Outcome::Failed(fault.clone()), started);
                Err(fault.error(path))
            }
            Step::FailAfterCommit(fault) => {
                let result = call.await;
                let outcome = match &result {
                    Ok(_) => Outcome::FailedAfterCommit(fault.clone()),
                    Err(_) => Outcome::InnerError,
                };
                self.record(op, path, &range, outcome, started);
                result?;
                Err(fault.error(path))
            }
            Step::Pass => {
                let result = call.await;
                let outcome = if result.is_ok() {
                    Outcome::Passed
                } else {
                    Outcome::InnerError
                };
                self.record(op, path, &range, outcome, started);
                result
            }
        }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.run(
            Op::Put,
            location,
            self.inner.put_opts(location, payload, opts),
        )
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.run(
            Op::PutMultipart,
            location,
            self.inner.put_multipart_opts(location, opts),
        )
        .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let range = options.range.clone();
        self.faults
            .run_ranged(
                Op::Get,
                location,
                range,
                self.inner.get_opts(location, options),
            )
            .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>> {
        self.run(Op::Get, location, self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = self.inner.clone();
        let faults = self.faults.clone();
        locations
            .then(move |path| {
                let inner = inner.clone();
                let faults = faults.clone();
                async move {
                    let path = path?;
                    faults
                        .run(Op::Delete, &path, inner.delete(&path))
                        .await
                        .map(|()| path)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let inner = self.inner.clone();
        let faults = self.faults.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            let path = prefix.clone().unwrap_or_default();
            let started = tokio::time::Instant::now();
            let step = faults.decide(Op::List).await;
            match step {
                Step::Pass => {
                    faults.record(Op::List, &path, &None, Outcome::Passed, started);
                    inner.list(prefix.as_ref())
                }
                Step::Fail(fault) | Step::FailAfterCommit(fault) => {
                    faults.record(
                        Op::List,
                        &path,
                        &None,
                        Outcome::Failed(fault.clone()),
                        started,
                    );
                    futures::stream::once(async move { Err(fault.error(&path)) }).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let path = prefix.cloned().unwrap_or_default();
        self.run(Op::List, &path, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.run(Op::Copy, to, self.inner.copy_opts(from, to, options))
            .await
    }
}

#[cfg(test)]
mod tests;
