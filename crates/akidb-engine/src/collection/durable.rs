//! A collection's durable writes: flush (unflushed rows → Parquet segments → a new manifest →
//! the WAL it covers deleted), the graph checkpoint, pinning, and the orphan sweep. Every
//! manifest change goes through [`Collection::commit`]: the next version, stored create-only,
//! then published to the counters and the local-copy accounting. The manifest lock serialises
//! them; the delete fence takes it too, so nothing commits for a deleted collection.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;

use super::Collection;
use super::access::now_ms;
use super::info::FlushError;
use super::seal::Sealer;
use crate::error::EngineError;
use crate::manifest::{GraphRef, Manifest, SegmentRef, graph_path, manifest_path, segment_path};
use crate::segment::{self, Columns};
use crate::upload::retry::RetryError;

impl Collection {
    /// Stores `change` applied to `manifest` as its next version (create-only: a version is
    /// never overwritten), makes it the current one and publishes it; returns the previous one.
    /// The caller holds the manifest lock (`manifest` is its guard's target).
    pub(super) async fn commit(
        &self,
        manifest: &mut Manifest,
        change: impl FnOnce(&mut Manifest),
    ) -> Result<Manifest, RetryError> {
        let mut next = manifest.clone();
        next.version += 1;
        change(&mut next);
        next.format = next.required_format();
        self.uploader()
            .put_create_only(&manifest_path(&self.def.id, next.version), next.encode())
            .await?;
        self.env.catalog_changes.fetch_add(1, Ordering::Relaxed);
        let old = std::mem::replace(manifest, next);
        self.publish(manifest);
        self.refresh_cache_bytes(manifest);
        Ok(old)
    }

    /// Pins or unpins, durably: a new manifest version records it, so it survives restarts
    /// and moves to another machine with the bucket.
    pub async fn set_pinned(&self, pinned: bool) -> Result<(), EngineError> {
        let mut manifest = self.manifest.lock().await;
        self.check_live()?;
        if manifest.pinned != pinned {
            self.commit(&mut manifest, |next| next.pinned = pinned)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        }
        self.pinned.store(pinned, Ordering::Relaxed);
        Ok(())
    }

    /// Changes how the hot index holds the vectors, durably (a new manifest version); a hot
    /// state is converted by the indexer, in the background.
    pub async fn set_quantization(&self, q: akidb_core::Quantization) -> Result<(), EngineError> {
        let mut manifest = self.manifest.lock().await;
        self.check_live()?;
        if manifest.collection.quantization != q {
            self.commit(&mut manifest, |next| next.collection.quantization = q)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        }
        // A command is tried at once, whatever failed before.
        self.quantize_retry_at.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Declares a payload index durably (a new manifest version) and builds it in the hot
    /// state, if any, under the state's write lock (writes and searches wait for the build);
    /// every later load builds it too. Returns false when it existed already.
    pub async fn create_payload_index(
        &self,
        def: crate::payload_index::PayloadIndexDef,
    ) -> Result<bool, EngineError> {
        let mut manifest = self.manifest.lock().await;
        self.check_live()?;
        let exists = manifest.collection.payload_indexes.contains(&def);
        if !exists {
            if manifest.collection.payload_indexes.len() >= crate::payload_index::MAX_INDEXES {
                return Err(akidb_core::types::ValidationError::new(
                    "field",
                    format!(
                        "a collection holds at most {} payload indexes",
                        crate::payload_index::MAX_INDEXES
                    ),
                )
                .into());
            }
            let added = def.clone();
            self.commit(&mut manifest, |next| {
                next.collection.payload_indexes.push(added)
            })
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        }
        if let Some(state) = self.state.write().as_mut() {
            state.create_payload_index(&def);
        }
        Ok(!exists)
    }

    /// Whether a flush is due (see [`super::state::State::flush_due`]). Never while a
    /// compaction holds the manifest: its flush waits for the compaction's end.
    pub fn flush_due(&self, max_docs: usize, idle: Duration, max_age: Duration) -> bool {
        !self.rewriting.load(Ordering::Acquire)
            && self
                .state
                .read()
                .as_ref()
                .is_some_and(|s| s.flush_due(max_docs, idle, max_age))
    }

    /// Seals everything applied so far into segments and a new manifest. Returns false when
    /// there was nothing to flush (or the collection is not hot).
    #[tracing::instrument(name = "flush", skip_all, fields(collection = %self.def.name))]
    pub async fn flush(&self) -> Result<bool, FlushError> {
        let mut manifest = self.manifest.lock().await;
        self.flush_locked(&mut manifest).await
    }

    /// [`Collection::flush`] with the manifest lock held.
    pub(super) async fn flush_locked(&self, manifest: &mut Manifest) -> Result<bool, FlushError> {
        if self.deleted.load(Ordering::Acquire) {
            return Ok(false);
        }
        // Take the unflushed part under the write lock (no copying: the slots stay where they
        // are); copy its rows a chunk at a time under read locks, so that searches and writes go
        // on; put it back if anything below fails.
        let mut taken = {
            let mut guard = self.state.write();
            match guard.as_mut() {
                Some(state) if state.unflushed() > 0 => state.take_unflushed(),
                _ => return Ok(false),
            }
        };
        let slots = taken.from_slot..taken.from_slot + taken.slots;
        let tombstones = std::mem::take(&mut taken.tombstones);
        let mut sealer = Sealer::new(self.def.dimension, self.env.segment_rows, slots, tombstones);
        while let Some((slots, columns)) = sealer.next_chunk() {
            let copied = {
                let state = self.state.read();
                // Unloading needs the tier lock and a checkpoint (this lock) first.
                let state = state
                    .as_ref()
                    .expect("loaded while the manifest lock is held");
                state.copy_puts(slots, columns)
            };
            if let Err(e) = copied {
                // A quantized collection's vector file could not be read.
                if let Some(state) = self.state.write().as_mut() {
                    state.restore_unflushed(taken.from_slot, taken.deletes);
                }
                return Err(EngineError::from(e).into());
            }
            tokio::task::yield_now().await;
        }
        let columns = sealer.finish();
        let (covered_seq, slots) = (taken.covered_seq, taken.slots);
        let result = async {
            self.wal.rotate().map_err(EngineError::from)?;
            let segments = self.upload_segments(columns).await?;
            self.commit(manifest, |next| {
                next.wal_seq = covered_seq;
                next.documents = taken.documents;
                next.segments.extend(segments);
            })
            .await?;
            self.wal
                .truncate_through(covered_seq)
                .map_err(EngineError::from)?;
            Ok::<_, FlushError>(())
        }
        .await;
        if let Err(e) = result {
            if let Some(state) = self.state.write().as_mut() {
                state.restore_unflushed(taken.from_slot, taken.deletes);
            }
            tracing::warn!(collection = %self.def.name, error = %e, "flush failed; the wal keeps the data");
            return Err(e);
        }
        tracing::debug!(collection = %self.def.name, slots, covered_seq, "flushed");
        Ok(true)
    }

    /// Encodes and uploads segments in parallel (the uploader bounds how many are in flight),
    /// keeps local copies, and returns their references in order.
    pub(super) async fn upload_segments(
        &self,
        segments: Vec<Columns>,
    ) -> Result<Vec<SegmentRef>, FlushError> {
        let uploads = segments.into_iter().map(|columns| async move {
            let tombstones = columns.tombstones();
            let row_count = columns.len() as u64;
            let (data, crc) = tokio::task::spawn_blocking(move || {
                segment::encode_columns(columns).map(|data| {
                    let crc = crc32c::crc32c(&data);
                    (data, crc)
                })
            })
            .await
            .expect("segment encode task panicked")
            .map_err(EngineError::from)?;
            let segment_id = uuid::Uuid::now_v7().simple().to_string();
            let path = segment_path(&self.def.id, &segment_id);
            let bytes = data.len() as u64;
            self.uploader().put_object(&path, data.clone()).await?;
            self.write_local(path.as_ref(), &data).await;
            Ok::<_, FlushError>(SegmentRef {
                id: segment_id,
                path: path.to_string(),
                rows: row_count,
                tombstones,
                bytes,
                crc32c: Some(crc),
            })
        });
        futures::future::try_join_all(uploads).await
    }

    /// Flushes, then saves the HNSW graph if it covers more slots than the saved one: after
    /// this the object store alone restores the collection exactly as it is.
    pub async fn checkpoint(&self) -> Result<(), FlushError> {
        let mut manifest = self.manifest.lock().await;
        self.flush_locked(&mut manifest).await?;
        if self.deleted.load(Ordering::Acquire) {
            return Ok(());
        }
        let (nodes, data) = {
            let state = self.state.read();
            let Some(state) = state.as_ref() else {
                return Ok(());
            };
            let nodes = state.indexed_len();
            let saved = manifest.graph.as_ref().map_or(0, |g| g.nodes as usize);
            // The graph must not name slots the manifest does not hold (writes may have
            // arrived since the flush, when this is not called under the tier lock).
            if nodes <= saved || nodes > state.flushed_slots() || state.unflushed() > 0 {
                return Ok(());
            }
            (nodes, Bytes::from(state.encode_graph()))
        };
        let id = uuid::Uuid::now_v7().simple().to_string();
        let path = graph_path(&self.def.id, &id);
        self.uploader().put_object(&path, data.clone()).await?;
        self.write_local(path.as_ref(), &data).await;
        let graph = GraphRef {
            id,
            path: path.to_string(),
            nodes: nodes as u64,
            bytes: data.len() as u64,
            crc32c: Some(crc32c::crc32c(&data)),
        };
        let old = self
            .commit(&mut manifest, |next| next.graph = Some(graph))
            .await?;
        if let Some(old) = old.graph {
            self.delete_objects(&[old.path]).await;
        }
        tracing::debug!(collection = %self.def.name, nodes, "saved graph");
        Ok(())
    }

    /// Deletes objects no manifest names any more, and their local copies. Best effort: what
    /// is left is an orphan for [`Collection::sweep_orphans`].
    pub(super) async fn delete_objects(&self, paths: &[String]) {
        for path in paths {
            let _ = self
                .uploader()
                .delete(&ObjectPath::from(path.as_str()))
                .await;
            let _ = tokio::fs::remove_file(self.local_path(path)).await;
        }
    }

    /// Deletes objects under this collection's `segments/` that its manifest does not name
    /// and that are older than `grace` (left by a crash between an upload and its manifest,
    /// or by a failed delete). Returns how many were deleted.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<usize, EngineError> {
        let manifest = self.manifest.lock().await.clone();
        let named: HashSet<&str> = manifest.objects().map(|o| o.path).collect();
        let prefix = ObjectPath::from(format!("collections/{}/segments", self.def.id));
        let cutoff = now_ms().saturating_sub(grace.as_millis() as u64) as i64;
        let listed = self
            .uploader()
            .list(&prefix)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let orphans: Vec<ObjectPath> = listed
            .into_iter()
            .filter(|m| {
                !named.contains(m.location.as_ref()) && m.last_modified.timestamp_millis() <= cutoff
            })
            .map(|m| m.location)
            .collect();
        for path in &orphans {
            self.uploader()
                .delete(path)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
            tracing::info!(collection = %self.def.name, object = %path, "deleted orphan object");
        }
        Ok(orphans.len())
    }
}
