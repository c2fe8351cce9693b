"""Exceptions: one class per stable error code of the server, all under :class:`AkiDBError`.

Every API error body is ``{"error": {"code", "message", "field"?}}``; the client raises the
class registered for ``code`` (``CollectionNotFound`` for ``collection_not_found``, ...) with
the server's message and field. A code newer than this client raises :class:`AkiDBError`
itself, so callers can always catch that. No HTTP answer at all (connection refused, reset,
timed out) raises :class:`TransportError`.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "AkiDBError",
    "TransportError",
    "MalformedJson",
    "InvalidBody",
    "InvalidArgument",
    "UnsupportedMediaType",
    "PayloadTooLarge",
    "NotFound",
    "CollectionNotFound",
    "DocumentNotFound",
    "KeyNotFound",
    "MethodNotAllowed",
    "CollectionExists",
    "CollectionUnavailable",
    "Unavailable",
    "InsufficientStorage",
    "InternalError",
    "Unauthenticated",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "RequestTimeout",
    "DeadlineExceeded",
    "error_class",
]


class AkiDBError(Exception):
    """An error answer of the server (or, for :class:`TransportError`, no answer).

    Attributes:
        status: the HTTP status (``None`` when there was no answer).
        code: the stable error code (``"collection_not_found"``, ...), ``None`` when the body
            was not the documented error shape.
        message: the server's message.
        field: the request field at fault (``"documents[3].vector"``), when there is one.
        retry_after: the ``Retry-After`` header's seconds, when the server sent one.
    """

    #: The server's error code this class stands for (``None`` for the base classes).
    code_name: Optional[str] = None

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        field: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code if code is not None else self.code_name
        self.field = field
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        if self.field:
            head = f"{head} (field {self.field})" if head else f"field {self.field}"
        return f"{head}: {self.message}" if head else self.message


class TransportError(AkiDBError):
    """No HTTP answer: the connection was refused, reset or timed out (after the retries)."""


_BY_CODE: Dict[str, Type[AkiDBError]] = {}


def _code(name: str):
    def register(cls: Type[AkiDBError]) -> Type[AkiDBError]:
        cls.code_name = name
        _BY_CODE[name] = cls
        return cls

    return register


@_code("malformed_json")
class MalformedJson(AkiDBError):
    """400: the body is not valid JSON."""


@_code("invalid_body")
class InvalidBody(AkiDBError):
    """422: valid JSON of the wrong shape (missing field, wrong type, unknown field)."""


@_code("invalid_argument")
class InvalidArgument(AkiDBError, ValueError):
    """400: a value is out of range or otherwise invalid; ``field`` names it."""


@_code("unsupported_media_type")
class UnsupportedMediaType(AkiDBError):
    """415: the body's content type is not one the route takes."""


@_code("payload_too_large")
class PayloadTooLarge(AkiDBError):
    """413: the body is larger than the server's limit; send smaller batches."""


@_code("not_found")
class NotFound(AkiDBError, LookupError):
    """404: no such route (and the base of the other not-found errors)."""


@_code("collection_not_found")
class CollectionNotFound(NotFound):
    """404: no collection has that name."""


@_code("document_not_found")
class DocumentNotFound(NotFound):
    """404: the collection holds no document with that id."""


@_code("key_not_found")
class KeyNotFound(NotFound):
    """404: no API key has that id."""


@_code("method_not_allowed")
class MethodNotAllowed(AkiDBError):
    """405: the route exists, but not with this method."""


@_code("collection_exists")
class CollectionExists(AkiDBError):
    """409: a collection with that name exists."""


@_code("collection_unavailable")
class CollectionUnavailable(AkiDBError):
    """503: the collection failed to open or lost its WAL; the message says why."""


@_code("unavailable")
class Unavailable(AkiDBError):
    """503: the server is starting, shutting down or shedding load; retried by the client."""


@_code("insufficient_storage")
class InsufficientStorage(AkiDBError):
    """507: the server's disk is full; the write changed nothing."""


@_code("internal")
class InternalError(AkiDBError):
    """500: a server bug or an unexpected storage failure; its log has the detail."""


@_code("unauthenticated")
class Unauthenticated(AkiDBError):
    """401: no API key, or one the server does not know."""


@_code("permission_denied")
class PermissionDenied(AkiDBError):
    """403: the key's role or collection scope does not cover this request."""


@_code("quota_exceeded")
class QuotaExceeded(AkiDBError):
    """403: the request would exceed a quota (collections, vectors or bytes)."""


@_code("rate_limited")
class RateLimited(AkiDBError):
    """429: too many requests for this key or the server; retried by the client."""


@_code("request_timeout")
class RequestTimeout(AkiDBError):
    """408: the request body arrived too slowly."""


@_code("deadline_exceeded")
class DeadlineExceeded(AkiDBError, TimeoutError):
    """504: the search ran past its deadline (``timeout_ms`` or the server's default)."""


def error_class(code: Optional[str]) -> Type[AkiDBError]:
    """The exception class for a server error code (:class:`AkiDBError` for unknown codes)."""
    return _BY_CODE.get(code or "", AkiDBError)
