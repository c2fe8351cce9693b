"""When to send a request again, and after how long. Pure: the clients ask, then sleep.

Retried: answers that say "later" (503 ``unavailable``, 429 ``rate_limited``, or a 502/503
from a proxy with no AkiDB error body), waiting the ``Retry-After`` the server sent or else an
exponential backoff with jitter; and requests that got no answer: a connection that could not
be made (nothing was sent), or, for idempotent calls only, one that broke or timed out after
the request went out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import httpx

from . import errors

#: Errors raised before the request could have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Errors after which the server may have received (and applied) the request.
_MAYBE_SENT = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries.

    Attributes:
        max_retries: retries after the first attempt (0 turns retrying off).
        backoff: the first backoff in seconds, doubled per retry, with up to 50% jitter.
        max_backoff: the longest backoff.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one is not waited for
            (the error is raised at once).
    """

    max_retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def after_answer(self, attempt: int, error: errors.AkiDBError) -> Optional[float]:
        """Seconds to wait before retry ``attempt + 1`` after an error answer, or ``None``."""
        if attempt >= self.max_retries:
            return None
        later = error.code in ("unavailable", "rate_limited") or (
            error.code is None and error.status in (502, 503)
        )
        if not later:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        return self._backoff(attempt)

    def after_failure(self, attempt: int, exc: Exception, idempotent: bool) -> Optional[float]:
        """Seconds to wait before retry ``attempt + 1`` after no answer, or ``None``."""
        if attempt >= self.max_retries:
            return None
        if isinstance(exc, _NOT_SENT) or (idempotent and isinstance(exc, _MAYBE_SENT)):
            return self._backoff(attempt)
        return None


def transport_error(exc: Exception, url: str) -> errors.TransportError:
    """The client's error for a request that got no answer."""
    kind = type(exc).__name__
    detail = str(exc) or kind
    return errors.TransportError(f"no answer from {url}: {kind}: {detail}")
