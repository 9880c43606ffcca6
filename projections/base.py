"""What every projection offers the runner, and what one batch reports back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass
class BatchEffects:
    """Side effects the runner performs after the batch's transaction commits."""

    touched_accounts: set[str] = field(default_factory=set)
    released_holds: dict[str, list[str]] = field(default_factory=dict)
    access_changed: bool = False
    catalog_changed: bool = False


class Projection(Protocol):
    name: str
    contexts: tuple[str, ...]

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None: ...


def event_type(event: Any) -> str:
    return type(event).__qualname__


def at(event: Any) -> str:
    return stamp(event.timestamp)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text, so that stored times sort and compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# Stream ids are uuid5 of the natural id, so stream -> natural id never changes and may be
# remembered in any process. Skipping the lookup query matters on PostgreSQL, where every
# statement is a round trip.
_REFS: dict[str, str] = {}
_REFS_MAX = 200_000


def index_stream(cur: Any, event: Any, natural_id: str) -> None:
    """Remember which natural id a stream belongs to; later events carry only the stream."""
    stream = str(event.originator_id)
    cur.execute("INSERT INTO stream_index (stream, ref) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (stream, natural_id))
    _remember(stream, natural_id)


def ref_of(cur: Any, event: Any) -> str | None:
    stream = str(event.originator_id)
    known = _REFS.get(stream)
    if known is not None:
        return known
    cur.execute("SELECT ref FROM stream_index WHERE stream = %s", (stream,))
    row = cur.fetchone()
    if row is None:
        return None
    _remember(stream, row[0])
    return row[0]


def _remember(stream: str, natural_id: str) -> None:
    if len(_REFS) >= _REFS_MAX:
        _REFS.clear()
    _REFS[stream] = natural_id
