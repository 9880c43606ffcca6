"""Key lookup and staff read models: key hash -> key, staff token hash -> user (1.2, 1.5)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of


class AccessProjection:
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

    def _User_Added(self, cur, e) -> None:
        index_stream(cur, e, e.user_id)
        cur.execute("INSERT INTO users (user_id, account_id, role, permissions, added_at) "
                    "VALUES (%s, %s, %s, '[]', %s) ON CONFLICT DO NOTHING",
                    (e.user_id, e.account_id, e.role, at(e)))

    def _User_PermissionGranted(self, cur, e) -> None:
        user_id = ref_of(cur, e)
        cur.execute("SELECT permissions FROM users WHERE user_id = %s", (user_id,))
        permissions = json.loads(cur.fetchone()[0])
        if e.permission not in permissions:
            permissions.append(e.permission)
        cur.execute("UPDATE users SET permissions = %s WHERE user_id = %s",
                    (dumps(sorted(permissions)), user_id))

    def _User_StaffTokenIssued(self, cur, e) -> None:
        cur.execute("INSERT INTO staff_tokens (secret_hash, token_id, user_id, prefix, last4, "
                    "expires_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (e.secret_hash, e.token_id, ref_of(cur, e), e.prefix, e.last4, e.expires_at))


class AccessQueries:
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

    def staff_by_hash(self, secret_hash: str):
        from application.principals import StaffRecord

        with self.db.transaction() as cur:
            cur.execute(
                "SELECT t.token_id, t.user_id, u.role, u.permissions, t.expires_at "
                "FROM staff_tokens t JOIN users u ON u.user_id = t.user_id "
                "WHERE t.secret_hash = %s", (secret_hash,))
            row = cur.fetchone()
        if row is None:
            return None
        return StaffRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])

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
