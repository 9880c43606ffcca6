"""Legacy completions (9.2) served through chat: each prompt is one chat request (the 9.2
default for chat models), sent to the provider through the chat exchange of its protocol,
and the answers are put back together as one ``text_completion``.

Several prompts are several upstream calls of one attempt (``Prepared.parts``); they share
the request's one hold, sized for every prompt, and its one settlement.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
from ulid import ULID

from application.chat_request import ChatRequest
from application.exchange import Completed, Exchange, Prepared
from application.translate.common import sse_data
from application.translate.completions import ChatToCompletionStream, completion_response
from application.translate.sse import SseParser
from domain.pricing import TokenUsage

_decode = msgspec.json.Decoder().decode
DONE = b"data: [DONE]\n\n"


def completion_id() -> str:
    return "cmpl-" + str(ULID()) + secrets.token_hex(2)[:3]


def add_usage(usages: list[TokenUsage | None]) -> TokenUsage | None:
    """The sum of every prompt's usage; None when one is unknown (then all is estimated)."""
    if not usages or any(u is None for u in usages):
        return None
    return TokenUsage(prompt_tokens=sum(u.prompt_tokens for u in usages),
                      cached_tokens=sum(u.cached_tokens for u in usages),
                      cache_write_tokens=sum(u.cache_write_tokens for u in usages),
                      completion_tokens=sum(u.completion_tokens for u in usages),
                      reasoning_tokens=sum(u.reasoning_tokens for u in usages),
                      clamped=any(u.clamped for u in usages))


class CompletionsExchange(Exchange):
    def __init__(self, inner: Exchange) -> None:
        self.inner = inner  # the chat exchange of the provider's protocol
        self.upstream = inner.upstream

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        parts = [self.inner.prepare(c, native, limit) for c in chat.inner]
        first = parts[0]
        return Prepared(self, first.path, first.body, first.headers, first.dropped,
                        first.adjusted, parts=parts if len(parts) > 1 else [])

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        payloads = payload if isinstance(payload, list) else [payload]
        done = [self.inner.complete(c, p) for c, p in zip(chat.inner, payloads, strict=False)]
        answer = completion_response([d.payload for d in done if isinstance(d.payload, dict)],
                                     chat.model, completion_id(), int(time.time()))
        return Completed(answer, add_usage([d.usage for d in done]), done[-1].finish,
                         "".join(d.text for d in done))

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        return CompletionsMeter([self.inner.meter(c, request_id) for c in chat.inner], chat,
                                completion_id())


class CompletionsMeter:
    """The prompts' chat streams, one after the other, as one completions stream: billing
    facts are the sum of the inner meters'; one ``[DONE]`` ends it all."""

    def __init__(self, inners: list[Any], chat: ChatRequest, response_id: str) -> None:
        self.inners = inners
        self.current = 0
        options = chat.body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        n = chat.body.get("n") or 1
        created = int(time.time())
        self.streams = [ChatToCompletionStream(chat.model, response_id, created, n, k)
                        for k in range(len(inners))]
        self.parsers = [SseParser() for _ in inners]
        self.head = {"id": response_id, "object": "text_completion", "created": created,
                     "model": chat.model}

    def feed(self, data: bytes) -> bytes:
        if self.current >= len(self.inners):
            return b""
        return self._translate(self.inners[self.current].feed(data))

    def flush(self) -> bytes:
        if self.current >= len(self.inners):
            return b""
        return self._translate(self.inners[self.current].flush())

    def _translate(self, chat_bytes: bytes) -> bytes:
        k = self.current
        out = []
        for event in self.parsers[k].feed(chat_bytes):
            if event.data.strip() == "[DONE]":
                continue
            try:
                chunk = _decode(event.data)
            except msgspec.DecodeError:
                continue
            if isinstance(chunk, dict) and "error" in chunk:
                out.append(event.raw + b"\n\n")  # the inner meter's error event, as it is
                continue
            for piece in self.streams[k].feed(chunk) if isinstance(chunk, dict) else ():
                if piece.get("choices") or "usage" not in piece:
                    out.append(sse_data(piece))
        if self.inners[k].done:
            self.current += 1
            if self.current == len(self.inners):
                usage = add_usage([m.usage for m in self.inners])
                if self.include_usage and usage is not None:
                    out.append(sse_data({**self.head, "choices": [], "usage": {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.prompt_tokens + usage.completion_tokens}}))
                out.append(DONE)
        return b"".join(out)

    @property
    def done(self) -> bool:
        return all(m.done for m in self.inners)

    @property
    def error(self) -> bool:
        return any(m.error for m in self.inners)

    @property
    def usage(self) -> TokenUsage | None:
        return add_usage([m.usage for m in self.inners])

    @property
    def content_chunks(self) -> int:
        return sum(m.content_chunks for m in self.inners)

    @property
    def finish_reason(self) -> str | None:
        return self.inners[min(self.current, len(self.inners) - 1)].finish_reason

    @property
    def output_text(self) -> str:
        return "".join(m.output_text for m in self.inners)
