"""Worker heartbeats: which gateway processes are alive (the WorkerRegistry port).

A worker that cannot tell is treated as alive: voiding a live worker's in-flight request
would lose money, keeping a dead one's hold a little longer only delays its release (the
TTL sweep still ends it).
"""

from __future__ import annotations

import logging
import time

from domain.ids import new_id

log = logging.getLogger("gatewayz.workers")
HEARTBEAT_TTL_S = 10  # a worker silent this long is dead; it beats every TTL / 4


def new_worker_id() -> str:
    return new_id("wrk")


class LocalWorkerRegistry:
    """Embedded mode: the data directory's lock admits one serving process, so every worker
    id but this process's own belongs to a process that is gone."""

    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or new_worker_id()

    def beat(self) -> None:
        return None

    def alive(self, worker_id: str) -> bool:
        return worker_id == self.worker_id


class RedisWorkerRegistry:
    """Cluster mode: one expiring key per worker, refreshed by its heartbeat."""

    def __init__(self, client, prefix: str, worker_id: str | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.worker_id = worker_id or new_worker_id()

    def _key(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def beat(self) -> None:
        self.client.set(self._key(self.worker_id), b"1", ex=HEARTBEAT_TTL_S)

    def alive(self, worker_id: str) -> bool:
        if worker_id == self.worker_id:
            return True
        try:
            return bool(self.client.exists(self._key(worker_id)))
        except Exception:  # unsure: never void
            log.warning("cannot read worker heartbeats; treating %s as alive", worker_id)
            return True


class SqlWorkerRegistry:
    """PostgreSQL without Redis: heartbeats in the read-model database."""

    def __init__(self, db, worker_id: str | None = None) -> None:
        self.db = db
        self.worker_id = worker_id or new_worker_id()

    def beat(self) -> None:
        now = int(time.time())
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO worker_heartbeats (worker_id, seen_epoch) VALUES (%s, %s) "
                        "ON CONFLICT (worker_id) DO UPDATE SET seen_epoch = excluded.seen_epoch",
                        (self.worker_id, now))
            cur.execute("DELETE FROM worker_heartbeats WHERE seen_epoch < %s",
                        (now - 100 * HEARTBEAT_TTL_S,))

    def alive(self, worker_id: str) -> bool:
        if worker_id == self.worker_id:
            return True
        try:
            with self.db.transaction() as cur:
                cur.execute("SELECT seen_epoch FROM worker_heartbeats WHERE worker_id = %s",
                            (worker_id,))
                row = cur.fetchone()
        except Exception:
            log.warning("cannot read worker heartbeats; treating %s as alive", worker_id)
            return True
        return row is not None and int(row[0]) >= int(time.time()) - HEARTBEAT_TTL_S
