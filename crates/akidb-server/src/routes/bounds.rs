//! What one request may hold while it runs: memory for its body (shared by every request in
//! flight), time to send the body, and time to search.

use std::sync::Arc;
use std::time::Duration;

use akidb_api::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::config::ServerLimits;

/// How long a body waits for memory before the request gets 503.
const BODY_MEMORY_WAIT: Duration = Duration::from_secs(5);

/// Bodies declared smaller than this take no reservation: they are bounded by the connection
/// count, and must not queue behind a large body waiting for memory (the semaphore is fair).
const SMALL_BODY: usize = 64 * 1024;

/// The largest search body: a 4,096-d vector and the largest filter fit many times over.
pub const MAX_SEARCH_BODY: usize = 1 << 20;

pub struct RequestLimits {
    /// Body memory in KiB units (a semaphore counts in u32).
    body_memory: Arc<Semaphore>,
    body_memory_kib: u32,
    /// `max_body_bytes`.
    pub max_body: usize,
    pub body_timeout: Duration,
    pub search_timeout: Duration,
}

impl RequestLimits {
    pub fn new(limits: &ServerLimits, max_body: usize) -> RequestLimits {
        let kib = u32::try_from(limits.body_memory.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        RequestLimits {
            body_memory: Arc::new(Semaphore::new(kib as usize)),
            body_memory_kib: kib,
            max_body,
            body_timeout: limits.body_timeout,
            search_timeout: limits.search_timeout,
        }
    }

    /// Reserves memory for a body of `bytes` (its length, or the largest allowed when unknown),
    /// waiting up to 5 s for other requests to finish with theirs.
    pub async fn reserve_body(
        &self,
        bytes: usize,
    ) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if bytes < SMALL_BODY {
            return Ok(None);
        }
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.body_memory_kib);
        let acquire = self.body_memory.clone().acquire_many_owned(kib);
        match tokio::time::timeout(BODY_MEMORY_WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(ApiError::new(
                ErrorCode::Unavailable,
                "the server is reading as many request bodies as its memory bound allows; retry shortly",
            )
            .retry_after(1)),
        }
    }
}
