"""The synchronous client."""

from __future__ import annotations

import time
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence

import httpx

from . import _calls
from ._base import Settings, Verify, error, request_headers, result
from ._retry import RetryPolicy, transport_error
from .errors import CollectionExists, CollectionNotFound
from .models import (
    Collection,
    CreatedKey,
    Document,
    KeyInfo,
    ScrollPage,
    SearchResult,
    TierStatus,
    Tiers,
    UpsertResult,
)

__all__ = ["Client"]


class Client:
    """A connection to one AkiDB server; thread-safe, and best reused (it pools connections).

    Args:
        url: the server, ``http://host:port`` or ``https://...``; default ``$AKIDB_URL``, else
            ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer``; default ``$AKIDB_API_KEY``.
        timeout: seconds for each request (connect, read, write); ``None`` waits forever.
        verify: TLS verification: ``True`` (system CAs), ``False`` (none: testing only), a path
            to a PEM CA bundle, or an ``ssl.SSLContext``.
        retry: how often and how long to retry (see :class:`RetryPolicy`).
        headers: extra headers for every request.

    Errors are raised as the :mod:`akidb_client.errors` class of the server's error code
    (``CollectionNotFound``, ``InvalidArgument``, ...), each an :class:`AkiDBError`.

    Example::

        with Client("http://127.0.0.1:8080") as db:
            db.create_collection("docs", dimension=3, metric="cosine")
            db.upsert("docs", [{"id": "a", "vector": [1, 0, 0], "metadata": {"lang": "en"}}])
            hits = db.search("docs", [1, 0, 0], k=5, filter={"lang": "en"})
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        api_key: Optional[str] = None,
        timeout: Optional[float] = 30.0,
        verify: Verify = True,
        retry: Optional[RetryPolicy] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._settings = Settings(url, api_key, timeout, verify, retry, headers)
        self._http = httpx.Client(**self._settings.httpx_args())

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._settings.url

    def close(self) -> None:
        """Closes the pooled connections."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def _run(self, call: _calls.Call) -> Any:
        policy = self._settings.retry
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, content=call.body, headers=request_headers(call)
                )
            except httpx.TransportError as exc:
                wait = policy.after_failure(attempt, exc, call.idempotent)
                if wait is None:
                    raise transport_error(exc, self.url) from exc
            else:
                err = error(call, response)
                if err is None:
                    return result(call, response)
                wait = policy.after_answer(attempt, err)
                if wait is None:
                    raise err
            time.sleep(wait)
            attempt += 1

    # ---- server ------------------------------------------------------------------------------

    def health(self) -> bool:
        """Whether the server process answers (``GET /health``)."""
        try:
            return self._http.get("/health").is_success
        except httpx.TransportError:
            return False

    def ready(self) -> bool:
        """Whether the server has opened its collections and takes requests (``GET /ready``)."""
        try:
            return self._http.get("/ready").is_success
        except httpx.TransportError:
            return False

    # ---- collections -------------------------------------------------------------------------

    def list_collections(self) -> List[Collection]:
        """Every collection (those the API key may see), with its size and tier."""
        return self._run(_calls.list_collections())

    def create_collection(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        *,
        m: Optional[int] = None,
        ef_construction: Optional[int] = None,
        ef_search: Optional[int] = None,
        quantization: Optional[str] = None,
        exist_ok: bool = False,
    ) -> Collection:
        """Creates a collection of ``dimension``-d vectors compared by ``metric``.

        Args:
            name: 1 to 64 characters of letters, digits, ``-``, ``_`` and ``.``.
            dimension: the vectors' length, 1 to 4096.
            metric: ``"cosine"``, ``"l2"`` or ``"dot"``.
            m, ef_construction, ef_search: HNSW parameters; default the server's.
            quantization: ``"none"`` (default) or ``"sq8"`` (about a quarter of the RAM).
            exist_ok: return the existing collection instead of raising
                :class:`CollectionExists` (its settings are not compared).
        """
        call = _calls.create_collection(
            name, dimension, metric, m, ef_construction, ef_search, quantization
        )
        try:
            return self._run(call)
        except CollectionExists:
            if not exist_ok:
                raise
            return self.get_collection(name)

    def create_index(self, collection: str, field: str, type: str) -> Collection:
        """Indexes a metadata field (a dotted path, ``author.name``); returns the collection,
        whose ``payload_indexes`` list it. ``type`` is ``keyword``, ``integer``, ``float`` or
        ``bool`` (filters on the field read the index instead of every document) or ``text``
        (BM25 full-text search: ``search(collection, text="...")``, alone or with a vector).
        Creating an index that exists does nothing."""
        return self._run(_calls.create_index(collection, field, type))

    def get_collection(self, name: str) -> Collection:
        """The collection's description; raises :class:`CollectionNotFound`."""
        return self._run(_calls.get_collection(name))

    def collection_exists(self, name: str) -> bool:
        """Whether a collection of that name exists."""
        try:
            self.get_collection(name)
            return True
        except CollectionNotFound:
            return False

    def update_collection(self, name: str, *, quantization: Optional[str] = None) -> Collection:
        """Changes the settings that can change after creation (``quantization``)."""
        return self._run(_calls.update_collection(name, quantization))

    def delete_collection(self, name: str, *, missing_ok: bool = False) -> None:
        """Deletes the collection and all its data; raises :class:`CollectionNotFound` unless
        ``missing_ok``."""
        try:
            self._run(_calls.delete_collection(name))
        except CollectionNotFound:
            if not missing_ok:
                raise

    # ---- documents ---------------------------------------------------------------------------

    def upsert(
        self,
        collection: str,
        documents: Optional[Iterable[Any]] = None,
        *,
        ids: Optional[Sequence[Any]] = None,
        vectors: Any = None,
        metadata: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
        batch_size: int = _calls.DEFAULT_BATCH_SIZE,
        binary: Optional[bool] = None,
    ) -> UpsertResult:
        """Writes documents (replacing any with the same id), in batches of ``batch_size``.

        Give either ``documents`` (dicts or objects with ``id``, ``vector`` and ``metadata``,
        or a pyarrow Table or RecordBatch with those columns) or columns: ``vectors`` (a 2-d
        NumPy array or a list of vectors) with optional ``ids`` and ``metadata`` (one dict or
        ``None`` per vector). A document without an id gets a generated one (returned in
        ``ids``). Tables and columns are sent as Arrow IPC streams when pyarrow is installed
        (``binary=False`` forces JSON, ``binary=True`` requires Arrow), several times faster
        than JSON for bulk loads. Each batch is durable once acknowledged; when one
        fails, the error names the field by its index in your input
        (``documents[1234].vector``) and the batches before it stay written.
        """
        upserted, written = 0, []
        for call in _calls.upsert(
            collection, documents, ids, vectors, metadata, batch_size, binary
        ):
            answer = self._run(call)
            upserted += answer["upserted"]
            written.extend(answer["ids"])
        return UpsertResult(upserted=upserted, ids=written)

    def get(self, collection: str, id: str, *, as_numpy: bool = False) -> Document:
        """The document with that id; raises :class:`DocumentNotFound`."""
        return self._run(_calls.get_document(collection, id, as_numpy))

    def delete(
        self,
        collection: str,
        ids: Optional[Sequence[str]] = None,
        *,
        filter: Optional[Mapping[str, Any]] = None,
    ) -> int:
        """Deletes documents by id (at most 10,000 at once), or every document matching
        ``filter``; returns how many were deleted."""
        return self._run(_calls.delete_documents(collection, ids, filter))

    def count(self, collection: str, filter: Optional[Mapping[str, Any]] = None) -> int:
        """How many documents match ``filter`` (all of them without one), exactly."""
        return self._run(_calls.count(collection, filter))

    def scroll(
        self,
        collection: str,
        *,
        filter: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        cursor: Optional[str] = None,
        include_vector: bool = False,
        include_metadata: bool = True,
        as_numpy: bool = False,
    ) -> ScrollPage:
        """One page of the documents matching ``filter``, in id order; pass the page's
        ``next_cursor`` as ``cursor`` for the next one (``None`` after the last). Every document
        that exists throughout a scroll is returned exactly once, however the collection changes
        meanwhile. :meth:`documents` walks every page for you."""
        call = _calls.scroll(
            collection, filter, limit, cursor, include_vector, include_metadata, as_numpy
        )
        return self._run(call)

    def search(
        self,
        collection: str,
        vector: Any = None,
        k: int = 10,
        *,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        text_weight: Optional[float] = None,
        filter: Optional[Mapping[str, Any]] = None,
        ef: Optional[int] = None,
        nprobe: Optional[int] = None,
        exact: bool = False,
        include_vector: bool = False,
        include_metadata: bool = True,
        report: bool = False,
        timeout_ms: Optional[int] = None,
        as_numpy: bool = False,
    ) -> SearchResult:
        """The ``k`` documents nearest to ``vector`` (a list or a 1-d NumPy array), best first;
        or the ``k`` best for ``text`` by BM25 (no vector); or both rankings fused (hybrid).

        Args:
            text: full-text query over a ``text`` payload index (:meth:`create_index`). Alone,
                hits are ranked and scored by BM25; with ``vector``, by reciprocal rank fusion of
                the two rankings (scores are the fused ones).
            text_field: the text index's field; default the collection's only text index.
            text_weight: the text ranking's share of the fusion, 0..1 (default 0.5).
            filter: an AkiDB filter (README "Filters"): ``{"lang": "en", "year": {"$gte": 2020}}``.
            ef: HNSW search breadth (hot tier); default the collection's ``ef_search``.
            nprobe: partitions read by a warm or cold query; default the server's.
            exact: compare every live document (the same answer in every tier).
            include_vector: return each hit's vector (a NumPy array with ``as_numpy``).
            include_metadata: return each hit's metadata (on by default, unlike the HTTP API).
            report: add which tier answered and what it read.
            timeout_ms: give up after this long (raises :class:`DeadlineExceeded`).
        """
        call = _calls.search(
            collection,
            vector,
            k,
            text,
            text_field,
            text_weight,
            filter,
            ef,
            nprobe,
            exact,
            include_vector,
            include_metadata,
            report,
            timeout_ms,
            as_numpy,
        )
        return self._run(call)

    def search_batch(
        self,
        collection: str,
        searches: Sequence[Mapping[str, Any]],
        *,
        as_numpy: bool = False,
    ) -> List[Any]:
        """Many searches in one request, answered in order. Each search is a dict of
        :meth:`search`'s arguments (``vector``, ``k``, ``filter``, ...; ``include_metadata``
        defaults to off here, as in the HTTP API). Each answer is a :class:`SearchResult`, or
        the exception (an :class:`AkiDBError` subclass, not raised) of a search that failed
        alone; a failure of the whole request is raised."""
        return self._run(_calls.search_batch(collection, searches, as_numpy))

    def documents(
        self,
        collection: str,
        *,
        filter: Optional[Mapping[str, Any]] = None,
        page_size: int = 1000,
        include_vector: bool = False,
        include_metadata: bool = True,
        as_numpy: bool = False,
    ) -> Iterator[Document]:
        """Every document matching ``filter``, in id order, fetched ``page_size`` at a time
        (iterating over :meth:`scroll`'s pages; ``async for`` with an AsyncClient)."""
        cursor: Optional[str] = None
        while True:
            page = self.scroll(
                collection,
                filter=filter,
                limit=page_size,
                cursor=cursor,
                include_vector=include_vector,
                include_metadata=include_metadata,
                as_numpy=as_numpy,
            )
            yield from page.documents
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # ---- tiers -------------------------------------------------------------------------------

    def tier(self, collection: str) -> TierStatus:
        """Where the collection lives (hot, warm, cold), whether pinned, and its sizes."""
        return self._run(_calls.get_tier(collection))

    def set_tier(self, collection: str, action: str, target: Optional[str] = None) -> TierStatus:
        """Moves or pins a collection: ``action`` is ``promote`` (default target hot),
        ``demote`` (default one tier down), ``pin`` (optionally moving to ``target`` first)
        or ``unpin``."""
        return self._run(_calls.set_tier(collection, action, target))

    def tiers(self) -> Tiers:
        """Collections and bytes per tier, over the whole server."""
        return self._run(_calls.tiers())

    # ---- admin (an admin key) ----------------------------------------------------------------

    def create_key(
        self,
        role: str,
        *,
        collections: Optional[Sequence[str]] = None,
        limits: Optional[Mapping[str, int]] = None,
        description: Optional[str] = None,
    ) -> CreatedKey:
        """Creates an API key with ``role`` (``read``, ``write`` or ``admin``), optionally
        limited to collection name patterns (``"tenant-a-*"``) and with its own quotas
        (``requests_per_second``, ``max_in_flight``, ``max_collections``, ``max_vectors``,
        ``max_bytes``). The key is in the result only; the server keeps its hash."""
        return self._run(_calls.create_key(role, collections, limits, description))

    def list_keys(self) -> List[KeyInfo]:
        """Every API key, without the keys themselves."""
        return self._run(_calls.list_keys())

    def delete_key(self, key_id: str) -> None:
        """Revokes a key at once; raises :class:`KeyNotFound`."""
        self._run(_calls.delete_key(key_id))

    def dead_letters(self) -> Any:
        """The upload pipeline's dead-letter queue (uploads that failed every retry)."""
        return self._run(_calls.dead_letters())

    def retry_dead_letters(self) -> Any:
        """Sends the dead-letter queue's uploads again."""
        return self._run(_calls.retry_dead_letters())
