"""Idempotency-Key handling (11.2): claim, produce once, store what may be replayed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from application import envelope
from application.idempotency import command_id, stores_response
from application.relay import StreamCut
from domain.errors import DomainError

_log = logging.getLogger("gatewayz.http")


def idempotency_key(request: Request, required: bool = False) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        if required:
            raise DomainError("idempotency_key_required",
                              "this command requires an Idempotency-Key header")
        return None
    if not 1 <= len(key) <= 255:
        raise DomainError("invalid_request", "Idempotency-Key must have 1 to 255 characters")
    return key


def no_effect(error: BaseException) -> bool:
    """A use case refusing with a DomainError (validation, 4xx, a retryable 5xx) wrote
    nothing that counts; anything else may have failed after a commit. A collision on the
    derived command id (``idempotency_in_progress``) means another run of this attempt
    exists, so it is not a release either."""
    return isinstance(error, DomainError) and error.code != "idempotency_in_progress"


async def idempotent(store: Any, scope: str, key: str | None, raw: bytes,
                     produce: Callable[..., Awaitable[Response]], *,
                     redact: Callable[[bytes], bytes] | None = None,
                     stream_succeeded: Callable[[bytes], bool] | None = None,
                     released_on: Callable[[BaseException], bool] = no_effect) -> Response:
    """Run ``produce(command_id)`` once per (scope, key); repeats get the stored response
    (11.2; states and rules in application/idempotency.py).

    ``command_id`` is derived from (scope, key, attempt), None without a key. A 2xx/3xx
    answer is stored (``redact`` maps it to what is stored, e.g. without a secret); any
    other answer, or an error ``released_on`` accepts as effect-free, releases the key; any
    other error marks the record ``unknown`` so the command never runs twice. A ``Stream``
    is recorded when it ends: stored (the full bytes) when ``stream_succeeded(bytes)``
    (default: always), released when it failed before any byte went out or ended unsuccessfully,
    ``unknown`` when it was cut after output went out (that output may have been charged).
    """
    import asyncio

    if key is None:
        return await produce(None)
    body_hash = hashlib.sha256(raw).hexdigest()
    claim = await asyncio.to_thread(store.claim, scope, key, body_hash)
    if claim.state == "mismatch":
        raise DomainError("idempotency_key_reused",
                          "this Idempotency-Key was used with a different body")
    if claim.state == "in_progress":
        raise DomainError("idempotency_in_progress",
                          "a request with this Idempotency-Key is still in progress")
    if claim.state == "unknown":
        raise DomainError("conflict",
                          "an earlier request with this Idempotency-Key failed after it may "
                          "have taken effect, so it is not run again and its response was not "
                          "recorded; check its outcome and use a new Idempotency-Key",
                          details={"idempotency_state": "unknown"})
    if claim.state == "done":
        return Response(content=claim.body.encode(), status_code=claim.status,
                        media_type=claim.content_type or "application/json",
                        headers={"idempotent-replayed": "true"})
    attempt = claim.attempt
    try:
        command = command_id(scope, key, attempt)
        envelope.update(command_id=command)
        response = await produce(command)
    except BaseException as error:
        end = store.release if released_on(error) else store.abandon
        if isinstance(error, Exception):
            await _quietly(asyncio.to_thread(end, scope, key, attempt=attempt))
        else:  # cancelled: no more awaiting
            _quietly_now(end, scope, key, attempt)
        raise
    status = response.status_code or 200
    if not stores_response(status):
        await _quietly(asyncio.to_thread(store.release, scope, key, attempt=attempt))
        return response
    if isinstance(response, Stream):
        response.iterator = _recorded(response.iterator, store, scope, key, attempt, status,
                                      response.media_type or "text/event-stream",
                                      stream_succeeded or (lambda _: True))
        return response
    content = _bytes(response.content)
    stored = redact(content) if redact is not None else content
    try:
        await asyncio.to_thread(store.complete, scope, key, status,
                                response.media_type or "application/json",
                                stored.decode("utf-8", "replace"), attempt=attempt)
    except Exception:  # the command took effect: answer it, and never run it again
        _log.exception("could not store the response of idempotent key %r", key)
        await _quietly(asyncio.to_thread(store.abandon, scope, key, attempt=attempt))
    return response


def _bytes(content: Any) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return msgspec.json.encode(content)


async def _quietly(work: Awaitable[Any]) -> None:
    try:
        await work
    except Exception:
        _log.exception("could not update an idempotency record")


def _quietly_now(end: Callable[..., Any], scope: str, key: str, attempt: int) -> None:
    try:
        end(scope, key, attempt=attempt)
    except Exception:
        _log.exception("could not update an idempotency record")


async def _recorded(chunks: Any, store: Any, scope: str, key: str, attempt: int,
                    status: int, content_type: str, succeeded: Callable[[bytes], bool]):
    """Pass the stream through, keeping what was sent; record it when it ends (see
    ``idempotent``). Until then the key stays in progress (repeats get 409)."""
    import asyncio

    if callable(chunks) and not hasattr(chunks, "__aiter__"):
        chunks = chunks()
    sent: list[bytes] = []
    ended = False
    voided = False  # a stream the provider broke off: nothing was charged
    try:
        if hasattr(chunks, "__aiter__"):
            async for data in chunks:
                data = data.encode() if isinstance(data, str) else data
                sent.append(data)
                yield data
        else:
            for data in chunks:
                data = data.encode() if isinstance(data, str) else data
                sent.append(data)
                yield data
        ended = True
    except StreamCut as cut:
        voided = not cut.charged
        raise
    finally:
        body = b"".join(sent)
        if ended and succeeded(body):
            try:
                await asyncio.to_thread(store.complete, scope, key, status, content_type,
                                        body.decode("utf-8", "replace"), attempt=attempt)
            except Exception:
                _log.exception("could not store the stream of idempotent key %r", key)
                _quietly_now(store.abandon, scope, key, attempt)
        elif ended or voided or not body:  # voided, or cut before any output: no charge
            _quietly_now(store.release, scope, key, attempt)
        else:  # cut after output went out: that output may have been charged
            _quietly_now(store.abandon, scope, key, attempt)
