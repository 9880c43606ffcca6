"""Server-sent events in, one whole event at a time (the WHATWG framing both APIs use)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str | None  # the ``event:`` name, None when the event has none (OpenAI chat)
    data: str  # the ``data:`` lines joined with newlines
    raw: bytes  # the event as it came, without its blank line, for pass-through


class SseParser:
    """Feed bytes as they arrive; get back every event completed by them. A partial event
    waits for the rest, and a UTF-8 character split across reads is never cut."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[SseEvent]:
        if b"\r" in data or self._buffer.endswith(b"\r"):
            data = (self._buffer + data).replace(b"\r\n", b"\n")
            self._buffer = b""
        self._buffer += data
        cut = self._buffer.rfind(b"\n\n")
        if cut < 0:
            return []
        ready, self._buffer = self._buffer[:cut], self._buffer[cut + 2:]
        return [e for e in (parse_event(block) for block in ready.split(b"\n\n")) if e]

    def flush(self) -> list[SseEvent]:
        """The last event when the stream ended without its blank line."""
        rest, self._buffer = self._buffer.strip(b"\n"), b""
        event = parse_event(rest) if rest else None
        return [event] if event else []


def parse_event(block: bytes) -> SseEvent | None:
    """One event's lines; comments (``: keep-alive``) and unknown fields are ignored, and
    an event with neither a name nor data is no event."""
    name: str | None = None
    data: list[str] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value.decode("utf-8", "replace"))
    if name is None and not data:
        return None
    return SseEvent(name, "\n".join(data), block)
