"""Shared fixtures: one gateway per test over each event-store backend, real services only.

PostgreSQL and Redis tests use the real servers on 127.0.0.1; when one cannot be reached
the test FAILS (never skips), so a green run always means they ran.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from admin_calls import AdminCalls
from fakes.anthropic_fixtures import fake_anthropic, fake_anthropic_server  # noqa: F401
from fakes.fixtures import fake_openai, fake_openai_server  # noqa: F401

from entrypoints.bootstrap import Gateway, Settings

POSTGRES_URL = os.environ.get("GATEWAYZ_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GATEWAYZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PEPPER = b"test-pepper-of-at-least-thirty-two-bytes!"
BACKENDS = ("memory", "sqlite", "postgres")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    if not _reachable("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (start it: see .ci/run)")
    return POSTGRES_URL


def require_redis() -> str:
    if not _reachable("127.0.0.1", 6379):
        pytest.fail("Redis is not reachable on 127.0.0.1:6379 (start it: see .ci/run)")
    return REDIS_URL


def _create_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_settings(backend: str, data_dir: Path, redis: bool = False,
                  schema: str | None = None) -> Settings:
    """Settings for one isolated gateway: its own directory, schema and Redis prefix."""
    common = {"data_dir": data_dir, "key_pepper": PEPPER,
              "master_key": bytes(range(32)), "redis_prefix": f"gwtest-{uuid.uuid4().hex[:10]}"}
    if redis:
        common["redis_url"] = require_redis()
    if backend == "memory":
        return Settings(memory_events=True, **common)
    if backend == "sqlite":
        return Settings(**common)
    if backend == "postgres":
        require_postgres()
        assert schema is not None
        return Settings(database_url=POSTGRES_URL, schema=schema, **common)
    raise ValueError(backend)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _create_schema(schema)
    yield schema
    _drop_schema(schema)


def open_gateway(backend: str, tmp_path: Path, redis: bool = False) -> tuple[Gateway, str | None]:
    schema = None
    if backend == "postgres":
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _create_schema(schema)
    gateway = Gateway(make_settings(backend, tmp_path / "data", redis=redis, schema=schema))
    gateway.start()
    return gateway, schema


def close_gateway(gateway: Gateway, schema: str | None) -> None:
    if getattr(gateway.holds, "flush", None):
        gateway.holds.flush()
    gateway.close()
    if schema:
        _drop_schema(schema)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def gateway(backend: str, tmp_path: Path) -> Iterator[Gateway]:
    """A started gateway (projector running) on each event-store backend."""
    gw, schema = open_gateway(backend, tmp_path)
    yield gw
    close_gateway(gw, schema)


class ServedGateway(AdminCalls):
    """A gateway behind a real uvicorn server on 127.0.0.1, plus an owner staff token."""

    def __init__(self, gateway: Gateway) -> None:
        import uvicorn

        from entrypoints.http.app import create_app

        self.gateway = gateway
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        # SDK clients that earlier tests left unclosed are freed by the cyclic GC, and their
        # __del__ logs: if that runs inside Litestar's logging setup (which holds logging's
        # lock while it starts a listener thread) the new thread deadlocks. Collect now.
        gc.collect()
        config = uvicorn.Config(create_app(gateway), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, server_header=False,
                                # As `gatewayz serve` runs it: the gateway alone decides
                                # whom X-Forwarded-For is believed from (1.6).
                                proxy_headers=False,
                                http="entrypoints.http.edge_protocol:EdgeHttpProtocol")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        _, self.owner_token = gateway.access.bootstrap_owner("owner@example.com")
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedGateway]:
    """The embedded default (SQLite, in-process holds) behind a real ASGI server."""
    gw, schema = open_gateway("sqlite", tmp_path)
    served = ServedGateway(gw)
    yield served
    served.close()
    close_gateway(gw, schema)


@pytest.fixture
def served_cluster(tmp_path: Path) -> Iterator[ServedGateway]:
    """PostgreSQL events and read models, Redis holds, behind a real ASGI server."""
    gw, schema = open_gateway("postgres", tmp_path, redis=True)
    served = ServedGateway(gw)
    yield served
    served.close()
    close_gateway(gw, schema)
