//! `akidb import` against the real binary: an import killed halfway and resumed ends with
//! exactly the source's documents; bad rows stop it with their row number, or with --skip-bad
//! go to a reject file; Parquet columns by name.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use common::{Api, Server};
use futures::StreamExt;
use serde_json::{Value, json};

fn akidb() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_akidb"));
    c.env_remove("AKIDB_API_KEY").env_remove("AKIDB_URL");
    c
}

fn import(server: &Server, dir: &Path, args: &[&str]) -> Output {
    akidb()
        .current_dir(dir)
        .args(["import", "--url", &server.url])
        .args(args)
        .output()
        .unwrap()
}

/// A little-endian float32 `.npy` file of `rows` × `dim` (the format's version 1.0 header).
fn write_npy(path: &Path, rows: usize, dim: usize, values: &[f32]) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for x in values {
        out.extend(x.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

fn seeded(n: usize, dim: usize) -> Vec<f32> {
    (0..n as u64)
        .flat_map(|i| akidb_testkit::seeded_vector(i, dim))
        .collect()
}

/// A document by id, checked to exist.
async fn document(api: &Api, collection: &str, id: &str) -> Value {
    let (status, doc) = api
        .get(&format!("/api/v1/collections/{collection}/documents/{id}"))
        .await;
    assert_eq!(status, 200, "{collection}/{id}: {doc}");
    doc
}

async fn count(api: &Api, collection: &str) -> u64 {
    let (_, c) = api.get(&format!("/api/v1/collections/{collection}")).await;
    c["count"].as_u64().unwrap_or_else(|| panic!("{c}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_halfway_and_resumed_holds_exactly_the_source() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (n, dim) = (20_000, 64);
    let values = seeded(n, dim);
    write_npy(&work.path().join("vectors.npy"), n, dim, &values);
    // Ids and metadata for every row but each tenth, which gets its row number as its id.
    let mut ids = std::fs::File::create(work.path().join("ids.jsonl")).unwrap();
    let id_of = |i: usize| {
        if i % 10 == 3 {
            i.to_string()
        } else {
            format!("doc-{i}")
        }
    };
    for i in 0..n {
        let line = if i % 10 == 3 {
            json!({"metadata": {"i": i}})
        } else {
            json!({"id": id_of(i), "metadata": {"i": i, "even": i % 2 == 0}})
        };
        writeln!(ids, "{line}").unwrap();
    }
    drop(ids);
    let args = [
        "--collection",
        "imported",
        "--create",
        "--metric",
        "l2",
        "--batch-size",
        "50",
        "--parallel",
        "2",
        "--ids",
        "ids.jsonl",
        "vectors.npy",
    ];
    let mut child = akidb()
        .current_dir(work.path())
        .args(["import", "--url", &server.url])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = work.path().join("akidb-import-imported.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        let done = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["rows_done"].as_u64())
            .unwrap_or(0);
        if done >= 1_000 {
            child.kill().unwrap();
            break done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no checkpoint progress");
        std::thread::sleep(Duration::from_millis(5));
    };
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, yet it succeeded");
    let api = Api::new(&server);
    let partial = count(&api, "imported").await;
    assert!(
        partial < n as u64,
        "the import was not interrupted ({partial} written)"
    );

    let out = import(
        &server,
        work.path(),
        &[&["--resume"][..], &args[..]].concat(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resumed after row"), "{stdout}");
    eprintln!("killed after {killed_at} rows ({partial} written); resumed: {stdout}");

    // Exactly the source: every id present with its vector and metadata, nothing else.
    assert_eq!(count(&api, "imported").await, n as u64);
    let docs: Vec<(usize, Value)> = futures::stream::iter(0..n)
        .map(|i| {
            let api = &api;
            async move { (i, document(api, "imported", &id_of(i)).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (i, doc) in docs {
        let vector: Vec<f32> = serde_json::from_value(doc["vector"].clone())
            .unwrap_or_else(|_| panic!("row {i}: {doc}"));
        assert_eq!(vector, values[i * dim..(i + 1) * dim], "row {i}");
        let expected = if i % 10 == 3 {
            json!({"i": i})
        } else {
            json!({"i": i, "even": i % 2 == 0})
        };
        assert_eq!(doc["metadata"], expected, "row {i}");
    }
}

#[test]
fn bad_rows_stop_the_import_or_go_to_the_reject_file() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let long_id = "x".repeat(200);
    let lines = [
        json!({"id": "a", "vector": [1, 2, 3]}).to_string(),
        json!({"id": "b", "vector": [4, 5, 6], "metadata": {"k": "v"}}).to_string(),
        json!({"vector": [7, 8, 9]}).to_string(),
        json!({"id": "short", "vector": [1, 2]}).to_string(),
        "not json".to_string(),
        json!({"id": long_id, "vector": [1, 1, 1]}).to_string(),
        json!({"id": "z", "vector": [0, 0, 1]}).to_string(),
    ];
    std::fs::write(work.path().join("rows.jsonl"), lines.join("\n")).unwrap();
    let base = [
        "--collection",
        "rows",
        "--create",
        "--metric",
        "l2",
        "rows.jsonl",
    ];

    let out = import(&server, work.path(), &base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rows.jsonl row 3") && stderr.contains("dimension 2"),
        "{stderr}"
    );

    let out = import(
        &server,
        work.path(),
        &[&base[..], &["--skip-bad"][..]].concat(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imported 4 documents") && stdout.contains("3 rejected"),
        "{stdout}"
    );
    let rejects =
        std::fs::read_to_string(work.path().join("akidb-import-rows.rejects.jsonl")).unwrap();
    let rows: Vec<u64> = rejects
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["row"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(rows, [3, 4, 5], "{rejects}");
    assert!(
        rejects.contains("128"),
        "the server's reason for the long id: {rejects}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = Api::new(&server);
    assert_eq!(rt.block_on(count(&api, "rows")), 4);
    // The row without an id got its row number.
    let doc = rt.block_on(document(&api, "rows", "2"));
    assert_eq!(doc["vector"], json!([7.0, 8.0, 9.0]));
}

#[test]
fn parquet_columns_are_read_by_name() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let mut ids = StringBuilder::new();
    let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), 4);
    let mut meta = StringBuilder::new();
    for i in 0..1000 {
        ids.append_value(format!("p{i}"));
        vectors.values().append_slice(&[i as f32, 1.0, 2.0, 3.0]);
        vectors.append(true);
        meta.append_value(json!({"n": i}).to_string());
    }
    let batch = RecordBatch::try_from_iter([
        ("doc_id", Arc::new(ids.finish()) as ArrayRef),
        ("emb", Arc::new(vectors.finish()) as ArrayRef),
        ("attrs", Arc::new(meta.finish()) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(work.path().join("docs.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let out = import(
        &server,
        work.path(),
        &["--collection", "pq", "--create", "docs.parquet"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no column \"vector\"") && stderr.contains("doc_id, emb, attrs"),
        "{stderr}"
    );
    let out = import(
        &server,
        work.path(),
        &[
            "--collection",
            "pq",
            "--create",
            "--metric",
            "l2",
            "--id-column",
            "doc_id",
            "--vector-column",
            "emb",
            "--metadata-column",
            "attrs",
            "docs.parquet",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = Api::new(&server);
    assert_eq!(rt.block_on(count(&api, "pq")), 1000);
    let doc = rt.block_on(document(&api, "pq", "p7"));
    assert_eq!(
        (doc["vector"].clone(), doc["metadata"].clone()),
        (json!([7.0, 1.0, 2.0, 3.0]), json!({"n": 7}))
    );
}
