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
        text: None,
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

/// A state with a text index on `body`, holding documents `(id, x, body, lang)`.
fn text_state(docs: &[(&str, f32, &str, &str)]) -> State {
    let mut d = def();
    d.payload_indexes.push(PayloadIndexDef {
        field: "body".into(),
        kind: crate::payload_index::IndexType::Text,
    });
    let mut s = State::new(&d, 0);
    let docs = docs
        .iter()
        .map(|&(id, x, body, lang)| Document {
            id: id.into(),
            vector: vec![x, 0.0],
            metadata: Some(
                json!({"body": body, "lang": lang})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        })
        .collect();
    s.apply(1, Operation::Upsert(docs));
    s
}

fn text_query(x: Option<f32>, text: &str, k: usize, weight: f32) -> SearchRequest {
    SearchRequest {
        vector: x.map_or(Vec::new(), |x| vec![x, 0.0]),
        exact: true,
        text: Some(super::super::TextQuery {
            field: "body".into(),
            query: text.into(),
            weight,
        }),
        ..query(0.0, k, None)
    }
}

#[test]
fn a_text_search_ranks_by_bm25_and_follows_replaces_deletes_and_filters() {
    let mut s = text_state(&[
        (
            "a",
            0.0,
            "the quick brown fox jumps over the lazy dog",
            "en",
        ),
        ("b", 1.0, "a fox, a fox, foxes everywhere", "en"),
        ("c", 2.0, "nothing to see here", "en"),
        ("d", 3.0, "le renard brun (fox)", "fr"),
        ("e", 4.0, "", "en"),
    ]);
    let search = |s: &State, text: &str, filter: Option<serde_json::Value>| {
        let mut q = text_query(None, text, 10, 0.5);
        q.filter = filter.map(|f| Filter::parse(&f).unwrap());
        let hits = s.search(Metric::L2, &q).unwrap();
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    // "fox" is stemmed from "foxes" too; b says it most and is short.
    assert_eq!(search(&s, "Fox", None)[0], "b");
    assert_eq!(search(&s, "fox", None).len(), 3);
    assert_eq!(search(&s, "FOXES jumping", None)[..2], ["a", "b"]);
    assert!(search(&s, "zebra", None).is_empty());
    assert!(search(&s, "  ,. ", None).is_empty());
    assert_eq!(search(&s, "fox", Some(json!({"lang": "fr"}))), ["d"]);

    // Replaced: the old text no longer matches, the new one does. Deleted: gone.
    s.apply(
        2,
        Operation::Upsert(vec![Document {
            id: "b".into(),
            vector: vec![1.0, 0.0],
            metadata: Some(json!({"body": "a zebra"}).as_object().unwrap().clone()),
        }]),
    );
    s.apply(3, Operation::Delete(vec!["a".into()]));
    assert_eq!(search(&s, "fox", None), ["d"]);
    assert_eq!(search(&s, "zebra", None), ["b"]);
    // Text in an array counts, each element; other kinds and missing fields are skipped.
    s.apply(
        4,
        Operation::Upsert(vec![
            Document {
                id: "f".into(),
                vector: vec![5.0, 0.0],
                metadata: Some(
                    json!({"body": ["red fox", 7, "zebra"]})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            },
            Document {
                id: "g".into(),
                vector: vec![6.0, 0.0],
                metadata: Some(json!({"body": 12}).as_object().unwrap().clone()),
            },
        ]),
    );
    let mut got = search(&s, "zebra fox", None);
    got.sort();
    assert_eq!(got, ["b", "d", "f"]);
}

#[test]
fn a_hybrid_search_fuses_the_vector_and_text_rankings() {
    // Vector order from x = 0: v0, v1, ...; only v3 and v5 mention "kernel", v5 most.
    let s = text_state(&[
        ("v0", 0.0, "desktop wallpaper", "en"),
        ("v1", 1.0, "games and toys", "en"),
        ("v2", 2.0, "a text editor", "en"),
        ("v3", 3.0, "kernel headers for building modules", "en"),
        ("v4", 4.0, "fonts", "en"),
        ("v5", 5.0, "kernel kernel kernel", "en"),
    ]);
    let ids = |weight: f32, k: usize| {
        let hits = s
            .search(Metric::L2, &text_query(Some(0.0), "kernel", k, weight))
            .unwrap();
        hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    // Weight 0: the vector ranking; weight 1: the text ranking (two matches only).
    assert_eq!(ids(0.0, 3), ["v0", "v1", "v2"]);
    assert_eq!(ids(1.0, 2), ["v5", "v3"]);
    // Half and half: being in both rankings beats a first place in one. v3 (4th by vector,
    // 2nd by text) and v5 (6th, 1st) come before v0 (1st by vector only), then the vector
    // order.
    assert_eq!(ids(0.5, 6), ["v3", "v5", "v0", "v1", "v2", "v4"]);
    // The scores are the fused ones: v3 earns 0.5/(60 + 4) + 0.5/(60 + 2).
    let top = s
        .search(Metric::L2, &text_query(Some(0.0), "kernel", 1, 0.5))
        .unwrap();
    assert!((top[0].score - (0.5 / 64.0 + 0.5 / 62.0)).abs() < 1e-6);
}
