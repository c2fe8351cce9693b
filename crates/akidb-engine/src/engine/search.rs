//! Answering searches: the request checked against the collection's definition, the access
//! recorded, the collection's tier gate asked, and what it read recorded on the `search` span.

use super::{Engine, request};
use crate::SearchQuery;
use crate::collection::{Hit, ReadReport};
use crate::error::EngineError;

impl Engine {
    pub async fn search(&self, name: &str, query: SearchQuery) -> Result<Vec<Hit>, EngineError> {
        self.search_with_report(name, query)
            .await
            .map(|(hits, _)| hits)
    }

    /// [`Engine::search`], and which tier answered and what it read (also recorded on its
    /// `search` span).
    #[tracing::instrument(
        name = "search",
        skip_all,
        fields(
            collection = name,
            k = query.k,
            tier,
            hits,
            bytes_local,
            bytes_object_store,
            object_store_gets,
            partitions
        )
    )]
    pub async fn search_with_report(
        &self,
        name: &str,
        query: SearchQuery,
    ) -> Result<(Vec<Hit>, ReadReport), EngineError> {
        let (entry, collection) = self.collection(name).await?;
        // Text indexes are declared after creation: only a text search needs the current list.
        let req = match &query.text {
            None => request::prepare_search(query, collection.def())?,
            Some(_) => request::prepare_search(query, &collection.current_def())?,
        };
        let promote = self.touch(&collection);
        let (hits, report) = collection
            .search(promote, req)
            .await
            .map_err(|e| self.note_failure(&entry, e))?;
        let span = tracing::Span::current();
        if let Some(tier) = report.tier {
            span.record("tier", tier.as_str());
        }
        span.record("hits", hits.len());
        span.record("bytes_local", report.bytes_local);
        span.record("bytes_object_store", report.bytes_object_store);
        span.record("object_store_gets", report.object_store_gets);
        span.record("partitions", report.partitions);
        Ok((hits, report))
    }
}
