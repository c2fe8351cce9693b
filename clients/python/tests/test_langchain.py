"""The LangChain vector store against the real binary: LangChain's own standard suite
(`langchain-tests`), sync and async, plus filters, scores and `from_texts`."""

from __future__ import annotations

import itertools

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from akidb_client import AsyncClient, Client
from akidb_client.langchain import AkiDBVectorStore

_n = itertools.count()


class TestAkiDBStandard(VectorStoreIntegrationTests):
    """LangChain's standard vector-store suite; a fresh collection per test."""

    @pytest.fixture()
    def vectorstore(self, server):
        client = Client(server.url)
        name = f"lc-standard-{next(_n)}"
        store = AkiDBVectorStore(
            client, name, self.get_embeddings(), async_client=AsyncClient(server.url)
        )
        try:
            yield store
        finally:
            client.delete_collection(name, missing_ok=True)
            client.close()


class TestAkiDBStandardThreaded(TestAkiDBStandard):
    """The async half again without an AsyncClient: LangChain's thread fallback."""

    @property
    def has_sync(self) -> bool:
        return False

    @pytest.fixture()
    def vectorstore(self, server):
        client = Client(server.url)
        name = f"lc-threaded-{next(_n)}"
        try:
            yield AkiDBVectorStore(client, name, self.get_embeddings())
        finally:
            client.delete_collection(name, missing_ok=True)
            client.close()


def test_filters_scores_and_from_texts(server, name):
    embeddings = DeterministicFakeEmbedding(size=16)
    texts = ["tiered storage", "vector search", "cold data", "hot cache"]
    metas = [{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(4)]
    with Client(server.url) as client:
        store = AkiDBVectorStore.from_texts(
            texts, embeddings, metas, ids=["a", "b", "c", "d"], collection=name, client=client
        )
        assert client.get_collection(name).count == 4
        found = store.similarity_search("cold data", k=4, filter={"kind": "even"})
        assert {d.id for d in found} == {"a", "c"}
        assert found[0] == Document(id="c", page_content="cold data", metadata=metas[2])
        scored = store.similarity_search_with_score("cold data", k=1)
        assert scored[0][0].id == "c" and scored[0][1] == pytest.approx(1.0, abs=1e-5)
        by_vector = store.similarity_search_by_vector(embeddings.embed_query("hot cache"), k=1)
        assert by_vector[0].page_content == "hot cache"
        relevance = store.similarity_search_with_relevance_scores("vector search", k=2)
        assert relevance[0][0].id == "b" and 0.99 <= relevance[0][1] <= 1.0
        assert [d.id for d in store.get_by_ids(["d", "zz", "a"])] == ["d", "a"]
        store.delete(["a", "b"])
        assert client.get_collection(name).count == 2
        with pytest.raises(TypeError):
            store.similarity_search("x", k=1, colour="red")
