"""The Python client measured against a running server (a benchmark, not a test):

1. search latency: the same query through raw httpx (one reused connection, a pre-serialised
   body) and through ``Client.search``, interleaved; p50/p99 of each and the client's overhead;
2. bulk upsert rate from NumPy: JSON bodies against Arrow IPC bodies, same data, same batches,
   and the time until the collection is fully indexed.

    python clients/python/bench/client_bench.py --url http://127.0.0.1:8080 \
        --vectors 200000 --dim 384 --queries 5000

Collections named ``bench-py-*`` are created and deleted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
import numpy as np
import orjson

from akidb_client import Client


def percentile(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def search_overhead(db: Client, url: str, queries: int, dim: int) -> None:
    name = "bench-py-latency"
    db.delete_collection(name, missing_ok=True)
    db.create_collection(name, dim, "cosine")
    rng = np.random.default_rng(1)
    data = rng.standard_normal((10_000, dim)).astype(np.float32)
    db.upsert(name, ids=[str(i) for i in range(len(data))], vectors=data, batch_size=2000)
    while db.get_collection(name).index_pending:
        time.sleep(0.2)
    qs = rng.standard_normal((queries, dim)).astype(np.float32)
    raw = httpx.Client(base_url=url)
    path = f"/api/v1/collections/{name}/search"
    # The same bytes the client sends (orjson, shortest float32 form): the difference is then
    # the client's own work.
    bodies = [
        orjson.dumps({"vector": q, "k": 10, "include_metadata": True}, option=orjson.OPT_SERIALIZE_NUMPY)
        for q in qs
    ]
    headers = {"content-type": "application/json"}
    raw_t, plain_t, client_t = [], [], []
    for _ in range(200):  # warm up every path
        raw.post(path, content=bodies[0], headers=headers)
        db.search(name, qs[0], k=10)
    for i in range(queries):
        t = time.perf_counter()
        r = raw.post(path, content=bodies[i], headers=headers)
        r.json()
        raw_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = raw.post(path, json={"vector": qs[i].tolist(), "k": 10, "include_metadata": True})
        r.json()
        plain_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        db.search(name, qs[i], k=10)
        client_t.append(time.perf_counter() - t)
    raw.close()
    db.delete_collection(name)
    us = lambda x: f"{x * 1e6:8.0f}"  # noqa: E731
    print(f"search, {queries} queries of {dim}-d, k=10, one client, sequential (µs):")
    print(f"  raw, body pre-serialised  p50 {us(percentile(raw_t, 0.5))}  p99 {us(percentile(raw_t, 0.99))}")
    print(f"  raw httpx json=           p50 {us(percentile(plain_t, 0.5))}  p99 {us(percentile(plain_t, 0.99))}")
    print(f"  Client.search             p50 {us(percentile(client_t, 0.5))}  p99 {us(percentile(client_t, 0.99))}")
    for label, base in (("pre-serialised", raw_t), ("httpx json=", plain_t)):
        diffs = [c - r for c, r in zip(client_t, base)]
        print(f"  Client over {label:<14} p50 {us(statistics.median(diffs))} (median of paired differences)")


def upsert_rate(db: Client, vectors: int, dim: int, batch: int) -> None:
    rng = np.random.default_rng(2)
    data = rng.standard_normal((vectors, dim)).astype(np.float32)
    ids = [str(i) for i in range(vectors)]
    meta = [{"i": i} for i in range(vectors)]
    print(f"upsert of {vectors} x {dim}-d from NumPy, batches of {batch}, one client:")
    for binary in (False, True):
        name = f"bench-py-upsert-{'arrow' if binary else 'json'}"
        db.delete_collection(name, missing_ok=True)
        db.create_collection(name, dim, "cosine")
        t = time.perf_counter()
        db.upsert(name, ids=ids, vectors=data, metadata=meta, batch_size=batch, binary=binary)
        acked = time.perf_counter() - t
        while db.get_collection(name).index_pending:
            time.sleep(0.5)
        indexed = time.perf_counter() - t
        kind = "Arrow IPC" if binary else "JSON     "
        print(
            f"  {kind}  {vectors / acked:9.0f} vectors/s acknowledged ({acked:6.1f} s), "
            f"fully indexed after {indexed:6.1f} s"
        )
        db.delete_collection(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--vectors", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--skip-upsert", action="store_true")
    a = p.parse_args()
    with Client(a.url, timeout=300) as db:
        search_overhead(db, a.url, a.queries, a.dim)
        if not a.skip_upsert:
            upsert_rate(db, a.vectors, a.dim, a.batch)


if __name__ == "__main__":
    main()
