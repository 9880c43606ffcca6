"""Key lookup read model: key hash -> key (1.2); staff users in access_users.py (1.5)."""

from __future__ import annotations

import json
from typing import Any

from projections.access_users import StaffQueries, UserHandlers
from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of


class AccessProjection(UserHandlers):
    name = "access"
    contexts = ("access",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(cur, event)
            effects.access_changed = True

    def _ApiKey_Issued(self, cur, e) -> None:
        index_stream(cur, e, e.key_id)
        cur.execute(
            "INSERT INTO api_keys (key_id, account_id, name, name_lower, environment, prefix, "
            "last4, status, scopes, expires_at, max_requests, allowed_models, created_by, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (e.key_id, e.account_id, e.name, e.name.lower(), e.environment, e.prefix, e.last4,
             dumps(e.scopes), e.expires_at, e.max_requests, dumps(e.allowed_models),
             e.created_by, at(e)))
        cur.execute("INSERT INTO key_secrets (secret_hash, key_id, valid_until) "
                    "VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING", (e.secret_hash, e.key_id))

    def _ApiKey_Rotated(self, cur, e) -> None:
        key_id = ref_of(cur, e)
        # Only the secret just replaced keeps a grace window; any older one ends now.
        cur.execute("DELETE FROM key_secrets WHERE key_id = %s AND secret_hash <> %s",
                    (key_id, e.previous_secret_hash))
        cur.execute("UPDATE key_secrets SET valid_until = %s WHERE secret_hash = %s",
                    (e.previous_valid_until, e.previous_secret_hash))
        cur.execute("INSERT INTO key_secrets (secret_hash, key_id, valid_until) "
                    "VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING", (e.secret_hash, key_id))
        cur.execute("UPDATE api_keys SET prefix = %s, last4 = %s, rotated_at = %s "
                    "WHERE key_id = %s", (e.prefix, e.last4, at(e), key_id))

    def _ApiKey_Revoked(self, cur, e) -> None:
        cur.execute("UPDATE api_keys SET status = 'revoked', revoked_at = %s WHERE key_id = %s",
                    (at(e), ref_of(cur, e)))


class AccessQueries(StaffQueries):
    """Reads for authentication and key listings; implements the AccessReader port."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def key_by_hash(self, secret_hash: str):
        from application.principals import KeyRecord

        with self.db.transaction() as cur:
            cur.execute(
                "SELECT k.key_id, k.account_id, k.environment, k.status, k.expires_at, k.scopes, "
                "k.allowed_models, s.valid_until, k.prefix FROM key_secrets s "
                "JOIN api_keys k ON k.key_id = s.key_id WHERE s.secret_hash = %s",
                (secret_hash,))
            row = cur.fetchone()
        if row is None:
            return None
        return KeyRecord(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])),
                         tuple(json.loads(row[6])), row[7], row[8])

    def key_names(self, account_id: str) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT name_lower FROM api_keys WHERE account_id = %s AND "
                        "status <> 'revoked'", (account_id,))
            return [r[0] for r in cur.fetchall()]

    def keys_of(self, account_id: str) -> list[dict]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT key_id, name, environment, prefix, last4, status, scopes, expires_at, "
                "created_at, rotated_at, revoked_at FROM api_keys WHERE account_id = %s "
                "ORDER BY created_at, key_id", (account_id,))
            rows = cur.fetchall()
        return [{"id": r[0], "object": "api_key", "name": r[1], "environment": r[2],
                 "prefix": r[3], "last4": r[4], "status": r[5], "scopes": json.loads(r[6]),
                 "expires_at": r[7], "created_at": r[8], "rotated_at": r[9],
                 "revoked_at": r[10]} for r in rows]
