"""What every projection offers the runner, and what one batch reports back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.feed import recorded_at


@dataclass
class BatchEffects:
    """Side effects the runner performs after the batch's transaction commits."""

    touched_accounts: set[str] = field(default_factory=set)
    released_holds: dict[str, list[str]] = field(default_factory=dict)
    access_changed: bool = False
    catalog_changed: bool = False
    # A gateway setting changed (Config.Changed): the limiter reloads its bypass list (1.9).
    config_changed: bool = False
    # Where the event being applied sits (the audit trail records it and digests the row):
    # set by the runner before each event.
    context: str = ""
    note: Any = None
    guarded: bool = False  # events applied one by one under savepoints


class Projection(Protocol):
    name: str
    contexts: tuple[str, ...]

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None: ...


def event_type(event: Any) -> str:
    return type(event).__qualname__


# Every projection asks for the same event's time and stream as text: the last event's
# answers are kept (a tuple replaced whole, so threads never see half of one).
_LAST: dict[str, tuple[Any, str]] = {"at": (None, ""), "stream": (None, "")}


def _of_last_event(slot: str, event: Any, compute: Callable[[Any], str]) -> str:
    last = _LAST[slot]
    if last[0] is event:
        return last[1]
    value = compute(event)
    _LAST[slot] = (event, value)
    return value


def at(event: Any) -> str:
    return _of_last_event("at", event, lambda e: stamp(e.timestamp))


def stream_of(event: Any) -> str:
    """The event's stream id as text."""
    return _of_last_event("stream", event, lambda e: str(e.originator_id))


# One time format for events, entries and read models (application/feed.py owns it).
stamp = recorded_at


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# Stream ids are uuid5 of the natural id, so stream -> natural id never changes and may be
# remembered in any process. Skipping the lookup query matters on PostgreSQL, where a read
# sends the batch's queued writes and waits for them (adapters/persistence/batch_cursor.py).
_REFS: dict[str, str] = {}
_REFS_MAX = 200_000


def index_stream(cur: Any, event: Any, natural_id: str) -> None:
    """Remember which natural id a stream belongs to; later events carry only the stream."""
    stream = stream_of(event)
    cur.execute("INSERT INTO stream_index (stream, ref) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (stream, natural_id))
    _remember(stream, natural_id)


def ref_of(cur: Any, event: Any) -> str | None:
    stream = stream_of(event)
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


class PendingRows:
    """A batch's new rows of one table, each sent with its first update folded in.

    Placing and ending a hold in one batch used to be an INSERT then an UPDATE of one row;
    here it is one INSERT, sent when the row is updated (so the server works on it while
    the batch goes on), or at the end of the batch if it never is. Exact: "INSERT ... ON
    CONFLICT DO NOTHING, later UPDATE ... SET c = v" leaves the same row as "INSERT the
    updated row ... ON CONFLICT (key) DO UPDATE SET c = excluded.c", whether or not the key
    already existed; later writes of the row follow it in the cursor, in order. Requires
    that the key be the table's only unique constraint (rows of different keys then
    commute) and that every write of these rows go through this object.
    """

    def __init__(self, table: str, key: str) -> None:
        self.table, self.key = table, key
        self._batch: Any = None
        self._rows: dict[Any, dict[str, Any]] = {}
        self._sql: dict[tuple, str] = {}  # statement texts, built once per shape of row

    def begin(self, effects: Any) -> None:
        """Forget rows of a batch that failed (its transaction was rolled back)."""
        if self._batch is not effects:
            self._batch, self._rows = effects, {}

    def get(self, key: Any) -> dict[str, Any] | None:
        return self._rows.get(key)

    def insert(self, row: dict[str, Any]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING: a second insert of a key changes nothing."""
        self._rows.setdefault(row[self.key], row)

    def update(self, cur: Any, key: Any, values: dict[str, Any]) -> None:
        """UPDATE ... SET values WHERE key = key."""
        row = self._rows.pop(key, None)
        columns = tuple(values)
        if row is None:
            cur.execute(self._text((None, columns)), [*values.values(), key])
            return
        row.update(values)
        cur.execute(self._text((tuple(row), columns)), list(row.values()))

    def write(self, cur: Any) -> None:
        """Send the rows no update has sent yet."""
        rows, self._rows = self._rows, {}
        for row in rows.values():
            cur.execute(self._text((tuple(row), ())), list(row.values()))

    def _text(self, shape: tuple) -> str:
        """(None, columns set): the UPDATE; (columns, columns set after the insert): the
        INSERT."""
        sql = self._sql.get(shape)
        if sql is None:
            columns, updated = shape
            if columns is None:
                sql = (f"UPDATE {self.table} SET " + ", ".join(f"{c} = %s" for c in updated)
                       + f" WHERE {self.key} = %s")
            else:
                conflict = "ON CONFLICT DO NOTHING" if not updated else (
                    f"ON CONFLICT ({self.key}) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in updated))
                sql = (f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES "
                       f"({', '.join(['%s'] * len(columns))}) {conflict}")
            self._sql[shape] = sql
        return sql
