//! Quotas: how much each key (and the server as a whole) may ask for.
//!
//! - Admission, before a handler runs ([`Quotas::admit`]): requests per second per key (GCRA,
//!   from `governor`, with a burst of one second's worth) and requests in flight per key and in
//!   all, each answered 429 `rate_limited` with `Retry-After` when exceeded.
//! - Storage, checked by the handlers before they change anything ([`Quotas::check_create`],
//!   [`Quotas::check_upsert`]): collections per key, live vectors and stored bytes per collection
//!   and per key, answered 403 `quota_exceeded`. A key's own [`KeyLimits`] replace the server's
//!   defaults; 0 means unlimited. A key's "usage" is the sum over the collections its scope
//!   covers (every collection for an unscoped key), so two keys sharing a scope share it.
//!
//! Storage checks read the catalog's figures before the write, so concurrent writers can each
//! pass and together overshoot by at most one batch each; the next write is then refused.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use akidb_api::{ErrorCode, KeyLimits};
use akidb_engine::{CollectionStatus, Engine};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Principal;
use crate::metrics::Metrics;
use crate::routes::ApiError;

/// The server-wide defaults (`[quota]` and `[limits]`); 0: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Requests in flight across all clients.
    pub max_in_flight: u32,
    /// Defaults for every key without its own.
    pub key: KeyLimits,
    /// Live vectors in one collection.
    pub max_vectors_per_collection: u64,
    /// Stored bytes (segments and WAL) of one collection.
    pub max_bytes_per_collection: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            max_in_flight: 512,
            key: KeyLimits {
                requests_per_second: Some(0),
                max_in_flight: Some(64),
                max_collections: Some(0),
                max_vectors: Some(0),
                max_bytes: Some(0),
            },
            max_vectors_per_collection: 0,
            max_bytes_per_collection: 0,
        }
    }
}

struct KeyGate {
    rate: Option<DefaultDirectRateLimiter>,
    in_flight: Option<Arc<Semaphore>>,
}

pub struct Quotas {
    config: QuotaConfig,
    global: Option<Arc<Semaphore>>,
    keys: Mutex<HashMap<String, Arc<KeyGate>>>,
    metrics: Arc<Metrics>,
}

/// Held while a request runs.
pub struct Permit {
    _global: Option<OwnedSemaphorePermit>,
    _key: Option<OwnedSemaphorePermit>,
}

fn limit<T: Copy + Default + PartialEq>(own: Option<T>, default: Option<T>) -> Option<T> {
    own.or(default).filter(|v| *v != T::default())
}

fn rate_limited(message: String, retry_after_secs: u64) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, message).retry_after(retry_after_secs.max(1))
}

impl Quotas {
    pub fn new(config: QuotaConfig, metrics: Arc<Metrics>) -> Quotas {
        Quotas {
            global: (config.max_in_flight > 0)
                .then(|| Arc::new(Semaphore::new(config.max_in_flight as usize))),
            config,
            keys: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    fn gate(&self, id: &str, own: &KeyLimits) -> Arc<KeyGate> {
        let mut keys = self.keys.lock();
        keys.entry(id.to_string())
            .or_insert_with(|| {
                let rps = limit(own.requests_per_second, self.config.key.requests_per_second);
                let in_flight = limit(own.max_in_flight, self.config.key.max_in_flight);
                Arc::new(KeyGate {
                    rate: rps
                        .and_then(NonZeroU32::new)
                        .map(|n| DefaultDirectRateLimiter::direct(Quota::per_second(n))),
                    in_flight: in_flight.map(|n| Arc::new(Semaphore::new(n as usize))),
                })
            })
            .clone()
    }

    /// Forgets a revoked key's gates.
    pub fn forget(&self, id: &str) {
        self.keys.lock().remove(id);
    }

    /// Admits a request or answers 429.
    pub fn admit(&self, who: &Principal) -> Result<Permit, ApiError> {
        let mut key_permit = None;
        if let Some(id) = &who.key_id {
            let gate = self.gate(id, &who.limits);
            if let Some(rate) = &gate.rate
                && let Err(not_until) = rate.check()
            {
                self.metrics.quota_refusal("requests_per_second");
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(rate_limited(
                    "this API key sent more requests per second than its quota allows".into(),
                    wait.as_secs_f64().ceil() as u64,
                ));
            }
            if let Some(sem) = &gate.in_flight {
                match sem.clone().try_acquire_owned() {
                    Ok(p) => key_permit = Some(p),
                    Err(_) => {
                        self.metrics.quota_refusal("key_in_flight");
                        return Err(rate_limited(
                            "this API key has as many requests in flight as its quota allows"
                                .into(),
                            1,
                        ));
                    }
                }
            }
        }
        let global = match &self.global {
            Some(sem) => match sem.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.metrics.quota_refusal("server_in_flight");
                    return Err(rate_limited(
                        "the server has as many requests in flight as it allows".into(),
                        1,
                    ));
                }
            },
            None => None,
        };
        Ok(Permit {
            _global: global,
            _key: key_permit,
        })
    }

    /// Whether `who` may create one more collection.
    pub fn check_create(&self, engine: &Engine, who: &Principal) -> Result<(), ApiError> {
        let Some(max) = limit(who.limits.max_collections, self.config.key.max_collections) else {
            return Ok(());
        };
        let held = engine
            .list_collections()
            .iter()
            .filter(|c| who.covers(status_name(c)))
            .count() as u64;
        if held >= max {
            self.metrics.quota_refusal("collections");
            return Err(ApiError::new(
                ErrorCode::QuotaExceeded,
                format!("this API key's collections quota is {max}, and {held} exist in its scope"),
            ));
        }
        Ok(())
    }

    /// Whether `who` may add `vectors` documents of about `bytes` to `name`.
    pub fn check_upsert(
        &self,
        engine: &Engine,
        who: &Principal,
        name: &str,
        vectors: u64,
        bytes: impl FnOnce() -> u64,
    ) -> Result<(), ApiError> {
        let per_collection = (
            self.config.max_vectors_per_collection,
            self.config.max_bytes_per_collection,
        );
        let per_key = (
            limit(who.limits.max_vectors, self.config.key.max_vectors).unwrap_or(0),
            limit(who.limits.max_bytes, self.config.key.max_bytes).unwrap_or(0),
        );
        if per_collection == (0, 0) && per_key == (0, 0) {
            return Ok(());
        }
        let bytes = bytes();
        let all = engine.list_collections();
        let usage = |covered: &dyn Fn(&str) -> bool| -> (u64, u64) {
            all.iter()
                .filter(|c| covered(status_name(c)))
                .map(status_usage)
                .fold((0, 0), |(v, b), (cv, cb)| (v + cv, b + cb))
        };
        let over = |what: &str, (max_v, max_b): (u64, u64), (v, b): (u64, u64)| {
            if max_v > 0 && v + vectors > max_v {
                self.metrics.quota_refusal("vectors");
                return Err(ApiError::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "{what} may hold {max_v} vectors; it holds {v} and this adds {vectors}"
                    ),
                ));
            }
            if max_b > 0 && b + bytes > max_b {
                self.metrics.quota_refusal("bytes");
                return Err(ApiError::new(
                    ErrorCode::QuotaExceeded,
                    format!("{what} may store {max_b} bytes; it stores {b} and this adds {bytes}"),
                ));
            }
            Ok(())
        };
        over(
            &format!("collection {name}"),
            per_collection,
            usage(&|n| n == name),
        )?;
        over("this API key's scope", per_key, usage(&|n| who.covers(n)))
    }
}

fn status_name(c: &CollectionStatus) -> &str {
    match c {
        CollectionStatus::Ready(info) => &info.def.name,
        CollectionStatus::Failed { def, .. } => &def.name,
    }
}

/// Live vectors, and bytes stored (segments in the object store and the WAL).
fn status_usage(c: &CollectionStatus) -> (u64, u64) {
    match c {
        CollectionStatus::Ready(info) => (
            info.count as u64,
            info.tier.bytes_in_object_store + info.wal_bytes,
        ),
        CollectionStatus::Failed { .. } => (0, 0),
    }
}
