//! Compaction: rewriting a hot collection without its dead slots (replaced or deleted
//! documents), off the collection's locks, so that its requests go on meanwhile.
//!
//! 1. With the tier lock held *shared* (the collection stays hot; tier moves and the delete
//!    fence wait) and the manifest lock held (no flush or graph save commits meanwhile), flush,
//!    then, under a brief state write lock, note the slots (`0..n`) and the applied WAL
//!    sequence `s`, and start recording every operation applied from now on.
//! 2. Off every lock (a blocking thread): copy the live documents of `0..n` a chunk at a time,
//!    each chunk under a brief read lock, into a fresh state; index it fully; encode its graph.
//!    A document replaced or deleted after step 1 may already be dead when its chunk is copied;
//!    it is then skipped, and the recorded operation that killed it, replayed in step 4, gives
//!    the same result as if it had been copied. Every other slot below `n` is unchanged.
//! 3. Upload the fresh state's rows as segments and its graph, and commit a manifest naming only
//!    them with `wal_seq = s` (everything up to `s` is in the segments; the WAL still holds every
//!    record after it). A failure here leaves the collection as it was (the uploads become
//!    orphans for the sweep).
//! 4. Replay the recorded operations into the fresh state, most of them off the lock, the rest
//!    under the state's write lock, and swap the fresh state in. The old one is freed on a
//!    blocking thread after the lock is released.
//!
//! Requests wait only for the locks of step 1 and the swap; RAM briefly holds both states.
//! Background flushes skip the collection meanwhile (see [`Collection::flush_due`]).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Collection;
use super::seal::{COPY_CHUNK, Sealer};
use super::state::State;
use crate::doc::{Document, Operation};
use crate::error::EngineError;
use crate::manifest::{CollectionDef, GraphRef, graph_path};
use crate::segment::Row;
use crate::tier::Tier;

/// Rounds of replaying recorded operations off the lock before the final one under it.
const REPLAY_ROUNDS: usize = 3;

/// Clears the compaction's marks (recording, `rewriting`) however it ends.
struct Marks<'a>(&'a Collection);

impl Drop for Marks<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.0.state.write().as_mut() {
            state.stop_recording();
        }
        self.0.rewriting.store(false, Ordering::Release);
    }
}

impl Collection {
    /// Rewrites a hot collection without its dead slots (see the module docs). Returns the
    /// slots removed (0 when it is not hot or has none).
    pub async fn compact(self: &Arc<Self>) -> Result<usize, EngineError> {
        let _tier = self.tier_lock.clone().read_owned().await;
        self.check_live()?;
        if self.tier() != Tier::Hot {
            return Ok(0);
        }
        let mut manifest = self.manifest.lock().await;
        self.flush_locked(&mut manifest).await?;
        let (slots, removed, applied_seq) = {
            let mut guard = self.state.write();
            let Some(state) = guard.as_mut() else {
                return Ok(0);
            };
            let (dead, all) = state.slots();
            if dead == 0 {
                return Ok(0);
            }
            state.start_recording();
            (all, dead, state.applied_seq())
        };
        self.rewriting.store(true, Ordering::Release);
        let _marks = Marks(self);

        let c = self.clone();
        // The manifest is locked: its payload indexes are the ones to build.
        let def = CollectionDef {
            payload_indexes: manifest.collection.payload_indexes.clone(),
            ..(*self.def).clone()
        };
        let built = tokio::task::spawn_blocking(move || {
            let copy = |range: Range<usize>| {
                let state = c.state.read();
                let docs = state.as_ref()?.live_documents(range);
                docs.inspect_err(|e| tracing::warn!(collection = %c.def.name, error = %e, "compaction could not read the vectors; not compacting"))
                    .ok()
            };
            let mut fresh = compacted(&def, applied_seq, slots, copy)?;
            fresh.set_build_threads(c.env.index_threads);
            let taken = fresh.take_unflushed();
            let (all, documents) = (0..taken.slots, taken.documents);
            let mut sealer = Sealer::new(c.def.dimension, c.env.segment_rows, all, Vec::new());
            while let Some((slots, columns)) = sealer.next_chunk() {
                fresh.copy_puts(slots, columns).ok()?;
            }
            let columns = sealer.finish();
            fresh.index_some(usize::MAX);
            // Off the locks, so that the indexer has nothing to convert under them later.
            if !super::quantize_state(&mut fresh, c.quantization(), &c.def, &c.dir) {
                c.defer_quantization();
            }
            let graph = Bytes::from(fresh.encode_graph());
            Some((fresh, columns, documents, graph))
        })
        .await
        .expect("compaction task panicked");
        let Some((mut fresh, columns, documents, graph)) = built else {
            return Ok(0); // unloaded meanwhile (cannot happen under the tier lock)
        };

        let segments = self.upload_segments(columns).await?;
        let graph_id = uuid::Uuid::now_v7().simple().to_string();
        let path = graph_path(&self.def.id, &graph_id);
        self.store_object(&path, &graph).await?;
        let graph = GraphRef {
            id: graph_id,
            path: path.to_string(),
            nodes: fresh.indexed_len() as u64,
            bytes: graph.len() as u64,
            crc32c: Some(crc32c::crc32c(&graph)),
        };
        let old = self
            .commit(&mut manifest, |next| {
                next.wal_seq = next.wal_seq.max(applied_seq);
                next.documents = documents;
                next.segments = segments;
                next.base = None; // renumbered slots: a new base is built when due
                next.graph = Some(graph);
            })
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;

        for _ in 0..REPLAY_ROUNDS {
            let recorded = match self.state.write().as_mut() {
                Some(state) => state.drain_recording(),
                None => Vec::new(),
            };
            if recorded.is_empty() {
                break;
            }
            replay(&mut fresh, recorded);
        }
        let replaced = {
            let mut guard = self.state.write();
            guard.as_mut().map(|state| {
                replay(&mut fresh, state.drain_recording());
                std::mem::replace(state, fresh)
            })
        };
        // Freeing the old state takes ~10 ms: not on an async worker.
        tokio::task::spawn_blocking(move || drop(replaced));
        drop(manifest);
        let stale: Vec<String> = old.objects().map(|o| o.path.to_string()).collect();
        self.delete_objects(&stale).await;
        tracing::info!(collection = %self.def.name, removed, "compacted");
        Ok(removed)
    }
}

fn replay(state: &mut State, ops: Vec<(u64, Operation)>) {
    for (seq, op) in ops {
        state.apply(seq, op);
    }
}

/// A fresh state holding the live documents of slots `0..slots`, copied `COPY_CHUNK` slots at a
/// time by `copy` (None: the source is gone), every row unflushed (so that `take_unflushed`
/// yields exactly the rows to store).
fn compacted(
    def: &CollectionDef,
    applied_seq: u64,
    slots: usize,
    mut copy: impl FnMut(Range<usize>) -> Option<Vec<Document>>,
) -> Option<State> {
    let mut fresh = State::new(def, applied_seq);
    let mut start = 0;
    while start < slots {
        let end = (start + COPY_CHUNK).min(slots);
        for doc in copy(start..end)? {
            fresh.load_row(Row::Put(doc));
        }
        start = end;
    }
    Some(fresh)
}

#[cfg(test)]
mod tests {
    use super::super::state::tests::def;
    use super::*;

    fn upsert(id: &str, x: f32) -> Operation {
        Operation::Upsert(vec![Document {
            id: id.into(),
            vector: vec![x, 0.0],
            metadata: None,
        }])
    }

    fn live(s: &State) -> Vec<Document> {
        let mut docs = s.live_documents(0..s.slot_count()).unwrap();
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        docs
    }

    /// The rule of step 2: writes that land between the chunks of the copy (replacing, deleting,
    /// re-inserting documents the copy has or has not reached yet), replayed afterwards, give
    /// exactly the state the writes give.
    #[test]
    fn a_copy_interleaved_with_writes_plus_their_replay_equals_the_state() {
        let mut source = State::new(&def(), 0);
        let mut seq = 0;
        let mut next = |s: &mut State, op: Operation| {
            seq += 1;
            s.apply(seq, op);
        };
        for i in 0..3000 {
            next(&mut source, upsert(&format!("d{}", i % 2500), i as f32));
        }
        next(
            &mut source,
            Operation::Delete(vec!["d7".into(), "d2000".into()]),
        );
        let (dead, slots) = source.slots();
        assert!(dead > 0);
        let applied = source.applied_seq();
        source.start_recording();

        let source = std::cell::RefCell::new(source);
        let mut round = 0;
        let mut fresh = compacted(&def(), applied, slots, |range| {
            // Between chunks: replace a document below and above the copy's position, delete
            // one, re-insert a deleted one, add a new one.
            round += 1;
            let mut s = source.borrow_mut();
            let base = 1000 * round;
            let ops = [
                upsert(&format!("d{}", (base + 10) % 2500), -1.0),
                upsert(&format!("d{}", (base + 1500) % 2500), -2.0),
                Operation::Delete(vec![format!("d{}", (base + 300) % 2500)]),
                upsert("d7", -3.0),
                upsert(&format!("new{round}"), -4.0),
            ];
            for op in ops {
                let seq = s.applied_seq() + 1;
                s.apply(seq, op);
            }
            s.live_documents(range).ok()
        })
        .expect("copied");
        let mut source = source.into_inner();
        let taken = fresh.take_unflushed();
        assert!(taken.tombstones.is_empty());
        replay(&mut fresh, source.drain_recording());
        assert_eq!(live(&fresh), live(&source));
        assert_eq!(fresh.count(), source.count());
        assert_eq!(fresh.applied_seq(), source.applied_seq());
    }

    #[test]
    fn a_vanished_source_stops_the_copy() {
        assert!(compacted(&def(), 0, 5000, |_| None).is_none());
    }
}
