"""`akidb import` then `akidb export` against the binary, read back with pyarrow: the export
holds exactly the imported documents (ids, vectors, metadata), in every tier."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from akidb_client import Client

from conftest import Server, akidb_bin


@pytest.fixture
def server():
    """A server of its own with the access-rate rule off: the shared one's policy loop may
    promote a collection read twice within a minute (the exports below) at any tick, which
    would hide whether the export itself promoted it."""
    s = Server(args=["--tier-promote-accesses", "0"])
    yield s
    s.close()


def test_an_export_read_with_pyarrow_equals_the_imported_source(server, name, tmp_path):
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((3000, 24)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    with open(tmp_path / "ids.jsonl", "w") as f:
        for i in range(len(vectors)):
            meta = {"i": i, "tag": ["a", "b", "c"][i % 3]} if i % 4 else None
            f.write(json.dumps({"id": f"x{i}", "metadata": meta}) + "\n")
    run = lambda *args: subprocess.run(  # noqa: E731
        [akidb_bin(), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    out = run("import", "--url", server.url, "--collection", name, "--create", "--metric", "l2",
              "--ids", "ids.jsonl", "v.npy")
    assert out.returncode == 0, out.stderr
    assert "imported 3000 documents" in out.stdout
    with Client(server.url) as db:
        db.delete(name, ["x7", "x8"])
        expected = {f"x{i}": i for i in range(len(vectors)) if i not in (7, 8)}
        for tier in ("hot", "cold"):
            if tier == "cold":
                assert db.set_tier(name, "demote", "cold").tier == "cold"
            target = tmp_path / f"{tier}.parquet"
            out = run("export", "--url", server.url, "--collection", name, "--out", str(target))
            assert out.returncode == 0, out.stderr
            assert f"exported {len(expected)} documents" in out.stdout
            table = pq.read_table(target)
            assert table.column_names == ["id", "vector", "metadata"]
            ids = table.column("id").to_pylist()
            assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
            got = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
            rows = [expected[i] for i in ids]
            np.testing.assert_array_equal(got, vectors[rows])
            for id, meta in zip(ids, table.column("metadata").to_pylist()):
                i = expected[id]
                want = {"i": i, "tag": ["a", "b", "c"][i % 3]} if i % 4 else None
                assert (json.loads(meta) if meta is not None else None) == want, id
        # An export does not promote to hot; a cold collection is fetched to local disk once
        # (warm afterwards), as for any read of a collection without a partitioned base.
        assert db.tier(name).tier == "warm"
    out = run("export", "--url", server.url, "--collection", "no-such", "--out", "x.parquet")
    assert out.returncode != 0 and "collection_not_found" in out.stderr
    assert not (tmp_path / "x.parquet").exists()
