"""Read-model database: one small interface over SQLite and PostgreSQL (psycopg 3 pool).

SQL is written once with ``%s`` placeholders and portable syntax (``ON CONFLICT``, TEXT,
BIGINT); the SQLite side rewrites placeholders to ``?``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from adapters.persistence.store_config import StoreConfig


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...


class Database(Protocol):
    dialect: str

    def transaction(self) -> Any: ...
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


class SqliteDatabase:
    """One connection per thread; WAL so readers never wait for the projector."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
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
    def transaction(self) -> Iterator[_SqliteCursor]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
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
    def transaction(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            with conn.transaction():
                with conn.cursor() as cur:
                    yield cur

    def close(self) -> None:
        self.pool.close()


def open_database(config: StoreConfig) -> SqliteDatabase | PostgresDatabase:
    if config.kind == "postgres":
        assert config.postgres is not None
        return PostgresDatabase(config.postgres, config.schema)
    return SqliteDatabase(config.read_model_path)
