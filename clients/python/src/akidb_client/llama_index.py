"""A LlamaIndex vector store on an AkiDB collection (``pip install akidb-client[llama-index]``).

Each node is one AkiDB document: the node's id, its embedding, and its metadata plus the node
itself (LlamaIndex's ``_node_content``), so that queries return whole nodes. Metadata filters
map onto AkiDB filters: ``==`` and ``in``, joined by AND (other operators are refused with
``NotImplementedError``). The collection is created on the first add.

    from llama_index.core import StorageContext, VectorStoreIndex
    from akidb_client import Client
    from akidb_client.llama_index import AkiDBLlamaIndexStore

    store = AkiDBLlamaIndexStore(client=Client(), collection="docs")
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store)
    )
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from .async_client import AsyncClient
from .client import Client
from .errors import CollectionNotFound

__all__ = ["AkiDBLlamaIndexStore"]

_OPERATORS = {
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.ANY: "$in",  # an array field holding any of the values
}


def _clause(f: Any) -> Dict[str, Any]:
    """One LlamaIndex filter (or nested filters) as an AkiDB filter."""
    if isinstance(f, MetadataFilters):
        parts = [_clause(g) for g in f.filters]
        if f.condition == FilterCondition.OR:
            return {"$or": parts}
        if f.condition == getattr(FilterCondition, "NOT", None):
            return {"$not": {"$or": parts}}
        return parts[0] if len(parts) == 1 else {"$and": parts}
    op = f.operator
    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):  # an array contains an equal value
        return {f.key: {"$eq": f.value}}
    if op == FilterOperator.ALL:
        return {"$and": [{f.key: {"$eq": v}} for v in f.value]}
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{f.key: None}, {f.key: {"$in": []}}]}
    if op in _OPERATORS:
        value = list(f.value) if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY) else f.value
        return {f.key: {_OPERATORS[op]: value}}
    raise NotImplementedError(f"filter operator {op.value!r} on {f.key!r} has no AkiDB equivalent")


def to_akidb_filter(filters: Optional[MetadataFilters], doc_ids: Optional[List[str]]) -> Optional[dict]:
    """An AkiDB filter for LlamaIndex metadata filters (every operator but text_match, AND, OR,
    NOT and nesting), and a restriction to source documents."""
    parts = []
    if filters is not None and filters.filters:
        parts.append(_clause(filters))
    if doc_ids:
        parts.append({"ref_doc_id": {"$in": list(doc_ids)}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


class AkiDBLlamaIndexStore(BasePydanticVectorStore):
    """LlamaIndex's vector store interface over one AkiDB collection.

    Args:
        client: the :class:`akidb_client.Client` to use.
        collection: the collection's name.
        metric: the metric a collection created here gets (``cosine``, ``l2`` or ``dot``).
        async_client: an :class:`akidb_client.AsyncClient` for the async methods (without one,
            they call the sync ones).
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection: str
    metric: str = "cosine"

    _client: Client = PrivateAttr()
    _async_client: Optional[AsyncClient] = PrivateAttr(default=None)
    _created: bool = PrivateAttr(default=False)

    def __init__(
        self,
        client: Client,
        collection: str,
        metric: str = "cosine",
        async_client: Optional[AsyncClient] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(collection=collection, metric=metric, **kwargs)
        self._client = client
        self._async_client = async_client

    @property
    def client(self) -> Client:
        return self._client

    @classmethod
    def class_name(cls) -> str:
        return "AkiDBLlamaIndexStore"

    # ---- shared, pure ------------------------------------------------------------------------

    @staticmethod
    def _columns(nodes: Sequence[BaseNode]) -> Dict[str, Any]:
        ids, vectors, metadata = [], [], []
        for node in nodes:
            embedding = node.get_embedding()
            ids.append(node.node_id)
            vectors.append(embedding)
            metadata.append(node_to_metadata_dict(node, remove_text=False, flat_metadata=False))
        return {"ids": ids, "vectors": vectors, "metadata": metadata}

    @staticmethod
    def _search_args(query: VectorStoreQuery) -> Dict[str, Any]:
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise NotImplementedError(f"query mode {query.mode.value!r}: AkiDB answers dense queries")
        if query.node_ids:
            raise NotImplementedError("restricting a query to node ids is not supported yet")
        if query.query_embedding is None:
            raise ValueError("the query needs an embedding")
        return {
            "vector": query.query_embedding,
            "k": query.similarity_top_k,
            "filter": to_akidb_filter(query.filters, query.doc_ids),
            "include_metadata": True,
        }

    @staticmethod
    def _result(hits: Any) -> VectorStoreQueryResult:
        nodes = [metadata_dict_to_node(h.metadata or {}) for h in hits]
        for node, hit in zip(nodes, hits):
            node.id_ = hit.id
        return VectorStoreQueryResult(
            nodes=nodes, similarities=[h.score for h in hits], ids=[h.id for h in hits]
        )

    # ---- sync --------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        """Writes the nodes (with their embeddings); returns their ids."""
        if not nodes:
            return []
        columns = self._columns(nodes)
        if not self._created:
            dim = len(columns["vectors"][0])
            self._client.create_collection(self.collection, dim, self.metric, exist_ok=True)
            self._created = True
        return self._client.upsert(self.collection, **columns).ids

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest to the query's embedding that pass its
        filters."""
        args = self._search_args(query)
        vector = args.pop("vector")
        try:
            hits = self._client.search(self.collection, vector, **args)
        except CollectionNotFound:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._result(hits)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the source document ``ref_doc_id``."""
        try:
            self._client.delete(self.collection, filter={"ref_doc_id": ref_doc_id})
        except CollectionNotFound:
            pass

    def clear(self) -> None:
        """Deletes the collection and everything in it."""
        self._client.delete_collection(self.collection, missing_ok=True)
        self._created = False

    # ---- async -------------------------------------------------------------------------------

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        if self._async_client is None:
            return self.add(nodes, **kwargs)
        if not nodes:
            return []
        columns = self._columns(nodes)
        if not self._created:
            dim = len(columns["vectors"][0])
            await self._async_client.create_collection(self.collection, dim, self.metric, exist_ok=True)
            self._created = True
        return (await self._async_client.upsert(self.collection, **columns)).ids

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._async_client is None:
            return self.query(query, **kwargs)
        args = self._search_args(query)
        vector = args.pop("vector")
        try:
            hits = await self._async_client.search(self.collection, vector, **args)
        except CollectionNotFound:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._result(hits)
