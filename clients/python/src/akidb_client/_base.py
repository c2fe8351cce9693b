"""What the sync and async clients share: their settings, headers and answer handling."""

from __future__ import annotations

import os
import ssl
from typing import Any, Dict, Mapping, Optional, Union

import httpx
import orjson

from . import _calls
from ._retry import RetryPolicy
from .errors import AkiDBError

__all__ = ["DEFAULT_URL", "Settings"]

#: Where the clients connect when given no URL and ``AKIDB_URL`` is unset: the server's default.
DEFAULT_URL = "http://127.0.0.1:8080"

Verify = Union[bool, str, ssl.SSLContext]


class Settings:
    """A client's connection settings, resolved once (environment defaults included)."""

    def __init__(
        self,
        url: Optional[str],
        api_key: Optional[str],
        timeout: Optional[float],
        verify: Verify,
        retry: Optional[RetryPolicy],
        headers: Optional[Mapping[str, str]],
    ) -> None:
        self.url = (url or os.environ.get("AKIDB_URL") or DEFAULT_URL).rstrip("/")
        if api_key is None:
            api_key = os.environ.get("AKIDB_API_KEY") or None
        self.headers: Dict[str, str] = {"user-agent": "akidb-client-python/0.1"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self.headers.update(headers or {})
        self.timeout = timeout
        self.verify: Any = verify
        if isinstance(verify, str):
            # A CA bundle (PEM) to trust, e.g. for a self-signed server certificate.
            self.verify = ssl.create_default_context(cafile=verify)
        self.retry = retry or RetryPolicy()

    def httpx_args(self) -> Dict[str, Any]:
        return {
            "base_url": self.url,
            "headers": self.headers,
            "timeout": self.timeout,
            "verify": self.verify,
        }


def request_headers(call: _calls.Call) -> Optional[Dict[str, str]]:
    return {"content-type": call.content_type} if call.body is not None else None


def result(call: _calls.Call, response: httpx.Response) -> Any:
    """The parsed result of a 2xx answer."""
    return call.parse(orjson.loads(response.content) if response.content else None)


def error(call: _calls.Call, response: httpx.Response) -> Optional[AkiDBError]:
    """The exception for a non-2xx answer; ``None`` for a 2xx one."""
    if response.is_success:
        return None
    retry_after = _calls.retry_after_seconds(response.headers.get("retry-after"))
    return _calls.error_from_answer(
        response.status_code, response.content, retry_after, call.row_offset
    )
