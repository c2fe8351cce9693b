"""Python client for AkiDB, the tiered vector database.

``Client`` (sync) and ``AsyncClient`` (asyncio) talk to one server over HTTP (httpx); results
are the dataclasses of :mod:`akidb_client.models`, errors the classes of
:mod:`akidb_client.errors`. Vectors may be lists or NumPy arrays.
"""

from ._base import DEFAULT_URL
from ._retry import RetryPolicy
from .async_client import AsyncClient
from .client import Client
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors
from .models import (
    Collection,
    CreatedKey,
    Document,
    Hit,
    IndexInfo,
    KeyInfo,
    PayloadIndex,
    SearchReport,
    ScrollPage,
    SearchResult,
    TierStatus,
    Tiers,
    TierTotals,
    UpsertResult,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "AsyncClient",
    "RetryPolicy",
    "DEFAULT_URL",
    "Collection",
    "CreatedKey",
    "Document",
    "Hit",
    "IndexInfo",
    "KeyInfo",
    "PayloadIndex",
    "SearchReport",
    "ScrollPage",
    "SearchResult",
    "TierStatus",
    "Tiers",
    "TierTotals",
    "UpsertResult",
    *_errors,
]
