"""Every API operation as a :class:`Call`: the request to send and how to read its answer.

Pure (no I/O): the sync and async clients build the same calls here and differ only in how they
send them, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence
from urllib.parse import quote

import numpy as np
import orjson

from . import _arrow, errors
from ._json import body as _json
from ._json import finite_json
from .models import (
    Collection,
    CreatedKey,
    Document,
    KeyInfo,
    ScrollPage,
    SearchResult,
    TierStatus,
    Tiers,
)

API = "/api/v1"
METRICS = ("cosine", "l2", "dot")
ROLES = ("read", "write", "admin")
TIER_ACTIONS = ("promote", "demote", "pin", "unpin")
TIERS = ("hot", "warm", "cold")

#: Documents per upsert request unless told otherwise (the server takes at most 10,000).
DEFAULT_BATCH_SIZE = 1000


@dataclass
class Call:
    """One HTTP request and the function that turns its JSON answer into a result.

    ``idempotent`` says whether sending it twice is harmless, so that it may be retried after
    a connection broke with the request possibly delivered.
    """

    method: str
    path: str
    parse: Callable[[Any], Any]
    body: Optional[bytes] = None
    idempotent: bool = True
    #: Added to the `documents[i]` index of a field the server names (a batch's offset).
    row_offset: int = 0
    content_type: str = "application/json"


def _seg(s: str) -> str:
    """One path segment, percent-encoded."""
    if not isinstance(s, str) or not s:
        raise errors.InvalidArgument("must be a non-empty string", field="name")
    return quote(s, safe="")


def _invalid(field: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, field=field)


def one_vector(vector: Any, field: str = "vector") -> "np.ndarray":
    """A vector as a contiguous float32 array of finite values (from a list, tuple or 1-d
    NumPy array)."""
    try:
        arr = np.ascontiguousarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise _invalid(field, f"must be a list of numbers: {e}") from None
    if arr.ndim != 1:
        raise _invalid(field, f"must be one vector (1-d), got an array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise _invalid(field, "holds a NaN or infinite value")
    return arr


def _none_dropped(d: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# ---- collections ----------------------------------------------------------------------------


def list_collections() -> Call:
    return Call("GET", f"{API}/collections", lambda j: [Collection.from_json(c) for c in j["collections"]])


def create_collection(
    name: str,
    dimension: int,
    metric: str,
    m: Optional[int],
    ef_construction: Optional[int],
    ef_search: Optional[int],
    quantization: Optional[str],
) -> Call:
    if metric not in METRICS:
        raise _invalid("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    index = _none_dropped({"m": m, "ef_construction": ef_construction, "ef_search": ef_search})
    body = _none_dropped(
        {"name": name, "dimension": dimension, "metric": metric, "quantization": quantization}
    )
    if index:
        body["index"] = index
    # Not idempotent: a retry after a lost answer would see 409 collection_exists.
    return Call("POST", f"{API}/collections", Collection.from_json, _json(body), idempotent=False)


INDEX_TYPES = ("keyword", "integer", "float", "bool", "text")


def create_index(collection: str, field: str, type: str) -> Call:
    if type not in INDEX_TYPES:
        raise _invalid("type", f"must be one of {', '.join(INDEX_TYPES)}, got {type!r}")
    # Idempotent: an index that exists answers 200 with the same description.
    return Call(
        "POST",
        f"{API}/collections/{_seg(collection)}/indexes",
        Collection.from_json,
        _json({"field": field, "type": type}),
    )


def get_collection(name: str) -> Call:
    return Call("GET", f"{API}/collections/{_seg(name)}", Collection.from_json)


def update_collection(name: str, quantization: Optional[str]) -> Call:
    body = _none_dropped({"quantization": quantization})
    return Call("PATCH", f"{API}/collections/{_seg(name)}", Collection.from_json, _json(body))


def delete_collection(name: str) -> Call:
    return Call("DELETE", f"{API}/collections/{_seg(name)}", lambda j: None, idempotent=False)


# ---- documents --------------------------------------------------------------------------------


def _rows(
    documents: Optional[Iterable[Any]],
    ids: Optional[Sequence[Any]],
    vectors: Any,
    metadata: Optional[Sequence[Optional[Mapping[str, Any]]]],
) -> Iterator[Dict[str, Any]]:
    """The documents to upsert as JSON objects, from either form the clients take."""
    if documents is not None:
        if ids is not None or vectors is not None or metadata is not None:
            raise _invalid("documents", "give either documents or ids/vectors/metadata, not both")
        for i, doc in enumerate(documents):
            if isinstance(doc, Mapping):
                get = doc.get
            else:  # a Document or any object with id/vector/metadata attributes
                get = lambda k, d=doc: getattr(d, k, None)  # noqa: E731
            vector = get("vector")
            if vector is None:
                raise _invalid(f"documents[{i}].vector", "is missing")
            yield _row(i, get("id"), vector, get("metadata"))
        return
    if vectors is None:
        raise _invalid("vectors", "is missing: give documents, or vectors (with ids, metadata)")
    n = len(vectors)
    if ids is not None and len(ids) != n:
        raise _invalid("ids", f"has {len(ids)} entries for {n} vectors")
    if metadata is not None and len(metadata) != n:
        raise _invalid("metadata", f"has {len(metadata)} entries for {n} vectors")
    for i in range(n):
        yield _row(
            i,
            None if ids is None else ids[i],
            vectors[i],
            None if metadata is None else metadata[i],
        )


def _row(i: int, id: Any, vector: Any, metadata: Any) -> Dict[str, Any]:
    row: Dict[str, Any] = {}
    if id is not None:
        if isinstance(id, (int, np.integer)) and not isinstance(id, bool):
            id = str(id)
        if not isinstance(id, str):
            raise _invalid(f"documents[{i}].id", f"must be a string, got {type(id).__name__}")
        row["id"] = id
    row["vector"] = one_vector(vector, f"documents[{i}].vector")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise _invalid(f"documents[{i}].metadata", "must be a JSON object (a dict)")
        row["metadata"] = finite_json(dict(metadata), f"documents[{i}].metadata")
    return row


def upsert(
    collection: str,
    documents: Optional[Iterable[Any]],
    ids: Optional[Sequence[Any]],
    vectors: Any,
    metadata: Optional[Sequence[Optional[Mapping[str, Any]]]],
    batch_size: int,
    binary: Optional[bool],
) -> Iterator[Call]:
    """One call per batch of ``batch_size`` documents, in order: Arrow IPC bodies for a pyarrow
    Table or RecordBatch, and for columns when pyarrow is installed (unless ``binary`` is
    False); JSON otherwise."""
    if batch_size < 1:
        raise _invalid("batch_size", "must be at least 1")
    path = f"{API}/collections/{_seg(collection)}/documents"
    if binary and not _arrow.available():
        raise _invalid("binary", "the Arrow body needs pyarrow: pip install akidb-client[arrow]")
    if _arrow.is_arrow(documents):
        if ids is not None or vectors is not None or metadata is not None:
            raise _invalid("documents", "give either a table or ids/vectors/metadata, not both")
        idempotent = _arrow.table_has_all_ids(documents)
        for offset, body in _arrow.table_batches(documents, batch_size):
            yield Call("POST", path, lambda j: j, body, idempotent, offset, _arrow.MEDIA_TYPE)
        return
    if documents is None and vectors is not None and binary is not False and _arrow.available():
        if ids is not None and len(ids) != len(vectors):
            raise _invalid("ids", f"has {len(ids)} entries for {len(vectors)} vectors")
        if metadata is not None and len(metadata) != len(vectors):
            raise _invalid("metadata", f"has {len(metadata)} entries for {len(vectors)} vectors")
        idempotent = ids is not None and all(i is not None for i in ids)
        for offset, body in _arrow.column_batches(ids, vectors, metadata, batch_size):
            yield Call("POST", path, lambda j: j, body, idempotent, offset, _arrow.MEDIA_TYPE)
        return
    batch: List[Dict[str, Any]] = []
    offset = 0

    def call() -> Call:
        # Sent twice, a batch whose ids are all given writes the same documents again.
        idempotent = all("id" in r for r in batch)
        body = _json({"documents": batch})
        return Call("POST", path, lambda j: j, body, idempotent, row_offset=offset)

    for row in _rows(documents, ids, vectors, metadata):
        batch.append(row)
        if len(batch) == batch_size:
            yield call()
            offset += len(batch)
            batch = []
    if batch:
        yield call()


def delete_documents(
    collection: str, ids: Optional[Sequence[str]], filter: Optional[Mapping[str, Any]]
) -> Call:
    if (ids is None) == (filter is None):
        raise _invalid("ids", "give either ids or a filter")
    if filter is not None:
        body = _json({"filter": finite_json(dict(filter), "filter")})
        # Not idempotent: sent twice, it could delete documents written in between.
        return Call(
            "POST",
            f"{API}/collections/{_seg(collection)}/documents/delete",
            lambda j: j["deleted"],
            body,
            idempotent=False,
        )
    if isinstance(ids, str):
        ids = [ids]
    body = _json({"ids": list(ids)})  # type: ignore[arg-type]
    return Call("POST", f"{API}/collections/{_seg(collection)}/documents/delete", lambda j: j["deleted"], body)


def count(collection: str, filter: Optional[Mapping[str, Any]]) -> Call:
    body = {} if filter is None else {"filter": finite_json(dict(filter), "filter")}
    return Call("POST", f"{API}/collections/{_seg(collection)}/count", lambda j: j["count"], _json(body))


def scroll(
    collection: str,
    filter: Optional[Mapping[str, Any]],
    limit: int,
    cursor: Optional[str],
    include_vector: bool,
    include_metadata: bool,
    as_numpy: bool,
) -> Call:
    body = _none_dropped(
        {
            "filter": None if filter is None else finite_json(dict(filter), "filter"),
            "limit": limit,
            "cursor": cursor,
            "include_vector": include_vector,
            "include_metadata": include_metadata,
        }
    )
    return Call(
        "POST",
        f"{API}/collections/{_seg(collection)}/documents/scroll",
        lambda j: ScrollPage.from_json(j, as_numpy),
        _json(body),
    )


def search_batch(collection: str, searches: Sequence[Mapping[str, Any]], as_numpy: bool) -> Call:
    """Each search is a dict of :func:`search`'s keyword arguments with ``vector``, ``text`` or
    both (and ``k``)."""
    bodies = []
    for i, s in enumerate(searches):
        s = dict(s)
        if s.get("vector") is None and s.get("text") is None:
            raise _invalid(f"searches[{i}].vector", "each search needs a vector, a text, or both")
        if s.get("vector") is not None:
            s["vector"] = one_vector(s["vector"], f"searches[{i}].vector")
        if s.get("filter") is not None:
            s["filter"] = finite_json(dict(s["filter"]), f"searches[{i}].filter")
        bodies.append({k: v for k, v in s.items() if v is not None})

    def parse(j: Any) -> List[Any]:
        out: List[Any] = []
        for b in j["batches"]:
            if "error" in b:
                e = b["error"]
                cls = errors.error_class(e["code"])
                out.append(cls(e["message"], code=e["code"], field=e.get("field")))
            else:
                out.append(SearchResult.from_json(b, as_numpy))
        return out

    return Call("POST", f"{API}/collections/{_seg(collection)}/search/batch", parse, _json({"searches": bodies}))


def get_document(collection: str, id: str, as_numpy: bool) -> Call:
    return Call(
        "GET",
        f"{API}/collections/{_seg(collection)}/documents/{_seg(id)}",
        lambda j: Document.from_json(j, as_numpy),
    )


def search(
    collection: str,
    vector: Any,
    k: int,
    text: Optional[str],
    text_field: Optional[str],
    text_weight: Optional[float],
    filter: Optional[Mapping[str, Any]],
    ef: Optional[int],
    nprobe: Optional[int],
    exact: bool,
    include_vector: bool,
    include_metadata: bool,
    report: bool,
    timeout_ms: Optional[int],
    as_numpy: bool,
) -> Call:
    if vector is None and text is None:
        raise _invalid("vector", "a search needs a vector, a text, or both")
    body = _none_dropped(
        {
            "vector": None if vector is None else one_vector(vector),
            "text": text,
            "text_field": text_field,
            "text_weight": text_weight,
            "k": k,
            "filter": None if filter is None else finite_json(dict(filter), "filter"),
            "ef": ef,
            "nprobe": nprobe,
            "timeout_ms": timeout_ms,
        }
    )
    for flag, on in (
        ("exact", exact),
        ("include_vector", include_vector),
        ("include_metadata", include_metadata),
        ("report", report),
    ):
        if on:
            body[flag] = True
    return Call(
        "POST",
        f"{API}/collections/{_seg(collection)}/search",
        lambda j: SearchResult.from_json(j, as_numpy),
        _json(body),
    )


# ---- tiers -----------------------------------------------------------------------------------


def get_tier(collection: str) -> Call:
    return Call("GET", f"{API}/collections/{_seg(collection)}/tier", TierStatus.from_json)


def set_tier(collection: str, action: str, target: Optional[str]) -> Call:
    if action not in TIER_ACTIONS:
        raise _invalid("action", f"must be one of {', '.join(TIER_ACTIONS)}, got {action!r}")
    if target is not None and target not in TIERS:
        raise _invalid("target", f"must be one of {', '.join(TIERS)}, got {target!r}")
    body = _json(_none_dropped({"action": action, "target": target}))
    return Call("POST", f"{API}/collections/{_seg(collection)}/tier", TierStatus.from_json, body)


def tiers() -> Call:
    return Call("GET", f"{API}/tiers", Tiers.from_json)


# ---- admin -----------------------------------------------------------------------------------


def create_key(
    role: str,
    collections: Optional[Sequence[str]],
    limits: Optional[Mapping[str, int]],
    description: Optional[str],
) -> Call:
    if role not in ROLES:
        raise _invalid("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    body = _none_dropped(
        {
            "role": role,
            "collections": None if collections is None else list(collections),
            "limits": None if not limits else dict(limits),
            "description": description,
        }
    )
    return Call("POST", f"{API}/admin/keys", CreatedKey.from_json, _json(body), idempotent=False)


def list_keys() -> Call:
    return Call("GET", f"{API}/admin/keys", lambda j: [KeyInfo.from_json(k) for k in j["keys"]])


def delete_key(key_id: str) -> Call:
    return Call("DELETE", f"{API}/admin/keys/{_seg(key_id)}", lambda j: None)


def dead_letters() -> Call:
    return Call("GET", f"{API}/admin/dlq", lambda j: j)


def retry_dead_letters() -> Call:
    return Call("POST", f"{API}/admin/dlq/retry", lambda j: j, idempotent=False)


# ---- answers ---------------------------------------------------------------------------------

_DOCUMENT_INDEX = re.compile(r"^documents\[(\d+)\]")


def error_from_answer(
    status: int, body: bytes, retry_after: Optional[float], row_offset: int = 0
) -> errors.AkiDBError:
    """The exception for a non-2xx answer: the class of its error code, with the server's
    message and field (a batch's `documents[i]` shifted to the index in the caller's input)."""
    try:
        err = orjson.loads(body)["error"]
        code, message, field = err["code"], err["message"], err.get("field")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:500]
        return errors.AkiDBError(text or f"HTTP {status}", status=status, retry_after=retry_after)
    if field and row_offset:
        field = _DOCUMENT_INDEX.sub(lambda m: f"documents[{int(m.group(1)) + row_offset}]", field)
    cls = errors.error_class(code)
    return cls(message, status=status, code=code, field=field, retry_after=retry_after)


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A `Retry-After` header's delay in seconds (only the delta-seconds form)."""
    if value is None:
        return None
    try:
        secs = float(value)
    except ValueError:
        return None
    return secs if math.isfinite(secs) and secs >= 0 else None
