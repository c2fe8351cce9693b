"""Filters, scroll, count, batch search and delete by filter from Python, sync and async,
against the real `akidb` binary."""

from __future__ import annotations

import numpy as np
import pytest

from akidb_client import AsyncClient, Client, InvalidArgument, ScrollPage


def _fill(db: Client, name: str, n: int = 250) -> np.ndarray:
    db.create_collection(name, dimension=3, metric="l2")
    vectors = np.array([[i, 1.0, (i % 4)] for i in range(n)], dtype=np.float32)
    db.upsert(
        name,
        ids=[f"d{i:03}" for i in range(n)],
        vectors=vectors,
        metadata=[{"n": i % 10, "who": {"name": "ada" if i % 2 else "bob"}, "tags": [f"t{i % 3}"]} for i in range(n)],
    )
    return vectors


def test_scroll_count_batch_and_delete_by_filter(server, name):
    with Client(server.url) as db:
        vectors = _fill(db, name)
        assert db.count(name) == 250
        assert db.count(name, {"n": {"$gte": 5}, "who.name": "ada"}) == 75
        assert db.count(name, {"$or": [{"tags": "t0"}, {"n": {"$exists": False}}]}) == 84

        page = db.scroll(name, filter={"n": 3}, limit=10)
        assert isinstance(page, ScrollPage) and len(page) == 10
        assert [d.id for d in page][:2] == ["d003", "d013"] and page.next_cursor == "d093"
        assert page.documents[0].vector is None and page.documents[0].metadata["n"] == 3
        every = list(db.documents(name, filter={"n": 3}, page_size=7, include_vector=True, as_numpy=True))
        assert [d.id for d in every] == [f"d{i:03}" for i in range(3, 250, 10)]
        np.testing.assert_array_equal(every[1].vector, vectors[13])

        answers = db.search_batch(
            name,
            [
                {"vector": vectors[7], "k": 2},
                {"vector": [1.0, 2.0], "k": 2},
                {"vector": vectors[40], "k": 1, "filter": {"n": {"$ne": 0}}, "include_metadata": True},
            ],
        )
        assert answers[0].ids[0] == "d007"
        assert isinstance(answers[1], InvalidArgument) and answers[1].field == "searches[1].vector"
        assert answers[2][0].id in ("d039", "d041") and answers[2][0].metadata["n"] != 0

        with pytest.raises(InvalidArgument) as e:
            db.count(name, {"n": {"$gt": [1]}})
        assert e.value.field == "filter.n.$gt"
        assert db.delete(name, filter={"who.name": "bob", "n": {"$lt": 4}}) == 50
        assert db.count(name) == 200 and db.count(name, {"who.name": "bob", "n": {"$lt": 4}}) == 0


@pytest.mark.asyncio
async def test_async_scroll_count_and_batch(server, name):
    with Client(server.url) as db:
        _fill(db, name, 40)
    async with AsyncClient(server.url) as db:
        assert await db.count(name, {"n": 1}) == 4
        ids = [d.id async for d in db.documents(name, filter={"n": {"$in": [1, 2]}}, page_size=3)]
        assert ids == ["d001", "d002", "d011", "d012", "d021", "d022", "d031", "d032"]
        [a] = await db.search_batch(name, [{"vector": [5.0, 1.0, 1.0], "k": 1}])
        assert a.ids == ["d005"]
        assert await db.delete(name, filter={"n": 1}) == 4


_TEXTS = [
    "python bindings for the mlt multimedia framework",
    "a fast text editor",
    "fonts for the x window system",
    "python library to parse yaml",
    "kernel headers",
]


def test_text_and_hybrid_search(server, name):
    with Client(server.url) as db:
        db.create_collection(name, dimension=2, metric="l2")
        info = db.create_index(name, "body", "text")
        assert [(p.field, p.type) for p in info.payload_indexes] == [("body", "text")]
        db.upsert(
            name,
            ids=[f"t{i}" for i in range(len(_TEXTS))],
            vectors=[[float(i), 0.0] for i in range(len(_TEXTS))],
            metadata=[{"body": t, "n": i} for i, t in enumerate(_TEXTS)],
        )
        # By text alone: BM25 scores, only documents holding a query word.
        hits = db.search(name, text="Python", k=10)
        assert sorted(hits.ids) == ["t0", "t3"] and hits[0].score >= hits[1].score
        assert db.search(name, text="python", filter={"n": 3}).ids == ["t3"]
        # Hybrid: weight 0 is the vector ranking, 1 the text ranking.
        assert db.search(name, [4.0, 0.0], k=3, text="python", text_weight=0.0).ids == ["t4", "t3", "t2"]
        assert db.search(name, [4.0, 0.0], k=2, text="python yaml", text_weight=1.0).ids == ["t3", "t0"]
        # t3 is second by vector and first by text: first when both count.
        assert db.search(name, [4.0, 0.0], k=1, text="python yaml").ids == ["t3"]
        answers = db.search_batch(name, [{"text": "editor", "k": 1}, {"vector": [0.0, 0.0], "text": "kernel", "k": 1}])
        assert answers[0].ids == ["t1"] and answers[1].ids == ["t4"]
        with pytest.raises(InvalidArgument) as e:
            db.search(name, text="x", text_weight=2.0)
        assert e.value.field == "text_weight"
        with pytest.raises(InvalidArgument) as e:
            db.search(name)
        assert e.value.field == "vector"
        with pytest.raises(InvalidArgument) as e:
            db.create_index(name, "body", "fulltext")
        assert e.value.field == "type"


async def test_async_text_search(server, name):
    async with AsyncClient(server.url) as db:
        await db.create_collection(name, dimension=2, metric="l2")
        await db.create_index(name, "body", "text")
        await db.upsert(name, ids=["a", "b"], vectors=[[0.0, 0.0], [1.0, 0.0]], metadata=[{"body": "red fox"}, {"body": "blue whale"}])
        assert (await db.search(name, text="whales")).ids == ["b"]
