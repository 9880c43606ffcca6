"""The projector's cursor on PostgreSQL: a batch's writes are queued and sent together.

Projections send statements one event at a time; a round trip each held a rebuild to
~1,000 events/s. A ``BatchCursor`` only queues a write (INSERT, UPDATE, DELETE); every SEND_AT
writes the queue is sent into a psycopg pipeline without waiting (the server works on it
while the projector goes on). Before any other statement (a read, a lock, a savepoint),
before ``rowcount`` and before the commit, the rest is sent and the pipeline is synced
and left: the server has then run the same writes, with the same effect.

Order: each table's writes run in the order they were queued; writes of different tables
commute, so each table's writes are sent together, which makes runs of one statement long.
That holds because read-model tables have no foreign keys and no trigger that touches
another table; a write that may read or touch another table (``table_of`` gives None) is
a barrier: everything queued before it runs before it, everything after, after.

Runs: a run of writes of one statement (or of one INSERT shape with VALUES lists of any
length) goes out as one statement when adapters/persistence/bulk_sql.py can say it as one
(the rows as JSON), else as one ``executemany``.

Why reads never run inside the pipeline: a psycopg cursor's result is whatever result
arrived for it last. Once the server's output buffer fills (~8 KB of replies, a few hundred
writes) replies arrive mid-pipeline, and a SELECT sent on the cursor that issued those
writes could be handed a write's reply: ``fetchone`` then raised "the last operation didn't
produce records (command status: INSERT 0 1)", the failure of the earlier pipelined
projector. Writes here use their own cursor, and reads run on another one only after the
pipeline has been left. A write's error surfaces when the queue is sent: the projector's
guarded retry calls ``flush()`` inside each event's savepoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from adapters.persistence.bulk_sql import shape as _shape

SEND_AT = 500  # queued writes sent without waiting: long runs, yet the server never idles
Write = tuple[str | None, str, Sequence[Any]]  # (its one table, statement, parameters)


def kind_of(sql: str) -> tuple[bool, str | None]:
    """(whether ``sql`` may wait in the queue, the one table it writes): a write that
    returns rows (RETURNING) is answered at once, like a read."""
    text = sql.lstrip()[:6].upper()
    write = text in ("INSERT", "UPDATE", "DELETE") and "RETURNING" not in sql.upper()
    return write, table_of(sql) if write else None


def table_of(sql: str) -> str | None:
    """The one table a write touches, or None when it may read or touch others (a SELECT,
    a FROM or USING clause, RETURNING, a qualified or quoted name)."""
    words = sql.split()
    upper = [w.upper() for w in words]
    if "SELECT" in upper or "RETURNING" in upper or ";" in sql or len(words) < 3:
        return None
    if upper[:2] == ["INSERT", "INTO"]:
        table = words[2].split("(")[0]
    elif upper[0] == "UPDATE" and "FROM" not in upper:
        table = words[1]
    elif upper[:2] == ["DELETE", "FROM"] and "USING" not in upper:
        table = words[2]
    else:
        return None
    return table.lower() if table.isidentifier() else None


class BatchCursor:
    """Queues writes, sends them in one pipeline before any read and before the commit."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._reader = conn.cursor()
        self._writer = conn.cursor()
        self._queue: list[Write] = []
        self._pipeline: ExitStack | None = None  # open while sent writes may be unanswered
        self._kinds: dict[str, tuple[bool, str | None]] = {}  # sql -> (a write?, its table)
        self._last_read = False  # whether the last statement ran on the reader

    def execute(self, sql: str, params: Sequence[Any] = ()) -> BatchCursor:
        kind = self._kinds.get(sql)
        if kind is None:
            kind = self._kinds[sql] = kind_of(sql)
        self._last_read = not kind[0] or isinstance(params, dict)
        if not self._last_read:
            self._queue.append((kind[1], sql, params))
            if len(self._queue) >= SEND_AT:
                self._send_or_leave(keep_last=True)  # (rowcount may still ask for it)
            return self
        self.flush()
        self._reader.execute(sql, params)
        return self

    def fetchone(self) -> tuple | None:
        self._readable()
        return self._reader.fetchone()

    def fetchall(self) -> list[tuple]:
        self._readable()
        return self._reader.fetchall()

    def _readable(self) -> None:
        if self._queue:  # as psycopg answers a fetch after a write
            import psycopg

            raise psycopg.ProgrammingError("the last operation was a write: no records")

    @property
    def rowcount(self) -> int:
        """The last statement's row count: a queued last write is sent on its own for it
        (-1, unknown, once it went out with others after an explicit flush)."""
        if self._queue:
            _, sql, params = self._queue.pop()
            self.flush()
            self._reader.execute(sql, params)
            self._last_read = True
        return self._reader.rowcount if self._last_read else -1

    def flush(self) -> None:
        """Send every queued write and wait for all of them; raise the first error."""
        self._send_or_leave()
        self._leave()  # a Sync, then every result is read

    def _send_or_leave(self, keep_last: bool = False) -> None:
        try:
            self._send(keep_last)
        except BaseException as error:
            # An error already read back: leave the pipeline and drop what is still queued
            # (run one by one, it would never have been sent), so the caller can roll back
            # (to a savepoint) without the aborted statements raising again.
            self._queue = []
            self._leave(error)
            raise

    def _leave(self, error: BaseException | None = None) -> None:
        """Leave the pipeline; after ``error``, without raising again (psycopg logs it)."""
        if self._pipeline is None:
            return
        pipeline, self._pipeline = self._pipeline, None
        if error is None:
            pipeline.close()
        else:
            pipeline.__exit__(type(error), error, error.__traceback__)

    def _send(self, keep_last: bool = False) -> None:
        if not self._queue:
            return
        if keep_last:
            queue, self._queue = self._queue[:-1], self._queue[-1:]
        else:
            queue, self._queue = self._queue, []
        if not queue:
            return
        if self._pipeline is None:
            self._pipeline = ExitStack()
            self._pipeline.enter_context(self._conn.pipeline())
        for run in runs(queue):
            shape = _shape(run[0][0])
            if shape is not None and len(run) == 1 and len(run[0][1]) <= len(shape.fields):
                shape = None  # one row: as it is
            rows = shape.bulk([params for _, params in run]) if shape else None
            if rows is not None:
                self._writer.execute(shape.sql, (rows,))
                continue
            start = 0
            while start < len(run):  # runs of one text as one executemany
                end = start + 1
                while end < len(run) and run[end][0] == run[start][0]:
                    end += 1
                if end - start == 1:
                    self._writer.execute(*run[start])
                else:
                    self._writer.executemany(run[start][0], [p for _, p in run[start:end]])
                start = end

    def close(self, error: BaseException | None = None) -> None:
        try:
            self._leave(error)
        finally:
            self._reader.close()
            self._writer.close()


def runs(queue: list[Write]) -> Iterator[list[tuple[str, Sequence[Any]]]]:
    """The queue as runs of [(statement, params), ...]: between barriers, table by table
    (in order of first appearance), each table's writes in queue order; a run is one
    statement text, or inserts of one shape (VALUES lists of any length)."""
    segment: dict[str, list[tuple[str, Sequence[Any]]]] = {}
    for table, sql, params in [*queue, (None, "", ())]:
        if table is not None:
            segment.setdefault(table, []).append((sql, params))
            continue
        for writes in segment.values():
            run = [writes[0]]
            for write in writes[1:]:
                if write[0] != run[-1][0] and not _joins(run[-1][0], write[0]):
                    yield run
                    run = []
                run.append(write)
            yield run
        segment = {}
        if sql:
            yield [(sql, params)]


def _joins(a: str, b: str) -> bool:
    shape_a, shape_b = _shape(a), _shape(b)
    return shape_a is not None and shape_b is not None and shape_a.sql == shape_b.sql
