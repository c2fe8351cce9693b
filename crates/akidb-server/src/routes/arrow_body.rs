//! The binary upsert body: an Arrow IPC stream (`application/vnd.apache.arrow.stream`) of the
//! segments' schema: `id` (utf8, nullable: a null gets a generated id), `vector` (fixed-size
//! list of float32) and, optionally, `metadata` (utf8 JSON text, nullable). Bulk loads are then
//! not bound by JSON on either side. Decoded here into the documents the JSON path yields, so
//! the engine checks both alike; errors name the column, or the row as `documents[i]`.

use std::io::Cursor;
use std::sync::Arc;

use akidb_api::ErrorCode;
use akidb_engine::NewDocument;
use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use serde_json::Value;

use super::error::ApiError;

/// The media type of the binary upsert body.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A record batch in this schema (what an export streams and `akidb import` sends), from rows
/// of `dim`-long vectors and metadata as JSON text.
pub fn record_batch<'a>(
    dim: usize,
    rows: impl ExactSizeIterator<Item = (&'a str, &'a [f32], Option<&'a str>)>,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    let mut ids = StringBuilder::with_capacity(n, n * 16);
    let mut vectors =
        FixedSizeListBuilder::with_capacity(Float32Builder::with_capacity(n * dim), dim as i32, n);
    let mut metadata = StringBuilder::new();
    for (id, vector, meta) in rows {
        ids.append_value(id);
        vectors.values().append_slice(vector);
        vectors.append(true);
        metadata.append_option(meta);
    }
    let vectors = vectors.finish();
    // One schema for every batch (a stream's batches must share it): metadata nullable.
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("vector", vectors.data_type().clone(), false),
        Field::new("metadata", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(ids.finish()) as ArrayRef,
            Arc::new(vectors),
            Arc::new(metadata.finish()),
        ],
    )
}

fn wrong(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message).field(field)
}

fn bad_row(field: String, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message).field(&field)
}

/// The documents of an Arrow IPC stream body, in order.
pub fn documents(body: Bytes) -> Result<Vec<NewDocument>, ApiError> {
    let reader = StreamReader::try_new(Cursor::new(body), None).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("the body is not an Arrow IPC stream: {e}"),
        )
    })?;
    let mut docs = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("the Arrow IPC stream is damaged: {e}"),
            )
        })?;
        append(&batch, &mut docs)?;
    }
    Ok(docs)
}

fn append(batch: &RecordBatch, docs: &mut Vec<NewDocument>) -> Result<(), ApiError> {
    let schema = batch.schema();
    if let Some(other) = schema
        .fields()
        .iter()
        .find(|f| !matches!(f.name().as_str(), "id" | "vector" | "metadata"))
    {
        return Err(wrong(
            other.name(),
            format!(
                "unknown column {:?}: the columns are id, vector and metadata",
                other.name()
            ),
        ));
    }
    let vectors = batch
        .column_by_name("vector")
        .ok_or_else(|| wrong("vector", "the stream has no vector column"))?;
    let Some(vectors) = vectors.as_fixed_size_list_opt() else {
        return Err(wrong(
            "vector",
            format!(
                "the vector column must be a fixed-size list of float32, not {}",
                vectors.data_type()
            ),
        ));
    };
    if vectors.value_type() != DataType::Float32 {
        return Err(wrong(
            "vector",
            format!(
                "the vector column's items must be float32, not {}",
                vectors.value_type()
            ),
        ));
    }
    let dim = vectors.value_length() as usize;
    let values = vectors.values().as_primitive::<Float32Type>();
    let column = |name: &str| match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => c.as_string_opt::<i32>().map(Some).ok_or_else(|| {
            wrong(
                name,
                format!("the {name} column must be utf8, not {}", c.data_type()),
            )
        }),
    };
    let ids = column("id")?;
    let metadata = column("metadata")?;
    let first = docs.len();
    docs.reserve(batch.num_rows());
    for row in 0..batch.num_rows() {
        let i = first + row;
        if vectors.is_null(row) {
            return Err(bad_row(
                format!("documents[{i}].vector"),
                "the vector is null",
            ));
        }
        let start = vectors.value_offset_at(row);
        let vector = &values.values()[start..start + dim];
        if values.null_count() > 0 && (start..start + dim).any(|j| values.is_null(j)) {
            return Err(bad_row(
                format!("documents[{i}].vector"),
                "the vector holds a null",
            ));
        }
        let id = ids
            .filter(|ids| ids.is_valid(row))
            .map(|ids| ids.value(row).to_owned());
        let metadata = match metadata.filter(|m| m.is_valid(row)) {
            None => None,
            Some(m) => Some(serde_json::from_str::<Value>(m.value(row)).map_err(|e| {
                bad_row(
                    format!("documents[{i}].metadata"),
                    format!("the metadata is not JSON: {e}"),
                )
            })?),
        };
        docs.push(NewDocument {
            id,
            vector: vector.to_vec(),
            metadata,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow_array::Float64Array;
    use arrow_ipc::writer::StreamWriter;

    use super::*;

    fn stream(columns: Vec<(&str, ArrayRef)>) -> Bytes {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut out = Vec::new();
        let mut w = StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        Bytes::from(out)
    }

    fn vectors(rows: &[Option<[f32; 2]>]) -> ArrayRef {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), 2);
        for row in rows {
            match row {
                Some(v) => {
                    b.values().append_slice(v);
                    b.append(true);
                }
                None => {
                    b.values().append_slice(&[0.0, 0.0]);
                    b.append(false);
                }
            }
        }
        Arc::new(b.finish())
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        let mut b = StringBuilder::new();
        for v in values {
            b.append_option(*v);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn a_stream_decodes_to_the_documents_in_order() {
        let body = stream(vec![
            ("id", strings(&[Some("a"), None])),
            ("vector", vectors(&[Some([1.0, 2.0]), Some([3.0, 4.0])])),
            ("metadata", strings(&[Some(r#"{"k": 1}"#), None])),
        ]);
        let docs = documents(body).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id.as_deref(), Some("a"));
        assert_eq!(docs[0].vector, [1.0, 2.0]);
        assert_eq!(docs[0].metadata, Some(serde_json::json!({"k": 1})));
        assert_eq!(
            (docs[1].id.as_ref(), docs[1].metadata.as_ref()),
            (None, None)
        );
        assert_eq!(docs[1].vector, [3.0, 4.0]);
        // Only the vector column is required.
        let body = stream(vec![("vector", vectors(&[Some([5.0, 6.0])]))]);
        assert_eq!(documents(body).unwrap()[0].vector, [5.0, 6.0]);
    }

    fn error(body: Bytes) -> (ErrorCode, Option<String>, String) {
        let e = documents(body).unwrap_err();
        (
            e.code(),
            e.field_name().map(str::to_owned),
            e.message().to_owned(),
        )
    }

    #[test]
    fn bad_streams_name_the_column_or_the_row() {
        let (code, field, message) = error(Bytes::from_static(b"{\"documents\": []}"));
        assert_eq!((code, field), (ErrorCode::InvalidBody, None));
        assert!(message.contains("not an Arrow IPC stream"), "{message}");

        let (code, field, _) = error(stream(vec![("id", strings(&[Some("a")]))]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidBody, Some("vector"))
        );

        let f64s: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        let (code, field, message) = error(stream(vec![("vector", f64s)]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidBody, Some("vector"))
        );
        assert!(message.contains("fixed-size list of float32"), "{message}");

        let (code, field, _) = error(stream(vec![
            ("vector", vectors(&[Some([1.0, 2.0])])),
            ("extra", strings(&[Some("x")])),
        ]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidBody, Some("extra"))
        );

        let (code, field, _) = error(stream(vec![("vector", vectors(&[Some([1.0, 2.0]), None]))]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidArgument, Some("documents[1].vector"))
        );

        let (code, field, _) = error(stream(vec![
            ("vector", vectors(&[Some([1.0, 2.0]), Some([1.0, 2.0])])),
            ("metadata", strings(&[None, Some("{not json")])),
        ]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidArgument, Some("documents[1].metadata"))
        );

        let list = FixedSizeListBuilder::new(Float64Array::builder(0), 2).finish();
        let (code, field, message) = error(stream(vec![("vector", Arc::new(list) as ArrayRef)]));
        assert_eq!(
            (code, field.as_deref()),
            (ErrorCode::InvalidBody, Some("vector"))
        );
        assert!(message.contains("items must be float32"), "{message}");
    }
}
