"""Idempotency records in the read-model database (11.2): claim, complete, release, abandon.

The first claim of a key is one INSERT .. ON CONFLICT DO NOTHING, and every later claim that
may start work (after a release, an expiry, or of a stale or orphaned claim) is one
conditional UPDATE whose row count decides, so two concurrent requests with the same key can
never both start work. States and rules: application/idempotency.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from adapters.clock import SystemClock
from application.idempotency import CLAIM_TTL, RETENTION, default_worker_id
from application.ports import Clock, IdempotencyClaim

log = logging.getLogger("gatewayz.idempotency")

_TABLE = "idempotency_records"
_KEY = "scope = %s AND idem_key = %s"


def _stamp(moment: datetime) -> str:
    # Fixed width, so text comparison is time order (created_at and claimed_at are TEXT).
    return moment.isoformat(timespec="microseconds")


class SqlIdempotencyStore:
    """``worker_id`` marks this process's claims (default: a random per-process id);
    ``worker_alive(worker_id)``, when given, lets a claim of a dead worker be taken over at
    once instead of after ``CLAIM_TTL``."""

    def __init__(self, db, worker_id: str | None = None,
                 worker_alive: Callable[[str], bool] | None = None,
                 clock: Clock | None = None) -> None:
        self.db = db
        self.worker_id = worker_id or default_worker_id()
        self.worker_alive = worker_alive
        self.clock = clock or SystemClock()

    def claim(self, scope: str, key: str, body_hash: str) -> IdempotencyClaim:
        now = self.clock.now()
        stamp = _stamp(now)
        with self.db.transaction() as cur:
            cur.execute(f"INSERT INTO {_TABLE} (scope, idem_key, body_hash, state, created_at, "
                        "claimed_by, claimed_at, attempt) "
                        "VALUES (%s, %s, %s, 'in_progress', %s, %s, %s, 0) "
                        "ON CONFLICT DO NOTHING",
                        (scope, key, body_hash, stamp, self.worker_id, stamp))
            if cur.rowcount == 1:
                return IdempotencyClaim("new", attempt=0)
            # Start again in place, attempt + 1, when the key is free: expired (any state,
            # any body), released (any body), or an in-progress claim of the same body older
            # than the claim TTL (its worker crashed). Reset, never deleted: attempts only grow.
            cur.execute(f"UPDATE {_TABLE} SET body_hash = %s, state = 'in_progress', "
                        "status = NULL, content_type = NULL, body = NULL, created_at = %s, "
                        "claimed_by = %s, claimed_at = %s, attempt = attempt + 1 "
                        f"WHERE {_KEY} AND (created_at < %s OR state = 'released' "
                        "OR (state = 'in_progress' AND body_hash = %s "
                        "AND COALESCE(claimed_at, created_at) < %s))",
                        (body_hash, stamp, self.worker_id, stamp, scope, key,
                         _stamp(now - RETENTION), body_hash, _stamp(now - CLAIM_TTL)))
            started = cur.rowcount == 1
            cur.execute(f"SELECT body_hash, state, status, content_type, body, attempt, "
                        f"claimed_by FROM {_TABLE} WHERE {_KEY}", (scope, key))
            row = cur.fetchone()
        if row is None:  # cannot happen (rows are never deleted); let the caller retry
            return IdempotencyClaim("in_progress")
        stored_hash, state, status, content_type, body, attempt, claimed_by = row
        if started:
            return IdempotencyClaim("new", attempt=int(attempt))
        if stored_hash != body_hash:
            return IdempotencyClaim("mismatch")
        if state == "done":
            return IdempotencyClaim("done", int(status), content_type or "", body or "",
                                    int(attempt))
        if state == "unknown":
            return IdempotencyClaim("unknown", attempt=int(attempt))
        if state == "in_progress" and self._dead(claimed_by):
            return self._take_over(scope, key, claimed_by, int(attempt))
        return IdempotencyClaim("in_progress", attempt=int(attempt))

    def _dead(self, worker_id: str | None) -> bool:
        if self.worker_alive is None or not worker_id or worker_id == self.worker_id:
            return False
        try:
            return not self.worker_alive(worker_id)
        except Exception:  # unsure: a live worker's claim must never be taken
            log.warning("cannot tell whether worker %s is alive", worker_id)
            return False

    def _take_over(self, scope: str, key: str, dead_worker: str,
                   attempt: int) -> IdempotencyClaim:
        stamp = _stamp(self.clock.now())
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {_TABLE} SET claimed_by = %s, claimed_at = %s, "
                        f"attempt = attempt + 1 WHERE {_KEY} AND state = 'in_progress' "
                        "AND claimed_by = %s AND attempt = %s",
                        (self.worker_id, stamp, scope, key, dead_worker, attempt))
            if cur.rowcount == 1:
                return IdempotencyClaim("new", attempt=attempt + 1)
        return IdempotencyClaim("in_progress", attempt=attempt)

    def complete(self, scope: str, key: str, status: int, content_type: str, body: str, *,
                 attempt: int) -> bool:
        """Store the response of our claim; False when the claim is no longer ours."""
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {_TABLE} SET state = 'done', status = %s, content_type = %s, "
                        f"body = %s WHERE {_KEY} AND state = 'in_progress' AND attempt = %s",
                        (status, content_type, body, scope, key, attempt))
            return cur.rowcount == 1

    def counted(self, scope: str, key: str) -> bool:
        """Whether a request with this key already ran (or runs): its retry is answered
        from the record or refused as in progress, so rate limits must not count it again
        (1.10). A released key runs afresh and counts."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT state FROM {_TABLE} WHERE {_KEY}", (scope, key))
            row = cur.fetchone()
        return row is not None and row[0] != "released"

    def release(self, scope: str, key: str, *, attempt: int) -> None:
        """Free the key of a request that ended with no durable effect (stores nothing)."""
        self._end(scope, key, attempt, "released")

    def abandon(self, scope: str, key: str, *, attempt: int) -> None:
        """The request failed after it may have taken effect: never run it again."""
        self._end(scope, key, attempt, "unknown")

    def _end(self, scope: str, key: str, attempt: int, state: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {_TABLE} SET state = %s WHERE {_KEY} "
                        "AND state = 'in_progress' AND attempt = %s",
                        (state, scope, key, attempt))
