//! Reading a collection by filter rather than by vector: scroll pages, exact counts, and
//! delete by filter. Each runs on the state through the tier gate's read, so it works in every
//! tier (a warm or cold collection is loaded for the call, or promoted as the access policy
//! says, exactly as a search).

use serde_json::Value;

use super::Engine;
use super::request::{self, ScrollQuery};
use crate::collection::ScrollPage;
use crate::engine::MAX_BATCH;
use crate::error::EngineError;
use crate::payload_index::{IndexType, PayloadIndexDef};

impl Engine {
    /// A page of the live documents matching the query's filter, in id order (see
    /// `State::scroll`).
    pub async fn scroll(&self, name: &str, query: ScrollQuery) -> Result<ScrollPage, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let req = request::prepare_scroll(query)?;
        let promote = self.touch(&collection);
        collection
            .read(promote, move |state| state.scroll(&req))
            .await
            .and_then(|page| page.map_err(EngineError::Io))
            .map_err(|e| self.note_failure(&entry, e))
    }

    /// Declares a payload index on a metadata field (built now when the collection is hot, and
    /// at every load); true when it is new. See `payload_index` for what it answers.
    pub async fn create_payload_index(
        &self,
        name: &str,
        field: &str,
        kind: IndexType,
    ) -> Result<bool, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        if field.len() > 256 || !crate::payload_index::valid_path(field) {
            return Err(akidb_core::types::ValidationError::new(
                "field",
                "a field path is names joined by dots, none empty, at most 256 bytes",
            )
            .into());
        }
        collection
            .create_payload_index(PayloadIndexDef {
                field: field.to_string(),
                kind,
            })
            .await
            .map_err(|e| self.note_failure(&entry, e))
    }

    /// How many live documents match `filter` (all of them without one), exactly.
    pub async fn count(&self, name: &str, filter: Option<Value>) -> Result<usize, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let filter = request::prepare_filter(filter.as_ref())?;
        let promote = self.touch(&collection);
        collection
            .read(promote, move |state| state.count_matching(filter.as_ref()))
            .await
            .map_err(|e| self.note_failure(&entry, e))
    }

    /// Durably deletes every live document matching `filter`; returns how many. The matching
    /// ids are read first, then deleted in batches of [`MAX_BATCH`], each a WAL record of its
    /// own: a document written while this runs may be deleted (if it matched when read) or
    /// kept (if written after), and a failure part way leaves the batches before it deleted.
    pub async fn delete_by_filter(&self, name: &str, filter: Value) -> Result<usize, EngineError> {
        let (entry, collection) = self.collection(name).await?;
        let Some(filter) = request::prepare_filter(Some(&filter))? else {
            return Err(akidb_core::types::ValidationError::new(
                "filter",
                "a delete by filter needs a filter; to delete the collection use DELETE on it",
            )
            .into());
        };
        let mut ids = collection
            .read(false, move |state| state.matching_ids(&filter))
            .await
            .map_err(|e| self.note_failure(&entry, e))?;
        ids.sort_unstable();
        let mut deleted = 0;
        for chunk in ids.chunks(MAX_BATCH) {
            deleted += self.delete_documents(name, chunk.to_vec()).await?;
        }
        Ok(deleted)
    }
}
