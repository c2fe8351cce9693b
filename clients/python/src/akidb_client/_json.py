"""JSON bodies: written with orjson, after refusing what JSON cannot carry."""

from __future__ import annotations

import math
from typing import Any, Mapping

import orjson

from . import errors


def body(value: Any) -> bytes:
    """A JSON body. orjson writes NumPy float32 vectors in their shortest form, 30 times faster
    than ``json`` writes lists of floats (8 µs against 290 µs for 384 values); the values it
    would turn into ``null`` (NaN, infinities) are refused before (``one_vector``,
    ``finite_json``)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as e:
        raise errors.InvalidArgument(f"cannot be sent as JSON: {e}", field="body") from None


def finite_json(value: Any, field: str) -> Any:
    """``value`` (metadata, a filter) after checking it holds no NaN or infinity, which JSON
    cannot carry."""

    def walk(v: Any, path: str) -> None:
        if isinstance(v, float):
            if not math.isfinite(v):
                raise errors.InvalidArgument(
                    "holds a NaN or infinite number, which JSON cannot carry", field=path
                )
        elif isinstance(v, Mapping):
            for k, x in v.items():
                walk(x, f"{path}.{k}")
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")

    walk(value, field)
    return value
