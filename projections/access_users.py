"""Staff users and their tokens: the read model staff authentication uses (1.4, 1.5)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import at, dumps, index_stream, ref_of


class UserHandlers:
    """The User events of the access projection (mixed into AccessProjection)."""

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


class StaffQueries:
    """Reads of staff users and tokens (part of the AccessReader port)."""

    db: Any

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
