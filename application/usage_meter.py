"""Reads token usage from provider responses and taps it from SSE streams as they pass."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.pricing import TokenUsage, estimate_text_tokens

_decode = msgspec.json.Decoder().decode


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from(payload: Any) -> TokenUsage | None:
    """The provider-reported usage object, or None when absent or unusable."""
    if not isinstance(payload, dict) or not isinstance(payload.get("usage"), dict):
        return None
    usage = payload["usage"]
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = (_int(completion_details.get("reasoning_tokens"))
                 if isinstance(completion_details, dict) else 0)
    try:
        return TokenUsage(prompt_tokens=prompt, cached_tokens=min(cached, prompt),
                          completion_tokens=completion,
                          reasoning_tokens=min(reasoning, completion))
    except ValueError:
        return None


def message_text(messages: list) -> str:
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "".join(parts)


def estimated_usage(messages: list, output_text: str) -> TokenUsage:
    """The fallback when the provider reports nothing: 1 token per 4 characters, rounded up."""
    return TokenUsage(prompt_tokens=estimate_text_tokens(message_text(messages)),
                      completion_tokens=estimate_text_tokens(output_text))


class StreamMeter:
    """Watches SSE bytes go by: text generated, provider usage, finish reason, [DONE]."""

    def __init__(self) -> None:
        self._buffer = b""
        self.text: list[str] = []
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.content_chunks = 0
        self.error = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            cut = self._buffer.find(b"\n\n")
            if cut < 0:
                return
            event, self._buffer = self._buffer[:cut], self._buffer[cut + 2:]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._data(line[5:].strip())

    def _data(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.done = True
            return
        try:
            chunk = _decode(data)
        except msgspec.DecodeError:
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self.error = True
        usage = usage_from(chunk)
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                self.text.append(content)
                self.content_chunks += 1
            elif isinstance(delta, dict) and delta.get("tool_calls"):
                self.content_chunks += 1
                self.text.append(msgspec.json.encode(delta["tool_calls"]).decode())
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @property
    def output_text(self) -> str:
        return "".join(self.text)
