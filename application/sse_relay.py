"""Passes a provider's SSE stream through event by event: renames ``model`` to the id the
client asked for (9.1) and taps text, usage, finish reason and ``[DONE]`` on the way."""

from __future__ import annotations

import msgspec

from application.usage_meter import usage_from
from domain.pricing import TokenUsage

_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode


class OpenAITap:
    """Reads billing facts from OpenAI chat chunks: output text, usage, finish, [DONE]."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.error = False
        self.content_chunks = 0

    def tap(self, chunk: dict) -> None:
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
                reasoning = delta.get("reasoning_content")
                if isinstance(reasoning, str) and reasoning and not content:
                    self.text.append(reasoning)
                    self.content_chunks += 1
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @property
    def output_text(self) -> str:
        return "".join(self.text)


class SseRelay(OpenAITap):
    """``strip_usage``: usage was requested upstream for billing but not by the client, so the
    usage-only chunk is tapped and dropped and no forwarded chunk carries a ``usage`` key,
    which is what the client would see had it not been requested."""

    def __init__(self, model: str, strip_usage: bool = False) -> None:
        super().__init__()
        self.model = model
        self.strip_usage = strip_usage
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        """Whole events ready to forward (possibly none yet); a partial event waits."""
        self._buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        cut = self._buffer.rfind(b"\n\n")
        if cut < 0:
            return b""
        ready, self._buffer = self._buffer[:cut], self._buffer[cut + 2:]
        out = []
        for event in ready.split(b"\n\n"):
            relayed = self._event(event)
            if relayed is not None:
                out.append(relayed)
                out.append(b"\n\n")
        return b"".join(out)

    def flush(self) -> bytes:
        """What is left after the last blank line, as it came; when stripping usage it is
        read like any event first, so a final usage chunk is billed and not forwarded."""
        rest, self._buffer = self._buffer, b""
        if self.strip_usage and rest.strip():
            return self._event(rest.rstrip(b"\n")) or b""
        return rest

    def _event(self, event: bytes) -> bytes | None:
        """The event to forward, or None to drop it."""
        lines = event.split(b"\n")
        for index, line in enumerate(lines):
            if line.startswith(b"data:"):
                relayed = self._data(line, line[5:].strip())
                if relayed is None:
                    return None
                lines[index] = relayed
        return b"\n".join(lines)

    def _data(self, line: bytes, payload: bytes) -> bytes | None:
        if payload == b"[DONE]":
            self.done = True
            return line
        try:
            chunk = _decode(payload)
        except msgspec.DecodeError:
            return line
        if not isinstance(chunk, dict):
            return line
        self.tap(chunk)
        changed = False
        if self.strip_usage and "usage" in chunk:
            if (isinstance(chunk["usage"], dict) and not chunk.get("choices")
                    and "error" not in chunk):
                return None  # the usage-only chunk the client did not ask for
            del chunk["usage"]
            changed = True
        if isinstance(chunk.get("model"), str):
            chunk["model"] = self.model
            changed = True
        return b"data: " + _encode(chunk) if changed else line


def stream_error_event(request_id: str) -> bytes:
    """The last event of a stream the provider broke off: an error, and no ``[DONE]``."""
    return b"data: " + _encode({"error": {
        "message": "the provider stream ended unexpectedly", "type": "server_error",
        "param": None, "code": "provider_error", "request_id": request_id}}) + b"\n\n"
