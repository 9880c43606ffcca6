"""Read-model database: one small interface over SQLite and PostgreSQL (psycopg 3 pool).

SQL is written once with ``%s`` placeholders and portable syntax (``ON CONFLICT``, TEXT,
BIGINT); the SQLite side rewrites placeholders to ``?``. ``transaction(batch=True)`` is the
projector's: its writes wait in a queue and go out together before the next read and the
commit (adapters/persistence/batch_cursor.py; on SQLite as ``executemany`` runs).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from adapters.persistence.batch_cursor import BatchCursor, kind_of, runs
from adapters.persistence.store_config import StoreConfig


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...
    def flush(self) -> None: ...


class Database(Protocol):
    dialect: str

    def transaction(self, batch: bool = False) -> Any: ...
    def close(self) -> None: ...


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _SqliteCursor:
        self._cursor.execute(sql.replace("%s", "?"), tuple(params))
        return self

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def flush(self) -> None:
        """Nothing is held back here (see _SqliteBatchCursor)."""


class _SqliteBatchCursor(_SqliteCursor):
    """A projector batch's cursor on SQLite: writes are queued until the next read (or
    ``rowcount``, or the commit), then run table by table as ``executemany`` runs in the
    order batch_cursor.runs gives (same rows as one by one; ~5 us a row instead of ~17)."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        super().__init__(cursor)
        self._queue: list[tuple[str | None, str, Sequence[Any]]] = []
        self._kinds: dict[str, tuple[bool, str | None]] = {}  # sql -> (a write?, its table)
        self._last_read = False  # whether the last statement ran on its own

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _SqliteCursor:
        kind = self._kinds.get(sql)
        if kind is None:
            kind = self._kinds[sql] = kind_of(sql)
        self._last_read = not kind[0]
        if kind[0]:
            self._queue.append((kind[1], sql, tuple(params)))
            return self
        self.flush()
        return super().execute(sql, params)

    def fetchone(self) -> tuple | None:
        return None if self._queue else super().fetchone()

    def fetchall(self) -> list[tuple]:
        return [] if self._queue else super().fetchall()

    @property
    def rowcount(self) -> int:
        if self._queue:
            _, sql, params = self._queue.pop()
            self.flush()
            super().execute(sql, params)
            self._last_read = True
        return self._cursor.rowcount if self._last_read else -1

    def flush(self) -> None:
        queue, self._queue = self._queue, []  # after an error nothing queued is run
        for run in runs(queue):
            start = 0
            while start < len(run):
                end = start + 1
                while end < len(run) and run[end][0] == run[start][0]:
                    end += 1
                self._cursor.executemany(run[start][0].replace("%s", "?"),
                                         [p for _, p in run[start:end]])
                start = end


class SqliteDatabase:
    """One connection per thread; WAL so readers never wait for the projector."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        create_private_file(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, batch: bool = False) -> Iterator[_SqliteCursor]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if batch:
                cur = _SqliteBatchCursor(conn.cursor())
                yield cur
                cur.flush()
            else:
                yield _SqliteCursor(conn.cursor())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, params: dict, schema: str = "public", max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        conninfo = " ".join(f"{k}='{v}'" for k, v in params.items() if v != "")
        self.schema = schema
        self.pool = ConnectionPool(
            conninfo, min_size=1, max_size=max_size, open=True, timeout=10,
            kwargs={"options": f"-c search_path={schema}", "connect_timeout": 5},
        )

    @contextmanager
    def transaction(self, batch: bool = False) -> Iterator[Any]:
        """With ``batch``, writes are queued and sent in one round trip before each read and
        before the commit (BatchCursor); errors they raise surface at that point."""
        with self.pool.connection() as conn:
            with conn.transaction():
                if batch:
                    cur = BatchCursor(conn)
                    try:
                        yield cur
                        cur.flush()
                    except BaseException as error:
                        cur.close(error)
                        raise
                    cur.close()
                    return
                with conn.cursor() as cur:
                    yield cur

    def close(self) -> None:
        self.pool.close()


def create_private_file(path: str) -> None:
    """Create a SQLite file owner-only (0600) before SQLite opens it, or tighten it.

    SQLite creates files 0644 less the umask and gives its -wal and -shm files the main
    file's mode, so a main file made 0600 first keeps all three private (issue 9). The
    explicit chmod does not depend on the umask and fixes files an older version left 0644.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for journal in (path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(journal, 0o600)


def open_database(config: StoreConfig) -> SqliteDatabase | PostgresDatabase:
    if config.kind == "postgres":
        assert config.postgres is not None
        return PostgresDatabase(config.postgres, config.schema)
    if config.kind == "sqlite":  # the event store's file, which eventsourcing opens later
        create_private_file(config.sqlite_path)
    return SqliteDatabase(config.read_model_path)
