"""msgspec transcoder: stored event bodies are plain JSON, with no type tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Transcoder


class MsgspecTranscoder(Transcoder):
    """Events hold only JSON-native values plus their ``timestamp``.

    The library's JSON transcoder wraps datetimes in ``{"_type_": ...}`` objects; auditors
    replaying the feed with their own tools should see plain JSON, so the one datetime field
    is written as RFC 3339 and parsed back by name.
    """

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder(enc_hook=_refuse)
        self._decoder = msgspec.json.Decoder()

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        state = self._decoder.decode(data)
        stamp = state.get("timestamp") if isinstance(state, dict) else None
        if isinstance(stamp, str):
            state["timestamp"] = datetime.fromisoformat(stamp)
        return state


def _refuse(obj: Any) -> Any:
    raise TypeError(f"{type(obj).__name__} is not allowed in an event; use JSON-native values")
