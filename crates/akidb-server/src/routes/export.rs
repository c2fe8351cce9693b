//! `GET /api/v1/collections/{name}/export`: every live document as an Arrow IPC stream in the
//! upsert body's schema (`id`, `vector`, `metadata` as JSON text), 4,096 documents per record
//! batch, whatever the collection's tier: a warm one is read once without a promotion to hot,
//! and a cold one is fetched to local disk first (warm afterwards), as for any full read. The
//! engine walks the documents on a blocking thread; a bounded channel carries the encoded
//! batches to the response, so a slow client slows the walk rather than growing memory. A
//! failure part way aborts the response, so a client never takes a truncated stream for a
//! whole one.

use std::sync::{Arc, Mutex};

use arrow_ipc::writer::StreamWriter;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::arrow_body::{ARROW_STREAM, record_batch};
use super::collections::collection_name;
use super::error::ApiError;

/// Documents per record batch.
const BATCH: usize = 4096;

type Writer = StreamWriter<Vec<u8>>;

/// What the writer has produced since the last call.
fn take(writer: &mut Writer) -> Bytes {
    Bytes::from(std::mem::take(writer.get_mut()))
}

pub(super) async fn export(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = collection_name(path)?;
    let info = state
        .engine
        .collection_info(&name)
        .await
        .map_err(|e| ApiError::during(e, "export", &name))?;
    let dim = info.def.dimension;
    let schema = record_batch(dim, std::iter::empty())
        .expect("an empty batch")
        .schema();
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).expect("the schema encodes");
    let header = take(&mut writer);
    let writer = Arc::new(Mutex::new(writer));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let _ = tx.send(Ok(header)).await;
        let (w, sender) = (writer.clone(), tx.clone());
        let walked = engine
            .export(&name, BATCH, move |docs| {
                let metadata: Vec<Option<String>> = docs
                    .iter()
                    .map(|d| {
                        d.metadata
                            .as_ref()
                            .map(|m| serde_json::to_string(m).expect("a JSON map serializes"))
                    })
                    .collect();
                let rows = docs
                    .iter()
                    .zip(&metadata)
                    .map(|(d, m)| (d.id.as_str(), d.vector.as_slice(), m.as_deref()));
                let mut w = w.lock().expect("the writer's lock");
                let bytes = record_batch(dim, rows)
                    .and_then(|batch| w.write(&batch))
                    .map(|()| take(&mut w))
                    .map_err(std::io::Error::other);
                let encoded = bytes.is_ok();
                sender.blocking_send(bytes).is_ok() && encoded
            })
            .await;
        let end = match walked {
            Ok(_) => {
                let mut w = writer.lock().expect("the writer's lock");
                w.finish()
                    .map(|()| take(&mut w))
                    .map_err(std::io::Error::other)
            }
            Err(e) => {
                tracing::warn!(collection = %name, error = %e, "export failed part way");
                Err(std::io::Error::other(format!(
                    "export of {name} failed: {e}"
                )))
            }
        };
        let _ = tx.send(end).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, ARROW_STREAM)],
        Body::from_stream(body),
    )
        .into_response())
}
