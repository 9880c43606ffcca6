"""As-of queries (11.10): which positions an instant names, and why the answer never changes.

Definitions. Gatewayz keeps one events table per context (accounts, access, requests,
catalog); an event's place is (context, position), positions being the gap-free,
commit-ordered notification ids of its table. An event's ``timestamp`` is when it was
created, which need not follow commit order (the group-commit writer and concurrent
commands commit an event made at t1 after one made at t2 > t1). So, per context:

- recorded_at(p) = max(timestamp of the events at positions 1..p): non-decreasing with
  position, as 11.1 requires of ``recorded_at``;
- ``as_of`` T names P_c(T) = the highest position whose recorded_at <= T (0 if none);
- an answer folds exactly the events at positions <= P_c(T) of each context it reads
  (balances and statements read ``accounts`` and ``requests``) and carries ``as_of`` and
  ``as_of_position`` ``{"accounts": n, "requests": m}``;
- ``as_of_position=accounts:N,requests:M`` names the positions directly; ``as_of`` is then
  the latest recorded_at among them (the instant at which that state was complete).

Representation. The ``as_of_clock`` projection keeps one row (context, position,
recorded_at) per position where the running maximum increases, so recorded_at(p) is the
last row at or before p, and P_c(T) is one less than the first row later than T. Rows
derive from the events alone (not from batching), so a rebuild writes the same rows. Read
models that answer as-of queries record the (context, position) each row came from
(ledger lines, holds placed and ended, wallets opened, trial and allowance flags), so an
as-of query filters by position, never by time.

Why an answer is stable. Positions are immutable and a reader never sees an event appear
below a position it has read (11.1), so the fold up to P is fixed once P is. P_c(T) is
fixed as soon as some event of the context with recorded_at > T is known: every later
position has recorded_at > T too. Until then, a late-committing event created at or before
T could still take the next position and move P_c(T). So a context with no event after T is
only answered once T is SETTLE_S in the past and the projector has applied every event
committed at that moment. That assumes no event commits more than SETTLE_S (default 5 s,
GATEWAYZ_AS_OF_SETTLE_S) after it was created: commands and the group-commit writer commit
within milliseconds under ordinary load, but a commit stalled longer (a lock wait may last
10 s on PostgreSQL and 30 s on SQLite before it fails) would break it, and the resolver logs
a warning when it sees such an event. Only a store clock read at commit (11.1) removes the
assumption. A query for such an instant waits (at most SETTLE_S) rather than answer early;
when the read models lag more than WAIT_S behind what it needs it answers 503 (retry).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.errors import DomainError
from projections.base import at

log = logging.getLogger("gatewayz.as_of")
CLOCK = "as_of_clock"
ALL_CONTEXTS = ("accounts", "access", "requests", "catalog")
BALANCE_CONTEXTS = ("accounts", "requests")
SETTLE_S = float(os.environ.get("GATEWAYZ_AS_OF_SETTLE_S", "5"))
WAIT_S = 5.0
_POLL_S = 0.05
_PART = re.compile(r"(accounts|access|requests|catalog):([0-9]{1,18})")
_ROWS_PER_INSERT = 300  # three parameters a row: far below SQLite's variable limit


class AsOfClock:
    """The ``as_of_clock`` read model: buffers the batch's timestamps, writes on end_batch."""

    name = CLOCK
    contexts = ALL_CONTEXTS

    def __init__(self) -> None:
        self._batch: Any = None  # the BatchEffects whose events _seen holds
        self._seen: list[tuple[int, str]] = []

    def apply(self, cur: Any, event: Any, effects: Any) -> None:
        if self._batch is not effects:  # a new batch (or a retry of a failed one)
            self._batch, self._seen = effects, []
        self._seen.append((effects.note.id, at(event)))

    def end_batch(self, cur: Any, effects: Any) -> None:
        """One statement per batch rather than one per event (a round trip on PostgreSQL)."""
        if self._batch is not effects or not self._seen:
            return
        seen, self._seen, self._batch = sorted(self._seen), [], None
        context = effects.context
        cur.execute("SELECT recorded_at FROM as_of_clock WHERE context = %s AND position < %s "
                    "ORDER BY position DESC LIMIT 1", (context, seen[0][0]))
        row = cur.fetchone()
        high, rows = (row[0] if row else ""), []
        for position, moment in seen:
            if moment > high:
                high = moment
                rows.append((context, position, moment))
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start:start + _ROWS_PER_INSERT]
            cur.execute("INSERT INTO as_of_clock (context, position, recorded_at) VALUES "
                        + ", ".join(["(%s, %s, %s)"] * len(chunk)) + " ON CONFLICT DO NOTHING",
                        [value for r in chunk for value in r])


def source(effects: Any) -> tuple[str | None, int | None]:
    """(context, position) of the event being applied, stamped on the rows it writes."""
    note = getattr(effects, "note", None)
    return (effects.context or None, note.id) if note is not None else (None, None)


def record_flags(cur: Any, account_id: str, effects: Any) -> None:
    """Keep the trial end and allowance flag as they stand after this wallet event."""
    cur.execute("SELECT trial_ends_at, allowance_active FROM balances WHERE account_id = %s",
                (account_id,))
    row = cur.fetchone()
    if row is not None:
        cur.execute("INSERT INTO balance_flags (account_id, position, trial_ends_at, "
                    "allowance_active) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (account_id, source(effects)[1], row[0], row[1]))


@dataclass(frozen=True)
class AsOf:
    """A resolved as-of point: the instant reported and the position of each context."""

    instant: str | None
    positions: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"as_of": self.instant, "as_of_position": dict(self.positions)}

    def epoch(self) -> float:
        return epoch_of(self.instant) if self.instant else 0.0

    def lines_sql(self, alias: str = "") -> tuple[str, list[int]]:
        """A WHERE fragment keeping rows whose (context, position) is at or before this point."""
        parts = [f"({alias}context = %s AND {alias}position <= %s)" for _ in self.positions]
        params: list[Any] = [v for item in sorted(self.positions.items()) for v in item]
        return "(" + " OR ".join(parts) + ")", params


def epoch_of(moment: str) -> float:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def parse_positions(text: str, contexts: tuple[str, ...]) -> dict[str, int]:
    """``accounts:N,requests:M``: exactly the contexts the query reads, each once."""
    found: dict[str, int] = {}
    for part in text.split(","):
        match = _PART.fullmatch(part.strip())
        if match is None or match[1] in found:
            found = {}
            break
        found[match[1]] = int(match[2])
    if set(found) != set(contexts):
        raise DomainError("invalid_request", "as_of_position must be "
                          + ",".join(f"{c}:<position>" for c in contexts),
                          param="as_of_position")
    return found


class AsOfResolver:
    """Turns ``as_of`` or ``as_of_position`` into an AsOf the read models can answer for."""

    def __init__(self, db: Any, max_positions: Callable[[], dict[str, int]],
                 projection: str = "balances") -> None:
        self.db = db
        self.max_positions = max_positions  # the event store's committed positions
        self.projection = projection  # the read model that will answer

    def _coverage(self, cur: Any, contexts: tuple[str, ...]) -> dict[str, tuple[int, int]]:
        """(clock position, answering read model position) per context."""
        cur.execute("SELECT projection, context, position FROM projection_tracking "
                    "WHERE projection IN (%s, %s)", (CLOCK, self.projection))
        seen = {(p, c): int(pos) for p, c, pos in cur.fetchall()}
        return {c: (seen.get((CLOCK, c), 0), seen.get((self.projection, c), 0))
                for c in contexts}

    def at_time(self, instant: str, contexts: tuple[str, ...] = BALANCE_CONTEXTS) -> AsOf:
        if epoch_of(instant) > time.time():
            raise DomainError("invalid_request", "as_of must not be in the future",
                              param="as_of")
        deadline = time.monotonic() + SETTLE_S + WAIT_S
        committed: dict[str, int] | None = None  # store positions read >= SETTLE_S after T
        while True:
            positions, open_, ready = {}, [], True
            with self.db.transaction() as cur:
                coverage = self._coverage(cur, contexts)
                for context in contexts:
                    clock, answering = coverage[context]
                    cur.execute("SELECT position FROM as_of_clock WHERE context = %s AND "
                                "recorded_at > %s ORDER BY recorded_at LIMIT 1",
                                (context, instant))
                    row = cur.fetchone()
                    if row is not None:  # rows exist only up to the clock's position
                        positions[context] = int(row[0]) - 1
                    else:  # no event after T yet: P may still grow
                        positions[context] = clock
                        open_.append(context)
                    ready = ready and answering >= positions[context]
            if open_ and committed is None:
                remaining = epoch_of(instant) + SETTLE_S - time.time()
                if remaining > 0:
                    time.sleep(remaining)
                committed = self.max_positions()
                continue
            if open_ and committed is not None:
                ready = ready and all(positions[c] >= committed.get(c, 0) for c in open_)
                late = [c for c in open_ if positions[c] > committed.get(c, 0)]
                if ready and late:
                    log.warning("events created by %s committed over %.0f s later in %s: "
                                "as-of answers for that instant may have changed",
                                instant, SETTLE_S, ", ".join(late))
            if ready:
                return AsOf(instant, positions)
            _wait_or_give_up(deadline)

    def at_positions(self, text: str, contexts: tuple[str, ...] = BALANCE_CONTEXTS) -> AsOf:
        positions = parse_positions(text, contexts)
        committed = self.max_positions()
        for context, position in positions.items():
            if position > committed.get(context, 0):
                raise DomainError("invalid_request", f"{context} position {position} is beyond "
                                  f"the current position {committed.get(context, 0)}",
                                  param="as_of_position")
        deadline = time.monotonic() + WAIT_S
        while True:
            with self.db.transaction() as cur:
                coverage = self._coverage(cur, contexts)
                if all(min(coverage[c]) >= p for c, p in positions.items()):
                    moments = []
                    for context, position in positions.items():
                        cur.execute("SELECT recorded_at FROM as_of_clock WHERE context = %s "
                                    "AND position <= %s ORDER BY position DESC LIMIT 1",
                                    (context, position))
                        row = cur.fetchone()
                        if row is not None:
                            moments.append(row[0])
                    return AsOf(max(moments) if moments else None, positions)
            _wait_or_give_up(deadline)


def _wait_or_give_up(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise DomainError("service_unavailable", "the read models have not yet caught up "
                          "with that point in time; retry shortly")
    time.sleep(_POLL_S)
