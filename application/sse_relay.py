"""Passes a provider's SSE stream through event by event: renames ``model`` to the id the
client asked for (9.1) and taps text, usage, finish reason and ``[DONE]`` on the way."""

from __future__ import annotations

import msgspec

from application.usage_meter import usage_from
from domain.pricing import TokenUsage

_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode


class SseRelay:
    def __init__(self, model: str) -> None:
        self.model = model
        self._buffer = b""
        self.text: list[str] = []
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.error = False
        self.content_chunks = 0

    def feed(self, data: bytes) -> bytes:
        """Whole events ready to forward (possibly none yet); a partial event waits."""
        self._buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        cut = self._buffer.rfind(b"\n\n")
        if cut < 0:
            return b""
        ready, self._buffer = self._buffer[:cut], self._buffer[cut + 2:]
        return b"".join(self._event(event) + b"\n\n" for event in ready.split(b"\n\n"))

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest

    def _event(self, event: bytes) -> bytes:
        lines = event.split(b"\n")
        for index, line in enumerate(lines):
            if line.startswith(b"data:"):
                lines[index] = self._data(line, line[5:].strip())
        return b"\n".join(lines)

    def _data(self, line: bytes, payload: bytes) -> bytes:
        if payload == b"[DONE]":
            self.done = True
            return line
        try:
            chunk = _decode(payload)
        except msgspec.DecodeError:
            return line
        if not isinstance(chunk, dict):
            return line
        self._tap(chunk)
        if not isinstance(chunk.get("model"), str):
            return line
        chunk["model"] = self.model
        return b"data: " + _encode(chunk)

    def _tap(self, chunk: dict) -> None:
        if "error" in chunk:
            self.error = True
        usage = usage_from(chunk)
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    self.text.append(content)
                    self.content_chunks += 1
                elif delta.get("tool_calls"):
                    self.content_chunks += 1
                    self.text.append(_encode(delta["tool_calls"]).decode())
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @property
    def output_text(self) -> str:
        return "".join(self.text)


def stream_error_event(request_id: str) -> bytes:
    """The last event of a stream the provider broke off: an error, and no ``[DONE]``."""
    return b"data: " + _encode({"error": {
        "message": "the provider stream ended unexpectedly", "type": "server_error",
        "param": None, "code": "provider_error", "request_id": request_id}}) + b"\n\n"
