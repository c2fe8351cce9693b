"""The retry policy's decisions (pure; the clients' retries against the binary are in
test_client.py)."""

from __future__ import annotations

import httpx

from akidb_client import RetryPolicy
from akidb_client.errors import CollectionUnavailable, InvalidArgument, RateLimited, Unavailable
from akidb_client.errors import AkiDBError


def test_answers_meaning_later_are_retried_after_retry_after():
    p = RetryPolicy(max_retries=2, backoff=0.1, max_retry_after=10)
    assert p.after_answer(0, Unavailable("busy", status=503, retry_after=2.0)) == 2.0
    assert p.after_answer(1, RateLimited("slow down", status=429, retry_after=1.0)) == 1.0
    # Without Retry-After: a backoff of 0.1 * 2^attempt, with up to 50% jitter.
    assert 0.05 <= p.after_answer(0, Unavailable("busy", status=503)) <= 0.1
    assert 0.1 <= p.after_answer(1, Unavailable("busy", status=503)) <= 0.2
    # A proxy's 502/503 without an AkiDB body.
    assert p.after_answer(0, AkiDBError("bad gateway", status=502)) is not None
    # Bounded: the retries run out, and a Retry-After beyond the bound is not waited for.
    assert p.after_answer(2, Unavailable("busy", status=503, retry_after=1.0)) is None
    assert p.after_answer(0, Unavailable("busy", status=503, retry_after=60.0)) is None


def test_other_answers_are_not_retried():
    p = RetryPolicy()
    assert p.after_answer(0, CollectionUnavailable("wal lost", status=503)) is None
    assert p.after_answer(0, InvalidArgument("k", status=400)) is None
    assert p.after_answer(0, AkiDBError("oops", status=500, code="internal")) is None


def test_no_answer_is_retried_when_safe():
    p = RetryPolicy(max_retries=1)
    refused = httpx.ConnectError("refused")
    timed_out = httpx.ReadTimeout("slow")
    assert p.after_failure(0, refused, idempotent=False) is not None  # nothing was sent
    assert p.after_failure(0, timed_out, idempotent=True) is not None
    assert p.after_failure(0, timed_out, idempotent=False) is None  # it may have been applied
    assert p.after_failure(1, refused, idempotent=True) is None
    assert RetryPolicy(max_retries=0).after_failure(0, refused, idempotent=True) is None
