//! Flushes on demand and the dead-letter queue: a flush that fails permanently is
//! dead-lettered (the WAL keeps its data) until an explicit re-drive.

use super::Engine;
use crate::collection::{Collection, FlushError};
use crate::upload::dlq::DeadLetter;

impl Engine {
    /// Flushes every collection with unflushed data (used by tests and admin tools).
    pub async fn flush_all(&self) -> Result<(), FlushError> {
        for c in self.ready_collections() {
            self.flush_collection(&c).await?;
        }
        Ok(())
    }

    /// Flushes one collection; a permanent failure goes to the dead-letter queue.
    pub(super) async fn flush_collection(&self, c: &Collection) -> Result<bool, FlushError> {
        match c.flush().await {
            Ok(flushed) => Ok(flushed),
            Err(e) => {
                if let FlushError::Upload(crate::upload::retry::RetryError::Permanent {
                    attempts,
                    ..
                }) = &e
                {
                    tracing::error!(collection = %c.def().name, error = %e, "flush failed permanently; dead-lettered (the WAL keeps the data)");
                    if let Err(dlq_error) =
                        self.shared
                            .dlq
                            .add(&c.def().id, &c.def().name, e.to_string(), *attempts)
                    {
                        tracing::error!(error = %dlq_error, "could not persist the dead-letter queue");
                    }
                }
                Err(e)
            }
        }
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.dlq.list()
    }

    /// Re-drives every dead-lettered flush for real. Returns (re-driven successfully, still failing).
    pub async fn retry_dead_letters(&self) -> (Vec<DeadLetter>, Vec<DeadLetter>) {
        let (mut ok, mut failed) = (vec![], vec![]);
        for entry in self.shared.dlq.list() {
            let collection = self
                .shared
                .catalog
                .by_id(&entry.collection_id)
                .and_then(|e| e.if_open());
            let Some(collection) = collection else {
                // The collection is gone; there is nothing left to deliver.
                let _ = self.shared.dlq.remove(&entry.collection_id);
                ok.push(entry);
                continue;
            };
            match self.flush_collection(&collection).await {
                Ok(_) => {
                    if let Err(e) = self.shared.dlq.remove(&entry.collection_id) {
                        tracing::error!(error = %e, "could not persist the dead-letter queue");
                    }
                    ok.push(entry);
                }
                Err(_) => failed.push(
                    self.shared
                        .dlq
                        .list()
                        .into_iter()
                        .find(|e| e.collection_id == entry.collection_id)
                        .unwrap_or(entry),
                ),
            }
        }
        (ok, failed)
    }
}
