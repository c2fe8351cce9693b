//! Request preparation: what a user sends (a collection to create, documents, ids, a search)
//! checked and turned into what the engine applies. Pure: no I/O, no engine state; every
//! refusal is a [`ValidationError`] naming the field, which the server turns into a 400.

use akidb_core::types::{
    MAX_METADATA_BYTES, ValidationError, prepare_vector, validate_collection_name,
    validate_dimension, validate_doc_id,
};
use akidb_core::{HnswParams, Metric, Quantization};
use serde_json::Value;

use crate::Deadline;
use crate::collection::{ScrollRequest, SearchRequest, TextQuery};
use crate::doc::{Document, Metadata};
use crate::filter::Filter;
use crate::manifest::CollectionDef;
use crate::payload_index::IndexType;

/// Largest number of documents one upsert or delete batch may carry.
pub const MAX_BATCH: usize = 10_000;
/// Largest `k` a search may ask for.
pub const MAX_K: usize = 10_000;
/// Largest `k` of a search that returns vectors (10,000 vectors of 4,096 floats would be a
/// 400 MB answer).
pub const MAX_K_WITH_VECTORS: usize = 1_000;
/// Largest `ef` a search may ask for.
pub const MAX_EF: usize = 10_000;
/// Largest `nprobe` a search may ask for (a base has at most 65,536 partitions).
pub const MAX_NPROBE: usize = 65_536;

/// Largest page a scroll may ask for without vectors, and with them.
pub const MAX_SCROLL_LIMIT: usize = 10_000;
pub const MAX_SCROLL_LIMIT_WITH_VECTORS: usize = 1_000;

/// What a user asks for when creating a collection.
#[derive(Debug, Clone)]
pub struct CreateCollection {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub ef_search: Option<usize>,
    /// `None`: [`Quantization::None`], full-precision vectors in RAM.
    pub quantization: Option<Quantization>,
}

impl CreateCollection {
    /// A collection with the engine's default index parameters.
    pub fn new(name: impl Into<String>, dimension: usize, metric: Metric) -> CreateCollection {
        CreateCollection {
            name: name.into(),
            dimension,
            metric,
            m: None,
            ef_construction: None,
            ef_search: None,
            quantization: None,
        }
    }
}

/// A document as a user sent it, before validation.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: Option<String>,
    pub vector: Vec<f32>,
    pub metadata: Option<Value>,
}

/// Longest text a search may carry.
pub const MAX_TEXT_QUERY_BYTES: usize = 4_096;

/// A search as a user sent it, before validation.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Empty for a search by text alone.
    pub vector: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    /// Partitions a warm or cold query reads from a partitioned base (default: 3% of them,
    /// at least 8). More reads more bytes and finds more of the true neighbours.
    pub nprobe: Option<usize>,
    pub exact: bool,
    pub filter: Option<Value>,
    pub include_vector: bool,
    pub include_metadata: bool,
    /// Stop (with `EngineError::DeadlineExceeded`) once this passes; `None`: never.
    pub deadline: Option<Deadline>,
    /// Full-text relevance (BM25 over a `text` payload index): alone, or fused with the vector.
    pub text: Option<TextSearch>,
}

/// The full-text part of a search, as a user sent it.
#[derive(Debug, Clone, Default)]
pub struct TextSearch {
    pub query: String,
    /// The `text` index's field; default: the collection's only one.
    pub field: Option<String>,
    /// The text ranking's share of the fusion, 0..=1 (default 0.5; see `fusion`).
    pub weight: Option<f32>,
}

impl SearchQuery {
    /// The `k` nearest to `vector`: approximate, no filter, ids and scores only.
    pub fn new(vector: Vec<f32>, k: usize) -> SearchQuery {
        SearchQuery {
            vector,
            k,
            ef: None,
            nprobe: None,
            exact: false,
            filter: None,
            include_vector: false,
            include_metadata: false,
            deadline: None,
            text: None,
        }
    }
}

fn in_range(
    field: &str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ValidationError> {
    if range.contains(&value) {
        Ok(())
    } else {
        let name = field.rsplit('.').next().unwrap_or(field);
        Err(ValidationError::new(
            field,
            format!(
                "{name} must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// The name, dimension and index parameters of a new collection (`defaults` for the ones not
/// given).
pub fn prepare_create(
    req: &CreateCollection,
    defaults: HnswParams,
) -> Result<HnswParams, ValidationError> {
    validate_collection_name(&req.name)?;
    validate_dimension(req.dimension)?;
    let index = HnswParams {
        m: req.m.unwrap_or(defaults.m),
        ef_construction: req.ef_construction.unwrap_or(defaults.ef_construction),
        ef_search: req.ef_search.unwrap_or(defaults.ef_search),
    };
    in_range("index.m", index.m, 2..=128)?;
    in_range("index.ef_construction", index.ef_construction, 1..=MAX_EF)?;
    in_range("index.ef_search", index.ef_search, 1..=MAX_EF)?;
    Ok(index)
}

/// Checks a batch of documents for `def` (ids, vectors, metadata); gives each document without
/// an id a new UUIDv7, and cosine vectors unit length.
pub fn prepare_documents(
    docs: Vec<NewDocument>,
    def: &CollectionDef,
) -> Result<Vec<Document>, ValidationError> {
    if docs.is_empty() {
        return Err(ValidationError::new(
            "documents",
            "at least one document is required",
        ));
    }
    if docs.len() > MAX_BATCH {
        return Err(ValidationError::new(
            "documents",
            format!(
                "a batch holds at most {MAX_BATCH} documents, got {}",
                docs.len()
            ),
        ));
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let id = match doc.id {
                Some(id) => {
                    validate_doc_id(&format!("documents[{i}].id"), &id)?;
                    id
                }
                None => uuid::Uuid::now_v7().to_string(),
            };
            let mut vector = doc.vector;
            prepare_vector(
                &format!("documents[{i}].vector"),
                &mut vector,
                def.dimension,
                def.metric,
            )?;
            let metadata = prepare_metadata(&format!("documents[{i}].metadata"), doc.metadata)?;
            Ok(Document {
                id,
                vector,
                metadata,
            })
        })
        .collect()
}

fn prepare_metadata(
    field: &str,
    value: Option<Value>,
) -> Result<Option<Metadata>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
            if size > MAX_METADATA_BYTES {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "metadata is {size} bytes as JSON, the maximum is {MAX_METADATA_BYTES}"
                    ),
                ));
            }
            Ok(Some(map))
        }
        Some(_) => Err(ValidationError::new(
            field,
            "metadata must be a JSON object",
        )),
    }
}

/// Checks a batch of ids to delete.
pub fn prepare_ids(ids: &[String]) -> Result<(), ValidationError> {
    if ids.len() > MAX_BATCH {
        return Err(ValidationError::new(
            "ids",
            format!("a batch holds at most {MAX_BATCH} ids, got {}", ids.len()),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        validate_doc_id(&format!("ids[{i}]"), id)?;
    }
    Ok(())
}

/// A filter as sent (`null` and absent mean none), parsed.
pub fn prepare_filter(filter: Option<&Value>) -> Result<Option<Filter>, ValidationError> {
    filter
        .filter(|f| !f.is_null())
        .map(Filter::parse)
        .transpose()
}

/// A page of documents as a user asks for it, before validation.
#[derive(Debug, Clone, Default)]
pub struct ScrollQuery {
    pub filter: Option<Value>,
    pub limit: usize,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    pub include_vector: bool,
    pub include_metadata: bool,
}

pub fn prepare_scroll(query: ScrollQuery) -> Result<ScrollRequest, ValidationError> {
    let max = match query.include_vector {
        true => MAX_SCROLL_LIMIT_WITH_VECTORS,
        false => MAX_SCROLL_LIMIT,
    };
    in_range("limit", query.limit, 1..=max)?;
    if let Some(cursor) = &query.cursor {
        validate_doc_id("cursor", cursor)?;
    }
    Ok(ScrollRequest {
        filter: prepare_filter(query.filter.as_ref())?,
        limit: query.limit,
        after: query.cursor,
        include_vector: query.include_vector,
        include_metadata: query.include_metadata,
    })
}

/// Checks a search for `def` and turns it into the request the collection runs.
pub fn prepare_search(
    query: SearchQuery,
    def: &CollectionDef,
) -> Result<SearchRequest, ValidationError> {
    in_range("k", query.k, 1..=MAX_K)?;
    if query.include_vector && query.k > MAX_K_WITH_VECTORS {
        return Err(ValidationError::new(
            "k",
            format!(
                "with include_vector, k is at most {MAX_K_WITH_VECTORS} (the answer holds k vectors)"
            ),
        ));
    }
    if let Some(ef) = query.ef {
        in_range("ef", ef, 1..=MAX_EF)?;
    }
    if let Some(nprobe) = query.nprobe {
        in_range("nprobe", nprobe, 1..=MAX_NPROBE)?;
    }
    let text = query.text.map(|t| prepare_text(t, def)).transpose()?;
    let mut vector = query.vector;
    if !(vector.is_empty() && text.is_some()) {
        if vector.is_empty() {
            return Err(ValidationError::new(
                "vector",
                "a search needs a vector, a text, or both",
            ));
        }
        prepare_vector("vector", &mut vector, def.dimension, def.metric)?;
    }
    let filter = prepare_filter(query.filter.as_ref())?;
    Ok(SearchRequest {
        vector,
        k: query.k,
        ef: query.ef,
        nprobe: query.nprobe,
        exact: query.exact,
        filter,
        include_vector: query.include_vector,
        include_metadata: query.include_metadata,
        deadline: query.deadline,
        text,
    })
}

/// Checks the text part of a search: a text of at most [`MAX_TEXT_QUERY_BYTES`], a field with
/// a `text` index, a weight in 0..=1.
fn prepare_text(t: TextSearch, def: &CollectionDef) -> Result<TextQuery, ValidationError> {
    if t.query.len() > MAX_TEXT_QUERY_BYTES {
        return Err(ValidationError::new(
            "text",
            format!("text is at most {MAX_TEXT_QUERY_BYTES} bytes"),
        ));
    }
    let texts: Vec<&str> = def
        .payload_indexes
        .iter()
        .filter(|d| d.kind == IndexType::Text)
        .map(|d| d.field.as_str())
        .collect();
    let field = match (t.field, texts.as_slice()) {
        (Some(f), _) if texts.contains(&f.as_str()) => f,
        (Some(f), _) => {
            return Err(ValidationError::new(
                "text_field",
                format!(
                    "no text index on {f:?}; create one first (a POST to the collection's indexes with {{\"field\": {f:?}, \"type\": \"text\"}})"
                ),
            ));
        }
        (None, [only]) => only.to_string(),
        (None, []) => {
            return Err(ValidationError::new(
                "text",
                format!(
                    "collection {:?} has no text index to search; create one first (a POST to the collection's indexes with {{\"field\": ..., \"type\": \"text\"}})",
                    def.name
                ),
            ));
        }
        (None, several) => {
            return Err(ValidationError::new(
                "text_field",
                format!(
                    "the collection has text indexes on {}: name one in text_field",
                    several.join(", ")
                ),
            ));
        }
    };
    let weight = t.weight.unwrap_or(crate::fusion::DEFAULT_TEXT_WEIGHT);
    if !(0.0..=1.0).contains(&weight) {
        return Err(ValidationError::new(
            "text_weight",
            format!("text_weight must be between 0 and 1, got {weight}"),
        ));
    }
    Ok(TextQuery {
        field,
        query: t.query,
        weight,
    })
}

/// Metadata of a document, for responses.
pub fn metadata_value(m: Option<Metadata>) -> Value {
    m.map_or(Value::Null, Value::Object)
}

/// Bytes a batch adds to the WAL, roughly (for the free-space guard).
pub fn wal_bytes(docs: &[Document]) -> u64 {
    docs.iter()
        .map(|d| d.vector.len() * 4 + d.id.len() + 64)
        .sum::<usize>() as u64
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(metric: Metric) -> CollectionDef {
        CollectionDef {
            id: "c".into(),
            name: "c".into(),
            dimension: 2,
            metric,
            index: HnswParams::default(),
            created_at_ms: 0,
            quantization: Default::default(),
            payload_indexes: Vec::new(),
        }
    }

    fn doc(id: Option<&str>, vector: Vec<f32>, metadata: Option<Value>) -> NewDocument {
        NewDocument {
            id: id.map(str::to_string),
            vector,
            metadata,
        }
    }

    fn field(e: ValidationError) -> String {
        e.field
    }

    #[test]
    fn create_fills_defaults_and_names_the_bad_field() {
        let mut req = CreateCollection {
            name: "docs".into(),
            dimension: 8,
            metric: Metric::Cosine,
            m: Some(32),
            ef_construction: None,
            ef_search: None,
            quantization: None,
        };
        let index = prepare_create(&req, HnswParams::default()).unwrap();
        assert_eq!(index.m, 32);
        assert_eq!(index.ef_search, HnswParams::default().ef_search);
        req.m = Some(1);
        assert_eq!(
            field(prepare_create(&req, HnswParams::default()).unwrap_err()),
            "index.m"
        );
        req.m = None;
        req.ef_search = Some(MAX_EF + 1);
        let e = prepare_create(&req, HnswParams::default()).unwrap_err();
        assert_eq!(e.field, "index.ef_search");
        assert!(
            e.message.contains("ef_search must be between 1 and 10000"),
            "{}",
            e.message
        );
        req.name = "bad name/".into();
        assert_eq!(
            field(prepare_create(&req, HnswParams::default()).unwrap_err()),
            "name"
        );
    }

    #[test]
    fn documents_get_ids_unit_vectors_and_checked_metadata() {
        let docs = prepare_documents(
            vec![
                doc(Some("a"), vec![3.0, 4.0], Some(json!({"k": 1}))),
                doc(None, vec![0.0, 2.0], Some(Value::Null)),
            ],
            &def(Metric::Cosine),
        )
        .unwrap();
        assert_eq!(docs[0].id, "a");
        assert_eq!(docs[0].vector, [0.6, 0.8]);
        assert_eq!(docs[0].metadata.as_ref().unwrap()["k"], 1);
        assert_eq!(docs[1].id.len(), 36, "a UUID");
        assert!(docs[1].metadata.is_none());

        let bad = |d: NewDocument| field(prepare_documents(vec![d], &def(Metric::L2)).unwrap_err());
        assert_eq!(bad(doc(Some("a"), vec![1.0], None)), "documents[0].vector");
        assert_eq!(
            bad(doc(Some("a"), vec![f32::NAN, 1.0], None)),
            "documents[0].vector[0]"
        );
        assert_eq!(bad(doc(Some(""), vec![1.0, 1.0], None)), "documents[0].id");
        assert_eq!(
            bad(doc(Some("a"), vec![1.0, 1.0], Some(json!([1])))),
            "documents[0].metadata"
        );
        let huge = json!({"s": "x".repeat(MAX_METADATA_BYTES)});
        assert_eq!(
            bad(doc(Some("a"), vec![1.0, 1.0], Some(huge))),
            "documents[0].metadata"
        );
        assert_eq!(
            field(prepare_documents(vec![], &def(Metric::L2)).unwrap_err()),
            "documents"
        );
    }

    #[test]
    fn ids_and_batches_are_bounded() {
        assert!(prepare_ids(&["a".into(), "b".into()]).is_ok());
        assert_eq!(
            field(prepare_ids(&["a".into(), String::new()]).unwrap_err()),
            "ids[1]"
        );
        let many = vec!["a".to_string(); MAX_BATCH + 1];
        assert_eq!(field(prepare_ids(&many).unwrap_err()), "ids");
    }

    #[test]
    fn a_search_is_checked_and_normalised() {
        let query = |k, ef, filter| SearchQuery {
            vector: vec![0.0, 5.0],
            k,
            ef,
            nprobe: None,
            exact: false,
            filter,
            include_vector: false,
            include_metadata: true,
            deadline: None,
            text: None,
        };
        let req = prepare_search(
            query(3, Some(50), Some(json!({"kind": "x"}))),
            &def(Metric::Cosine),
        )
        .unwrap();
        assert_eq!(req.vector, [0.0, 1.0]);
        assert!(req.filter.is_some());
        let null_filter =
            prepare_search(query(3, None, Some(Value::Null)), &def(Metric::L2)).unwrap();
        assert!(null_filter.filter.is_none());
        let bad = |q| field(prepare_search(q, &def(Metric::L2)).unwrap_err());
        assert_eq!(bad(query(0, None, None)), "k");
        assert_eq!(bad(query(MAX_K + 1, None, None)), "k");
        assert_eq!(bad(query(1, Some(0), None)), "ef");
    }
}
