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
use crate::segment::{Columns, Row};

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
        }
    }

    fn upsert(&mut self, doc: Document) {
        let slot = self.index.push(&doc.vector);
        let id: Arc<str> = Arc::from(doc.id);
        if let Some(old) = self.by_id.insert(id.clone(), slot) {
            self.index.delete(old);
            self.drop_metadata(old);
        }
        // An Arc<str> allocation: two counters, then the bytes.
        self.id_bytes += heap_block(2 * std::mem::size_of::<usize>() + id.len());
        self.ids.push(id);
        let metadata = doc.metadata.map(Box::new);
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

    /// The `req.k` nearest live documents, best first (scores in the metric's sense).
    pub fn search(&self, metric: Metric, req: &SearchRequest) -> io::Result<Vec<Hit>> {
        let filter_fn;
        let mut opts = SearchOptions {
            ef: req.ef,
            exact: req.exact,
            filter: None,
        };
        if let Some(filter) = &req.filter {
            let metadata = &self.metadata;
            filter_fn = move |slot: u32| filter.matches(metadata[slot as usize].as_deref());
            opts.filter = Some(&filter_fn);
        }
        let neighbors: Vec<Neighbor> = self.index.search(&req.vector, req.k, &opts);
        neighbors
            .into_iter()
            .map(|n| {
                Ok(Hit {
                    id: self.ids[n.slot as usize].to_string(),
                    score: metric.score(n.distance),
                    vector: match req.include_vector {
                        true => Some(self.index.vector(n.slot)?.into_owned()),
                        false => None,
                    },
                    metadata: if req.include_metadata {
                        self.metadata[n.slot as usize].as_deref().cloned()
                    } else {
                        None
                    },
                })
            })
            .collect()
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
    }
}

#[cfg(test)]
pub(super) mod tests {
    use akidb_core::HnswParams;
    use serde_json::json;

    use super::*;
    use crate::filter::Filter;

    /// A 2-d L2 collection (also used by the compaction tests).
    pub(in crate::collection) fn def() -> CollectionDef {
        CollectionDef {
            id: "c".into(),
            name: "c".into(),
            dimension: 2,
            metric: Metric::L2,
            index: HnswParams::default(),
            created_at_ms: 0,
            quantization: Default::default(),
        }
    }

    /// The rows a flush of `taken` stores, as a load reads them back.
    pub(in crate::collection) fn flushed_rows(s: &State, taken: &Unflushed) -> Vec<Row> {
        let mut columns = Columns::new(s.index.dim(), taken.slots + taken.tombstones.len());
        s.copy_puts(taken.from_slot..taken.from_slot + taken.slots, &mut columns)
            .unwrap();
        for id in &taken.tombstones {
            columns.push_tombstone(id);
        }
        let data = crate::segment::encode_columns(columns).unwrap();
        crate::segment::decode(s.index.dim(), data).unwrap()
    }

    fn doc(id: &str, x: f32, kind: &str) -> Document {
        let mut m = Metadata::new();
        m.insert("kind".into(), json!(kind));
        Document {
            id: id.into(),
            vector: vec![x, 0.0],
            metadata: Some(m),
        }
    }

    fn query(x: f32, k: usize, filter: Option<serde_json::Value>) -> SearchRequest {
        SearchRequest {
            vector: vec![x, 0.0],
            k,
            ef: None,
            nprobe: None,
            exact: true,
            filter: filter.map(|f| Filter::parse(&f).unwrap()),
            include_vector: false,
            include_metadata: true,
        }
    }

    fn ids(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn upsert_replace_delete_and_search() {
        let mut s = State::new(&def(), 0);
        s.apply(
            1,
            Operation::Upsert(vec![doc("a", 1.0, "x"), doc("b", 2.0, "y")]),
        );
        s.apply(2, Operation::Upsert(vec![doc("a", 10.0, "y")]));
        assert_eq!(s.count(), 2);
        assert_eq!(s.slots(), (1, 3), "the replaced slot is dead");
        assert_eq!(s.get("a").unwrap().unwrap().vector, vec![10.0, 0.0]);
        assert_eq!(
            ids(&s.search(Metric::L2, &query(1.0, 2, None)).unwrap()),
            ["b", "a"]
        );
        assert_eq!(
            ids(&s
                .search(Metric::L2, &query(1.0, 2, Some(json!({"kind": "y"}))))
                .unwrap()),
            ["b", "a"]
        );
        assert_eq!(
            ids(&s
                .search(Metric::L2, &query(1.0, 2, Some(json!({"kind": "x"}))))
                .unwrap()),
            Vec::<&str>::new(),
            "a's old metadata went with its old slot"
        );
        s.apply(3, Operation::Delete(vec!["b".into(), "nope".into()]));
        assert!(!s.contains("b"));
        assert_eq!(s.applied_seq(), 3);
        assert_eq!(
            ids(&s.search(Metric::L2, &query(1.0, 5, None)).unwrap()),
            ["a"]
        );
    }

    #[test]
    fn a_flush_takes_every_new_slot_and_the_deletes_and_can_put_them_back() {
        let mut s = State::new(&def(), 0);
        s.apply(1, Operation::Upsert(vec![doc("a", 1.0, "x")]));
        s.apply(
            2,
            Operation::Upsert(vec![doc("a", 2.0, "x"), doc("b", 3.0, "x")]),
        );
        s.apply(3, Operation::Delete(vec!["b".into()]));
        assert_eq!(s.unflushed(), 4);
        let taken = s.take_unflushed();
        let kinds: Vec<_> = flushed_rows(&s, &taken)
            .iter()
            .map(|r| match r {
                Row::Put(d) => format!("put {}", d.id),
                Row::Tombstone(id) => format!("tombstone {id}"),
            })
            .collect();
        assert_eq!(kinds, ["put a", "put a", "put b", "tombstone b"]);
        assert_eq!((taken.covered_seq, taken.documents, taken.slots), (3, 1, 3));
        assert_eq!(s.unflushed(), 0);
        s.restore_unflushed(taken.from_slot, taken.deletes);
        assert_eq!(
            s.unflushed(),
            4,
            "a failed flush leaves everything unflushed"
        );
    }

    #[test]
    fn loading_rows_rebuilds_the_same_slots() {
        let mut hot = State::new(&def(), 0);
        hot.apply(
            1,
            Operation::Upsert(vec![doc("a", 1.0, "x"), doc("b", 2.0, "y")]),
        );
        hot.apply(2, Operation::Upsert(vec![doc("a", 3.0, "x")]));
        hot.apply(3, Operation::Delete(vec!["b".into()]));
        let taken = hot.take_unflushed();
        let rows = flushed_rows(&hot, &taken);
        let mut loaded = State::new(&def(), 3);
        rows.into_iter().for_each(|r| loaded.load_row(r));
        loaded.mark_all_flushed();
        assert_eq!(loaded.slots(), hot.slots());
        assert_eq!(loaded.get("a").unwrap(), hot.get("a").unwrap());
        assert_eq!(loaded.unflushed(), 0);
    }

    #[test]
    fn recording_captures_what_a_compaction_must_replay() {
        let mut s = State::new(&def(), 0);
        s.apply(1, Operation::Upsert(vec![doc("a", 1.0, "x")]));
        s.start_recording();
        s.apply(2, Operation::Delete(vec!["a".into()]));
        s.apply(3, Operation::Upsert(vec![doc("b", 2.0, "x")]));
        let recorded = s.drain_recording();
        assert_eq!(
            recorded.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [2, 3]
        );
        s.apply(4, Operation::Upsert(vec![doc("c", 2.0, "x")]));
        assert_eq!(s.drain_recording().len(), 1, "draining goes on recording");
        s.stop_recording();
        s.apply(5, Operation::Upsert(vec![doc("d", 2.0, "x")]));
        assert!(s.drain_recording().is_empty(), "recording stopped");
        let live: Vec<String> = s
            .live_documents(0..s.slot_count())
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(live, ["b", "c", "d"]);
    }

    #[test]
    fn metadata_counts_in_bytes_in_ram_and_leaves_with_its_document() {
        let mut s = State::new(&def(), 0);
        let empty = s.bytes_in_ram();
        s.apply(1, Operation::Upsert(vec![doc("a", 1.0, "x")]));
        let one = s.bytes_in_ram();
        assert!(
            one > empty + 600,
            "a leaf of the metadata map alone is ~650 bytes"
        );
        s.apply(2, Operation::Delete(vec!["a".into()]));
        assert_eq!(s.metadata_bytes, 0);
    }
}
