"""Where events and read models live: in memory, a SQLite file, or PostgreSQL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from eventsourcing.utils import get_topic

from adapters.persistence.recorders import SQLITE_RECORDERS
from adapters.persistence.transcoder import MsgspecTranscoder


@dataclass(frozen=True)
class StoreConfig:
    kind: str  # "memory", "sqlite" or "postgres"
    sqlite_path: str = ""  # the event store's file (kind "sqlite")
    read_model_path: str = ""  # the read models' SQLite file (kinds "sqlite" and "memory")
    postgres: dict | None = None
    schema: str = "public"

    @classmethod
    def memory(cls, sqlite_path: str) -> StoreConfig:
        """Events in memory; read models still need SQL, so they use a scratch SQLite file."""
        return cls(kind="memory", read_model_path=sqlite_path)

    @classmethod
    def sqlite(cls, path: str) -> StoreConfig:
        """Events in ``path``; read models in ``read-models.sqlite`` beside it.

        Two files, not one: SQLite has one writer per file, and with both in one file every
        projector commit stalled the request path's event writes (measured: p99 at one
        connection 7 ms -> 5 ms, 32-connection throughput +25% with two files).
        """
        return cls(kind="sqlite", sqlite_path=path,
                   read_model_path=str(Path(path).with_name("read-models.sqlite")))

    @classmethod
    def from_url(cls, url: str, schema: str = "public") -> StoreConfig:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must start with postgresql://")
        params = {
            "host": parsed.hostname or "127.0.0.1",
            "port": str(parsed.port or 5432),
            "dbname": (parsed.path or "/").lstrip("/") or "postgres",
            "user": unquote(parsed.username or "postgres"),
            "password": unquote(parsed.password or ""),
        }
        return cls(kind="postgres", postgres=params, schema=schema)

    def app_env(self, context: str) -> dict[str, str]:
        """eventsourcing settings for one bounded context's application."""
        env = {"TRANSCODER_TOPIC": get_topic(MsgspecTranscoder)}
        if self.kind == "memory":
            env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
        elif self.kind == "sqlite":
            env.update({
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": get_topic(SQLITE_RECORDERS[context]),
            })
        else:
            assert self.postgres is not None
            pg = self.postgres
            env.update({
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_HOST": pg["host"],
                "POSTGRES_PORT": pg["port"],
                "POSTGRES_DBNAME": pg["dbname"],
                "POSTGRES_USER": pg["user"],
                "POSTGRES_PASSWORD": pg["password"],
                "POSTGRES_SCHEMA": self.schema,
                # Each process opens one pool per context: many workers on one server may
                # need smaller pools than the default (max_connections is often 100).
                "POSTGRES_POOL_SIZE": os.environ.get("GATEWAYZ_PG_POOL_SIZE", "4"),
                "POSTGRES_MAX_OVERFLOW": os.environ.get("GATEWAYZ_PG_MAX_OVERFLOW", "8"),
                "POSTGRES_CONNECT_TIMEOUT": "5",
                "POSTGRES_LOCK_TIMEOUT": "10",
            })
        return env
