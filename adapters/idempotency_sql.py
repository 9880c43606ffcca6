"""Idempotency records in the read-model database (11.2): claim, complete, release.

The claim is one INSERT .. ON CONFLICT DO NOTHING, so two concurrent requests with the
same key can never both start work.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.ports import IdempotencyClaim

RETENTION = timedelta(hours=24)


class SqlIdempotencyStore:
    def __init__(self, db) -> None:
        self.db = db

    def claim(self, scope: str, key: str, body_hash: str) -> IdempotencyClaim:
        now = datetime.now(UTC)
        with self.db.transaction() as cur:
            # A record older than the retention window no longer binds the key (documented).
            cur.execute("DELETE FROM idempotency_records WHERE scope = %s AND idem_key = %s "
                        "AND created_at < %s", (scope, key, (now - RETENTION).isoformat()))
            cur.execute("INSERT INTO idempotency_records (scope, idem_key, body_hash, state, "
                        "created_at) VALUES (%s, %s, %s, 'in_progress', %s) "
                        "ON CONFLICT DO NOTHING", (scope, key, body_hash, now.isoformat()))
            if cur.rowcount == 1:
                return IdempotencyClaim("new")
            cur.execute("SELECT body_hash, state, status, content_type, body "
                        "FROM idempotency_records WHERE scope = %s AND idem_key = %s",
                        (scope, key))
            row = cur.fetchone()
        if row is None:  # released between our insert and select: let the caller retry
            return IdempotencyClaim("in_progress")
        if row[0] != body_hash:
            return IdempotencyClaim("mismatch")
        if row[1] != "done":
            return IdempotencyClaim("in_progress")
        return IdempotencyClaim("done", int(row[2]), row[3] or "", row[4] or "")

    def complete(self, scope: str, key: str, status: int, content_type: str, body: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE idempotency_records SET state = 'done', status = %s, "
                        "content_type = %s, body = %s WHERE scope = %s AND idem_key = %s",
                        (status, content_type, body, scope, key))

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request was rejected before any effect (stores nothing)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_records WHERE scope = %s AND idem_key = %s "
                        "AND state = 'in_progress'", (scope, key))
