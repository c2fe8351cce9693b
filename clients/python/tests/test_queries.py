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
