//! Writes the seed corpus of every fuzz target to `fuzz/seeds/<target>/`, made with the real
//! encoders (WAL records, manifests, Parquet segments, HNSW graphs, partitioned bases) and
//! example request bodies. Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`.
//! The `regression-*` seeds beside them are inputs that crashed a target before its fix: they
//! are not generated here, and stay.

use std::path::Path;

use akidb_core::{HnswParams, Metric, VectorIndex};
use akidb_engine::fuzzing::Operation;
use akidb_engine::manifest::{
    BaseRef, CollectionDef, GraphRef, HeaderRef, Manifest, SegmentRef, segment_path,
};
use akidb_engine::partitioned::{self, BuildParams, PartitionWriter, Source};
use akidb_engine::segment::{self, Row};
use akidb_engine::wal::record;
use akidb_engine::{Document, Metadata};
use serde_json::json;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
    println!("fuzz/seeds/{target}/{name}: {} bytes", bytes.len());
}

fn meta(v: serde_json::Value) -> Metadata {
    v.as_object().expect("an object").clone()
}

fn doc(id: &str, vector: Vec<f32>, metadata: Option<Metadata>) -> Document {
    Document {
        id: id.into(),
        vector,
        metadata,
    }
}

fn wal() {
    let upsert = Operation::Upsert(vec![
        doc(
            "a",
            vec![1.0, -2.5, 3.25],
            Some(meta(json!({"lang": "en", "year": 2024}))),
        ),
        doc("b/ü", vec![0.0, 0.0, 1.0], None),
    ]);
    let delete = Operation::Delete(vec!["a".into(), "zz".into()]);
    let single = Operation::Upsert(vec![doc("c", vec![0.5, 0.5, 0.5], None)]);
    let mut file = record::encode(1, &upsert.encode());
    file.extend(record::encode(2, &delete.encode()));
    file.extend(record::encode(3, &single.encode()));
    write("wal_record", "three_records.log", &file);
    write("wal_record", "torn_tail.log", &file[..file.len() - 9]);
    write("wal_record", "op_upsert", &upsert.encode());
    write("wal_record", "op_delete", &delete.encode());
}

fn def() -> CollectionDef {
    CollectionDef {
        id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        name: "docs".into(),
        dimension: 3,
        metric: Metric::Cosine,
        index: HnswParams::default(),
        created_at_ms: 1_700_000_000_000,
        quantization: Default::default(),
        payload_indexes: Vec::new(),
    }
}

fn manifests() {
    let mut m = Manifest::new(def());
    m.version = 7;
    m.wal_seq = 12345;
    m.documents = 9;
    m.segments.push(SegmentRef {
        id: "s1".into(),
        path: segment_path(&m.collection.id, "s1").to_string(),
        rows: 10,
        tombstones: 1,
        bytes: 999,
        crc32c: Some(0xdead_beef),
    });
    m.graph = Some(GraphRef {
        id: "g1".into(),
        path: "collections/x/segments/g1.hnsw".into(),
        nodes: 10,
        bytes: 1234,
        crc32c: Some(7),
    });
    write("manifest", "format2.json", &m.encode());
    write(
        "manifest",
        "inner.json",
        &serde_json::to_vec(&m).expect("serialises"),
    );
    let mut legacy = m.clone();
    legacy.format = 1;
    legacy.segments[0].crc32c = None;
    legacy.graph = None;
    write(
        "manifest",
        "format1.json",
        &serde_json::to_vec_pretty(&legacy).expect("serialises"),
    );
    let mut based = m;
    based.format = 3;
    based.pinned = true;
    based.base = Some(BaseRef {
        id: "b1".into(),
        path: "collections/x/segments/b1.akp".into(),
        bytes: 4096,
        crc32c: 99,
        slots: 100,
        partitions: 4,
        header: HeaderRef {
            offset: 4000,
            len: 96,
            crc32c: 5,
        },
    });
    write("manifest", "format3.json", &based.encode());
}

fn segments() {
    for (dim, n) in [(3usize, 12usize), (1, 2)] {
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                if i % 5 == 4 {
                    Row::Tombstone(format!("gone-{i}"))
                } else {
                    let vector = (0..dim).map(|j| (i * dim + j) as f32 / 7.0 - 1.0).collect();
                    let metadata = (i % 2 == 0).then(|| meta(json!({"i": i, "tag": "x"})));
                    Row::Put(doc(&format!("doc-{i}"), vector, metadata))
                }
            })
            .collect();
        let mut seed = vec![dim as u8];
        seed.extend_from_slice(&segment::encode(dim, &rows).expect("encodes"));
        write("segment", &format!("dim{dim}_{n}rows.parquet"), &seed);
    }
}

fn graphs() {
    for (m, n) in [(2usize, 40usize), (4, 20), (3, 0)] {
        let params = HnswParams {
            m,
            ef_construction: 16,
            ef_search: 8,
        };
        let mut index = VectorIndex::new(2, Metric::L2, params);
        for i in 0..n {
            index.push(&[(i % 7) as f32, (i / 7) as f32 * 0.5]);
        }
        index.index_pending(n);
        write(
            "graph",
            &format!("m{m}_{n}nodes.hnsw"),
            &index.encode_graph(),
        );
    }
}

/// Rows for a partitioned base: slot `s` has a 2-d vector, every third has metadata, every
/// seventh is dead.
struct Rows;

fn vector(slot: u32) -> [f32; 2] {
    [(slot % 5) as f32, (slot / 5) as f32]
}

impl Source for Rows {
    fn vectors(&mut self, slots: &[u32], out: &mut Vec<f32>) -> Option<()> {
        slots.iter().for_each(|&s| out.extend(vector(s)));
        Some(())
    }

    fn rows(
        &mut self,
        slots: &[u32],
        out: &mut PartitionWriter,
        dead: &mut Vec<u32>,
    ) -> Option<()> {
        for &s in slots {
            let metadata = (s % 3 == 0).then(|| meta(json!({"slot": s})));
            out.push(s, &format!("id-{s}"), &vector(s), metadata.as_ref());
            if s % 7 == 0 {
                dead.push(s);
            }
        }
        Some(())
    }
}

fn bases() {
    for (slots, partitions) in [(30usize, 3usize), (5, 1)] {
        let params = BuildParams {
            partitions,
            sample_per_partition: 10,
            iterations: 3,
            seed: 1,
            threads: 1,
        };
        let mut object = Vec::new();
        let built = partitioned::build(2, Metric::L2, slots, params, &mut Rows, &mut object)
            .expect("builds")
            .expect("the source stays");
        let header_len = (built.header.end - built.header.start) as u32;
        let mut seed = header_len.to_le_bytes().to_vec();
        seed.extend_from_slice(&object);
        write(
            "partitioned_base",
            &format!("{slots}slots_{partitions}partitions.akp"),
            &seed,
        );
    }
}

fn requests() {
    let bodies = [
        (
            "create",
            json!({"name": "docs", "dimension": 3, "metric": "cosine",
                   "index": {"m": 16, "ef_construction": 100, "ef_search": 24},
                   "quantization": "sq8"}),
        ),
        (
            "upsert",
            json!({"documents": [
                {"id": "a", "vector": [0.1, 0.2, 0.3], "metadata": {"lang": "en", "year": 2024}},
                {"vector": [1e-3, -2.5, 3.0]}]}),
        ),
        ("delete", json!({"ids": ["a", "b/ü"]})),
        (
            "search",
            json!({"vector": [0.1, 0.2, 0.3], "k": 5, "ef": 50, "nprobe": 8,
                   "filter": {"lang": "en", "year": {"$in": [2023, 2024.0]}},
                   "exact": false, "include_vector": true, "include_metadata": true,
                   "report": true, "timeout_ms": 1000}),
        ),
        ("tier", json!({"action": "demote", "target": "cold"})),
        (
            "key",
            json!({"role": "write", "collections": ["tenant-a-*"],
                   "limits": {"requests_per_second": 10, "max_in_flight": 2,
                              "max_collections": 5, "max_vectors": 1000, "max_bytes": 1048576},
                   "description": "for tenant a"}),
        ),
        ("update", json!({"quantization": "none"})),
    ];
    for (name, body) in bodies {
        let bytes = serde_json::to_vec(&body).expect("serialises");
        write("request_bodies", &format!("{name}.json"), &bytes);
    }
}

fn main() {
    wal();
    manifests();
    segments();
    graphs();
    bases();
    requests();
}
