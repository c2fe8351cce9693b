"""The typed results the client returns, built from the server's JSON answers.

Fields the server adds later are ignored, so an older client keeps working against a newer
server. Plain (not frozen) dataclasses: a frozen one takes twice as long to build, and a search
builds one per hit. Vectors are lists of floats, or ``numpy.ndarray`` (float32) when asked for with
``as_numpy=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

import numpy as np

__all__ = [
    "Vector",
    "IndexInfo",
    "PayloadIndex",
    "Collection",
    "Document",
    "Hit",
    "SearchReport",
    "SearchResult",
    "UpsertResult",
    "TierStatus",
    "TierTotals",
    "Tiers",
    "KeyInfo",
    "CreatedKey",
]

#: A vector as returned: a list of floats, or a float32 ``numpy.ndarray`` with ``as_numpy``.
Vector = Union[List[float], "np.ndarray"]

Json = Mapping[str, Any]


def _vector(raw: Optional[List[float]], as_numpy: bool) -> Optional[Vector]:
    if raw is None:
        return None
    return np.asarray(raw, dtype=np.float32) if as_numpy else raw


@dataclass
class IndexInfo:
    """A collection's HNSW parameters."""

    m: int
    ef_construction: int
    ef_search: int

    @classmethod
    def from_json(cls, j: Json) -> "IndexInfo":
        return cls(m=j["m"], ef_construction=j["ef_construction"], ef_search=j["ef_search"])


@dataclass
class PayloadIndex:
    """An index on a metadata field: ``type`` is ``keyword``, ``integer``, ``float``, ``bool``
    (they speed up filters) or ``text`` (full-text search with ``search(text=...)``)."""

    field: str
    type: str


@dataclass
class Collection:
    """A collection as described by the server.

    ``tier`` is ``"hot"``, ``"warm"`` or ``"cold"`` (``None`` for an unavailable collection,
    whose ``status`` is then ``"unavailable"`` and ``reason`` says why).
    """

    name: str
    id: str
    dimension: int
    metric: str
    count: int
    index: IndexInfo
    quantization: str = "none"
    status: str = "ready"
    reason: Optional[str] = None
    index_pending: int = 0
    segments: int = 0
    unflushed: int = 0
    bytes_in_ram: int = 0
    tier: Optional[str] = None
    payload_indexes: List[PayloadIndex] = field(default_factory=list)

    @classmethod
    def from_json(cls, j: Json) -> "Collection":
        return cls(
            name=j["name"],
            id=j["id"],
            dimension=j["dimension"],
            metric=j["metric"],
            count=j["count"],
            index=IndexInfo.from_json(j["index"]),
            quantization=j.get("quantization", "none"),
            status=j.get("status", "ready"),
            reason=j.get("reason"),
            index_pending=j.get("index_pending", 0),
            segments=j.get("segments", 0),
            unflushed=j.get("unflushed", 0),
            bytes_in_ram=j.get("bytes_in_ram", 0),
            tier=j.get("tier"),
            payload_indexes=[PayloadIndex(p["field"], p["type"]) for p in j.get("payload_indexes", [])],
        )


@dataclass
class Document:
    """A stored document: its id, vector and metadata (an empty dict when it has none). In a
    scroll page, ``vector`` is ``None`` unless asked for."""

    id: str
    vector: Optional[Vector]
    metadata: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, j: Json, as_numpy: bool = False) -> "Document":
        return cls(
            id=j["id"],
            vector=_vector(j.get("vector"), as_numpy),
            metadata=j.get("metadata") or {},
        )


@dataclass
class Hit:
    """One search result.

    ``score``: cosine similarity or inner product (higher is better), or Euclidean distance for
    ``l2`` (lower is better). ``vector`` and ``metadata`` are present when asked for.
    """

    id: str
    score: float
    vector: Optional[Vector] = None
    metadata: Optional[Dict[str, Any]] = None

    @classmethod
    def from_json(cls, j: Json, as_numpy: bool = False) -> "Hit":
        vector = j.get("vector")
        if vector is not None and as_numpy:
            vector = np.asarray(vector, dtype=np.float32)
        return cls(j["id"], j["score"], vector, j.get("metadata"))


@dataclass
class SearchReport:
    """Which tier answered a search and what it read (``report=True``)."""

    tier: str
    bytes_local: int
    bytes_object_store: int
    object_store_gets: int
    partitions: int

    @classmethod
    def from_json(cls, j: Json) -> "SearchReport":
        return cls(
            tier=j["tier"],
            bytes_local=j["bytes_local"],
            bytes_object_store=j["bytes_object_store"],
            object_store_gets=j["object_store_gets"],
            partitions=j["partitions"],
        )


@dataclass
class SearchResult:
    """The hits of a search, best first; iterable and indexable like a list of :class:`Hit`."""

    hits: List[Hit]
    latency_ms: float
    report: Optional[SearchReport] = None

    @classmethod
    def from_json(cls, j: Json, as_numpy: bool = False) -> "SearchResult":
        report = j.get("report")
        return cls(
            hits=[Hit.from_json(h, as_numpy) for h in j["results"]],
            latency_ms=j["latency_ms"],
            report=SearchReport.from_json(report) if report else None,
        )

    @property
    def ids(self) -> List[str]:
        """The hits' ids, best first."""
        return [h.id for h in self.hits]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]


@dataclass
class UpsertResult:
    """What an upsert wrote: how many documents, and their ids in input order (generated ones
    included)."""

    upserted: int
    ids: List[str]


@dataclass
class TierStatus:
    """Where a collection lives and what it occupies there."""

    tier: str
    pinned: bool
    bytes_in_ram: int
    bytes_on_disk: int
    bytes_in_object_store: int
    last_access: str
    recent_accesses: int
    promoting: bool = False

    @classmethod
    def from_json(cls, j: Json) -> "TierStatus":
        return cls(
            tier=j["tier"],
            pinned=j["pinned"],
            bytes_in_ram=j["bytes_in_ram"],
            bytes_on_disk=j["bytes_on_disk"],
            bytes_in_object_store=j["bytes_in_object_store"],
            last_access=j["last_access"],
            recent_accesses=j["recent_accesses"],
            promoting=j.get("promoting", False),
        )


@dataclass
class TierTotals:
    """One tier's totals over every collection."""

    collections: int
    bytes_in_ram: int
    bytes_on_disk: int
    bytes_in_object_store: int

    @classmethod
    def from_json(cls, j: Json) -> "TierTotals":
        return cls(
            collections=j["collections"],
            bytes_in_ram=j["bytes_in_ram"],
            bytes_on_disk=j["bytes_on_disk"],
            bytes_in_object_store=j["bytes_in_object_store"],
        )


@dataclass
class Tiers:
    """The server's totals per tier."""

    hot: TierTotals
    warm: TierTotals
    cold: TierTotals

    @classmethod
    def from_json(cls, j: Json) -> "Tiers":
        return cls(*(TierTotals.from_json(j[t]) for t in ("hot", "warm", "cold")))


@dataclass
class KeyInfo:
    """An API key as listed (never the key itself)."""

    id: str
    role: str
    source: str
    collections: Optional[List[str]] = None
    limits: Dict[str, int] = field(default_factory=dict)
    description: Optional[str] = None
    created_at: Optional[str] = None

    @classmethod
    def from_json(cls, j: Json) -> "KeyInfo":
        return cls(
            id=j["id"],
            role=j["role"],
            source=j["source"],
            collections=j.get("collections"),
            limits=j.get("limits") or {},
            description=j.get("description"),
            created_at=j.get("created_at"),
        )


@dataclass
class CreatedKey:
    """A new API key: ``key`` is shown only this once (the server keeps its hash)."""

    id: str
    key: str = field(repr=False)
    role: str
    collections: Optional[List[str]] = None
    limits: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, j: Json) -> "CreatedKey":
        return cls(
            id=j["id"],
            key=j["key"],
            role=j["role"],
            collections=j.get("collections"),
            limits=j.get("limits") or {},
        )


@dataclass
class ScrollPage:
    """A page of a scroll, in id order; iterable like a list of :class:`Document`. Pass
    ``next_cursor`` as ``cursor`` for the next page; it is ``None`` on the last page."""

    documents: List[Document]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, j: Json, as_numpy: bool = False) -> "ScrollPage":
        return cls(
            documents=[Document.from_json(d, as_numpy) for d in j["documents"]],
            next_cursor=j.get("next_cursor"),
        )

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)
