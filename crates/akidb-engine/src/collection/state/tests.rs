//! Unit tests of the in-memory state.

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
        payload_indexes: Vec::new(),
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
        deadline: None,
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
