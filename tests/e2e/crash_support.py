"""Crash-matrix helpers: `gatewayz serve` as a real process on one deployment (embedded
SQLite, or PostgreSQL + Redis) that can be killed with -9 and restarted on the same state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from admin_calls import AdminCalls

GATEWAYZ = str(Path(sys.executable).parent / "gatewayz")
POSTGRES_URL = os.environ.get("GATEWAYZ_TEST_DATABASE_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GATEWAYZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PEPPER = "crash-matrix-pepper-of-at-least-32-bytes"
MASTER_KEY_HEX = bytes(range(32)).hex()
# Anything from the caller's shell that would point a child at other state.
_SCRUBBED = ("DATABASE_URL", "REDIS_URL", "GATEWAYZ_KEY_PEPPER", "GATEWAYZ_MASTER_KEY",
             "GATEWAYZ_DB_SCHEMA", "GATEWAYZ_REDIS_PREFIX", "GATEWAYZ_CRASH_AT",
             "GATEWAYZ_DATA_DIR", "GATEWAYZ_HOST", "GATEWAYZ_PORT")
TERMINAL_EVENTS = ("HoldSettled", "HoldVoided", "HoldExpired")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        raise AssertionError(f"{what} is not reachable on {host}:{port} "
                             "(start it: see .ci/run)") from None


class Server(AdminCalls):
    """One `gatewayz serve` process plus an HTTP client speaking to it as the owner."""

    def __init__(self, deployment: Deployment, owner_token: str, crash_at: str | None,
                 number: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.owner_token = owner_token
        self.crash_at = crash_at
        self.log = deployment.root / f"serve-{number}{'-' + crash_at if crash_at else ''}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [GATEWAYZ, "serve", "--data-dir", str(deployment.data_dir),
                 "--port", str(self.port)],
                env=deployment.env(crash_at), stdout=log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode} on start:\n"
                                     f"{self.output()}")
            try:
                if self.http.get("/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not become healthy within {timeout}s:\n"
                             f"{self.output()}")

    def output(self, tail: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    # -- lifecycle --------------------------------------------------------------------------
    def wait_dead(self, timeout: float) -> int | None:
        """The exit status once the process has gone, or None if it still runs."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Deployment:
    """The durable state one case runs on: a data directory, and for ``cluster`` a fresh
    PostgreSQL schema and Redis key prefix. Every process it starts shares them."""

    def __init__(self, backend: str, root: Path) -> None:
        assert backend in ("sqlite", "cluster"), backend
        self.backend = backend
        self.root = root
        self.data_dir = root / "gatewayz-data"
        self.schema: str | None = None
        self.redis_prefix: str | None = None
        self.account_ids: list[str] = []
        self._servers: list[Server] = []
        if backend == "cluster":
            _require("127.0.0.1", 5432, "PostgreSQL")
            _require("127.0.0.1", 6379, "Redis")
            self.schema = f"crash_{uuid.uuid4().hex[:12]}"
            self.redis_prefix = f"gwcrash-{uuid.uuid4().hex[:10]}"
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        if self.backend == "cluster":
            assert self.schema and self.redis_prefix
            env.update({"DATABASE_URL": POSTGRES_URL, "GATEWAYZ_DB_SCHEMA": self.schema,
                        "REDIS_URL": REDIS_URL, "GATEWAYZ_REDIS_PREFIX": self.redis_prefix,
                        "GATEWAYZ_KEY_PEPPER": PEPPER, "GATEWAYZ_MASTER_KEY": MASTER_KEY_HEX})
        if crash_at:
            env["GATEWAYZ_CRASH_AT"] = crash_at
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([GATEWAYZ, *args, "--data-dir", str(self.data_dir)],
                              env=self.env(), capture_output=True, text=True, timeout=timeout)

    def bootstrap(self) -> str:
        """The owner's staff token. In this process, as `gatewayz admin bootstrap` would do it
        (same settings), because a CLI start costs a second or two of a shared CPU per case."""
        from entrypoints.bootstrap import Gateway, Settings

        settings = Settings(data_dir=self.data_dir, run_projector=False)
        if self.backend == "cluster":
            settings = Settings(data_dir=self.data_dir, run_projector=False,
                                database_url=POSTGRES_URL, schema=self.schema or "public",
                                redis_url=REDIS_URL, redis_prefix=self.redis_prefix or "gw",
                                key_pepper=PEPPER.encode(),
                                master_key=bytes.fromhex(MASTER_KEY_HEX))
        gateway = Gateway(settings)
        try:
            return gateway.access.bootstrap_owner("owner@example.com")[1]
        finally:
            gateway.close()

    def serve(self, owner_token: str, crash_at: str | None = None) -> Server:
        server = Server(self, owner_token, crash_at, len(self._servers) + 1)
        self._servers.append(server)
        return server

    def replay_verify(self) -> subprocess.CompletedProcess:
        return self.cli("replay", "--verify")

    def request_streams(self) -> dict[str, list[Any]]:
        """Every inference request in the event store: request id -> its events, in order."""
        from adapters.persistence.store_config import StoreConfig
        from application.apps import RequestsApp

        if self.backend == "cluster":
            config = StoreConfig.from_url(POSTGRES_URL, self.schema or "public")
        else:
            config = StoreConfig.sqlite(str(self.data_dir / "gatewayz.sqlite"))
        app = RequestsApp(env=config.app_env("requests"))
        try:
            by_stream: dict[Any, list[Any]] = {}
            for note in app.recorder.select_notifications(start=1, limit=1_000_000):
                event = app.mapper.to_domain_event(note)
                by_stream.setdefault(event.originator_id, []).append(event)
        finally:
            app.close()
        out: dict[str, list[Any]] = {}
        for stream_id, events in by_stream.items():
            request_id = getattr(events[0], "request_id", None)
            assert request_id is not None, f"stream {stream_id} does not start with HoldPlaced"
            out[request_id] = events
        return out

    def close(self) -> None:
        for server in self._servers:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait(timeout=10)
            server.http.close()
        if self.backend != "cluster":
            return
        import psycopg
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            names = list(client.scan_iter(f"{self.redis_prefix}:*", count=500))
            # Should serve ignore GATEWAYZ_REDIS_PREFIX, this case's accounts sit under "gw".
            for account_id in self.account_ids:
                names += [f"gw:bal:{account_id}", f"gw:holds:{account_id}"]
            if names:
                client.delete(*names)
        finally:
            client.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def event_name(event: Any) -> str:
    return type(event).__name__
