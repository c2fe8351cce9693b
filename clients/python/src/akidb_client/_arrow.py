"""The binary upsert body: batches of documents as Arrow IPC streams (needs ``pyarrow``).

The server's schema: ``id`` (utf8, nullable), ``vector`` (fixed-size list of float32) and
``metadata`` (utf8 JSON text, nullable). NumPy vectors go in without a copy per row, so bulk
loads are not bound by JSON on either side.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import orjson

from . import errors
from ._json import finite_json

MEDIA_TYPE = "application/vnd.apache.arrow.stream"

try:  # pragma: no cover - depends on the environment
    import pyarrow as pa
except ImportError:  # pragma: no cover
    pa = None


def available() -> bool:
    """Whether pyarrow is installed (``pip install akidb-client[arrow]``)."""
    return pa is not None


def is_arrow(data: Any) -> bool:
    return pa is not None and isinstance(data, (pa.Table, pa.RecordBatch))


def _invalid(field: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, field=field)


def _stream(batch: "pa.RecordBatch") -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _id_array(ids: Sequence[Any], start: int) -> "pa.Array":
    out: List[Optional[str]] = []
    for i, id in enumerate(ids):
        if id is None or isinstance(id, str):
            out.append(id)
        elif isinstance(id, (int, np.integer)) and not isinstance(id, bool):
            out.append(str(id))
        else:
            raise _invalid(f"documents[{start + i}].id", f"must be a string, got {type(id).__name__}")
    return pa.array(out, type=pa.string())


def _metadata_array(metadata: Sequence[Optional[Mapping[str, Any]]], start: int) -> "pa.Array":
    out: List[Optional[str]] = []
    for i, m in enumerate(metadata):
        if m is None:
            out.append(None)
            continue
        field = f"documents[{start + i}].metadata"
        if not isinstance(m, Mapping):
            raise _invalid(field, "must be a JSON object (a dict)")
        try:
            out.append(orjson.dumps(finite_json(m, field)).decode())
        except TypeError as e:
            raise _invalid(field, f"is not JSON: {e}") from None
    return pa.array(out, type=pa.string())


def column_batches(
    ids: Optional[Sequence[Any]],
    vectors: Any,
    metadata: Optional[Sequence[Optional[Mapping[str, Any]]]],
    batch_size: int,
) -> Iterator[Tuple[int, bytes]]:
    """Arrow IPC stream bodies of ``batch_size`` rows each, from columns, with the index of
    each one's first row."""
    try:
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise _invalid("vectors", f"must be vectors of one length: {e}") from None
    if arr.ndim != 2:
        raise _invalid("vectors", f"must be a 2-d array (rows x dimension), got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise _invalid(f"documents[{int(np.argmax(bad))}].vector", "holds a NaN or infinite value")
    n, dim = arr.shape
    for start in range(0, n, batch_size):
        end = min(n, start + batch_size)
        flat = pa.array(arr[start:end].reshape(-1), type=pa.float32())
        columns = {"vector": pa.FixedSizeListArray.from_arrays(flat, dim)}
        if ids is not None:
            columns["id"] = _id_array(ids[start:end], start)
        if metadata is not None:
            columns["metadata"] = _metadata_array(metadata[start:end], start)
        yield start, _stream(pa.RecordBatch.from_pydict(columns))


def table_batches(data: Any, batch_size: int) -> Iterator[Tuple[int, bytes]]:
    """Arrow IPC stream bodies of at most ``batch_size`` rows, from a pyarrow Table or
    RecordBatch with the server's columns (``vector`` may also be a list of floats), with the
    index of each one's first row."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    if "vector" not in table.column_names:
        raise _invalid("vector", "the table has no vector column")
    vector_type = table.schema.field("vector").type
    if not pa.types.is_fixed_size_list(vector_type) or vector_type.value_type != pa.float32():
        # A list column (what pyarrow makes of lists of floats): cast to the fixed-size form.
        first = table.column("vector")[0].as_py() if table.num_rows else []
        dim = len(first or [])
        try:
            fixed = table.column("vector").cast(pa.list_(pa.float32(), dim))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise _invalid("vector", f"must be lists of {dim} floats: {e}") from None
        table = table.set_column(table.schema.get_field_index("vector"), "vector", fixed)
    start = 0
    for batch in table.to_batches(max_chunksize=batch_size):
        yield start, _stream(batch)
        start += batch.num_rows


def table_has_all_ids(data: Any) -> bool:
    """Whether every row of a Table or RecordBatch has an id (so resending it is harmless)."""
    names = data.column_names if isinstance(data, pa.Table) else data.schema.names
    return "id" in names and data.column("id").null_count == 0
