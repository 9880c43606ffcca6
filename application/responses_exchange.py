"""Responses (9.4) served through chat: the request is sent as one chat-completions request
through the chat exchange of the provider's protocol, and the answer (JSON or stream) comes
back as a Response and its events. Storage and ``previous_response_id`` are the route's
(application/responses_store.py); the conversation so far is already in ``chat.inner``."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import msgspec
from ulid import ULID

from application.chat_request import ChatRequest, parse_chat
from application.exchange import Completed, Exchange, Prepared
from application.translate.common import sse_event
from application.translate.responses.request import chat_body, parse_responses
from application.translate.responses.response import response_object
from application.translate.responses.stream import ChatToResponsesStream
from application.translate.sse import SseParser

_decode = msgspec.json.Decoder().decode


def response_id() -> str:
    return "resp_" + str(ULID())


def parse_response_request(body: Any, history: list[dict]) -> ChatRequest:
    """A Responses request as the pipeline's, continuing ``history`` (chat messages)."""
    body = parse_responses(body)
    inner = parse_chat({**chat_body(body, history), "model": body["model"]})
    return replace(inner, body=body, format="responses", inner=(inner,))


class ResponsesExchange(Exchange):
    def __init__(self, inner: Exchange) -> None:
        self.inner = inner  # the chat exchange of the provider's protocol
        self.upstream = inner.upstream

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        prepared = self.inner.prepare(chat.inner[0], native, limit)
        return replace(prepared, exchange=self)

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        done = self.inner.complete(chat.inner[0], payload)
        answer = response_object(done.payload if isinstance(done.payload, dict) else {},
                                 chat.body, response_id(), int(time.time()), chat.model)
        return Completed(answer, done.usage, done.finish, done.text)

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        translator = ChatToResponsesStream(chat.body, response_id(), int(time.time()),
                                           chat.model)
        return ResponsesMeter(self.inner.meter(chat.inner[0], request_id), translator)


class ResponsesMeter:
    """The chat stream's billing facts, its chunks as Responses events (sequence-numbered by
    the translator); a failure ends with ``response.failed`` then ``error`` (9.7)."""

    def __init__(self, inner: Any, translator: ChatToResponsesStream) -> None:
        self.inner = inner
        self.translator = translator
        self.parser = SseParser()
        self.failed = False
        self.final: dict | None = None  # the completed Response, for storage

    def feed(self, data: bytes) -> bytes:
        return self._translate(self.inner.feed(data))

    def flush(self) -> bytes:
        return self._translate(self.inner.flush())

    def _translate(self, chat_bytes: bytes) -> bytes:
        out: list[tuple[str, dict]] = []
        for event in self.parser.feed(chat_bytes):
            if self.failed:
                break
            if event.data.strip() == "[DONE]":
                out += self.translator.close()
                continue
            try:
                chunk = _decode(event.data)
            except msgspec.DecodeError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                self.failed = True
                out += self.translator.fail("the provider stream ended unexpectedly",
                                            "provider_error")
                continue
            out += self.translator.feed(chunk)
        for name, payload in out:
            if name in ("response.completed", "response.incomplete"):
                self.final = payload.get("response")
        return b"".join(sse_event(name, payload) for name, payload in out)

    def error_event(self, request_id: str) -> bytes:
        if self.failed:
            return b""
        self.failed = True
        return b"".join(sse_event(n, p) for n, p in self.translator.fail(
            "the provider stream ended unexpectedly", "provider_error"))

    def __getattr__(self, name: str) -> Any:  # done, error, usage, text: the chat stream's
        return getattr(self.inner, name)
