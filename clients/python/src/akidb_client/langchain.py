"""A LangChain ``VectorStore`` on an AkiDB collection (``pip install akidb-client[langchain]``).

Each LangChain ``Document`` is one AkiDB document: its id, the embedding of its text, and its
metadata with the text under ``text_key`` (``page_content`` by default), which searches take off
again. Metadata filters are AkiDB filters: ``{"source": "a.pdf", "page": {"$in": [1, 2]}}``.
The collection is created on the first add (its dimension is the embeddings'), unless it exists.

    from akidb_client import Client
    from akidb_client.langchain import AkiDBVectorStore

    store = AkiDBVectorStore(Client(), "docs", embeddings)
    store.add_texts(["tiered storage", "vector search"], metadatas=[{"n": 1}, {"n": 2}])
    store.similarity_search("cold data", k=1, filter={"n": 1})

Async methods use the ``async_client`` when given one; otherwise LangChain runs the sync ones
on a thread.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore

from .async_client import AsyncClient
from .client import Client
from .errors import CollectionNotFound, DocumentNotFound
from .models import Hit

__all__ = ["AkiDBVectorStore"]

#: Ids per delete request (the server takes at most 10,000).
_DELETE_BATCH = 10_000


class AkiDBVectorStore(VectorStore):
    """LangChain's vector store interface over one AkiDB collection.

    Args:
        client: the :class:`akidb_client.Client` to use.
        collection: the collection's name.
        embedding: the LangChain ``Embeddings`` that turns texts and queries into vectors.
        metric: the metric a collection created here gets (``cosine``, ``l2`` or ``dot``).
        text_key: the metadata key that holds a document's text.
        async_client: an :class:`akidb_client.AsyncClient` for the ``a*`` methods.
    """

    def __init__(
        self,
        client: Client,
        collection: str,
        embedding: Embeddings,
        *,
        metric: str = "cosine",
        text_key: str = "page_content",
        async_client: Optional[AsyncClient] = None,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.collection = collection
        self.metric = metric
        self.text_key = text_key
        self._embedding = embedding
        self._created = False

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # ---- shared, pure ------------------------------------------------------------------------

    def _metadatas(self, texts: List[str], metadatas: Optional[List[dict]]) -> List[dict]:
        metadatas = metadatas if metadatas is not None else [{} for _ in texts]
        if len(metadatas) != len(texts):
            raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        return [{**(m or {}), self.text_key: t} for m, t in zip(metadatas, texts)]

    @staticmethod
    def _ids(ids: Optional[Sequence[Optional[str]]], n: int) -> Optional[List[Optional[str]]]:
        if ids is None:
            return None
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} texts")
        return list(ids)

    def _document(self, id: str, metadata: Optional[Dict[str, Any]]) -> Document:
        metadata = dict(metadata or {})
        text = metadata.pop(self.text_key, "")
        return Document(page_content=text, metadata=metadata, id=id)

    def _scored(self, hits: Iterable[Hit]) -> List[Tuple[Document, float]]:
        return [(self._document(h.id, h.metadata), h.score) for h in hits]

    @staticmethod
    def _search_args(k: int, filter: Optional[dict], kwargs: Dict[str, Any]) -> Dict[str, Any]:
        allowed = {"ef", "nprobe", "exact", "timeout_ms"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(f"unexpected search arguments: {', '.join(sorted(unknown))}")
        return {"k": k, "filter": filter, "include_metadata": True, **kwargs}

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.metric == "l2":
            return self._euclidean_relevance_score_fn
        # cosine and dot: similarities in [-1, 1] for unit vectors, mapped onto [0, 1].
        return lambda score: max(0.0, min(1.0, (1.0 + score) / 2.0))

    # ---- sync --------------------------------------------------------------------------------

    def _ensure_collection(self, dimension: int) -> None:
        if not self._created:
            self.client.create_collection(self.collection, dimension, self.metric, exist_ok=True)
            self._created = True

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """Embeds and writes ``texts`` with their metadata; returns their ids (generated ones
        for texts without)."""
        texts = list(texts)
        if not texts:
            return []
        vectors = self._embedding.embed_documents(texts)
        self._ensure_collection(len(vectors[0]))
        written = self.client.upsert(
            self.collection,
            ids=self._ids(ids, len(texts)),
            vectors=vectors,
            metadata=self._metadatas(texts, metadatas),
            **kwargs,
        )
        return written.ids

    def similarity_search_with_score_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        """The ``k`` nearest documents to ``embedding`` with their scores (cosine and dot:
        higher is nearer; l2: the distance, lower is nearer)."""
        try:
            hits = self.client.search(self.collection, embedding, **self._search_args(k, filter, kwargs))
        except CollectionNotFound:
            return []
        return self._scored(hits)

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        """The ``k`` documents nearest to the query's embedding, with their scores."""
        embedding = self._embedding.embed_query(query)
        return self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)

    def similarity_search_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Document]:
        """The ``k`` documents nearest to ``embedding``."""
        scored = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in scored]

    def similarity_search(
        self, query: str, k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Document]:
        """The ``k`` documents nearest to the query's embedding; ``filter`` is an AkiDB
        metadata filter."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes documents by id; ids that do not exist are ignored."""
        if ids is None:
            raise ValueError("delete needs the ids to delete (AkiDB deletes by id)")
        for start in range(0, len(ids), _DELETE_BATCH):
            try:
                self.client.delete(self.collection, ids[start : start + _DELETE_BATCH])
            except CollectionNotFound:
                return True
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The documents with these ids, in their order; missing ids are left out."""
        out = []
        for id in ids:
            try:
                doc = self.client.get(self.collection, id)
            except (DocumentNotFound, CollectionNotFound):
                continue
            out.append(self._document(doc.id, doc.metadata))
        return out

    @classmethod
    def from_texts(
        cls: Type["AkiDBVectorStore"],
        texts: List[str],
        embedding: Embeddings,
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[str]] = None,
        collection: str = "langchain",
        client: Optional[Client] = None,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        metric: str = "cosine",
        **kwargs: Any,
    ) -> "AkiDBVectorStore":
        """A store on ``collection`` (created if missing) holding ``texts``; connects with
        ``client``, or a new :class:`Client` to ``url`` with ``api_key``."""
        client = client or Client(url, api_key=api_key)
        store = cls(client, collection, embedding, metric=metric, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # ---- async (with an AsyncClient) ---------------------------------------------------------

    async def _aensure_collection(self, dimension: int) -> None:
        assert self.async_client is not None
        if not self._created:
            await self.async_client.create_collection(
                self.collection, dimension, self.metric, exist_ok=True
            )
            self._created = True

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> List[str]:
        if self.async_client is None:
            return await super().aadd_texts(texts, metadatas, ids=ids, **kwargs)
        texts = list(texts)
        if not texts:
            return []
        vectors = await self._embedding.aembed_documents(texts)
        await self._aensure_collection(len(vectors[0]))
        written = await self.async_client.upsert(
            self.collection,
            ids=self._ids(ids, len(texts)),
            vectors=vectors,
            metadata=self._metadatas(texts, metadatas),
            **kwargs,
        )
        return written.ids

    async def asimilarity_search_with_score_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        if self.async_client is None:
            return await run_in_executor(
                None, self.similarity_search_with_score_by_vector, embedding, k, filter, **kwargs
            )
        args = self._search_args(k, filter, kwargs)
        try:
            hits = await self.async_client.search(self.collection, embedding, **args)
        except CollectionNotFound:
            return []
        return self._scored(hits)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        if self.async_client is None:
            return await super().asimilarity_search_with_score(query, k, filter=filter, **kwargs)
        embedding = await self._embedding.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)

    async def asimilarity_search_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Document]:
        scored = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in scored]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Optional[dict] = None, **kwargs: Any
    ) -> List[Document]:
        scored = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in scored]

    async def adelete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        if self.async_client is None:
            return await super().adelete(ids, **kwargs)
        if ids is None:
            raise ValueError("delete needs the ids to delete (AkiDB deletes by id)")
        for start in range(0, len(ids), _DELETE_BATCH):
            try:
                await self.async_client.delete(self.collection, ids[start : start + _DELETE_BATCH])
            except CollectionNotFound:
                return True
        return True

    async def aget_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        if self.async_client is None:
            return await super().aget_by_ids(ids)
        out = []
        for id in ids:
            try:
                doc = await self.async_client.get(self.collection, id)
            except (DocumentNotFound, CollectionNotFound):
                continue
            out.append(self._document(doc.id, doc.metadata))
        return out
