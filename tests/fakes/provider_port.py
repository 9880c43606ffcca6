"""FakeProviderPort: an in-memory ProviderClient (application/ports.py) for service-layer tests.

No sockets, no HTTP: ``send`` returns a scripted UpstreamResponse. Answers are scripted per
call, in order (optionally per provider slug), from the constructors below; every call is
recorded with the decoded body it carried, so a test can assert what an upstream received
(or that it received nothing).

    port = FakeProviderPort()
    port.will(status_answer(500), json_answer("hi", prompt_tokens=10, completion_tokens=5))
    port.will(stream_answer(["a", "b"], usage=(10, 2)), provider="acme")
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "FakeProviderPort", "FakeUpstream", "Received", "connection_error",
           "json_answer", "sse", "status_answer", "stream_answer", "timeout_answer"]


@dataclass(frozen=True)
class Answer:
    """One scripted upstream answer.

    kind: "json" (``body``), "stream" (``chunks`` of raw SSE bytes), "status" (an error
    ``status`` with ``body``), "connection_error" or "timeout" (``send`` raises).
    """

    kind: str
    status: int = 200
    body: bytes = b""
    chunks: tuple[bytes, ...] = ()
    chunk_delay: float = 0.0       # seconds before each chunk: a slow stream
    headers_delay: float = 0.0     # seconds before ``send`` returns
    break_after: int | None = None  # raise ConnectionResetError after this many chunks
    completion_text: str = ""      # the content the answer carries (for expected charges)
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (e.g. retry-after)


@dataclass(frozen=True)
class Received:
    provider: str
    base_url: str
    path: str
    credential: str
    native_model_id: str
    body: Any          # the decoded JSON body as sent upstream
    raw: bytes
    headers: dict = field(default_factory=dict)  # protocol headers the client added


def _usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


def json_answer(content: str = "Hello there.", *, prompt_tokens: int | None = 10,
                completion_tokens: int = 5, model: str = "upstream-model",
                finish_reason: str = "stop", delay: float = 0.0) -> Answer:
    """A 200 chat.completion; ``prompt_tokens=None`` leaves ``usage`` out."""
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
        "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}]}
    if prompt_tokens is not None:
        payload["usage"] = _usage(prompt_tokens, completion_tokens)
    return Answer("json", body=json.dumps(payload).encode(), headers_delay=delay,
                  completion_text=content)


def sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def stream_answer(contents: list[str] | tuple[str, ...] = ("Hel", "lo", "!"), *,
                  usage: tuple[int, int] | None = (10, 3), model: str = "upstream-model",
                  finish_reason: str = "stop", done: bool = True, chunk_delay: float = 0.0,
                  break_after: int | None = None, delay: float = 0.0) -> Answer:
    """A 200 SSE stream: one chunk per content piece, a finish chunk, an optional usage chunk
    (``usage=(prompt, completion)``, as with ``stream_options.include_usage``) and ``[DONE]``.

    ``break_after=n`` drops the connection after n SSE events; ``chunk_delay`` makes it slow.
    """
    chunk_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return sse({"id": chunk_id, "object": "chat.completion.chunk", "created": 1_700_000_000,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in contents]
    events.append(chunk({}, finish_reason))
    if usage is not None:
        events.append(sse({"id": chunk_id, "object": "chat.completion.chunk",
                           "created": 1_700_000_000, "model": model, "choices": [],
                           "usage": _usage(*usage)}))
    if done:
        events.append(sse("[DONE]"))
    return Answer("stream", chunks=tuple(events), chunk_delay=chunk_delay,
                  break_after=break_after, headers_delay=delay,
                  completion_text="".join(contents))


def status_answer(status: int, message: str = "upstream says no") -> Answer:
    body = json.dumps({"error": {"message": message, "type": "server_error" if status >= 500
                                 else "invalid_request_error", "param": None,
                                 "code": None}}).encode()
    return Answer("status", status=status, body=body)


def connection_error() -> Answer:
    return Answer("connection_error")


def timeout_answer() -> Answer:
    return Answer("timeout")


class FakeUpstream:
    """UpstreamResponse: ``status``, ``headers``, ``chunks()``, ``read()``, ``close()``."""

    def __init__(self, answer: Answer, port: FakeProviderPort) -> None:
        self.answer = answer
        self.port = port
        self.status = answer.status
        self.headers = {"content-type": "text/event-stream" if answer.kind == "stream"
                        else "application/json"} | dict(answer.headers)
        self.closed = False
        self.sent = 0  # SSE events handed to the reader so far

    async def chunks(self) -> AsyncIterator[bytes]:
        answer = self.answer
        for index, data in enumerate(answer.chunks or (answer.body,)):
            if self.closed:
                return
            if answer.break_after is not None and index >= answer.break_after:
                raise ConnectionResetError("the fake upstream dropped the connection")
            if answer.chunk_delay:
                await asyncio.sleep(answer.chunk_delay)
            self.sent += 1
            self.port.events_sent += 1
            yield data

    async def read(self) -> bytes:
        if self.answer.kind == "stream":
            return b"".join([c async for c in self.chunks()])
        return self.answer.body

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.port.closed += 1


@dataclass
class FakeProviderPort:
    """A ProviderClient whose answers are scripted per call and whose calls are recorded."""

    default: Answer | None = None
    received: list[Received] = field(default_factory=list)
    upstreams: list[FakeUpstream] = field(default_factory=list)
    closed: int = 0
    events_sent: int = 0

    def __post_init__(self) -> None:
        self._queue: deque[Answer] = deque()
        self._by_provider: dict[str, deque[Answer]] = {}

    def will(self, *answers: Answer, provider: str | None = None) -> FakeProviderPort:
        """Queue answers for the next calls (to ``provider`` only, when given)."""
        queue = self._queue if provider is None else \
            self._by_provider.setdefault(provider, deque())
        queue.extend(answers)
        return self

    def pending(self) -> int:
        return len(self._queue) + sum(len(q) for q in self._by_provider.values())

    def reset(self) -> None:
        self._queue.clear()
        self._by_provider.clear()

    def _next(self, slug: str) -> Answer:
        specific = self._by_provider.get(slug)
        if specific:
            return specific.popleft()
        if self._queue:
            return self._queue.popleft()
        if self.default is not None:
            return self.default
        raise AssertionError(f"unscripted call to provider {slug!r}")

    async def send(self, target: Any, path: str, body: bytes,
                   headers: dict | None = None) -> FakeUpstream:
        self.received.append(Received(target.slug, target.base_url, path, target.credential,
                                      target.native_model_id, json.loads(body), bytes(body),
                                      dict(headers or {})))
        answer = self._next(target.slug)
        if answer.headers_delay:
            await asyncio.sleep(answer.headers_delay)
        if answer.kind == "connection_error":
            raise ConnectionRefusedError("the fake upstream refused the connection")
        if answer.kind == "timeout":
            raise TimeoutError("the fake upstream did not answer in time")
        upstream = FakeUpstream(answer, self)
        self.upstreams.append(upstream)
        return upstream

    async def close(self) -> None:  # the gateway closes its clients on shutdown
        return None
