"""The LlamaIndex vector store against the real binary, with LlamaIndex's own node types:
add, query with metadata filters, delete by source document, and a VectorStoreIndex over it."""

from __future__ import annotations

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from akidb_client import AsyncClient, Client
from akidb_client.llama_index import AkiDBLlamaIndexStore


def node(id: str, text: str, vector, source: str, **metadata) -> TextNode:
    n = TextNode(id_=id, text=text, embedding=list(vector), metadata=metadata)
    n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
    return n


NODES = [
    node("n1", "tiered storage", [1.0, 0.0, 0.0], "doc-a", topic="storage", year=2023),
    node("n2", "cold object store", [0.9, 0.1, 0.0], "doc-a", topic="storage", year=2024),
    node("n3", "vector search", [0.0, 1.0, 0.0], "doc-b", topic="search", year=2024),
    node("n4", "hnsw graphs", [0.1, 0.9, 0.1], "doc-b", topic="search", year=2022),
]


@pytest.fixture
def store(server, name):
    client = Client(server.url)
    s = AkiDBLlamaIndexStore(client=client, collection=name, async_client=AsyncClient(server.url))
    yield s
    s.clear()
    client.close()


def test_add_query_filter_delete(store):
    assert store.add(NODES) == ["n1", "n2", "n3", "n4"]
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=2))
    assert result.ids == ["n1", "n2"]
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-5)
    first = result.nodes[0]
    assert isinstance(first, TextNode) and first.get_content() == "tiered storage"
    assert first.metadata == {"topic": "storage", "year": 2023} and first.ref_doc_id == "doc-a"
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value="search"),
            MetadataFilter(key="year", value=[2022, 2023], operator=FilterOperator.IN),
        ]
    )
    result = store.query(
        VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=4, filters=filters)
    )
    assert result.ids == ["n4"]
    by_doc = store.query(
        VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=4, doc_ids=["doc-a"])
    )
    assert sorted(by_doc.ids) == ["n1", "n2"]
    newer = store.query(
        VectorStoreQuery(
            query_embedding=[1.0, 0.0, 0.0],
            similarity_top_k=4,
            filters=MetadataFilters(
                filters=[
                    MetadataFilter(key="year", value=2022, operator=FilterOperator.GT),
                    MetadataFilter(key="topic", value="storage", operator=FilterOperator.NE),
                ],
                condition=FilterCondition.OR,
            ),
        )
    )
    assert newer.ids and all(n.metadata["year"] > 2022 or n.metadata["topic"] != "storage" for n in newer.nodes)
    with pytest.raises(NotImplementedError):
        store.query(
            VectorStoreQuery(
                query_embedding=[1.0, 0.0, 0.0],
                filters=MetadataFilters(
                    filters=[MetadataFilter(key="topic", value="st", operator=FilterOperator.TEXT_MATCH)]
                ),
            )
        )
    store.delete("doc-a")
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=4))
    assert sorted(result.ids) == ["n3", "n4"]


@pytest.mark.asyncio
async def test_async_add_and_query(store):
    assert await store.async_add(NODES[2:]) == ["n3", "n4"]
    result = await store.aquery(VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=1))
    assert result.ids == ["n3"] and result.nodes[0].get_content() == "vector search"


def test_a_vector_store_index_over_akidb(store):
    docs = [
        Document(text="AkiDB keeps idle collections in object storage.", metadata={"k": 1}),
        Document(text="Hot collections live in RAM with an HNSW graph.", metadata={"k": 2}),
    ]
    embed = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed,
    )
    assert store.client.get_collection(store.collection).count == 2
    retrieved = index.as_retriever(similarity_top_k=2, embed_model=embed).retrieve("RAM")
    assert sorted(r.node.metadata["k"] for r in retrieved) == [1, 2]
    assert {r.node.get_content() for r in retrieved} == {d.text for d in docs}
    index.delete_ref_doc(docs[0].doc_id)
    assert store.client.get_collection(store.collection).count == 1
