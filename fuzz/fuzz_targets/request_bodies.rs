//! The API's request bodies: the input parsed (serde_json) as each request type, and every one
//! that parses checked as the server then checks it: a create by `prepare_create`, an upsert's
//! documents by `prepare_documents`, a delete's ids by `prepare_ids`, a search by
//! `prepare_search` (its filter by `Filter::parse`, then matched against the upsert's
//! metadata). Bodies without floats must also survive re-serialisation. Errors are fine;
//! panics are not.
#![no_main]

use akidb_api as api;
use akidb_core::{HnswParams, Metric};
use akidb_engine::fuzzing::{
    Filter, prepare_create, prepare_documents, prepare_ids, prepare_search,
};
use akidb_engine::manifest::CollectionDef;
use akidb_engine::{CreateCollection, NewDocument, SearchQuery, TextSearch};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

/// A body that parses serialises and parses again to the same JSON.
fn round_trip<T: Serialize + DeserializeOwned>(body: &T) {
    let json = serde_json::to_value(body).expect("a parsed body serialises");
    let again: T = serde_json::from_value(json.clone()).expect("a serialised body parses");
    assert_eq!(serde_json::to_value(&again).unwrap(), json);
}

fn metric(m: api::Metric) -> Metric {
    match m {
        api::Metric::Cosine => Metric::Cosine,
        api::Metric::L2 => Metric::L2,
        api::Metric::Dot => Metric::Dot,
    }
}

/// The collection a request is sent to: of the vector's dimension (so that the rest is
/// checked too), the metric picked by the input's length.
fn collection(dimension: usize, data: &[u8]) -> CollectionDef {
    let mut def = CollectionDef::unknown("fuzz");
    def.dimension = dimension.max(1);
    def.metric = [Metric::Cosine, Metric::L2, Metric::Dot][data.len() % 3];
    def
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = parse::<api::CreateCollectionRequest>(data) {
        round_trip(&req);
        let index = req.index.clone().unwrap_or_default();
        let create = CreateCollection {
            name: req.name,
            dimension: req.dimension,
            metric: metric(req.metric),
            m: index.m,
            ef_construction: index.ef_construction,
            ef_search: index.ef_search,
            quantization: None,
        };
        if let Ok(params) = prepare_create(&create, HnswParams::default()) {
            assert!((2..=128).contains(&params.m), "m {} accepted", params.m);
        }
    }
    let mut metadata = Vec::new();
    if let Some(req) = parse::<api::UpsertRequest>(data) {
        let dimension = req.documents.first().map_or(1, |d| d.vector.len());
        let def = collection(dimension, data);
        let docs: Vec<NewDocument> = req
            .documents
            .into_iter()
            .map(|d| NewDocument {
                id: d.id,
                vector: d.vector,
                metadata: d.metadata,
            })
            .collect();
        let n = docs.len();
        if let Ok(docs) = prepare_documents(docs, &def) {
            assert_eq!(docs.len(), n);
            for doc in docs {
                assert_eq!(doc.vector.len(), def.dimension);
                assert!(doc.vector.iter().all(|x| x.is_finite()));
                metadata.extend(doc.metadata);
            }
        }
    }
    if let Some(req) = parse::<api::DeleteDocumentsRequest>(data) {
        round_trip(&req);
        if let Some(ids) = &req.ids {
            let _ = prepare_ids(ids);
        }
        if let Some(filter) = &req.filter {
            let _ = Filter::parse(filter);
        }
    }
    if let Some(req) = parse::<api::SearchRequest>(data) {
        if let Some(filter) = &req.filter {
            let _ = Filter::parse(filter);
        }
        let def = collection(req.vector.len(), data);
        let query = SearchQuery {
            vector: req.vector,
            k: req.k,
            ef: req.ef,
            nprobe: req.nprobe,
            exact: req.exact,
            filter: req.filter,
            include_vector: req.include_vector,
            include_metadata: req.include_metadata,
            deadline: None,
            text: req.text.map(|query| TextSearch {
                query,
                field: req.text_field,
                weight: req.text_weight,
            }),
        };
        if let Ok(search) = prepare_search(query, &def)
            && let Some(filter) = &search.filter
        {
            let _ = filter.matches(None);
            for m in &metadata {
                let _ = filter.matches(Some(m));
            }
        }
    }
    // Any JSON object as a filter, matched against itself as metadata: one of equalities only
    // must match.
    if let Some(serde_json::Value::Object(value)) = parse::<serde_json::Value>(data)
        && let Ok(filter) = Filter::parse(&serde_json::Value::Object(value.clone()))
    {
        let matched = filter.matches(Some(&value));
        assert!(matched || value.values().any(|v| v.is_object()));
    }
    if let Some(req) = parse::<api::TierRequest>(data) {
        round_trip(&req);
    }
    if let Some(req) = parse::<api::CreateKeyRequest>(data) {
        round_trip(&req);
    }
    if let Some(req) = parse::<api::UpdateCollectionRequest>(data) {
        round_trip(&req);
    }
});
