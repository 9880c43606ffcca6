"""Stream meters for Anthropic-format upstreams and for translated streams (9.7, 9.11).

A meter sits between the provider's bytes and the client's: ``feed`` returns what to send
now, and on the way it taps what billing needs (usage, finish reason, output so far, whether
the stream completed or failed), always from the upstream's own events, never from the
translated ones. ``SseRelay`` (sse_relay.py) is the same-format OpenAI meter.
"""

from __future__ import annotations

from typing import Any

import msgspec

from application.sse_relay import OpenAITap, stream_error_event
from application.translate.common import sse_data, sse_event
from application.translate.sse import SseEvent, SseParser
from application.usage_meter import anthropic_usage
from domain.pricing import TokenUsage

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode
DONE = b"data: [DONE]\n\n"


def _json(event: SseEvent) -> Any:
    try:
        return _decode(event.data)
    except msgspec.DecodeError:
        return None


def anthropic_error_event(request_id: str, message: str = "the provider stream ended "
                          "unexpectedly", kind: str = "api_error",
                          code: str = "provider_error") -> bytes:
    """The last event of an Anthropic-format stream that failed after it started (9.7)."""
    return sse_event("error", {"type": "error", "error": {
        "type": kind, "message": message, "code": code}, "request_id": request_id})


class AnthropicTap:
    """Reads billing facts from Anthropic stream events."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] = {}
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.done = False
        self.error = False
        self.content_chunks = 0

    def tap(self, name: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if name == "message_start" and isinstance(data.get("message"), dict):
            self._merge(data["message"].get("usage"))
        elif name == "message_delta":
            # message_delta's counts are cumulative; newer API versions repeat the input ones.
            self._merge(data.get("usage"))
            delta = data.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.finish_reason = delta["stop_reason"]
        elif name == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") in ("tool_use", "redacted_thinking"):
                self.content_chunks += 1
        elif name == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                piece = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
                if isinstance(piece, str) and piece:
                    self.text.append(piece)
                    self.content_chunks += 1
        elif name == "message_stop":
            self.done = True
        elif name == "error":
            self.error = True

    def _merge(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    @property
    def usage(self) -> TokenUsage | None:
        return anthropic_usage(self._usage) if self._usage else None

    @property
    def output_text(self) -> str:
        return "".join(self.text)


class _Parsed:
    """Feeds whole upstream events, as they complete, to ``_relay``."""

    _parser: SseParser

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._relay(e) for e in self._parser.feed(data))

    def flush(self) -> bytes:
        return b"".join(self._relay(e) for e in self._parser.flush())

    def _relay(self, event: SseEvent) -> bytes:
        raise NotImplementedError


class AnthropicPassMeter(_Parsed, AnthropicTap):
    """Anthropic upstream, Anthropic client: events pass through as they came, except that
    ``message_start`` names the model the client asked for."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self._parser = SseParser()

    def _relay(self, event: SseEvent) -> bytes:
        payload = _json(event)
        self.tap(event.event, payload)
        if event.event == "message_start" and isinstance(payload, dict) and \
                isinstance(payload.get("message"), dict):
            payload["message"]["model"] = self.model
            return sse_event("message_start", payload)
        return event.raw + b"\n\n"


class _Translating(_Parsed):
    """A meter whose client gets the translator's events; the tap comes after it in the
    class order, and its ``__init__`` runs from here."""

    def __init__(self, translator: Any, request_id: str) -> None:
        super().__init__()
        self.translator = translator
        self.request_id = request_id
        self._parser = SseParser()


class AnthropicToOpenAIMeter(_Translating, AnthropicTap):
    """Anthropic upstream, OpenAI chat client: each upstream event becomes chat chunks."""

    def _relay(self, event: SseEvent) -> bytes:
        if self.done or self.error:
            return b""
        payload = _json(event)
        self.tap(event.event, payload)
        if self.error:
            return stream_error_event(self.request_id)
        if not isinstance(payload, dict) or event.event is None:
            return b""
        out = [sse_data(c) for c in self.translator.feed(event.event, payload)]
        if self.done:
            out += [sse_data(c) for c in self.translator.close()]
            out.append(DONE)
        return b"".join(out)


class OpenAIToAnthropicMeter(_Translating, OpenAITap):
    """OpenAI-format upstream, Anthropic client: each chat chunk becomes Anthropic events."""

    def _relay(self, event: SseEvent) -> bytes:
        if self.done or self.error:
            return b""
        if event.data.strip() == "[DONE]":
            self.done = True
            return b"".join(sse_event(n, p) for n, p in self.translator.close())
        chunk = _json(event)
        if not isinstance(chunk, dict):
            return b""
        self.tap(chunk)
        if self.error:
            return anthropic_error_event(self.request_id)
        return b"".join(sse_event(n, p) for n, p in self.translator.feed(chunk))
