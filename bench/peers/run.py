#!/usr/bin/env python3
"""Peer comparison: AkiDB against hnswlib, faiss-cpu, LanceDB and Chroma on the same data set,
queries and machine, in one run.

Each system runs in its own subprocess (this script re-invoked with --worker SYSTEM, or the
AkiDB recall harness executable), so that its peak RSS can be read on its own with os.wait4.
Every worker loads the same texmex files, builds an index, then for every search parameter runs
one warm-up pass and 3 timed passes over all queries, one query at a time on one thread, and
writes JSON. The parent prints side-by-side Markdown tables.

    python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r bench/peers/requirements.txt
    /tmp/peers-venv/bin/python bench/peers/run.py               # everything
    /tmp/peers-venv/bin/python bench/peers/run.py --systems hnswlib,faiss --queries 200

See README.md beside this file for what each system uses and why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "debian-minilm-384"

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
EF_GRID = [10, 20, 40, 80, 120, 200, 300, 500]
# IVF_FLAT: sqrt(20,000) ~ 141 partitions (LanceDB's documented default rule), probes out of them.
IVF_PARTITIONS = 141
NPROBE_GRID = [1, 2, 4, 8, 16, 32, 64, 141]
THRESHOLDS = [0.90, 0.95, 0.99]
K = 10
BATCH = 1_000
ALL_SYSTEMS = [
    "akidb",
    "akidb-http",
    "hnswlib",
    "faiss",
    "lancedb-hnsw-sq",
    "lancedb-ivf-flat",
    "lancedb-flat",
    "chroma",
]
DEFAULT_SYSTEMS = [s for s in ALL_SYSTEMS if s != "akidb-http"]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def read_vecs(path: Path, dtype: str):
    import numpy as np

    a = np.fromfile(path, dtype="<i4")
    if a.size == 0:
        raise SystemExit(f"{path}: empty file")
    d = int(a[0])
    if d <= 0 or a.size % (d + 1) != 0:
        raise SystemExit(f"{path}: malformed texmex file (dimension {d}, {a.size} words)")
    rows = a.reshape(-1, d + 1)
    if not (rows[:, 0] == d).all():
        raise SystemExit(f"{path}: malformed texmex file (rows of different dimensions)")
    return rows[:, 1:].copy().view(dtype)


def load(data: Path, nq: int | None):
    import numpy as np

    for f in ("base.fvecs", "queries.fvecs", "groundtruth.ivecs"):
        if not (data / f).is_file():
            raise SystemExit(f"data set {data} has no {f}")
    base = read_vecs(data / "base.fvecs", "<f4")
    queries = read_vecs(data / "queries.fvecs", "<f4")
    gt = read_vecs(data / "groundtruth.ivecs", "<i4")
    if nq:
        queries, gt = queries[:nq], gt[:nq]
    return np.ascontiguousarray(base), np.ascontiguousarray(queries), gt


def recall_at(ids, gt, k=K) -> float:
    total = 0.0
    for got, exact in zip(ids, gt):
        total += len(set(int(i) for i in list(got)[:k]) & set(int(i) for i in exact[:k])) / k
    return total / len(gt)


def percentile(sorted_vals, p):
    import math

    rank = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[min(rank, len(sorted_vals)) - 1]


def sweep(search_one, queries, gt, params, passes):
    """search_one(param, q) -> ids. For every param: warm-up pass, `passes` timed passes."""
    points = []
    for p in params:
        for q in queries:  # warm-up
            search_one(p, q)
        secs, lat, recall = [], [], None
        for _ in range(passes):
            ids = []
            t0 = time.perf_counter()
            for q in queries:
                t = time.perf_counter()
                ids.append(search_one(p, q))
                lat.append(time.perf_counter() - t)
            secs.append(time.perf_counter() - t0)
            r = recall_at(ids, gt)
            recall = r if recall is None else min(recall, r)
        lat.sort()
        n = len(queries)
        points.append(
            {
                "param": p,
                "recall": recall,
                "qps_best": n / min(secs),
                "qps_median": n / statistics.median(secs),
                "pass_secs": secs,
                "p50_ms": percentile(lat, 50) * 1e3,
                "p99_ms": percentile(lat, 99) * 1e3,
            }
        )
        print(
            f"  param={p}: recall@{K} {recall:.4f}, QPS {n / min(secs):.0f}",
            file=sys.stderr,
            flush=True,
        )
    return points


# --------------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# --------------------------------------------------------------------------------------------


def worker_hnswlib(base, queries, gt, args, workdir):
    import hnswlib
    import numpy as np

    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    t0 = time.perf_counter()
    index.init_index(max_elements=len(base), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M, random_seed=100)
    index.set_num_threads(args.build_threads)
    for start in range(0, len(base), BATCH):
        index.add_items(base[start : start + BATCH], np.arange(start, min(start + BATCH, len(base))))
    build = time.perf_counter() - t0
    index.set_num_threads(1)

    def one(ef, q):
        if one.ef != ef:
            index.set_ef(ef)
            one.ef = ef
        labels, _ = index.knn_query(q, k=K, num_threads=1)
        return labels[0]

    one.ef = None
    return {
        "version": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "0.8.0",
        "settings": f"Index(space='cosine'), M={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}, "
        f"random_seed=100, build threads {args.build_threads}, knn_query(k={K}, num_threads=1), param = ef",
        "param_name": "ef",
        "build_secs": build,
        "points": sweep(one, queries, gt, EF_GRID, args.passes),
    }


def worker_faiss(base, queries, gt, args, workdir):
    import faiss

    faiss.omp_set_num_threads(args.build_threads)
    index = faiss.IndexHNSWFlat(base.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    t0 = time.perf_counter()
    for start in range(0, len(base), BATCH):
        index.add(base[start : start + BATCH])
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    params = faiss.SearchParametersHNSW()

    def one(ef, q):
        params.efSearch = ef
        _, labels = index.search(q.reshape(1, -1), K, params=params)
        return labels[0]

    return {
        "version": faiss.__version__,
        "settings": f"IndexHNSWFlat(d, M={HNSW_M}, METRIC_INNER_PRODUCT) on the unit vectors, "
        f"efConstruction={HNSW_EF_CONSTRUCTION}, build omp threads {args.build_threads}, "
        f"search omp_set_num_threads(1), SearchParametersHNSW(efSearch), param = efSearch",
        "param_name": "efSearch",
        "build_secs": build,
        "points": sweep(one, queries, gt, EF_GRID, args.passes),
    }


def _lance_table(base, workdir):
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(workdir / "lance"))
    dim = base.shape[1]
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float32(), dim))])
    table = None
    for start in range(0, len(base), BATCH):
        chunk = base[start : start + BATCH]
        batch = pa.table(
            {
                "id": pa.array(range(start, start + len(chunk)), pa.int64()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(chunk.reshape(-1), pa.float32()), dim),
            },
            schema=schema,
        )
        if table is None:
            table = db.create_table("peers", batch, mode="overwrite")
        else:
            table.add(batch)
    return lancedb, table


def worker_lancedb(variant):
    def run(base, queries, gt, args, workdir):
        from datetime import timedelta

        t0 = time.perf_counter()
        lancedb, table = _lance_table(base, workdir)
        if variant == "hnsw-sq":
            from lancedb.index import HnswSq

            table.create_index(
                "vector",
                config=HnswSq(
                    distance_type="cosine",
                    num_partitions=1,
                    m=HNSW_M,
                    ef_construction=HNSW_EF_CONSTRUCTION,
                ),
                wait_timeout=timedelta(minutes=30),
            )
            settings = (
                f"IVF_HNSW_SQ via HnswSq(distance_type='cosine', num_partitions=1, m={HNSW_M}, "
                f"ef_construction={HNSW_EF_CONSTRUCTION}); search .distance_type('cosine').nprobes(1).ef(ef), "
                "no refine; param = ef"
            )
            params, name = EF_GRID, "ef"

            def one(ef, q):
                t = (
                    table.search(q, vector_column_name="vector")
                    .distance_type("cosine")
                    .nprobes(1)
                    .ef(ef)
                    .limit(K)
                    .select(["id"])
                    .to_arrow()
                )
                return t.column("id").to_pylist()

        elif variant == "ivf-flat":
            from lancedb.index import IvfFlat

            table.create_index(
                "vector",
                config=IvfFlat(distance_type="cosine", num_partitions=IVF_PARTITIONS),
                wait_timeout=timedelta(minutes=30),
            )
            settings = (
                f"IVF_FLAT via IvfFlat(distance_type='cosine', num_partitions={IVF_PARTITIONS}) "
                "(sqrt(rows), the documented default rule, set explicitly); full-precision vectors, so no "
                "refine step is needed; search .distance_type('cosine').nprobes(n); param = nprobes"
            )
            params, name = NPROBE_GRID, "nprobes"

            def one(n, q):
                t = (
                    table.search(q, vector_column_name="vector")
                    .distance_type("cosine")
                    .nprobes(n)
                    .limit(K)
                    .select(["id"])
                    .to_arrow()
                )
                return t.column("id").to_pylist()

        else:  # flat: no index, exhaustive kNN
            settings = "no index: exhaustive kNN (.distance_type('cosine')), the documented choice for small tables"
            params, name = ["exact"], "-"

            def one(_p, q):
                t = (
                    table.search(q, vector_column_name="vector")
                    .distance_type("cosine")
                    .limit(K)
                    .select(["id"])
                    .to_arrow()
                )
                return t.column("id").to_pylist()

        build = time.perf_counter() - t0
        try:
            for idx in table.list_indices():
                st = table.index_stats(idx.name)
                settings += (
                    f" [index {idx.name}: {st.index_type}, {st.num_indexed_rows} rows indexed, "
                    f"{st.num_unindexed_rows} unindexed]"
                )
        except Exception as e:  # informational only
            settings += f" [index stats unavailable: {e}]"
        return {
            "version": lancedb.__version__,
            "settings": settings,
            "param_name": name,
            "build_secs": build,
            "points": sweep(one, queries, gt, params, args.passes),
        }

    return run


def _chroma_client(path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def worker_chroma(base, queries, gt, args, workdir):
    """Builds the collection on disk, then measures each ef_search in a fresh process.

    Chroma applies `ef_search` when it loads the HNSW index: `collection.modify()` updates the
    stored configuration but not an index already loaded in the same process (checked here with
    chromadb 1.5.9: recall stayed the same across modify() calls, and changed in a new process).
    So every ef_search value gets its own process that sets it before its first query."""
    import chromadb

    path = workdir / "chroma"
    client = _chroma_client(path)
    t0 = time.perf_counter()
    coll = client.create_collection(
        "peers",
        embedding_function=None,
        configuration={
            "hnsw": {
                "space": "cosine",
                "max_neighbors": HNSW_M,
                "ef_construction": HNSW_EF_CONSTRUCTION,
                "num_threads": args.build_threads,
            }
        },
    )
    for start in range(0, len(base), BATCH):
        chunk = base[start : start + BATCH]
        coll.add(ids=[str(i) for i in range(start, start + len(chunk))], embeddings=chunk)
    # One query makes sure everything added is indexed and searchable before the clock stops.
    coll.query(query_embeddings=queries[:1], n_results=K, include=[])
    build = time.perf_counter() - t0
    config = dict(coll.configuration.get("hnsw") or {})
    del coll, client

    points = []
    for ef in EF_GRID:
        out = workdir / f"chroma-ef{ef}.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "chroma-query",
            "--chroma-path",
            str(path),
            "--ef",
            str(ef),
            "--data",
            str(args.data),
            "--out",
            str(out),
            "--passes",
            str(args.passes),
        ]
        if args.queries:
            cmd += ["--queries", str(args.queries)]
        code, _, _ = spawn(cmd)
        if code != 0:
            raise RuntimeError(f"chroma query process for ef_search={ef} exited {code}")
        points.extend(json.loads(out.read_text()))
    return {
        "version": chromadb.__version__,
        "settings": f"PersistentClient (local, embedded), configuration hnsw: space='cosine', "
        f"max_neighbors={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}, num_threads={args.build_threads} "
        f"(stored config {config}); adds of {BATCH}; each ef_search set with collection.modify() in a fresh "
        "process before its first query (Chroma applies ef_search when it loads the index); "
        f"query(n_results={K}, include=[]); param = ef_search",
        "param_name": "ef_search",
        "build_secs": build,
        "points": points,
    }


def worker_chroma_query(base, queries, gt, args, workdir):
    client = _chroma_client(args.chroma_path)
    coll = client.get_collection("peers", embedding_function=None)
    coll.modify(configuration={"hnsw": {"ef_search": args.ef}})
    coll = client.get_collection("peers", embedding_function=None)
    got = (coll.configuration.get("hnsw") or {}).get("ef_search")
    if got != args.ef:
        raise RuntimeError(f"chroma kept ef_search={got}, asked for {args.ef}")

    def one(_ef, q):
        r = coll.query(query_embeddings=q.reshape(1, -1), n_results=K, include=[])
        return [int(i) for i in r["ids"][0]]

    return sweep(one, queries, gt, [args.ef], args.passes)


WORKERS = {
    "hnswlib": worker_hnswlib,
    "faiss": worker_faiss,
    "lancedb-hnsw-sq": worker_lancedb("hnsw-sq"),
    "lancedb-ivf-flat": worker_lancedb("ivf-flat"),
    "lancedb-flat": worker_lancedb("flat"),
    "chroma": worker_chroma,
    "chroma-query": worker_chroma_query,
}


def run_worker(args):
    base, queries, gt = load(Path(args.data), args.queries)
    if args.worker == "chroma-query":
        Path(args.out).write_text(json.dumps(worker_chroma_query(base, queries, gt, args, None)))
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"peers-{args.worker}-"))
    try:
        print(f"{args.worker}: building over {len(base)} vectors", file=sys.stderr, flush=True)
        result = WORKERS[args.worker](base, queries, gt, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["vectors"] = len(base)
    result["queries"] = len(queries)
    Path(args.out).write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------------------------
# AkiDB (through the recall harness executable)
# --------------------------------------------------------------------------------------------


def cargo_env(args):
    env = dict(os.environ)
    if args.cargo_target_dir:
        env["CARGO_TARGET_DIR"] = args.cargo_target_dir
    return env


def akidb_executable(args) -> str:
    cmd = ["cargo", "bench", "-p", "akidb-server", "--bench", "recall", "--no-run", "--message-format=json"]
    if args.cargo_jobs:
        cmd += ["-j", str(args.cargo_jobs)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=args.repo, env=cargo_env(args), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cargo bench --no-run failed:\n{out.stderr[-3000:]}")
    exe = None
    for line in out.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "recall" and msg.get("executable"):
            exe = msg["executable"]
    if not exe:
        raise RuntimeError("cargo did not report the recall bench executable")
    return exe


def akidb_result(harness_json: dict, mode: str, dataset: str) -> dict:
    # The harness runs every data set under the folder it is given; keep the one compared here.
    ds = next(d for d in harness_json["datasets"] if d["name"] == dataset)
    m = next(x for x in ds["modes"] if x["mode"] == mode)
    pts = [p for p in m["points"] if p["k"] == K and p["threads"] == 1]
    b = m["build"]
    return {
        "version": "this repository",
        "settings": f"{'in-process Engine API' if mode == 'engine' else 'HTTP API, real akidb binary, keep-alive client'}; "
        f"HNSW m={b['m']}, ef_construction={b['ef_construction']} (defaults), cosine; upserts of {b['batch']} "
        f"(WAL fsync per batch); build = until index_pending == 0; search(k={K}, ef), one query at a time; param = ef",
        "param_name": "ef",
        "build_secs": b["indexed_secs"],
        "ingest_secs": b["ingest_secs"],
        "points": [
            {
                "param": p["ef"],
                "recall": p["recall"],
                "qps_best": p["qps_best"],
                "qps_median": p["qps_median"],
                "pass_secs": p["pass_secs"],
                "p50_ms": p["p50_ms"],
                "p99_ms": p["p99_ms"],
            }
            for p in pts
        ],
        "multi_thread": [
            {"param": p["ef"], "threads": p["threads"], "qps_best": p["qps_best"], "recall": p["recall"]}
            for p in m["points"]
            if p["k"] == K and p["threads"] > 1
        ],
        "vectors": ds["vectors"],
        "queries": ds["queries"],
    }


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def spawn(cmd, env=None, cwd=None, log=None):
    """Runs cmd; returns (exit status, peak RSS in KiB of that process tree as wait4 reports it,
    wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT if log else None)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, time.perf_counter() - t0


def run_system(name, args, tmp: Path, exe_cache: dict):
    out = tmp / f"{name}.json"
    load_before = os.getloadavg()
    if name in ("akidb", "akidb-http"):
        if "exe" not in exe_cache:
            exe_cache["exe"] = akidb_executable(args)
        mode = "engine" if name == "akidb" else "http"
        cmd = [
            exe_cache["exe"],
            "--engine-only" if mode == "engine" else "--http-only",
            "--k",
            str(K),
            "--threads",
            str(args.threads),
            "--passes",
            str(args.passes),
            "--data",
            str(Path(args.data).parent),
            "--json",
            str(out),
        ]
        if args.queries:
            cmd += ["--queries", str(args.queries)]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        # The harness prints its own tables; they go to stderr so stdout holds only ours.
        code, rss_kib, wall = spawn(cmd, cwd=args.repo, log=sys.stderr)
        if code != 0:
            return {"name": name, "error": f"recall harness exited {code}"}
        result = akidb_result(json.loads(out.read_text()), mode, Path(args.data).name)
    else:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--data",
            str(args.data),
            "--out",
            str(out),
            "--passes",
            str(args.passes),
            "--build-threads",
            str(args.build_threads),
        ]
        if args.queries:
            cmd += ["--queries", str(args.queries)]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        # Lance logs a deprecation warning per query (about the `_distance` column) otherwise.
        env = dict(os.environ, RUST_LOG="error", LANCEDB_LOG="error", LANCE_LOG="error")
        code, rss_kib, wall = spawn(cmd, env=env)
        if code != 0 or not out.exists():
            return {"name": name, "error": f"worker exited {code}"}
        result = json.loads(out.read_text())
    result["name"] = name
    result["peak_rss_mib"] = rss_kib / 1024
    result["wall_secs"] = wall
    result["load_before"] = load_before
    result["load_after"] = os.getloadavg()
    return result


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def at_threshold(points, thr):
    """The smallest parameter (in sweep order) whose recall reaches thr, or None."""
    for p in points:
        if p["recall"] >= thr:
            return p
    return None


def report(results, args) -> str:
    lines = []
    ok = [r for r in results if "error" not in r]
    lines.append(f"Data: {args.data} ({ok[0]['vectors'] if ok else '?'} vectors, {ok[0]['queries'] if ok else '?'} queries), "
                 f"recall@{K} with k={K}; one query at a time on one thread; QPS = best of {args.passes} timed passes after a warm-up.")
    try:
        import psutil

        lines.append(
            f"Machine: {psutil.cpu_count()} logical CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM "
            "(psutil); the peers and AkiDB ran one after another, never at the same time."
        )
    except ImportError:
        pass
    lines.append("")
    lines.append("### Build / ingest")
    lines.append("")
    lines.append("| system | version | build s | vectors/s | peak RSS MiB | load avg before → after |")
    lines.append("| --- | --- | ---: | ---: | ---: | --- |")
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | FAILED: {r['error']} | | | | |")
            continue
        lb = "/".join(f"{x:.1f}" for x in r["load_before"])
        la = "/".join(f"{x:.1f}" for x in r["load_after"])
        lines.append(
            f"| {r['name']} | {r['version']} | {r['build_secs']:.2f} | {fmt(r['vectors'] / r['build_secs'])} | "
            f"{r['peak_rss_mib']:.0f} | {lb} → {la} |"
        )
    lines.append("")
    lines.append(f"### QPS at recall@{K} thresholds (smallest search parameter reaching it; 1 thread)")
    lines.append("")
    head = "| system | param |" + "".join(f" ≥{t:.2f}: param | recall | QPS |" for t in THRESHOLDS)
    lines.append(head)
    lines.append("| --- | --- |" + " ---: | ---: | ---: |" * len(THRESHOLDS))
    for r in ok:
        row = f"| {r['name']} | {r['param_name']} |"
        for t in THRESHOLDS:
            p = at_threshold(r["points"], t)
            if p is None:
                best = max(r["points"], key=lambda x: x["recall"])
                row += f" not reached (max {best['recall']:.4f} at {best['param']}) | | |"
            else:
                row += f" {p['param']} | {p['recall']:.4f} | {fmt(p['qps_best'])} |"
        lines.append(row)
    lines.append("")
    lines.append(f"### Single-query latency at the recall@{K} ≥ 0.95 point (1 thread)")
    lines.append("")
    lines.append("| system | param | recall | p50 ms | p99 ms |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for r in ok:
        p = at_threshold(r["points"], 0.95)
        if p is None:
            lines.append(f"| {r['name']} | not reached | | | |")
        else:
            lines.append(f"| {r['name']} | {p['param']} | {p['recall']:.4f} | {p['p50_ms']:.3f} | {p['p99_ms']:.3f} |")
    lines.append("")
    lines.append("### Full sweeps (1 thread)")
    lines.append("")
    lines.append("| system | param | value | recall@10 | QPS best | QPS median | p50 ms | p99 ms |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in ok:
        for p in r["points"]:
            lines.append(
                f"| {r['name']} | {r['param_name']} | {p['param']} | {p['recall']:.4f} | {fmt(p['qps_best'])} | "
                f"{fmt(p['qps_median'])} | {p['p50_ms']:.3f} | {p['p99_ms']:.3f} |"
            )
    lines.append("")
    lines.append("### Settings")
    lines.append("")
    for r in results:
        if "error" in r:
            lines.append(f"- **{r['name']}**: FAILED ({r['error']})")
        else:
            lines.append(f"- **{r['name']}** ({r['version']}): {r['settings']}")
    mt = [r for r in ok if r.get("multi_thread")]
    if mt:
        lines.append("")
        lines.append(f"AkiDB with queries split over {args.threads} threads (not comparable to the 1-thread columns above):")
        lines.append("")
        lines.append("| system | ef | recall@10 | QPS best |")
        lines.append("| --- | ---: | ---: | ---: |")
        for r in mt:
            for p in r["multi_thread"]:
                lines.append(f"| {r['name']} | {p['param']} | {p['recall']:.4f} | {fmt(p['qps_best'])} |")
    lines.append("")
    lines.append(
        "Peak RSS is each system's own process as os.wait4 reports it (ru_maxrss: the largest of that process and the "
        "children it waited for): it includes the Python interpreter, numpy and the loaded data set for the peers, and "
        "the loaded data set for AkiDB (for akidb-http: the larger of the harness and the server process)."
    )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="data set folder (base/queries/groundtruth)")
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help=f"comma-separated, of {ALL_SYSTEMS}")
    ap.add_argument("--queries", type=int, default=None, help="only the first N queries")
    ap.add_argument("--passes", type=int, default=3, help="timed passes per point")
    ap.add_argument("--build-threads", type=int, default=1, help="threads for the peers' index build (AkiDB's indexer is one thread)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="AkiDB harness multi-thread column")
    ap.add_argument("--cargo-target-dir", default=os.environ.get("CARGO_TARGET_DIR"), help="CARGO_TARGET_DIR for building the harness")
    ap.add_argument("--cargo-jobs", type=int, default=1)
    ap.add_argument("--repo", default=str(REPO), help="AkiDB checkout whose recall harness to build (default: this one)")
    ap.add_argument("--json", default=None, help="write all results as JSON here")
    ap.add_argument("--markdown", default=None, help="also write the tables here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--chroma-path", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ef", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        run_worker(args)
        return

    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"data set folder {data} does not exist")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            raise SystemExit(f"unknown system {s!r}; known: {ALL_SYSTEMS}")
    tmp = Path(tempfile.mkdtemp(prefix="peers-run-"))
    results, exe_cache = [], {}
    for s in systems:
        print(f"== {s} (load {os.getloadavg()})", file=sys.stderr, flush=True)
        try:
            results.append(run_system(s, args, tmp, exe_cache))
        except Exception as e:  # record the failure, go on with the others
            results.append({"name": s, "error": f"{type(e).__name__}: {e}"})
        if "error" in results[-1]:
            print(f"== {s} FAILED: {results[-1]['error']}", file=sys.stderr, flush=True)
    text = report(results, args)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
