//! A collection's in-memory state: vectors and their HNSW index, ids, metadata, and what is not
//! yet flushed. Pure and synchronous (no I/O, no locks): the collection holds it behind its
//! state lock, and every rule about it is unit-tested here.
//!
//! Slot `i` is the `i`-th vector pushed. An upsert pushes a new slot (a replaced document's old
//! slot becomes a tombstone: skipped in results, still a waypoint in the graph); a delete
//! tombstones the slot. A flush takes every slot pushed since the last one, superseded ones
//! too, so that loading the segments' rows in order rebuilds exactly these slots.

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use akidb_core::index::FullVectors;
use akidb_core::{Metric, Neighbor, Quantization, SearchOptions, VectorIndex};
use tokio::time::Instant;

use super::info::{Hit, SearchRequest};
use crate::doc::{Document, Metadata, Operation, heap_block, metadata_heap_bytes};
use crate::manifest::CollectionDef;
use crate::partitioned::PartitionWriter;
use crate::payload_index::{PayloadIndexDef, PayloadIndexes};
use crate::segment::{Columns, Row};

mod listing;

/// Vectors a collection holds before its index is quantized (the quantizer trains on them).
pub(crate) const QUANTIZE_AFTER: usize = 1_000;

pub(crate) struct State {
    index: VectorIndex,
    /// Id of each slot.
    ids: Vec<Arc<str>>,
    /// Heap bytes of the id strings (each shared by `ids` and `by_id`), kept as slots are
    /// added, so that status reads (every metrics scrape) do not walk every id.
    id_bytes: usize,
    /// Metadata of each slot (dropped when the slot is dead).
    metadata: Vec<Option<Box<Metadata>>>,
    /// Heap bytes of the live metadata objects (see [`metadata_heap_bytes`]).
    metadata_bytes: usize,
    /// Live document id → slot.
    by_id: HashMap<Arc<str>, u32>,
    /// Highest WAL sequence number applied.
    applied_seq: u64,
    /// Slots below this are in a durable segment.
    flushed_slots: usize,
    /// Ids deleted since the last flush; each becomes a tombstone row in the next segment.
    unflushed_deletes: HashSet<Arc<str>>,
    /// When the oldest unflushed change was applied.
    dirty_since: Option<Instant>,
    last_write: Instant,
    /// While a compaction runs off the lock: every operation applied meanwhile, to replay into
    /// the compacted state before it replaces this one.
    recording: Option<Vec<(u64, Operation)>>,
    /// Indexes on metadata fields, kept as slots are pushed (dead slots stay listed).
    payload: PayloadIndexes,
}

/// What a flush takes out of the state: the slots to write (copied afterwards, a chunk at a
/// time, with [`State::copy_puts`]), the tombstones, and what they cover.
pub(crate) struct Unflushed {
    /// An id per document deleted since the last flush and not re-inserted.
    pub tombstones: Vec<String>,
    /// The WAL sequence number the rows cover.
    pub covered_seq: u64,
    /// Live documents once these rows are stored.
    pub documents: u64,
    /// The first slot taken (to put them back if the flush fails).
    pub from_slot: usize,
    pub slots: usize,
    pub deletes: HashSet<Arc<str>>,
}

impl State {
    pub fn new(def: &CollectionDef, applied_seq: u64) -> State {
        State {
            index: VectorIndex::new(def.dimension, def.metric, def.index),
            ids: Vec::new(),
            id_bytes: 0,
            metadata: Vec::new(),
            metadata_bytes: 0,
            by_id: HashMap::new(),
            applied_seq,
            flushed_slots: 0,
            unflushed_deletes: HashSet::new(),
            dirty_since: None,
            last_write: Instant::now(),
            recording: None,
            payload: {
                let mut p = PayloadIndexes::new();
                for d in &def.payload_indexes {
                    p.create(&d.field, d.kind, std::iter::empty());
                }
                p
            },
        }
    }

    /// Builds a payload index over every slot (false: it exists already).
    pub fn create_payload_index(&mut self, def: &PayloadIndexDef) -> bool {
        let metadata = &self.metadata;
        let existing = (0..metadata.len()).map(|i| (i as u32, metadata[i].as_deref()));
        self.payload.create(&def.field, def.kind, existing)
    }

    fn upsert(&mut self, doc: Document) {
        let slot = self.index.push(&doc.vector);
        let id: Arc<str> = Arc::from(doc.id);
        if let Some(old) = self.by_id.insert(id.clone(), slot) {
            self.index.delete(old);
            self.drop_metadata(old);
            self.payload.kill(old);
        }
        // An Arc<str> allocation: two counters, then the bytes.
        self.id_bytes += heap_block(2 * std::mem::size_of::<usize>() + id.len());
        self.ids.push(id);
        let metadata = doc.metadata.map(Box::new);
        if !self.payload.is_empty() {
            self.payload.insert(slot, metadata.as_deref());
        }
        self.metadata_bytes += metadata.as_deref().map_or(0, |m| {
            heap_block(std::mem::size_of::<Metadata>()) + metadata_heap_bytes(m)
        });
        self.metadata.push(metadata);
    }

    fn drop_metadata(&mut self, slot: u32) {
        if let Some(m) = self.metadata[slot as usize].take() {
            self.metadata_bytes -=
                heap_block(std::mem::size_of::<Metadata>()) + metadata_heap_bytes(&m);
        }
    }

    fn delete(&mut self, id: &str) {
        if let Some((id, slot)) = self.by_id.remove_entry(id) {
            self.index.delete(slot);
            self.drop_metadata(slot);
            self.payload.kill(slot);
            self.unflushed_deletes.insert(id);
        }
    }

    /// Applies a durable operation (in log order).
    pub fn apply(&mut self, seq: u64, op: Operation) {
        if let Some(recorded) = &mut self.recording {
            recorded.push((seq, op.clone()));
        }
        match op {
            Operation::Upsert(docs) => docs.into_iter().for_each(|d| self.upsert(d)),
            Operation::Delete(ids) => ids.iter().for_each(|id| self.delete(id)),
        }
        self.applied_seq = seq;
        let now = Instant::now();
        self.dirty_since.get_or_insert(now);
        self.last_write = now;
    }

    /// Replays one stored row (loading segments in order).
    pub fn load_row(&mut self, row: Row) {
        match row {
            Row::Put(doc) => self.upsert(doc),
            Row::Tombstone(id) => self.delete(&id),
        }
    }

    /// Loads slot `slot` of a partitioned base (slots are loaded in order, dead ones too).
    pub fn load_base_row(&mut self, slot: u32, doc: Document) {
        debug_assert_eq!(
            slot as usize,
            self.index.len(),
            "base rows load in slot order"
        );
        self.upsert(doc);
    }

    /// After a base's rows: kills `slot`, when its document was replaced or deleted (a
    /// replaced one already is, by the later slot of its id).
    pub fn load_dead(&mut self, slot: u32) {
        let id = self.ids[slot as usize].clone();
        if self.by_id.get(&id) == Some(&slot) {
            self.delete(&id);
        }
    }

    /// Appends the vectors of `slots` to `out` (building a partitioned base).
    pub fn copy_vectors(&self, slots: &[u32], out: &mut Vec<f32>) -> io::Result<()> {
        for &slot in slots {
            out.extend_from_slice(&self.index.vector(slot)?);
        }
        Ok(())
    }

    /// Appends the rows of `slots` to `out`, and the dead ones to `dead` (building a
    /// partitioned base: dead slots are stored too, without metadata).
    pub fn copy_base_rows(
        &self,
        slots: &[u32],
        out: &mut PartitionWriter,
        dead: &mut Vec<u32>,
    ) -> io::Result<()> {
        for &slot in slots {
            let i = slot as usize;
            out.push(
                slot,
                &self.ids[i],
                &self.index.vector(slot)?,
                self.metadata[i].as_deref(),
            );
            if self.index.is_deleted(slot) {
                dead.push(slot);
            }
        }
        Ok(())
    }

    /// After loading every stored row: all of it is flushed.
    pub fn mark_all_flushed(&mut self) {
        self.unflushed_deletes.clear();
        self.flushed_slots = self.index.len();
    }

    /// Installs a saved graph (see `VectorIndex::load_graph`).
    pub fn install_graph(&mut self, graph: &[u8]) -> Result<(), String> {
        self.index.load_graph(graph).map_err(|e| e.to_string())
    }

    pub fn encode_graph(&self) -> Vec<u8> {
        self.index.encode_graph()
    }

    pub fn get(&self, id: &str) -> io::Result<Option<Document>> {
        let Some(&slot) = self.by_id.get(id) else {
            return Ok(None);
        };
        Ok(Some(Document {
            id: id.to_string(),
            vector: self.index.vector(slot)?.into_owned(),
            metadata: self.metadata[slot as usize].as_deref().cloned(),
        }))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The `req.k` best live documents, best first: the nearest to the vector (scores in the
    /// metric's sense), the best by BM25 for a search by text alone, or the two rankings fused
    /// for a hybrid search (scores are then the fused ones, see `fusion`).
    pub fn search(&self, metric: Metric, req: &SearchRequest) -> io::Result<Vec<Hit>> {
        let Some(text) = &req.text else {
            return self
                .nearest(req, req.k)?
                .into_iter()
                .map(|(slot, d)| self.hit(req, slot, metric.score(d)))
                .collect();
        };
        let index = self.payload.text(&text.field).ok_or_else(|| {
            io::Error::other(format!("the text index on {:?} is not built", text.field))
        })?;
        let filter = req.filter.as_ref();
        let keep = |slot: u32| {
            !self.index.is_deleted(slot)
                && filter.is_none_or(|f| f.matches(self.metadata[slot as usize].as_deref()))
        };
        let slots = self.metadata.len() as u32;
        let metadata = |slot: u32| self.metadata[slot as usize].as_deref();
        if req.vector.is_empty() {
            return index
                .search(&text.query, req.k, slots, metadata, keep)?
                .into_iter()
                .map(|(slot, score)| self.hit(req, slot, score))
                .collect();
        }
        let window = crate::fusion::window(req.k);
        let by_text: Vec<u32> = index
            .search(&text.query, window, slots, metadata, keep)?
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        let by_vector: Vec<u32> = self
            .nearest(req, window)?
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        crate::fusion::rrf(&by_vector, &by_text, text.weight, req.k)
            .into_iter()
            .map(|(slot, score)| self.hit(req, slot, score))
            .collect()
    }

    /// The `k` nearest live slots matching the filter, with their distances, nearest first.
    ///
    /// With a deadline, a filtered or exact search checks it every 1,024 documents and, once
    /// it has passed, admits no more (the caller then answers `DeadlineExceeded`).
    ///
    /// A filter that the payload indexes bound gives the candidate slots; the planner then
    /// scans them (exactly) when that costs less than walking the graph (see
    /// `payload_index::planner`). An exact search with such a filter always scans them.
    fn nearest(&self, req: &SearchRequest, k: usize) -> io::Result<Vec<(u32, f32)>> {
        if let Some(candidates) = req.filter.as_ref().and_then(|f| self.live_candidates(f)) {
            let ef = req.ef.unwrap_or(self.index.params().ef_search);
            let plan =
                crate::payload_index::plan(Some(candidates.len()), self.index.live_len(), ef, k);
            if req.exact || plan == crate::payload_index::Plan::Scan {
                return self.scan_candidates(req, k, candidates.as_slice());
            }
        }
        let filter_fn;
        let mut opts = SearchOptions {
            ef: req.ef,
            exact: req.exact,
            filter: None,
        };
        let checks = std::sync::atomic::AtomicU32::new(0);
        let stopped = |deadline: &Option<crate::Deadline>| {
            deadline.as_ref().is_some_and(|d| {
                checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1024 == 1023
                    && d.passed()
            })
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let live = |slot: u32, filter: Option<&crate::filter::Filter>| {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            if stopped(&req.deadline) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
            filter.is_none_or(|f| f.matches(self.metadata[slot as usize].as_deref()))
        };
        if req.filter.is_some() || (req.exact && req.deadline.is_some()) {
            filter_fn = |slot: u32| live(slot, req.filter.as_ref());
            opts.filter = Some(&filter_fn);
        }
        let neighbors: Vec<Neighbor> = self.index.search(&req.vector, k, &opts);
        Ok(neighbors
            .into_iter()
            .map(|n| (n.slot, n.distance))
            .collect())
    }

    /// The live slots a filter can match, when the payload indexes bound it.
    pub(super) fn live_candidates(
        &self,
        filter: &crate::filter::Filter,
    ) -> Option<crate::payload_index::Candidates> {
        let mut c = self.payload.candidates(filter)?;
        c.retain_live(|slot| !self.index.is_deleted(slot));
        Some(c)
    }

    /// The `k` nearest of `slots` that match the filter, exactly (a deadline stops it as in
    /// [`State::nearest`]).
    fn scan_candidates(
        &self,
        req: &SearchRequest,
        k: usize,
        slots: &[u32],
    ) -> io::Result<Vec<(u32, f32)>> {
        let filter = req.filter.as_ref();
        let metric = self.index.metric();
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (i, &slot) in slots.iter().enumerate() {
            if i % 1024 == 1023 && req.deadline.as_ref().is_some_and(|d| d.passed()) {
                break;
            }
            if !filter.is_none_or(|f| f.matches(self.metadata[slot as usize].as_deref())) {
                continue;
            }
            let d = akidb_core::distance::distance(metric, &req.vector, &self.index.vector(slot)?);
            if best.len() == k && d >= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|&(x, s)| (x, s) <= (d, slot));
            best.insert(at, (d, slot));
            best.truncate(k);
        }
        Ok(best.into_iter().map(|(d, slot)| (slot, d)).collect())
    }

    fn hit(&self, req: &SearchRequest, slot: u32, score: f32) -> io::Result<Hit> {
        Ok(Hit {
            id: self.ids[slot as usize].to_string(),
            score,
            vector: match req.include_vector {
                true => Some(self.index.vector(slot)?.into_owned()),
                false => None,
            },
            metadata: if req.include_metadata {
                self.metadata[slot as usize].as_deref().cloned()
            } else {
                None
            },
        })
    }

    /// Bytes of the vector file of a quantized index (local disk, not RAM).
    pub fn vector_file_bytes(&self) -> u64 {
        self.index.full_vector_bytes()
    }

    /// True when the index should change to `want`: back to f32, or to 8-bit codes once it
    /// holds [`QUANTIZE_AFTER`] vectors to train on.
    pub fn quantization_due(&self, want: Quantization) -> bool {
        match (self.index.quantization(), want) {
            (Quantization::None, Quantization::Sq8) => self.index.len() >= QUANTIZE_AFTER,
            (Quantization::Sq8, Quantization::None) => true,
            _ => false,
        }
    }

    /// Changes the index to `want` when [`State::quantization_due`]; `full` makes the store of
    /// the full-precision vectors. On error the index stays as it was.
    pub fn quantize(
        &mut self,
        want: Quantization,
        full: impl FnOnce() -> io::Result<Box<dyn FullVectors>>,
    ) -> io::Result<()> {
        if !self.quantization_due(want) {
            return Ok(());
        }
        match want {
            Quantization::Sq8 => self.index.quantize(full()?),
            Quantization::None => self.index.dequantize(),
        }?;
        self.index.shrink_to_fit();
        Ok(())
    }

    /// Live documents.
    pub fn count(&self) -> usize {
        self.by_id.len()
    }

    /// Vectors not yet in the HNSW graph (searched exactly meanwhile).
    pub fn index_pending(&self) -> usize {
        self.index.len() - self.index.indexed_len()
    }

    pub fn indexed_len(&self) -> usize {
        self.index.indexed_len()
    }

    /// Threads that plan graph insertions (see `VectorIndex::set_build_threads`).
    pub fn set_build_threads(&mut self, threads: usize) {
        self.index.set_build_threads(threads);
    }

    /// Inserts up to `max` pending vectors into the graph; returns how many.
    pub fn index_some(&mut self, max: usize) -> usize {
        self.index.index_pending(max)
    }

    /// (dead slots, all slots): replaced or deleted documents still held, and every slot.
    pub fn slots(&self) -> (usize, usize) {
        (self.index.len() - self.index.live_len(), self.index.len())
    }

    pub fn flushed_slots(&self) -> usize {
        self.flushed_slots
    }

    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Documents and deletes not yet in a segment.
    pub fn unflushed(&self) -> usize {
        (self.index.len() - self.flushed_slots) + self.unflushed_deletes.len()
    }

    /// `max_docs` unflushed changes, or changes older than `max_age`, or changes and no write
    /// for `idle`.
    pub fn flush_due(&self, max_docs: usize, idle: Duration, max_age: Duration) -> bool {
        let unflushed = self.unflushed();
        unflushed > 0
            && (unflushed >= max_docs
                || self.last_write.elapsed() >= idle
                || self.dirty_since.is_some_and(|t| t.elapsed() >= max_age))
    }

    /// Takes everything not yet flushed (see [`Unflushed`]) without copying it;
    /// [`State::restore_unflushed`] puts it back if the flush fails. The caller then copies slots
    /// `from_slot..from_slot + slots` with [`State::copy_puts`], under read locks. Those slots
    /// never change but for dying (a later replace or delete drops their metadata): a row copied
    /// after that carries no metadata, and the operation that killed it is past `covered_seq`,
    /// so every state that includes the row also applies its death.
    pub fn take_unflushed(&mut self) -> Unflushed {
        let from = self.flushed_slots;
        let to = self.index.len();
        let deletes = std::mem::take(&mut self.unflushed_deletes);
        let tombstones = deletes
            .iter()
            .filter(|id| !self.by_id.contains_key(&***id))
            .map(|id| id.to_string())
            .collect();
        self.flushed_slots = to;
        self.dirty_since = None;
        Unflushed {
            tombstones,
            covered_seq: self.applied_seq,
            documents: self.by_id.len() as u64,
            from_slot: from,
            slots: to - from,
            deletes,
        }
    }

    /// Appends a `Put` row per slot in `slots` to `out`, superseded ones included, so that a
    /// load rebuilds the same slots.
    pub fn copy_puts(&self, slots: Range<usize>, out: &mut Columns) -> io::Result<()> {
        for slot in slots {
            out.push_put(
                &self.ids[slot],
                &self.index.vector(slot as u32)?,
                self.metadata[slot].as_deref(),
            );
        }
        Ok(())
    }

    /// Puts back what a failed flush took: it stays unflushed (the WAL still holds it).
    pub fn restore_unflushed(&mut self, from_slot: usize, deletes: HashSet<Arc<str>>) {
        self.flushed_slots = self.flushed_slots.min(from_slot);
        self.unflushed_deletes.extend(deletes);
        self.dirty_since.get_or_insert_with(Instant::now);
    }

    fn document_at(&self, slot: usize) -> io::Result<Document> {
        Ok(Document {
            id: self.ids[slot].to_string(),
            vector: self.index.vector(slot as u32)?.into_owned(),
            metadata: self.metadata[slot].as_deref().cloned(),
        })
    }

    /// Slots pushed so far (live and dead).
    #[cfg(test)]
    pub fn slot_count(&self) -> usize {
        self.index.len()
    }

    /// The live documents among `slots`, in slot order (what a compaction keeps).
    pub fn live_documents(&self, slots: Range<usize>) -> io::Result<Vec<Document>> {
        slots
            .filter(|&slot| !self.index.is_deleted(slot as u32))
            .map(|slot| self.document_at(slot))
            .collect()
    }

    /// From now on, every applied operation is also recorded (see [`State::drain_recording`]).
    pub fn start_recording(&mut self) {
        self.recording = Some(Vec::new());
    }

    /// The operations applied since recording started or was last drained, in order; recording
    /// goes on.
    pub fn drain_recording(&mut self) -> Vec<(u64, Operation)> {
        self.recording
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn stop_recording(&mut self) {
        self.recording = None;
    }

    /// Everything the state holds: vectors, graph and tombstones, ids, metadata, and the
    /// tables over them (capacities, not lengths: that is what the allocator handed out).
    pub fn bytes_in_ram(&self) -> usize {
        use std::mem::size_of;
        /// A hashbrown table: its buckets and one control byte per bucket.
        fn table<T>(capacity: usize) -> usize {
            if capacity == 0 {
                0
            } else {
                let buckets = (capacity * 8 / 7).next_power_of_two();
                heap_block(buckets * (size_of::<T>() + 1) + 16)
            }
        }
        size_of::<State>()
            + self.index.memory_bytes()
            + self.ids.capacity() * size_of::<Arc<str>>()
            + self.id_bytes
            + self.metadata.capacity() * size_of::<Option<Box<Metadata>>>()
            + self.metadata_bytes
            + table::<(Arc<str>, u32)>(self.by_id.capacity())
            + table::<Arc<str>>(self.unflushed_deletes.capacity())
            + self.payload.memory_bytes()
    }
}

#[cfg(test)]
pub(super) mod tests;
