"""The asyncio client against the real `akidb` binary: the same operations, awaited, and
many requests at once on one client."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from akidb_client import AsyncClient, CollectionNotFound, InvalidArgument, Unauthenticated

from conftest import ADMIN_KEY


@pytest.mark.asyncio
async def test_async_round_trip(server, name):
    async with AsyncClient(server.url) as db:
        assert await db.health() and await db.ready()
        created = await db.create_collection(name, dimension=4, metric="cosine")
        assert created.name == name and created.count == 0
        vectors = np.eye(4, dtype=np.float32)
        written = await db.upsert(
            name, ids=["a", "b", "c", "d"], vectors=vectors, metadata=[{"n": i} for i in range(4)]
        )
        assert written.upserted == 4
        hits = await db.search(name, vectors[2], k=2, filter={"n": {"$in": [1, 2]}})
        assert hits.ids[0] == "c" and hits[0].metadata == {"n": 2}
        doc = await db.get(name, "d", as_numpy=True)
        np.testing.assert_array_equal(doc.vector, vectors[3])
        assert await db.delete(name, ["a"]) == 1
        assert (await db.get_collection(name)).count == 3
        assert (await db.tier(name)).tier == "hot"
        with pytest.raises(InvalidArgument) as e:
            await db.search(name, [1, 2], k=1)
        assert e.value.field == "vector"
        await db.delete_collection(name)
        with pytest.raises(CollectionNotFound):
            await db.get_collection(name)


@pytest.mark.asyncio
async def test_many_concurrent_requests_on_one_client(server, name):
    async with AsyncClient(server.url) as db:
        await db.create_collection(name, dimension=8, metric="l2")
        rng = np.random.default_rng(3)
        vectors = rng.standard_normal((64, 8)).astype(np.float32)
        await asyncio.gather(
            *(db.upsert(name, ids=[f"v{i}"], vectors=vectors[i : i + 1]) for i in range(64))
        )
        results = await asyncio.gather(
            *(db.search(name, vectors[i], k=1, exact=True) for i in range(64))
        )
        assert [r.ids[0] for r in results] == [f"v{i}" for i in range(64)]


@pytest.mark.asyncio
async def test_async_keys(auth_server, name):
    async with AsyncClient(auth_server.url) as anon:
        with pytest.raises(Unauthenticated):
            await anon.list_collections()
    async with AsyncClient(auth_server.url, api_key=ADMIN_KEY) as admin:
        await admin.create_collection(name, dimension=2, metric="l2")
        key = await admin.create_key("write", collections=[name])
        async with AsyncClient(auth_server.url, api_key=key.key) as writer:
            await writer.upsert(name, ids=["x"], vectors=[[1, 2]])
            assert (await writer.search(name, [1, 2], k=1)).ids == ["x"]
        await admin.delete_key(key.id)
        assert key.id not in [k.id for k in await admin.list_keys()]
